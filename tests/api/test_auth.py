"""POST /api/v1/auth/token, and what a protected route answers for every kind of bad token."""

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import httpx2
import pytest
from fastapi.testclient import TestClient
from jose import jwt
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.models import User
from tests.api.contract import ME, PROBLEM_JSON
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_user

LOGIN = "/api/v1/auth/token"
INVALID_TOKEN = 'Bearer error="invalid_token"'
NEW_PASSWORD = "brand-new-secret-9"


def login(client: TestClient, email: str, password: str) -> httpx2.Response:
    return client.post(LOGIN, data={"username": email, "password": password})


def token_of(response: httpx2.Response) -> dict[str, str]:
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def comparable(response: httpx2.Response) -> tuple[int, dict[str, Any], dict[str, str]]:
    """What a client can compare between two answers, minus the per-request id."""
    body = {name: value for name, value in response.json().items() if name != "request_id"}
    headers = {
        name: value
        for name, value in response.headers.items()
        if name not in {"x-request-id", "content-length"}
    }
    return response.status_code, body, headers


# --- hand-crafted tokens for a real user: each differs from a valid one in one respect ---------


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(user: User, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": str(user.id),
        "iat": now,
        "exp": now + 600,
        "type": "access",
        "tkey": user.token_key,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().secret_key, algorithm=algorithm)


def _unsigned(user: User) -> str:
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(_claims(user))}."


BAD_TOKENS: dict[str, Callable[[User], str]] = {
    "garbage": lambda _user: "garbage",
    "three-garbage-segments": lambda _user: "aaa.bbb.ccc",
    "expired": lambda user: _sign(
        _claims(user, iat=int(time.time()) - 3600, exp=int(time.time()) - 60)
    ),
    "wrong-key": lambda user: _sign(
        _claims(user), key="not-the-servers-key-but-long-enough-0123456789"
    ),
    "alg-none": _unsigned,
    "alg-swap-hs512": lambda user: _sign(_claims(user), algorithm="HS512"),
    "type-refresh": lambda user: _sign(_claims(user, type="refresh")),
    "type-missing": lambda user: _sign(_claims(user, type=None)),
    "exp-missing": lambda user: _sign(_claims(user, exp=None)),
    "sub-missing": lambda user: _sign(_claims(user, sub=None)),
    "sub-not-numeric": lambda user: _sign(_claims(user, sub="abc")),
    "sub-zero": lambda user: _sign(_claims(user, sub="0")),
    "sub-too-large": lambda user: _sign(_claims(user, sub="99999999999")),
    "oversized": lambda user: _sign(_claims(user, padding="x" * 4096)),
}


# --- logging in --------------------------------------------------------------------------------


def test_login_returns_a_bearer_token(client: TestClient, user: User) -> None:
    response = login(client, user.email, DEFAULT_PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == get_settings().ACCESS_TOKEN_EXPIRE_MINUTES * 60


def test_login_token_carries_the_contract_claims(client: TestClient, user: User) -> None:
    response = login(client, user.email, DEFAULT_PASSWORD)

    claims = jwt.get_unverified_claims(response.json()["access_token"])
    assert claims["sub"] == str(user.id)
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == response.json()["expires_in"]
    assert jwt.get_unverified_header(response.json()["access_token"])["alg"] == "HS256"


def test_login_response_is_not_cached(client: TestClient, user: User) -> None:
    response = login(client, user.email, DEFAULT_PASSWORD)

    assert response.headers["Cache-Control"] == "no-store"


def test_login_token_works_on_a_protected_route(client: TestClient, user: User) -> None:
    headers = token_of(login(client, user.email, DEFAULT_PASSWORD))

    response = client.get(ME, headers=headers)

    assert response.status_code == 200
    assert response.json()["id"] == user.id


def test_login_matches_email_ignoring_case(client: TestClient, session: Session) -> None:
    user = make_user(session, email="ada.lovelace@example.com")

    response = login(client, "Ada.Lovelace@EXAMPLE.com", DEFAULT_PASSWORD)

    assert response.status_code == 200
    assert jwt.get_unverified_claims(response.json()["access_token"])["sub"] == str(user.id)


def test_login_with_wrong_password_is_401_problem(client: TestClient, user: User) -> None:
    response = login(client, user.email, "wrong-password-1")

    assert response.status_code == 401
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["WWW-Authenticate"] == "Bearer"
    body = response.json()
    assert body["status"] == 401
    assert body["title"] == "Unauthorized"
    assert body["instance"] == LOGIN
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert "wrong-password-1" not in response.text


def test_login_with_unknown_email_is_identical_to_wrong_password(
    client: TestClient, user: User
) -> None:
    wrong_password = login(client, user.email, "wrong-password-1")

    unknown_email = login(client, "nobody@example.com", DEFAULT_PASSWORD)

    assert unknown_email.status_code == 401
    assert comparable(unknown_email) == comparable(wrong_password)


@pytest.mark.parametrize(
    "password",
    ["é" * 40, DEFAULT_PASSWORD + "é" * 40, "password1\x00", DEFAULT_PASSWORD + "\x00"],
    ids=["80-bytes", "right-password-plus-64-bytes", "nul", "right-password-plus-nul"],
)
def test_login_with_impossible_password_is_the_same_401_not_422(
    client: TestClient, user: User, password: str
) -> None:
    wrong_password = login(client, user.email, "wrong-password-1")

    response = login(client, user.email, password)

    assert response.status_code == 401
    assert comparable(response) == comparable(wrong_password)


def test_login_with_password_matching_only_when_truncated_is_401(
    client: TestClient, session: Session
) -> None:
    password = "a1" * 36  # exactly bcrypt's 72 bytes
    user = make_user(session, password=password)

    response = login(client, user.email, password + "x")

    assert response.status_code == 401


def test_login_with_nul_in_email_is_the_same_401(client: TestClient, user: User) -> None:
    wrong_password = login(client, user.email, "wrong-password-1")

    response = login(client, user.email + "\x00", DEFAULT_PASSWORD)

    assert comparable(response) == comparable(wrong_password)


def test_login_of_inactive_user_with_right_password_is_403(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, is_active=False)

    response = login(client, user.email, DEFAULT_PASSWORD)

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "access_token" not in response.json()


def test_login_of_inactive_user_with_wrong_password_is_401(
    client: TestClient, session: Session, user: User
) -> None:
    inactive = make_user(session, is_active=False)
    wrong_password = login(client, user.email, "wrong-password-1")

    response = login(client, inactive.email, "wrong-password-1")

    assert comparable(response) == comparable(wrong_password)


@pytest.mark.parametrize(
    ("form", "missing"),
    [
        ({"username": "someone@example.com"}, [["body", "password"]]),
        ({"password": DEFAULT_PASSWORD}, [["body", "username"]]),
        ({}, [["body", "username"], ["body", "password"]]),
    ],
    ids=["password", "username", "both"],
)
def test_login_with_missing_form_fields_is_422(
    client: TestClient, form: dict[str, str], missing: list[list[str]]
) -> None:
    response = client.post(
        LOGIN, data=form, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    errors = response.json()["errors"]
    assert sorted(error["loc"] for error in errors) == sorted(missing)
    assert all(set(error) == {"loc", "msg", "type"} for error in errors)


def test_login_without_any_body_is_422(client: TestClient) -> None:
    response = client.post(LOGIN)

    assert response.status_code == 422


def test_login_with_json_body_is_415(client: TestClient, user: User) -> None:
    response = client.post(LOGIN, json={"username": user.email, "password": DEFAULT_PASSWORD})

    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 415


def test_login_with_multipart_form_works(client: TestClient, user: User) -> None:
    response = client.post(
        LOGIN, files={"username": (None, user.email), "password": (None, DEFAULT_PASSWORD)}
    )

    assert response.status_code == 200


# --- token failures on a protected route ------------------------------------------------------


def test_no_token_is_401_without_error_code(client: TestClient) -> None:
    response = client.get(ME)

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.json()["status"] == 401


def test_non_bearer_authorization_is_401_without_error_code(client: TestClient, user: User) -> None:
    response = client.get(ME, auth=(user.email, DEFAULT_PASSWORD))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"


def test_hand_crafted_valid_token_is_accepted(client: TestClient, user: User) -> None:
    # Guards the bad-token cases below: each differs from this token in one respect only.
    response = client.get(ME, headers=bearer(_sign(_claims(user))))

    assert response.status_code == 200
    assert response.json()["id"] == user.id


@pytest.mark.parametrize("make_token", BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_bad_token_is_401_invalid_token(
    client: TestClient, user: User, make_token: Callable[[User], str]
) -> None:
    response = client.get(ME, headers=bearer(make_token(user)))

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == 401
    assert body["instance"] == ME


def test_oversized_token_case_is_really_oversized(user: User) -> None:
    assert len(BAD_TOKENS["oversized"](user)) > 4096


def test_token_of_deleted_user_is_401(
    client: TestClient, user: User, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    deleted = client.delete(f"/api/v1/users/{user.id}", headers=admin_headers)

    response = client.get(ME, headers=user_headers)

    assert deleted.status_code == 204
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN


def test_token_of_deactivated_user_is_403(
    client: TestClient, user: User, user_headers: dict[str, str], admin_headers: dict[str, str]
) -> None:
    deactivated = client.patch(
        f"/api/v1/users/{user.id}", json={"is_active": False}, headers=admin_headers
    )

    response = client.get(ME, headers=user_headers)

    assert deactivated.status_code == 200
    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM_JSON


# --- password changes revoke earlier tokens ----------------------------------------------------


def change_own_password(client: TestClient, headers: dict[str, str]) -> httpx2.Response:
    return client.post(
        "/api/v1/users/me/password",
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=headers,
    )


def test_own_password_change_revokes_the_token_at_once(client: TestClient, user: User) -> None:
    # Issued, used and revoked back to back: within the same second in practice.
    old = token_of(login(client, user.email, DEFAULT_PASSWORD))
    changed = change_own_password(client, old)

    response = client.get(ME, headers=old)

    assert changed.status_code == 204
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN


def test_own_password_change_revokes_every_earlier_token(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    other_session = token_of(login(client, user.email, DEFAULT_PASSWORD))
    change_own_password(client, user_headers)

    response = client.get(ME, headers=other_session)

    assert response.status_code == 401


def test_after_own_password_change_the_new_password_logs_in(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    change_own_password(client, user_headers)

    response = login(client, user.email, NEW_PASSWORD)

    assert response.status_code == 200
    assert client.get(ME, headers=token_of(response)).status_code == 200


def test_after_own_password_change_the_old_password_is_refused(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    change_own_password(client, user_headers)

    response = login(client, user.email, DEFAULT_PASSWORD)

    assert response.status_code == 401


def set_password_as_admin(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> httpx2.Response:
    return client.patch(
        f"/api/v1/users/{user.id}", json={"password": NEW_PASSWORD}, headers=admin_headers
    )


def test_admin_setting_a_password_revokes_the_users_tokens(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    old = token_of(login(client, user.email, DEFAULT_PASSWORD))
    changed = set_password_as_admin(client, user, admin_headers)

    response = client.get(ME, headers=old)

    assert changed.status_code == 200
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == INVALID_TOKEN


def test_after_admin_sets_a_password_the_new_password_logs_in(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    set_password_as_admin(client, user, admin_headers)

    response = login(client, user.email, NEW_PASSWORD)

    assert response.status_code == 200
    assert client.get(ME, headers=token_of(response)).status_code == 200
    assert login(client, user.email, DEFAULT_PASSWORD).status_code == 401


def test_admin_setting_a_password_leaves_the_admins_token_working(
    client: TestClient, user: User, admin_headers: dict[str, str]
) -> None:
    set_password_as_admin(client, user, admin_headers)

    response = client.get(ME, headers=admin_headers)

    assert response.status_code == 200


def test_token_issued_after_a_password_change_works(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    change_own_password(client, user_headers)

    response = client.get(ME, headers=auth_headers(user))

    assert response.status_code == 200
