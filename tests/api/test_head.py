"""HEAD is answered wherever GET is: the same status and headers (ETag included), no body."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import User
from tests.api.contract import ITEMS, ME, PROBLEM_JSON, TOKEN, USERS
from tests.factories import make_item

# Headers that differ between any two responses.
PER_RESPONSE = {"x-request-id", "date"}


def comparable(headers: dict[str, str]) -> dict[str, str]:
    return {name: value for name, value in headers.items() if name not in PER_RESPONSE}


@pytest.fixture
def paths(session: Session, admin: User) -> list[str]:
    item = make_item(session, owner=admin)
    return [
        "/health",
        "/health/ready",
        ITEMS,
        f"{ITEMS}?page=2&page_size=1",
        f"{ITEMS}/{item.id}",
        f"{ITEMS}/{item.id + 1000}",
        ME,
        USERS,
        f"{USERS}/{admin.id}",
        f"{USERS}/abc",
    ]


def test_head_mirrors_get_without_a_body(
    client: TestClient, paths: list[str], admin_headers: dict[str, str]
) -> None:
    for path in paths:
        get = client.get(path, headers=admin_headers)
        head = client.head(path, headers=admin_headers)

        assert head.status_code == get.status_code, path
        assert comparable(dict(head.headers)) == comparable(dict(get.headers)), path
        assert head.content == b"", path


def test_head_of_a_current_tag_is_304(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    path = f"{ITEMS}/{make_item(session, owner=admin).id}"
    tag = client.get(path, headers=admin_headers).headers["ETag"]

    response = client.head(path, headers={**admin_headers, "If-None-Match": tag})

    assert response.status_code == 304
    assert response.headers["ETag"] == tag


def test_head_needs_the_same_token_as_get(client: TestClient) -> None:
    response = client.head(ME)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.content == b""


def test_head_where_there_is_no_get_is_405_naming_head(client: TestClient) -> None:
    response = client.head(TOKEN)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.content == b""
