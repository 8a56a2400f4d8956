"""The /api/v1/users endpoints, as API.md promises them to clients."""

import json
from datetime import datetime, timedelta
from typing import Any

import httpx2 as httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import unit_of_work
from app.core.roles import Role
from app.core.security import verify_password
from app.crud import user_crud
from app.models import Item, User
from app.services import users as user_service
from tests.api.contract import ME, MY_PASSWORD, PROBLEM_JSON, TOKEN, USERS, assert_problem
from tests.factories import DEFAULT_PASSWORD, auth_headers, make_item, make_user

USER_READ_KEYS = {
    "id",
    "email",
    "username",
    "full_name",
    "role",
    "is_active",
    "created_at",
    "updated_at",
}
PAGE_KEYS = {"items", "total", "page", "page_size", "pages"}
NEW_PASSWORD = "brand-new-secret-42"
# 41 characters but 81 bytes of UTF-8: over bcrypt's 72-byte limit.
ACCENTED_PASSWORD = "é" * 40 + "1"


def sign_up_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "email": "ada@example.com",
        "username": "ada_l",
        "password": "correct-horse-7",
        "full_name": "Ada Lovelace",
    }
    body.update(overrides)
    return body


def log_in(client: TestClient, email: str, password: str) -> httpx.Response:
    return client.post(TOKEN, data={"username": email, "password": password})


def error_locs(response: httpx.Response) -> list[list[str | int]]:
    return [error["loc"] for error in response.json()["errors"]]


def assert_validation_error(response: httpx.Response, loc: list[str | int]) -> None:
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM_JSON
    assert loc in error_locs(response)
    assert all(set(error) == {"loc", "msg", "type"} for error in response.json()["errors"])


def count_users(session: Session, **where: Any) -> int:
    stmt = select(func.count()).select_from(User).filter_by(**where)
    return session.scalar(stmt) or 0


# --- POST /api/v1/users (sign-up) -------------------------------------------------------------


def test_sign_up_returns_201_with_the_user_read_fields_only(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body())

    assert response.status_code == 201
    assert set(response.json()) == USER_READ_KEYS


def test_sign_up_never_returns_the_password_or_its_hash(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body(password="correct-horse-7"))

    assert "correct-horse-7" not in response.text
    assert "$2b$" not in response.text
    assert "password" not in response.text


def test_sign_up_sets_location_to_the_new_user(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body())

    assert response.headers["location"] == f"{USERS}/{response.json()['id']}"


def test_sign_up_location_reads_the_new_user(client: TestClient, session: Session) -> None:
    created = client.post(USERS, json=sign_up_body())
    admin = make_user(session, role=Role.ADMIN)

    response = client.get(created.headers["location"], headers=auth_headers(admin))

    assert response.status_code == 200
    assert response.json() == created.json()


def test_sign_up_lower_cases_the_email(client: TestClient, session: Session) -> None:
    response = client.post(USERS, json=sign_up_body(email="Ada.Lovelace@EXAMPLE.com"))

    assert response.json()["email"] == "ada.lovelace@example.com"
    assert count_users(session, email="ada.lovelace@example.com") == 1


def test_sign_up_creates_an_active_user_with_role_user(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body())

    assert response.json()["role"] == "user"
    assert response.json()["is_active"] is True


def test_sign_up_echoes_the_submitted_profile(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body(username="Ada_L", full_name="Ada L."))

    assert response.json()["username"] == "Ada_L"
    assert response.json()["full_name"] == "Ada L."


def test_sign_up_without_full_name_stores_null(client: TestClient) -> None:
    body = sign_up_body()
    del body["full_name"]

    response = client.post(USERS, json=body)

    assert response.status_code == 201
    assert response.json()["full_name"] is None


def test_sign_up_timestamps_are_utc_with_an_explicit_offset(client: TestClient) -> None:
    response = client.post(USERS, json=sign_up_body())

    for key in ("created_at", "updated_at"):
        stamp = datetime.fromisoformat(response.json()[key])
        assert stamp.utcoffset() == timedelta(0)


def test_sign_up_stores_a_hash_that_verifies_the_password(
    client: TestClient, session: Session
) -> None:
    response = client.post(USERS, json=sign_up_body(password="correct-horse-7"))

    stored = session.get(User, response.json()["id"])
    assert stored is not None
    assert stored.hashed_password != "correct-horse-7"
    assert verify_password("correct-horse-7", stored.hashed_password)


def test_signed_up_user_can_log_in(client: TestClient) -> None:
    client.post(USERS, json=sign_up_body(email="Ada@Example.com", password="correct-horse-7"))

    response = log_in(client, "ada@example.com", "correct-horse-7")

    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"


def email_of_length(length: int) -> str:
    """A syntactically valid address of exactly ``length`` characters (labels stay <= 63)."""
    local = "a" * 64
    last_label = length - len(local) - 1 - (62 + 1 + 62 + 1) - len(".com")
    return f"{local}@{'b' * 62}.{'c' * 62}.{'d' * last_label}.com"


EMAIL_TOO_LONG = email_of_length(255)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        pytest.param("email", "not-an-email", id="email-invalid"),
        pytest.param("email", "ada@", id="email-no-domain"),
        pytest.param("email", EMAIL_TOO_LONG, id="email-over-254"),
        pytest.param("username", "ab", id="username-too-short"),
        pytest.param("username", "a" * 51, id="username-too-long"),
        pytest.param("username", "ada-lovelace", id="username-dash"),
        pytest.param("username", "ada lovelace", id="username-space"),
        pytest.param("username", "adé_l", id="username-non-ascii"),
        pytest.param("password", "abc1234", id="password-too-short"),
        pytest.param("password", ACCENTED_PASSWORD, id="password-over-72-bytes"),
        pytest.param("password", "a" * 72 + "1", id="password-73-ascii"),
        pytest.param("password", "no-digits-here", id="password-no-digit"),
        pytest.param("password", "1234567890", id="password-no-letter"),
        pytest.param("full_name", "x" * 101, id="full-name-over-100"),
        pytest.param("email", "ada\x00@example.com", id="email-nul"),
        pytest.param("username", "ada\x00l", id="username-nul"),
        pytest.param("password", "secret\x00123", id="password-nul"),
        pytest.param("full_name", "Ada\x00Lovelace", id="full-name-nul"),
    ],
)
def test_sign_up_with_an_invalid_field_is_422_at_that_field(
    client: TestClient, session: Session, field: str, value: str
) -> None:
    response = client.post(USERS, json=sign_up_body(**{field: value}))

    assert_validation_error(response, ["body", field])
    assert count_users(session) == 0


def test_sign_up_email_of_exactly_254_characters_is_accepted(client: TestClient) -> None:
    email = email_of_length(254)

    response = client.post(USERS, json=sign_up_body(email=email))

    assert response.status_code == 201
    assert response.json()["email"] == email


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("a" * 71 + "1", id="72-ascii-bytes"),
        pytest.param("é" * 35 + "a1", id="72-utf8-bytes"),
        pytest.param("abcdefg1", id="8-characters"),
    ],
)
def test_sign_up_accepts_passwords_at_the_limits(client: TestClient, password: str) -> None:
    response = client.post(USERS, json=sign_up_body(password=password))

    assert response.status_code == 201


@pytest.mark.parametrize(
    "password",
    [
        pytest.param("shrt1", id="too-short"),
        pytest.param(ACCENTED_PASSWORD, id="over-72-bytes"),
        pytest.param("onlylettersinhere", id="no-digit"),
        pytest.param("8675309123", id="no-letter"),
        pytest.param("secret\x00pass99", id="nul"),
    ],
)
def test_sign_up_validation_error_never_echoes_the_password(
    client: TestClient, password: str
) -> None:
    response = client.post(USERS, json=sign_up_body(password=password))

    assert response.status_code == 422
    assert password not in response.text
    assert json.dumps(password) not in response.text
    assert "input" not in json.dumps(response.json()["errors"])


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("is_active", False),
        ("id", 7),
        ("hashed_password", "$2b$04$abcdefghijklmnopqrstuv"),
        ("owner_id", 1),
    ],
)
def test_sign_up_rejects_fields_a_client_may_not_set(
    client: TestClient, session: Session, field: str, value: object
) -> None:
    response = client.post(USERS, json=sign_up_body(**{field: value}))

    assert_validation_error(response, ["body", field])
    assert count_users(session) == 0


@pytest.mark.parametrize("email", ["ada@example.com", "ADA@Example.COM"])
def test_sign_up_with_a_taken_email_in_any_case_is_409(
    client: TestClient, session: Session, email: str
) -> None:
    make_user(session, email="ada@example.com", username="first_ada")

    response = client.post(USERS, json=sign_up_body(email=email, username="second_ada"))

    assert_problem(response, 409)
    assert count_users(session, email="ada@example.com") == 1


@pytest.mark.parametrize("username", ["Ada_L", "ada_l", "ADA_L"])
def test_sign_up_with_a_taken_username_ignoring_case_is_409(
    client: TestClient, session: Session, username: str
) -> None:
    make_user(session, email="first@example.com", username="Ada_L")

    response = client.post(USERS, json=sign_up_body(email="second@example.com", username=username))

    assert_problem(response, 409)
    assert count_users(session) == 1


@pytest.fixture
def no_uniqueness_precheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulates a sign-up racing another: the friendly pre-check sees nothing, so only the
    database's unique indexes stand in the way."""
    monkeypatch.setattr(user_service, "_ensure_unique", lambda *_args, **_kwargs: None)


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_racing_past_the_email_check_is_409_not_500(
    client: TestClient, session: Session
) -> None:
    make_user(session, email="ada@example.com", username="first_ada")

    response = client.post(USERS, json=sign_up_body(email="ADA@example.com", username="other"))

    assert_problem(response, 409)
    assert count_users(session, email="ada@example.com") == 1


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_racing_past_the_username_check_is_409_not_500(
    client: TestClient, session: Session
) -> None:
    make_user(session, email="first@example.com", username="Ada_L")

    response = client.post(USERS, json=sign_up_body(email="second@example.com", username="ada_l"))

    assert_problem(response, 409)
    assert count_users(session) == 1


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_racing_past_the_check_with_real_commits_is_409(
    committing_client: TestClient, committing_sessions: sessionmaker[Session]
) -> None:
    with committing_sessions() as setup, unit_of_work(setup):
        make_user(setup, email="ada@example.com", username="first_ada")

    response = committing_client.post(USERS, json=sign_up_body(username="second_ada"))

    assert_problem(response, 409)
    with committing_sessions() as check:
        assert count_users(check, email="ada@example.com") == 1


@pytest.mark.usefixtures("no_uniqueness_precheck")
def test_sign_up_after_a_lost_race_leaves_the_service_usable(client: TestClient) -> None:
    client.post(USERS, json=sign_up_body())
    client.post(USERS, json=sign_up_body(username="again"))

    response = client.post(USERS, json=sign_up_body(email="next@example.com", username="next"))

    assert response.status_code == 201


# --- GET /api/v1/users/me -----------------------------------------------------------------------


def test_read_me_returns_the_token_user(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.get(ME, headers=user_headers)

    assert response.status_code == 200
    assert set(response.json()) == USER_READ_KEYS
    assert response.json()["id"] == user.id
    assert response.json()["email"] == user.email
    assert response.json()["username"] == user.username


# --- PATCH /api/v1/users/me ---------------------------------------------------------------------


def test_update_me_changes_email_lower_cased(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        ME,
        json={"email": "New.Address@Example.com", "current_password": DEFAULT_PASSWORD},
        headers=user_headers,
    )

    assert response.status_code == 200
    assert response.json()["email"] == "new.address@example.com"
    assert client.get(ME, headers=user_headers).json()["email"] == "new.address@example.com"


def test_update_me_changing_the_email_without_current_password_is_422_and_changes_nothing(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(ME, json={"email": "thief@example.com"}, headers=user_headers)

    assert_validation_error(response, ["body", "current_password"])
    assert client.get(ME, headers=user_headers).json()["email"] == user.email


def test_update_me_changing_the_email_with_a_wrong_current_password_is_422_and_changes_nothing(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        ME,
        json={"email": "thief@example.com", "current_password": "guessed-wrong-1"},
        headers=user_headers,
    )

    assert_validation_error(response, ["body", "current_password"])
    assert client.get(ME, headers=user_headers).json()["email"] == user.email
    assert log_in(client, user.email, DEFAULT_PASSWORD).status_code == 200


def test_update_me_with_a_wrong_current_password_changes_nothing_else_either(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        ME,
        json={"username": "renamed_me", "current_password": "guessed-wrong-1"},
        headers=user_headers,
    )

    assert_validation_error(response, ["body", "current_password"])
    assert client.get(ME, headers=user_headers).json()["username"] == user.username


def test_update_me_wrong_current_passwords_count_as_failed_logins(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    wrong = {"email": "thief@example.com", "current_password": "guessed-wrong-1"}
    statuses = [client.patch(ME, json=wrong, headers=user_headers).status_code for _ in range(5)]

    response = log_in(client, user.email, DEFAULT_PASSWORD)

    assert statuses == [422] * 5
    assert response.status_code == 429


def test_update_me_without_an_email_change_needs_no_password(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(
        ME, json={"email": user.email.upper(), "full_name": "Same Email"}, headers=user_headers
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Same Email"


def test_update_me_new_email_is_the_login_afterwards(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    old_email = user.email
    client.patch(
        ME,
        json={"email": "moved@example.com", "current_password": DEFAULT_PASSWORD},
        headers=user_headers,
    )

    assert log_in(client, "moved@example.com", DEFAULT_PASSWORD).status_code == 200
    assert log_in(client, old_email, DEFAULT_PASSWORD).status_code == 401


def test_update_me_changes_username(client: TestClient, user_headers: dict[str, str]) -> None:
    response = client.patch(ME, json={"username": "Grace_H"}, headers=user_headers)

    assert response.status_code == 200
    assert response.json()["username"] == "Grace_H"


def test_update_me_changes_full_name(client: TestClient, user_headers: dict[str, str]) -> None:
    response = client.patch(ME, json={"full_name": "Grace Hopper"}, headers=user_headers)

    assert response.status_code == 200
    assert response.json()["full_name"] == "Grace Hopper"


def test_update_me_leaves_omitted_fields_alone(client: TestClient, session: Session) -> None:
    user = make_user(session, full_name="Grace Hopper")

    response = client.patch(ME, json={"username": "grace"}, headers=auth_headers(user))

    assert response.json()["full_name"] == "Grace Hopper"
    assert response.json()["email"] == user.email


def test_update_me_with_full_name_null_clears_it(client: TestClient, session: Session) -> None:
    user = make_user(session, full_name="Grace Hopper")

    response = client.patch(ME, json={"full_name": None}, headers=auth_headers(user))

    assert response.status_code == 200
    assert response.json()["full_name"] is None


@pytest.mark.parametrize("field", ["email", "username"])
def test_update_me_with_null_for_a_required_field_is_422(
    client: TestClient, user: User, user_headers: dict[str, str], field: str
) -> None:
    before = client.get(ME, headers=user_headers).json()

    response = client.patch(ME, json={field: None}, headers=user_headers)

    assert_validation_error(response, ["body", field])
    assert client.get(ME, headers=user_headers).json() == before


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("username", "no spaces"),
        ("full_name", "x" * 101),
        ("full_name", "nul\x00byte"),
    ],
)
def test_update_me_with_an_invalid_value_is_422(
    client: TestClient, user_headers: dict[str, str], field: str, value: str
) -> None:
    response = client.patch(ME, json={field: value}, headers=user_headers)

    assert_validation_error(response, ["body", field])


def test_update_me_to_another_users_email_is_409(
    client: TestClient, user_headers: dict[str, str], other_user: User
) -> None:
    response = client.patch(
        ME,
        json={"email": other_user.email.upper(), "current_password": DEFAULT_PASSWORD},
        headers=user_headers,
    )

    assert_problem(response, 409)


def test_update_me_to_another_users_username_ignoring_case_is_409(
    client: TestClient, user: User, user_headers: dict[str, str], other_user: User
) -> None:
    response = client.patch(
        ME, json={"username": other_user.username.upper()}, headers=user_headers
    )

    assert_problem(response, 409)
    assert client.get(ME, headers=user_headers).json()["username"] == user.username


def test_update_me_to_my_own_current_email_is_200(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(ME, json={"email": user.email.upper()}, headers=user_headers)

    assert response.status_code == 200
    assert response.json()["email"] == user.email


def test_update_me_to_my_own_username_in_another_case_is_200(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, username="grace_h")

    response = client.patch(ME, json={"username": "Grace_H"}, headers=auth_headers(user))

    assert response.status_code == 200
    assert response.json()["username"] == "Grace_H"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("role", "admin"),
        ("is_active", False),
        ("id", 999),
        ("hashed_password", "$2b$04$abcdefghijklmnopqrstuv"),
        ("password", "another-secret-9"),
    ],
)
def test_update_me_with_a_forbidden_field_is_422_and_changes_nothing(
    client: TestClient,
    session: Session,
    user: User,
    user_headers: dict[str, str],
    field: str,
    value: object,
) -> None:
    before = client.get(ME, headers=user_headers).json()

    response = client.patch(ME, json={"full_name": "Sneaky", field: value}, headers=user_headers)

    assert_validation_error(response, ["body", field])
    assert client.get(ME, headers=user_headers).json() == before
    stored = session.scalars(select(User).where(User.id == user.id)).one()
    assert stored.role == Role.USER
    assert stored.is_active is True
    assert verify_password(DEFAULT_PASSWORD, stored.hashed_password)


# --- POST /api/v1/users/me/password -------------------------------------------------------------


def test_change_password_is_204_with_no_body(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    response = client.post(
        MY_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    assert response.status_code == 204
    assert response.content == b""


def test_change_password_lets_the_new_password_log_in(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    client.post(
        MY_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    response = log_in(client, user.email, NEW_PASSWORD)

    assert response.status_code == 200


def test_change_password_stops_the_old_password_logging_in(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    client.post(
        MY_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    response = log_in(client, user.email, DEFAULT_PASSWORD)

    assert_problem(response, 401)


def test_change_password_revokes_the_token_used_for_it(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    client.post(
        MY_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    response = client.get(ME, headers=user_headers)

    assert_problem(response, 401)


def test_change_password_with_a_wrong_current_password_is_422_at_current_password(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.post(
        MY_PASSWORD,
        json={"current_password": "not-my-password-1", "new_password": NEW_PASSWORD},
        headers=user_headers,
    )

    assert_validation_error(response, ["body", "current_password"])
    assert "not-my-password-1" not in response.text
    assert log_in(client, user.email, DEFAULT_PASSWORD).status_code == 200
    assert client.get(ME, headers=user_headers).status_code == 200


@pytest.mark.parametrize(
    "new_password",
    [
        pytest.param("shrt1", id="too-short"),
        pytest.param(ACCENTED_PASSWORD, id="over-72-bytes"),
        pytest.param("onlylettersinhere", id="no-digit"),
        pytest.param("8675309123", id="no-letter"),
        pytest.param("secret\x00pass99", id="nul"),
    ],
)
def test_change_password_enforces_the_password_policy(
    client: TestClient, user: User, user_headers: dict[str, str], new_password: str
) -> None:
    response = client.post(
        MY_PASSWORD,
        json={"current_password": DEFAULT_PASSWORD, "new_password": new_password},
        headers=user_headers,
    )

    assert_validation_error(response, ["body", "new_password"])
    assert new_password not in response.text
    assert log_in(client, user.email, DEFAULT_PASSWORD).status_code == 200


# --- GET /api/v1/users (admin) ------------------------------------------------------------------


def test_list_users_returns_a_page_of_user_reads(
    client: TestClient, admin_headers: dict[str, str], user: User, other_user: User
) -> None:
    response = client.get(USERS, headers=admin_headers)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == PAGE_KEYS
    assert body["total"] == 3
    assert (body["page"], body["page_size"], body["pages"]) == (1, 20, 1)
    assert all(set(row) == USER_READ_KEYS for row in body["items"])
    assert {row["id"] for row in body["items"]} >= {user.id, other_user.id}


def test_list_users_as_a_non_admin_is_403(client: TestClient, user_headers: dict[str, str]) -> None:
    response = client.get(USERS, headers=user_headers)

    assert_problem(response, 403)


def test_list_users_without_a_token_is_401(client: TestClient) -> None:
    response = client.get(USERS)

    assert_problem(response, 401)
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    ("is_active", "expected"), [("false", {"idle"}), ("true", {"root", "busy"})]
)
def test_list_users_filters_on_is_active(
    client: TestClient, session: Session, is_active: str, expected: set[str]
) -> None:
    admin = make_user(session, username="root", role=Role.ADMIN)
    make_user(session, username="busy")
    make_user(session, username="idle", is_active=False)

    response = client.get(USERS, params={"is_active": is_active}, headers=auth_headers(admin))

    assert {row["username"] for row in response.json()["items"]} == expected
    assert response.json()["total"] == len(expected)


@pytest.mark.parametrize(("role", "expected"), [("admin", {"root", "boss"}), ("user", {"pleb"})])
def test_list_users_filters_on_role(
    client: TestClient, session: Session, role: str, expected: set[str]
) -> None:
    admin = make_user(session, username="root", role=Role.ADMIN)
    make_user(session, username="boss", role=Role.ADMIN)
    make_user(session, username="pleb")

    response = client.get(USERS, params={"role": role}, headers=auth_headers(admin))

    assert {row["username"] for row in response.json()["items"]} == expected


def test_list_users_with_an_unknown_role_is_422(
    client: TestClient, admin_headers: dict[str, str]
) -> None:
    response = client.get(USERS, params={"role": "owner"}, headers=admin_headers)

    assert_validation_error(response, ["query", "role"])


@pytest.mark.parametrize(
    "q",
    [
        pytest.param("zebra@", id="email"),
        pytest.param("zebra_u", id="username"),
        pytest.param("Zebra Stripes", id="full-name"),
        pytest.param("ZEBRA STRIPES", id="full-name-other-case"),
    ],
)
def test_list_users_q_searches_email_username_and_full_name(
    client: TestClient, session: Session, admin_headers: dict[str, str], q: str
) -> None:
    match = make_user(
        session, email="zebra@example.com", username="zebra_u", full_name="Zebra Stripes"
    )
    make_user(session, email="lion@example.com", username="lion", full_name="Lion King")

    response = client.get(USERS, params={"q": q}, headers=admin_headers)

    assert [row["id"] for row in response.json()["items"]] == [match.id]
    assert response.json()["total"] == 1


def test_list_users_q_matches_each_searched_column(
    client: TestClient, session: Session, admin_headers: dict[str, str]
) -> None:
    by_email = make_user(session, email="kiwi@example.com", username="one")
    by_username = make_user(session, email="two@example.com", username="my_kiwi")
    by_name = make_user(session, email="three@example.com", username="three", full_name="Kiwi")
    make_user(session, email="four@example.com", username="four", full_name="Mango")

    response = client.get(USERS, params={"q": "kiwi", "sort": "id"}, headers=admin_headers)

    assert [row["id"] for row in response.json()["items"]] == [
        by_email.id,
        by_username.id,
        by_name.id,
    ]


# --- GET /api/v1/users/{id} ---------------------------------------------------------------------


def test_read_user_as_admin_returns_any_user(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    response = client.get(f"{USERS}/{user.id}", headers=admin_headers)

    assert response.status_code == 200
    assert set(response.json()) == USER_READ_KEYS
    assert response.json()["id"] == user.id


def test_read_user_itself_is_200(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.get(f"{USERS}/{user.id}", headers=user_headers)

    assert response.status_code == 200
    assert response.json() == client.get(ME, headers=user_headers).json()


def test_read_another_existing_user_as_non_admin_is_403(
    client: TestClient, user_headers: dict[str, str], other_user: User
) -> None:
    response = client.get(f"{USERS}/{other_user.id}", headers=user_headers)

    assert_problem(response, 403)
    assert other_user.email not in response.text


def test_read_another_missing_user_as_non_admin_is_403(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.get(f"{USERS}/{user.id + 1000}", headers=user_headers)

    assert_problem(response, 403)


# --- PATCH /api/v1/users/{id} (admin) -----------------------------------------------------------


def test_admin_promotes_a_user_to_admin(
    client: TestClient, admin_headers: dict[str, str], user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(f"{USERS}/{user.id}", json={"role": "admin"}, headers=admin_headers)

    assert response.status_code == 200
    assert response.json()["role"] == "admin"
    assert client.get(USERS, headers=user_headers).status_code == 200


def test_admin_demotes_another_admin(
    client: TestClient, session: Session, admin_headers: dict[str, str]
) -> None:
    other_admin = make_user(session, role=Role.ADMIN)

    response = client.patch(
        f"{USERS}/{other_admin.id}", json={"role": "user"}, headers=admin_headers
    )

    assert response.status_code == 200
    assert response.json()["role"] == "user"
    assert_problem(client.get(USERS, headers=auth_headers(other_admin)), 403)


def test_admin_deactivates_a_user_whose_token_then_answers_403(
    client: TestClient, admin_headers: dict[str, str], user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(f"{USERS}/{user.id}", json={"is_active": False}, headers=admin_headers)

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert_problem(client.get(ME, headers=user_headers), 403)


def test_admin_reactivates_a_user(
    client: TestClient, session: Session, admin_headers: dict[str, str]
) -> None:
    idle = make_user(session, is_active=False)

    response = client.patch(f"{USERS}/{idle.id}", json={"is_active": True}, headers=admin_headers)

    assert response.json()["is_active"] is True
    assert log_in(client, idle.email, DEFAULT_PASSWORD).status_code == 200


def test_admin_sets_a_users_password(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    response = client.patch(
        f"{USERS}/{user.id}", json={"password": NEW_PASSWORD}, headers=admin_headers
    )

    assert response.status_code == 200
    assert "password" not in response.json()
    assert log_in(client, user.email, NEW_PASSWORD).status_code == 200
    assert log_in(client, user.email, DEFAULT_PASSWORD).status_code == 401


def test_admin_setting_a_password_revokes_the_users_tokens(
    client: TestClient, admin_headers: dict[str, str], user: User, user_headers: dict[str, str]
) -> None:
    client.patch(f"{USERS}/{user.id}", json={"password": NEW_PASSWORD}, headers=admin_headers)

    response = client.get(ME, headers=user_headers)

    assert_problem(response, 401)


def test_admin_setting_a_password_enforces_the_policy(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    response = client.patch(
        f"{USERS}/{user.id}", json={"password": ACCENTED_PASSWORD}, headers=admin_headers
    )

    assert_validation_error(response, ["body", "password"])
    assert ACCENTED_PASSWORD not in response.text


def test_admin_changes_a_users_email_lower_cased(
    client: TestClient, admin_headers: dict[str, str], user: User
) -> None:
    response = client.patch(
        f"{USERS}/{user.id}", json={"email": "Changed@Example.com"}, headers=admin_headers
    )

    assert response.status_code == 200
    assert response.json()["email"] == "changed@example.com"
    assert log_in(client, "changed@example.com", DEFAULT_PASSWORD).status_code == 200


def test_admin_update_to_a_taken_email_is_409(
    client: TestClient, admin_headers: dict[str, str], user: User, other_user: User
) -> None:
    response = client.patch(
        f"{USERS}/{user.id}", json={"email": other_user.email.upper()}, headers=admin_headers
    )

    assert_problem(response, 409)
    assert client.get(f"{USERS}/{user.id}", headers=admin_headers).json()["email"] == user.email


def test_admin_update_to_a_taken_username_is_409(
    client: TestClient, admin_headers: dict[str, str], user: User, other_user: User
) -> None:
    response = client.patch(
        f"{USERS}/{user.id}", json={"username": other_user.username.upper()}, headers=admin_headers
    )

    assert_problem(response, 409)


@pytest.mark.parametrize("field", ["role", "is_active", "email", "username", "password"])
def test_admin_update_with_null_for_a_required_field_is_422(
    client: TestClient, admin_headers: dict[str, str], user: User, field: str
) -> None:
    response = client.patch(f"{USERS}/{user.id}", json={field: None}, headers=admin_headers)

    assert_validation_error(response, ["body", field])


@pytest.mark.parametrize(
    ("field", "value"), [("hashed_password", "x"), ("id", 5), ("token_key", "0" * 32)]
)
def test_admin_update_with_an_unknown_field_is_422(
    client: TestClient,
    admin_headers: dict[str, str],
    user: User,
    field: str,
    value: object,
) -> None:
    response = client.patch(f"{USERS}/{user.id}", json={field: value}, headers=admin_headers)

    assert_validation_error(response, ["body", field])


def test_update_user_as_a_non_admin_is_403(
    client: TestClient, user_headers: dict[str, str], other_user: User
) -> None:
    response = client.patch(
        f"{USERS}/{other_user.id}", json={"full_name": "Hacked"}, headers=user_headers
    )

    assert_problem(response, 403)


def test_non_admin_cannot_promote_itself(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    response = client.patch(f"{USERS}/{user.id}", json={"role": "admin"}, headers=user_headers)

    assert_problem(response, 403)
    assert client.get(ME, headers=user_headers).json()["role"] == "user"


@pytest.mark.parametrize("change", [{"role": "user"}, {"is_active": False}])
def test_admin_demoting_or_deactivating_itself_is_409(
    client: TestClient, session: Session, admin: User, change: dict[str, object]
) -> None:
    make_user(session, role=Role.ADMIN)  # another admin: the refusal is about oneself
    headers = auth_headers(admin)

    response = client.patch(f"{USERS}/{admin.id}", json=change, headers=headers)

    assert_problem(response, 409)
    me = client.get(ME, headers=headers).json()
    assert (me["role"], me["is_active"]) == ("admin", True)


def test_admin_updating_its_own_profile_is_200(
    client: TestClient, admin: User, admin_headers: dict[str, str]
) -> None:
    response = client.patch(
        f"{USERS}/{admin.id}", json={"full_name": "Root", "role": "admin"}, headers=admin_headers
    )

    assert response.status_code == 200
    assert response.json()["full_name"] == "Root"


# --- last active admin (state conflict) ---------------------------------------------------------


def test_demoting_the_last_active_admin_is_409(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = make_user(session, role=Role.ADMIN)
    target = make_user(session, role=Role.ADMIN)
    # The actor was demoted by someone else meanwhile: the locked count sees only the target.
    monkeypatch.setattr(user_crud, "active_admin_ids", lambda *_a, **_k: [target.id])

    response = client.patch(
        f"{USERS}/{target.id}", json={"role": "user"}, headers=auth_headers(actor)
    )

    assert_problem(response, 409)
    assert session.scalars(select(User.role).where(User.id == target.id)).one() == Role.ADMIN


def test_deleting_the_last_active_admin_is_409(
    client: TestClient, session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    actor = make_user(session, role=Role.ADMIN)
    target = make_user(session, role=Role.ADMIN)
    monkeypatch.setattr(user_crud, "active_admin_ids", lambda *_a, **_k: [target.id])

    response = client.delete(f"{USERS}/{target.id}", headers=auth_headers(actor))

    assert_problem(response, 409)
    assert count_users(session, id=target.id) == 1


# --- DELETE /api/v1/users/{id} (admin) ----------------------------------------------------------


def test_admin_deletes_a_user(
    client: TestClient, session: Session, admin_headers: dict[str, str], user: User
) -> None:
    response = client.delete(f"{USERS}/{user.id}", headers=admin_headers)

    assert response.status_code == 204
    assert response.content == b""
    assert count_users(session, id=user.id) == 0
    assert_problem(client.get(f"{USERS}/{user.id}", headers=admin_headers), 404)


def test_deleting_a_user_deletes_their_items(
    client: TestClient,
    session: Session,
    admin: User,
    admin_headers: dict[str, str],
    user: User,
    other_user: User,
) -> None:
    gone = [make_item(session, owner=user).id, make_item(session, owner=user).id]
    kept = make_item(session, owner=other_user)
    user_id = user.id

    client.delete(f"{USERS}/{user_id}", headers=admin_headers)

    remaining = session.scalars(select(Item.id).order_by(Item.id)).all()
    assert remaining == [kept.id]
    listed = client.get("/api/v1/items", params={"owner_id": user_id}, headers=admin_headers)
    assert listed.json()["total"] == 0
    for item_id in gone:
        assert_problem(client.get(f"/api/v1/items/{item_id}", headers=admin_headers), 404)


def test_deleted_users_token_answers_401(
    client: TestClient, admin_headers: dict[str, str], user: User, user_headers: dict[str, str]
) -> None:
    client.delete(f"{USERS}/{user.id}", headers=admin_headers)

    response = client.get(ME, headers=user_headers)

    assert_problem(response, 401)


def test_admin_deletes_another_admin(
    client: TestClient, session: Session, admin_headers: dict[str, str]
) -> None:
    other_admin = make_user(session, role=Role.ADMIN)

    response = client.delete(f"{USERS}/{other_admin.id}", headers=admin_headers)

    assert response.status_code == 204
    assert count_users(session, id=other_admin.id) == 0


def test_admin_deleting_itself_is_409(
    client: TestClient, session: Session, admin: User, admin_headers: dict[str, str]
) -> None:
    make_user(session, role=Role.ADMIN)  # another admin: the refusal is about oneself

    response = client.delete(f"{USERS}/{admin.id}", headers=admin_headers)

    assert_problem(response, 409)
    assert count_users(session, id=admin.id) == 1


def test_delete_user_as_a_non_admin_is_403(
    client: TestClient, session: Session, user_headers: dict[str, str], other_user: User
) -> None:
    response = client.delete(f"{USERS}/{other_user.id}", headers=user_headers)

    assert_problem(response, 403)
    assert count_users(session, id=other_user.id) == 1


def test_non_admin_deleting_itself_is_403(
    client: TestClient, session: Session, user: User, user_headers: dict[str, str]
) -> None:
    response = client.delete(f"{USERS}/{user.id}", headers=user_headers)

    assert_problem(response, 403)
    assert count_users(session, id=user.id) == 1


def test_delete_user_without_a_token_is_401(client: TestClient, user: User) -> None:
    response = client.delete(f"{USERS}/{user.id}")

    assert_problem(response, 401)


@pytest.mark.parametrize("user_id", ["0", "-1", "abc", str(2**31)])
def test_delete_user_with_an_out_of_range_id_is_422(
    client: TestClient, admin_headers: dict[str, str], user_id: str
) -> None:
    response = client.delete(f"{USERS}/{user_id}", headers=admin_headers)

    assert_validation_error(response, ["path", "user_id"])
