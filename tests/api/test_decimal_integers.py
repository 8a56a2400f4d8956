"""Path ids and integer query parameters are plain ASCII decimal digits; anything else is 422,
so one resource never answers at several URLs."""

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.models import User
from tests.factories import make_item

# Each would be read as a valid number by Python's int() (or after URL decoding).
NOT_PLAIN_DIGITS = ["{n}.0", "+{n}", "%20{n}", "{n}%20", "1_{n}", "{n}e0", "0x{n}", "%EF%BC%91"]


@pytest.mark.parametrize("spelling", NOT_PLAIN_DIGITS)
def test_an_item_id_that_is_not_plain_digits_is_422(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str], spelling: str
) -> None:
    item = make_item(session, owner=user)

    response = client.get(f"/api/v1/items/{spelling.format(n=item.id)}", headers=user_headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "item_id"]


def test_an_item_id_with_leading_zeros_is_still_digits(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    item = make_item(session, owner=user)

    response = client.get(f"/api/v1/items/0{item.id}", headers=user_headers)

    assert response.status_code == 200
    assert response.json()["id"] == item.id


@pytest.mark.parametrize("spelling", NOT_PLAIN_DIGITS)
def test_a_user_id_that_is_not_plain_digits_is_422(
    client: TestClient, admin: User, admin_headers: dict[str, str], spelling: str
) -> None:
    response = client.get(f"/api/v1/users/{spelling.format(n=admin.id)}", headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["path", "user_id"]


@pytest.mark.parametrize("parameter", ["page", "page_size"])
@pytest.mark.parametrize("value", ["1.0", "+1", "%201", "1_0", "1e1"])
def test_integer_query_parameters_must_be_plain_digits(
    client: TestClient, user_headers: dict[str, str], parameter: str, value: str
) -> None:
    response = client.get(f"/api/v1/items?{parameter}={value}", headers=user_headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", parameter]


def test_an_owner_id_filter_must_be_plain_digits(
    client: TestClient, admin: User, admin_headers: dict[str, str]
) -> None:
    response = client.get(f"/api/v1/items?owner_id={admin.id}.0", headers=admin_headers)

    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == ["query", "owner_id"]


def test_plain_digits_in_the_query_are_accepted(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.get("/api/v1/items?page=2&page_size=10", headers=user_headers)

    assert response.status_code == 200
    assert (response.json()["page"], response.json()["page_size"]) == (2, 10)
