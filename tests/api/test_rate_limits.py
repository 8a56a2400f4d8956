"""Login budgets (RATE_LIMIT_LOGIN) and the general request budget (RATE_LIMIT_DEFAULT)."""

from collections.abc import Iterator

import pytest
from fastapi import Request
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from app.api.deps import get_client_address
from app.core.config import get_settings
from app.core.security import new_token_key
from app.main import app
from app.models import User
from app.services import auth as auth_service
from tests.api.contract import TOKEN
from tests.factories import DEFAULT_PASSWORD, auth_headers

BUDGET = 5  # the default RATE_LIMIT_LOGIN, 5/minute


def log_in(client: TestClient, email: str, password: str) -> int:
    return client.post(TOKEN, data={"username": email, "password": password}).status_code


def fail_logins(client: TestClient, email: str, times: int) -> list[int]:
    return [log_in(client, email, "wrong-password-1") for _ in range(times)]


def test_failed_logins_beyond_the_budget_answer_429_with_retry_after(
    client: TestClient, user: User
) -> None:
    statuses = fail_logins(client, user.email, BUDGET)

    response = client.post(TOKEN, data={"username": user.email, "password": "wrong-password-1"})

    assert statuses == [401] * BUDGET
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert response.json()["status"] == 429


def test_a_spent_account_budget_refuses_even_the_right_password(
    client: TestClient, user: User
) -> None:
    fail_logins(client, user.email, BUDGET)

    assert log_in(client, user.email, DEFAULT_PASSWORD) == 429


def test_the_budget_is_checked_before_any_hashing(
    client: TestClient, user: User, monkeypatch: pytest.MonkeyPatch
) -> None:
    fail_logins(client, user.email, BUDGET)
    verifications: list[str] = []
    monkeypatch.setattr(
        auth_service, "verify_password", lambda password, _hashed: verifications.append(password)
    )

    status = log_in(client, user.email, DEFAULT_PASSWORD)

    assert status == 429
    assert verifications == []


def test_the_account_budget_ignores_the_case_of_the_email(client: TestClient, user: User) -> None:
    fail_logins(client, user.email.upper(), BUDGET)

    assert log_in(client, user.email, DEFAULT_PASSWORD) == 429


def test_the_address_budget_stops_guessing_across_accounts(client: TestClient) -> None:
    statuses = [log_in(client, f"nobody{n}@example.com", "wrong-password-1") for n in range(5)]

    assert statuses == [401] * BUDGET
    assert log_in(client, "someone-else@example.com", "wrong-password-1") == 429


@pytest.fixture
def client_addresses(client: TestClient) -> Iterator[None]:
    """Requests may claim a client address with X-Test-Client (as a trusted proxy would)."""

    async def address_from_header(request: Request) -> str:
        return request.headers.get("X-Test-Client", "testclient")

    app.dependency_overrides[get_client_address] = address_from_header
    yield
    del app.dependency_overrides[get_client_address]


def log_in_from(client: TestClient, address: str, email: str, password: str) -> int:
    return client.post(
        TOKEN, data={"username": email, "password": password}, headers={"X-Test-Client": address}
    ).status_code


def test_a_success_clears_the_account_budget(
    client: TestClient, client_addresses: None, user: User
) -> None:
    before = [log_in_from(client, "192.0.2.1", user.email, "wrong-pass-1") for _ in range(4)]
    success = log_in_from(client, "192.0.2.2", user.email, DEFAULT_PASSWORD)

    after = [log_in_from(client, "192.0.2.3", user.email, "wrong-pass-1") for _ in range(5)]

    assert before == [401] * 4
    assert success == 200
    assert after == [401] * BUDGET


def test_a_success_does_not_clear_the_address_budget(
    client: TestClient, client_addresses: None, user: User
) -> None:
    for n in range(4):
        log_in_from(client, "192.0.2.9", f"nobody{n}@example.com", "wrong-pass-1")
    log_in_from(client, "192.0.2.9", user.email, DEFAULT_PASSWORD)

    statuses = [log_in_from(client, "192.0.2.9", "x@example.com", "wrong-pass-1") for _ in range(2)]

    assert statuses == [401, 429]


def test_the_account_budget_holds_across_addresses(
    client: TestClient, client_addresses: None, user: User
) -> None:
    for n in range(BUDGET):
        log_in_from(client, f"198.51.100.{n}", user.email, "wrong-pass-1")

    assert log_in_from(client, "198.51.100.200", user.email, DEFAULT_PASSWORD) == 429


def test_wrong_current_passwords_count_as_failed_logins(
    client: TestClient, user: User, user_headers: dict[str, str]
) -> None:
    wrong = {"current_password": "wrong-password-1", "new_password": "brand-new-pass-1"}
    right = {"current_password": DEFAULT_PASSWORD, "new_password": "brand-new-pass-1"}
    statuses = [
        client.post("/api/v1/users/me/password", json=wrong, headers=user_headers).status_code
        for _ in range(BUDGET)
    ]

    response = client.post("/api/v1/users/me/password", json=right, headers=user_headers)

    assert statuses == [422] * BUDGET
    assert response.status_code == 429
    assert "Retry-After" in response.headers


@pytest.fixture
def request_budget(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(get_settings(), "RATE_LIMIT_DEFAULT", "3/minute")
    return 3


def test_the_request_budget_is_per_user(
    client: TestClient, request_budget: int, user: User, other_user: User
) -> None:
    headers = auth_headers(user)
    statuses = [
        client.get("/api/v1/items", headers=headers).status_code for _ in range(request_budget)
    ]

    spent = client.get("/api/v1/items", headers=headers)
    other = client.get("/api/v1/items", headers=auth_headers(other_user))

    assert statuses == [200] * request_budget
    assert spent.status_code == 429
    assert int(spent.headers["Retry-After"]) >= 1
    assert other.status_code == 200


def test_a_revoked_token_cannot_spend_the_accounts_current_budget(
    client: TestClient, session: Session, request_budget: int, user: User
) -> None:
    stolen = auth_headers(user)
    user.token_key = new_token_key()  # the owner changed the password
    session.flush()
    for _ in range(request_budget + 1):
        client.get("/api/v1/items", headers=stolen)

    response = client.get("/api/v1/items", headers=auth_headers(user))

    assert response.status_code == 200


def test_anonymous_requests_share_the_address_budget(
    client: TestClient, request_budget: int
) -> None:
    statuses = [client.get("/api/v1/items").status_code for _ in range(request_budget + 1)]

    assert statuses == [401] * request_budget + [429]


def test_a_spent_request_budget_wins_over_a_too_large_body(
    client: TestClient, request_budget: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(get_settings(), "MAX_REQUEST_BODY_BYTES", 1024)
    for _ in range(request_budget):
        client.get("/api/v1/items")

    response = client.post(
        "/api/v1/items", content=b"x" * 4096, headers={"Content-Type": "text/plain"}
    )

    assert response.status_code == 429


def test_unknown_paths_are_404_even_with_the_budget_spent(
    client: TestClient, request_budget: int
) -> None:
    for _ in range(request_budget):
        client.get("/api/v1/items")

    assert client.get("/api/v1/nowhere").status_code == 404
    assert client.put("/api/v1/items").status_code == 405


def test_probes_are_not_metered(client: TestClient, request_budget: int) -> None:
    statuses = [client.get("/health").status_code for _ in range(request_budget + 2)]

    assert statuses == [200] * (request_budget + 2)
