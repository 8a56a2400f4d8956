"""Every operation on one resource (found from the routers, so a new one is covered) answers a
missing id with the resource's 404 problem and a malformed id with a 422 at the path, and
changes nothing."""

from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.api.router import API_PREFIX, API_ROUTERS
from app.models import Item, User
from tests.api.contract import PROBLEM_KEYS, assert_problem

MAX_ID = 2**31 - 1  # the largest valid id: also proves it fits the database's integer column
INVALID_IDS = ["0", "-1", str(2**31), "99999999999999999999", "abc", "1.5", "meow", "me2"]
# A valid body for each writing operation, so only the id can be wrong.
VALID_BODIES: dict[str, dict[str, Any]] = {"PATCH": {"full_name": "Nobody", "title": "changed"}}
RESOURCE_NAMES = {"item_id": "Item", "user_id": "User"}


def id_operations() -> list[tuple[str, APIRoute, str]]:
    """(method, route, id parameter) for every /api/v1 operation with an id in its path."""
    return [
        (method, route, name)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for name in route.param_convertors
        for method in sorted(route.methods)
    ]


OPERATIONS = id_operations()
EVERY_ID_OPERATION = pytest.mark.parametrize(
    ("method", "route", "name"), OPERATIONS, ids=lambda value: getattr(value, "path", value)
)


def url(route: APIRoute, name: str, value: object) -> str:
    path = API_PREFIX + route.path
    for template in ("{" + name + "}", "{" + name + ":not_me}"):
        path = path.replace(template, str(value))
    return path


def body_for(method: str, name: str) -> dict[str, Any] | None:
    body = VALID_BODIES.get(method)
    if body is None:
        return None
    # Each resource rejects the other's fields: send only its own.
    field = "title" if name == "item_id" else "full_name"
    return {field: body[field]}


def rows(session: Session) -> tuple[int, int]:
    session.expire_all()
    users = session.scalar(select(func.count()).select_from(User))
    items = session.scalar(select(func.count()).select_from(Item))
    return users or 0, items or 0


def test_the_routers_have_operations_on_items_and_users() -> None:
    assert {name for _method, _route, name in OPERATIONS} == set(RESOURCE_NAMES)
    assert len(OPERATIONS) >= 6


@EVERY_ID_OPERATION
@pytest.mark.parametrize("missing", ["largest", "next"])
def test_a_missing_id_is_the_resources_404_problem(
    client: TestClient,
    session: Session,
    admin_headers: dict[str, str],
    method: str,
    route: APIRoute,
    name: str,
    missing: str,
) -> None:
    newest = max(
        session.scalar(select(func.max(User.id))) or 0,
        session.scalar(select(func.max(Item.id))) or 0,
    )
    resource_id = MAX_ID if missing == "largest" else newest + 1000
    before = rows(session)
    path = url(route, name, resource_id)

    response = client.request(method, path, json=body_for(method, name), headers=admin_headers)

    body = assert_problem(response, 404)
    assert set(body) == PROBLEM_KEYS
    assert body["detail"] == f"{RESOURCE_NAMES[name]} {resource_id} not found"
    assert rows(session) == before


@EVERY_ID_OPERATION
@pytest.mark.parametrize("resource_id", INVALID_IDS)
def test_a_malformed_id_is_422_at_the_path(
    client: TestClient,
    session: Session,
    admin_headers: dict[str, str],
    method: str,
    route: APIRoute,
    name: str,
    resource_id: str,
) -> None:
    before = rows(session)

    response = client.request(
        method, url(route, name, resource_id), json=body_for(method, name), headers=admin_headers
    )

    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["path", name]]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])
    assert rows(session) == before
