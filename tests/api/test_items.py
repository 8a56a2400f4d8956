"""The /api/v1/items endpoints as API.md promises them to clients."""

from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.main import app
from app.models import Item, User
from tests.api.contract import ITEMS, assert_problem
from tests.factories import auth_headers, make_item, make_user

ITEM_READ_KEYS = {"id", "title", "description", "owner_id", "created_at", "updated_at"}


def item_url(item_id: int | str) -> str:
    return f"{ITEMS}/{item_id}"


def send(client: TestClient, method: str, url: str, headers: dict[str, str]) -> Response:
    """GET, PATCH (with a valid body) or DELETE ``url``."""
    if method == "PATCH":
        return client.patch(url, json={"title": "changed"}, headers=headers)
    return client.request(method, url, headers=headers)


def assert_validation_error(response: Response, loc: list[str | int]) -> None:
    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [loc]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])


def item_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Item)) or 0


def snapshot(session: Session, item_id: int) -> dict[str, Any] | None:
    """The item's stored columns, read from the database (not the identity map)."""
    row = session.execute(
        select(Item.title, Item.description, Item.owner_id, Item.updated_at).where(
            Item.id == item_id
        )
    ).one_or_none()
    return dict(row._mapping) if row is not None else None


def stored(session: Session, item_id: int, *fields: str) -> tuple[Any, ...]:
    row = snapshot(session, item_id)
    assert row is not None
    return tuple(row[field] for field in fields)


# --- create ---------------------------------------------------------------------------------


def test_create_item_returns_201_with_exactly_the_item_read_fields(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(
        ITEMS, json={"title": "Buy milk", "description": "semi-skimmed"}, headers=user_headers
    )

    assert response.status_code == 201
    body = response.json()
    assert set(body) == ITEM_READ_KEYS
    assert body["title"] == "Buy milk"
    assert body["description"] == "semi-skimmed"
    assert body["owner_id"] == user.id
    assert isinstance(body["id"], int)


def test_create_item_location_header_names_the_new_item(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.post(ITEMS, json={"title": "Buy milk"}, headers=user_headers)

    location = response.headers["Location"]
    assert location == item_url(response.json()["id"])
    assert client.get(location, headers=user_headers).json() == response.json()


def test_create_item_location_keeps_the_root_path(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    behind_proxy = TestClient(app, root_path="/svc")

    response = behind_proxy.post(ITEMS, json={"title": "Buy milk"}, headers=user_headers)

    assert response.headers["Location"] == f"/svc{item_url(response.json()['id'])}"


def test_create_item_stores_the_row_owned_by_the_caller(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(ITEMS, json={"title": "Buy milk"}, headers=user_headers)

    assert stored(session, response.json()["id"], "title", "description", "owner_id") == (
        "Buy milk",
        None,
        user.id,
    )


def test_create_item_without_description_returns_null_description(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.post(ITEMS, json={"title": "Buy milk"}, headers=user_headers)

    assert response.status_code == 201
    assert response.json()["description"] is None


def test_create_item_returns_timestamps_in_utc_with_an_explicit_offset(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.post(ITEMS, json={"title": "Buy milk"}, headers=user_headers)

    for field in ("created_at", "updated_at"):
        assert datetime.fromisoformat(response.json()[field]).utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"title": "t" * 200}, "title"),
        ({"title": "t"}, "title"),
        ({"title": "t", "description": "d" * 5000}, "description"),
        ({"title": "t", "description": ""}, "description"),
    ],
    ids=["title-200", "title-1", "description-5000", "description-empty"],
)
def test_create_item_accepts_boundary_lengths(
    client: TestClient, user_headers: dict[str, str], payload: dict[str, str], field: str
) -> None:
    response = client.post(ITEMS, json=payload, headers=user_headers)

    assert response.status_code == 201
    assert response.json()[field] == payload[field]


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "t" * 201}, ["body", "title"]),
        ({"title": None}, ["body", "title"]),
        ({"title": 42}, ["body", "title"]),
        ({"title": "t", "description": "d" * 5001}, ["body", "description"]),
        ({"title": "nul\x00byte"}, ["body", "title"]),
        ({"title": "t", "description": "nul\x00byte"}, ["body", "description"]),
        ({"title": "t", "owner_id": 1}, ["body", "owner_id"]),
        ({"title": "t", "id": 1}, ["body", "id"]),
        ({"title": "t", "created_at": "2020-01-01T00:00:00Z"}, ["body", "created_at"]),
    ],
    ids=[
        "title-missing",
        "title-empty",
        "title-201",
        "title-null",
        "title-not-a-string",
        "description-5001",
        "title-nul",
        "description-nul",
        "owner_id",
        "id",
        "created_at",
    ],
)
def test_create_item_rejects_invalid_body_with_422_at_the_field(
    client: TestClient,
    session: Session,
    user_headers: dict[str, str],
    payload: dict[str, Any],
    loc: list[str],
) -> None:
    response = client.post(ITEMS, json=payload, headers=user_headers)

    assert_validation_error(response, loc)
    assert item_count(session) == 0


def test_create_item_validation_error_does_not_echo_the_submitted_value(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    secret = "s3cret-" + "x" * 300

    response = client.post(ITEMS, json={"title": secret}, headers=user_headers)

    assert response.status_code == 422
    assert secret not in response.text


def test_create_item_with_owner_id_of_another_user_creates_nothing_for_them(
    client: TestClient, session: Session, other_user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(
        ITEMS, json={"title": "t", "owner_id": other_user.id}, headers=user_headers
    )

    assert response.status_code == 422
    assert session.scalars(select(Item).where(Item.owner_id == other_user.id)).all() == []


# --- read -----------------------------------------------------------------------------------


def test_read_own_item_returns_it(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="mine", description="details")

    response = client.get(item_url(item.id), headers=user_headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == ITEM_READ_KEYS
    assert (body["id"], body["title"], body["description"], body["owner_id"]) == (
        item.id,
        "mine",
        "details",
        user.id,
    )


# --- update ---------------------------------------------------------------------------------


def test_update_title_leaves_description_untouched(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="old", description="keep me")

    response = client.patch(item_url(item.id), json={"title": "new"}, headers=user_headers)

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["description"]) == ("new", "keep me")
    assert stored(session, item.id, "title", "description") == ("new", "keep me")


def test_update_description_leaves_title_untouched(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="keep me", description="old")

    response = client.patch(item_url(item.id), json={"description": "new"}, headers=user_headers)

    assert response.status_code == 200
    assert stored(session, item.id, "title", "description") == ("keep me", "new")


def test_update_description_null_clears_it(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="t", description="to be cleared")

    response = client.patch(item_url(item.id), json={"description": None}, headers=user_headers)

    assert response.status_code == 200
    assert response.json()["description"] is None
    assert stored(session, item.id, "title", "description") == ("t", None)


def test_update_with_empty_body_changes_nothing(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="t", description="d")

    response = client.patch(item_url(item.id), json={}, headers=user_headers)

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["description"]) == ("t", "d")


def test_update_returns_the_same_fields_as_read(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)

    response = client.patch(item_url(item.id), json={"title": "new"}, headers=user_headers)

    assert set(response.json()) == ITEM_READ_KEYS
    assert response.json() == client.get(item_url(item.id), headers=user_headers).json()


@pytest.mark.parametrize(
    ("payload", "loc"),
    [
        ({"title": None}, ["body", "title"]),
        ({"title": ""}, ["body", "title"]),
        ({"title": "t" * 201}, ["body", "title"]),
        ({"title": "nul\x00byte"}, ["body", "title"]),
        ({"description": "d" * 5001}, ["body", "description"]),
        ({"description": "nul\x00byte"}, ["body", "description"]),
        ({"owner_id": 1}, ["body", "owner_id"]),
        ({"id": 1}, ["body", "id"]),
    ],
    ids=[
        "title-null",
        "title-empty",
        "title-201",
        "title-nul",
        "description-5001",
        "description-nul",
        "owner_id",
        "id",
    ],
)
def test_update_rejects_invalid_body_with_422_and_changes_nothing(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    payload: dict[str, Any],
    loc: list[str],
) -> None:
    item = make_item(session, owner=user, title="t", description="d")
    before = snapshot(session, item.id)

    response = client.patch(item_url(item.id), json=payload, headers=user_headers)

    assert_validation_error(response, loc)
    assert snapshot(session, item.id) == before


def test_update_cannot_move_an_item_to_another_owner(
    client: TestClient,
    session: Session,
    user: User,
    other_user: User,
    user_headers: dict[str, str],
) -> None:
    item = make_item(session, owner=user)

    response = client.patch(
        item_url(item.id), json={"title": "t", "owner_id": other_user.id}, headers=user_headers
    )

    assert response.status_code == 422
    assert stored(session, item.id, "owner_id") == (user.id,)


# --- delete ---------------------------------------------------------------------------------


def test_delete_own_item_returns_204_without_body(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)

    response = client.delete(item_url(item.id), headers=user_headers)

    assert response.status_code == 204
    assert response.content == b""


def test_delete_own_item_removes_it(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)
    item_id = item.id
    client.delete(item_url(item_id), headers=user_headers)

    response = client.get(item_url(item_id), headers=user_headers)

    assert response.status_code == 404
    assert snapshot(session, item_id) is None


# --- someone else's item --------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_other_users_item_answers_exactly_like_a_missing_one(
    client: TestClient,
    session: Session,
    other_user: User,
    user_headers: dict[str, str],
    method: str,
) -> None:
    item = make_item(session, owner=other_user)
    missing_id = item.id + 1000

    theirs = send(client, method, item_url(item.id), user_headers)
    missing = send(client, method, item_url(missing_id), user_headers)

    assert theirs.status_code == missing.status_code == 404
    assert theirs.headers["content-type"] == missing.headers["content-type"]
    theirs_body, missing_body = theirs.json(), missing.json()
    assert set(theirs_body) == set(missing_body)
    assert theirs_body["detail"] == missing_body["detail"].replace(str(missing_id), str(item.id))
    for key in ("type", "title", "status"):
        assert theirs_body[key] == missing_body[key]


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_other_users_item_is_unchanged_after_their_request(
    client: TestClient,
    session: Session,
    other_user: User,
    user_headers: dict[str, str],
    method: str,
) -> None:
    item = make_item(session, owner=other_user, title="theirs", description="private")
    before = snapshot(session, item.id)

    send(client, method, item_url(item.id), user_headers)

    assert snapshot(session, item.id) == before


# --- admin ----------------------------------------------------------------------------------


def test_admin_reads_anyones_item(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="theirs")

    response = client.get(item_url(item.id), headers=admin_headers)

    assert response.status_code == 200
    assert (response.json()["title"], response.json()["owner_id"]) == ("theirs", user.id)


def test_admin_updates_anyones_item_keeping_its_owner(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user, title="theirs")

    response = client.patch(item_url(item.id), json={"title": "edited"}, headers=admin_headers)

    assert response.status_code == 200
    assert stored(session, item.id, "title", "owner_id") == ("edited", user.id)


def test_admin_deletes_anyones_item(
    client: TestClient, session: Session, user: User, admin_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)
    item_id = item.id

    response = client.delete(item_url(item_id), headers=admin_headers)

    assert response.status_code == 204
    assert snapshot(session, item_id) is None


# --- ids and paths --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{ITEMS}/"),
        ("POST", f"{ITEMS}/"),
        ("GET", f"{ITEMS}/1/"),
        ("DELETE", f"{ITEMS}/1/"),
    ],
)
def test_trailing_slash_is_404_not_a_redirect(
    client: TestClient, user_headers: dict[str, str], method: str, path: str
) -> None:
    response = client.request(
        method, path, json={"title": "t"}, headers=user_headers, follow_redirects=False
    )

    assert_problem(response, 404)
    assert "Location" not in response.headers


# --- deactivated callers (a missing or invalid token: test_authentication_is_declared.py) ----

ENDPOINTS = [
    ("POST", ITEMS),
    ("GET", ITEMS),
    ("GET", item_url(1)),
    ("PATCH", item_url(1)),
    ("DELETE", item_url(1)),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_deactivated_user_is_403(
    client: TestClient, session: Session, method: str, path: str
) -> None:
    inactive = make_user(session, is_active=False)

    response = client.request(method, path, json={"title": "t"}, headers=auth_headers(inactive))

    assert_problem(response, 403)


def test_deactivated_user_cannot_create_items(client: TestClient, session: Session) -> None:
    inactive = make_user(session, is_active=False)

    client.post(ITEMS, json={"title": "t"}, headers=auth_headers(inactive))

    assert item_count(session) == 0
