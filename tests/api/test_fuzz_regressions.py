"""Plain regression tests for what the Schemathesis fuzzing (tests/api/test_fuzz.py) found:
behaviour that broke the contract, and OpenAPI documentation that described another API."""

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.main import app
from app.models import User
from tests.api.contract import ME, PROBLEM_JSON
from tests.factories import auth_headers


def component(name: str) -> dict[str, Any]:
    schema: dict[str, Any] = app.openapi()["components"]["schemas"][name]
    return schema


def query_parameter(path: str, name: str) -> dict[str, Any]:
    parameters = app.openapi()["paths"][path]["get"]["parameters"]
    schema: dict[str, Any] = next(p["schema"] for p in parameters if p["name"] == name)
    return schema


# /users/me is a resource of its own, not the user whose id is "me" ----------------------------


def test_delete_on_users_me_is_405_with_allow(client: TestClient, admin: User) -> None:
    response = client.delete(ME, headers=auth_headers(admin))

    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM_JSON
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "PATCH"}


def test_delete_on_users_me_without_token_is_405(client: TestClient) -> None:
    response = client.delete(ME)

    assert response.status_code == 405


def test_allow_of_users_me_does_not_offer_delete(client: TestClient, user: User) -> None:
    response = client.put(ME, headers=auth_headers(user))

    assert response.status_code == 405
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "PATCH"}


# Request bodies take the JSON types the document names ----------------------------------------


@pytest.mark.parametrize("is_active", [0, 1, "true", "false"], ids=repr)
def test_admin_update_with_non_boolean_is_active_is_422(
    client: TestClient, admin: User, other_user: User, is_active: object
) -> None:
    response = client.patch(
        f"/api/v1/users/{other_user.id}",
        json={"is_active": is_active},
        headers=auth_headers(admin),
    )

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "is_active"]]


def test_admin_update_with_non_boolean_is_active_changes_nothing(
    client: TestClient, admin: User, other_user: User
) -> None:
    client.patch(
        f"/api/v1/users/{other_user.id}", json={"is_active": 0}, headers=auth_headers(admin)
    )

    response = client.get(f"/api/v1/users/{other_user.id}", headers=auth_headers(admin))
    assert response.json()["is_active"] is True


@pytest.mark.parametrize(
    ("field", "value"),
    [("email", "not-an-email"), ("email", None), ("username", "a b"), ("username", None)],
)
def test_invalid_patch_field_is_422_at_its_plain_location(
    client: TestClient, user: User, field: str, value: object
) -> None:
    response = client.patch(ME, json={field: value}, headers=auth_headers(user))

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", field]]


# The OpenAPI document describes the API that answers ------------------------------------------


@pytest.mark.parametrize(
    ("schema_name", "field"),
    [
        ("UserUpdateMe", "email"),
        ("UserUpdateMe", "username"),
        ("UserUpdateAdmin", "role"),
        ("UserUpdateAdmin", "is_active"),
        ("UserUpdateAdmin", "password"),
        ("ItemUpdate", "title"),
    ],
)
def test_patch_field_refusing_null_is_not_documented_as_nullable(
    schema_name: str, field: str
) -> None:
    documented = component(schema_name)["properties"][field]

    assert "anyOf" not in documented
    assert documented.get("type") != "null"
    assert "default" not in documented


@pytest.mark.parametrize(("schema_name", "field"), [("ItemUpdate", "description")])
def test_patch_field_that_clears_with_null_stays_nullable(schema_name: str, field: str) -> None:
    documented = component(schema_name)["properties"][field]

    assert {"type": "null"} in documented["anyOf"]


@pytest.mark.parametrize(
    ("password", "valid"),
    [
        ("password1", True),
        ("1password", True),
        ("écolière1", True),
        ("12345678", False),
        ("abcdefgh", False),
        ("pass\x00word1", False),
    ],
)
def test_documented_password_pattern_states_the_letter_and_digit_rule(
    password: str, valid: bool
) -> None:
    documented = component("UserCreate")["properties"]["password"]

    assert bool(re.search(documented["pattern"], password)) is valid
    assert (documented["minLength"], documented["maxLength"]) == (8, 72)


def test_documented_sort_grammar_of_items_accepts_the_sort_keys() -> None:
    pattern = query_parameter("/api/v1/items", "sort")["pattern"]

    assert re.search(pattern, "-created_at,title,id")
    assert not re.search(pattern, "owner_id")
    assert not re.search(pattern, "id,title,created_at,updated_at")


def test_documented_sort_grammar_of_users_accepts_the_sort_keys() -> None:
    pattern = query_parameter("/api/v1/users", "sort")["pattern"]

    assert re.search(pattern, "email,-username")
    assert not re.search(pattern, "title")


@pytest.mark.parametrize(
    ("schema_name", "field"),
    [("ItemCreate", "title"), ("ItemCreate", "description"), ("UserCreate", "full_name")],
)
def test_documented_text_fields_refuse_nul(schema_name: str, field: str) -> None:
    documented = component(schema_name)["properties"][field]
    text = next(o for o in documented.get("anyOf", [documented]) if o.get("type") == "string")

    assert not re.search(text["pattern"], "a\x00b")
    assert re.search(text["pattern"], "a b")


def test_special_use_email_domain_is_422_as_documented(client: TestClient) -> None:
    body = {"email": "ada@example.test", "username": "ada_l", "password": "correct-horse-7"}

    response = client.post("/api/v1/users", json=body)

    assert response.status_code == 422
    assert [e["loc"] for e in response.json()["errors"]] == [["body", "email"]]
    assert ".test" in component("UserCreate")["properties"]["email"]["description"]
