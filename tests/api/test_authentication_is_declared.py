"""Authentication is structural: every operation that answers 401 declares a dependency that
loads and checks the caller before the endpoint runs, so no endpoint body has to remember it,
and every one of them refuses a request without a valid token."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from app.api.deps import get_current_caller, get_current_user, get_owned_item
from app.api.router import API_ROUTERS
from tests.api.contract import assert_problem

# Each loads the account the token speaks for and refuses a deleted, revoked or deactivated one.
CALLER_CHECKS: set[Callable[..., Any]] = {get_current_caller, get_current_user, get_owned_item}
# Operations that accept anonymous callers (their 401 is a wrong password, not a token).
ANONYMOUS = {("POST", "/users"), ("POST", "/auth/token")}


def calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from calls(dependency)


def api_operations() -> list[tuple[str, APIRoute]]:
    """Every operation under /api/v1 (paths relative to it)."""
    return [
        (method, route)
        for router in API_ROUTERS
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in sorted(route.methods)
    ]


@pytest.mark.parametrize(
    ("method", "route"),
    api_operations(),
    ids=lambda value: getattr(value, "path", value),
)
def test_every_authenticated_operation_declares_its_caller_check(
    method: str, route: APIRoute
) -> None:
    if (method, route.path) in ANONYMOUS:
        pytest.skip("anonymous by design")

    assert CALLER_CHECKS & set(calls(route.dependant)), f"{method} {route.path}"
    assert "401" in {str(status) for status in route.responses}


def concrete(route: APIRoute) -> str:
    """The route's path under /api/v1 with every parameter filled with a valid id."""
    path = "/api/v1" + route.path
    for name in route.param_convertors:
        path = path.replace("{" + name + ":not_me}", "1").replace("{" + name + "}", "1")
    return path


AUTHENTICATED = [
    (method, route) for method, route in api_operations() if (method, route.path) not in ANONYMOUS
]


@pytest.mark.parametrize(
    ("method", "route"),
    AUTHENTICATED,
    ids=lambda value: getattr(value, "path", value),
)
@pytest.mark.parametrize(
    ("headers", "challenge"),
    [
        ({}, "Bearer"),
        ({"Authorization": "Bearer not-a-token"}, 'Bearer error="invalid_token"'),
    ],
    ids=["no token", "invalid token"],
)
def test_every_authenticated_operation_refuses_a_caller_without_a_valid_token(
    client: TestClient,
    method: str,
    route: APIRoute,
    headers: dict[str, str],
    challenge: str,
) -> None:
    body = {} if method in {"POST", "PATCH"} else None

    response = client.request(method, concrete(route), json=body, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == challenge
