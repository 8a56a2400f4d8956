"""The error contract (API.md): problem bodies, error order, request ids, security headers, the unit
of work, an unreachable database, the OpenAPI document and start-up."""

import logging
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.api import lifespan as lifespan_module
from app.api.lifespan import create_first_superuser
from app.api.unit_of_work import get_session
from app.core.config import Settings, get_settings
from app.core.db import create_db_engine, unit_of_work
from app.core.roles import Role
from app.core.security import create_access_token, new_token_key, verify_password
from app.main import app
from app.models import Item, User
from tests.api.contract import PROBLEM_JSON, assert_problem
from tests.factories import auth_headers, make_user

BODY_LIMIT = 2048
BAD_TOKEN = {"Authorization": "Bearer not-a-jwt"}
UNREACHABLE_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:1/unreachable"
SANE_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")


@pytest.fixture
def small_body_limit(monkeypatch: pytest.MonkeyPatch) -> int:
    monkeypatch.setattr(get_settings(), "MAX_REQUEST_BODY_BYTES", BODY_LIMIT)
    return BODY_LIMIT


@pytest.fixture
def exploding_route() -> Iterator[str]:
    """A temporary route that fails like a bug leaking SQL would; removed afterwards."""
    routes = list(app.router.routes)
    openapi_schema = app.openapi_schema
    path = "/test-only/explode"

    def explode() -> None:
        raise RuntimeError("secret-sql SELECT password FROM users")

    app.add_api_route(path, explode, methods=["GET"])
    yield path
    app.router.routes[:] = routes
    app.openapi_schema = openapi_schema


@pytest.fixture
def unreachable_database() -> Iterator[list[int]]:
    """get_session yields sessions on a server that refuses connections; counts the calls."""
    engine = create_db_engine(UNREACHABLE_DATABASE_URL)
    calls: list[int] = []

    def session_override() -> Iterator[Session]:
        calls.append(1)
        with Session(engine) as session, unit_of_work(session):
            yield session

    app.dependency_overrides[get_session] = session_override
    yield calls
    app.dependency_overrides.clear()
    engine.dispose()


@pytest.fixture
def commit_failing_with(
    app_client: TestClient,
    committing_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Callable[[Exception], TestClient]]:
    """The app with real sessions whose commit raises the given error."""

    def configure(error: Exception) -> TestClient:
        def fail() -> None:
            raise error

        def session_override() -> Iterator[Session]:
            with committing_sessions() as session, unit_of_work(session):
                monkeypatch.setattr(session, "commit", fail)
                yield session

        app.dependency_overrides[get_session] = session_override
        return app_client

    yield configure
    app.dependency_overrides.clear()


@pytest.fixture
def stored_user(committing_sessions: sessionmaker[Session]) -> User:
    with committing_sessions() as session, unit_of_work(session):
        return make_user(session)


@pytest.fixture
def first_superuser_settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    settings = get_settings()
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_EMAIL", "Root@Example.com")
    monkeypatch.setattr(settings, "FIRST_SUPERUSER_PASSWORD", SecretStr("rootpass123"))
    return settings


def users_with_email(sessions: sessionmaker[Session], email: str) -> list[User]:
    with sessions() as session:
        return list(session.scalars(select(User).where(User.email == email)))


# Problem bodies -----------------------------------------------------------------------------


JSON = {"Content-Type": "application/json"}


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "authenticated", "status"),
    [
        ("POST", "/api/v1/items", b"{oops", JSON, True, 400),
        ("GET", "/api/v1/users/me", None, {}, False, 401),
        ("GET", "/api/v1/users", None, {}, True, 403),
        ("GET", "/api/v1/items/999999", None, {}, True, 404),
        ("DELETE", "/api/v1/items", None, {}, True, 405),
        ("POST", "/api/v1/items", b"{}", {"Content-Type": "text/plain"}, True, 415),
        ("POST", "/api/v1/items", b"{}", JSON, True, 422),
    ],
    ids=["400", "401", "403", "404", "405", "415", "422"],
)
def test_client_errors_are_problems_carrying_the_request_id(
    client: TestClient,
    user_headers: dict[str, str],
    method: str,
    path: str,
    body: bytes | None,
    headers: dict[str, str],
    authenticated: bool,
    status: int,
) -> None:
    request_headers = {**headers, **(user_headers if authenticated else {})}

    response = client.request(method, path, content=body, headers=request_headers)

    problem = assert_problem(response, status)
    assert problem["type"] == "about:blank"
    assert problem["title"]
    assert problem["detail"]


def test_conflict_is_a_problem(client: TestClient, user: User) -> None:
    response = client.post(
        "/api/v1/users",
        json={"email": user.email, "username": "someone_new", "password": "password123"},
    )

    assert_problem(response, 409)


def test_validation_errors_list_only_loc_msg_and_type(client: TestClient) -> None:
    secret = "short1"

    response = client.post(
        "/api/v1/users",
        json={"email": "not-an-email", "username": "ab", "password": secret, "role": "admin"},
    )

    body = assert_problem(response, 422)
    assert body["errors"]
    assert all(set(error) == {"loc", "msg", "type"} for error in body["errors"])
    assert {tuple(error["loc"]) for error in body["errors"]} >= {
        ("body", "email"),
        ("body", "password"),
        ("body", "role"),
    }
    assert secret not in response.text


# Routing: 404 and 405 before anything else ---------------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/nothing-here", "/api/v1/items/", "/api/v1/users/me/", "/health/", "/api/v2/items"],
)
def test_unknown_path_is_404(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)

    assert_problem(response, 404)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/items", {"GET", "HEAD", "POST"}),
        ("PUT", "/api/v1/items/1", {"GET", "HEAD", "PATCH", "DELETE"}),
        ("DELETE", "/api/v1/auth/token", {"POST"}),
        ("POST", "/health", {"GET", "HEAD"}),
    ],
    ids=["items", "item", "token", "health"],
)
def test_known_path_with_another_method_is_405_with_allow(
    app_client: TestClient, method: str, path: str, allowed: set[str]
) -> None:
    response = app_client.request(method, path)

    assert_problem(response, 405)
    assert set(response.headers["Allow"].split(", ")) == allowed


def test_405_wins_over_body_size_content_type_and_token(
    app_client: TestClient, small_body_limit: int
) -> None:
    response = app_client.put(
        "/api/v1/items",
        content=b"x" * (small_body_limit * 4),
        headers={**BAD_TOKEN, "Content-Type": "text/plain"},
    )

    assert_problem(response, 405)


def test_404_wins_over_body_size_content_type_and_token(
    app_client: TestClient, small_body_limit: int
) -> None:
    response = app_client.post(
        "/api/v1/nothing-here",
        content=b"x" * (small_body_limit * 4),
        headers={**BAD_TOKEN, "Content-Type": "text/plain"},
    )

    assert_problem(response, 404)


# Error order: 413, 415, 400, 401, 422 --------------------------------------------------------


def test_body_over_limit_by_content_length_is_413_before_415_and_401(
    app_client: TestClient, small_body_limit: int
) -> None:
    response = app_client.post(
        "/api/v1/items",
        content=b"x" * (small_body_limit + 1),
        headers={**BAD_TOKEN, "Content-Type": "text/plain"},
    )

    assert_problem(response, 413)


def test_chunked_body_over_limit_is_413(app_client: TestClient, small_body_limit: int) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"title": "'
        for _ in range(4):
            yield b"x" * (small_body_limit // 2)
        yield b'"}'

    response = app_client.post(
        "/api/v1/items",
        content=chunks(),
        headers={**BAD_TOKEN, "Content-Type": "application/json"},
    )

    assert response.request.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in response.request.headers
    assert_problem(response, 413)


def test_body_at_limit_is_accepted(
    client: TestClient, user_headers: dict[str, str], small_body_limit: int
) -> None:
    envelope = b'{"title": "t", "description": ""}'
    body = envelope.replace(b'""', b'"' + b"d" * (small_body_limit - len(envelope)) + b'"')

    response = client.post(
        "/api/v1/items", content=body, headers={**user_headers, "Content-Type": "application/json"}
    )

    assert len(body) == small_body_limit
    assert response.status_code == 201


def test_text_plain_body_is_415_before_400_and_401(app_client: TestClient) -> None:
    response = app_client.post(
        "/api/v1/items", content=b"{oops", headers={**BAD_TOKEN, "Content-Type": "text/plain"}
    )

    assert_problem(response, 415)


def test_body_without_content_type_is_415(app_client: TestClient) -> None:
    response = app_client.post("/api/v1/items", content=b'{"title": "t"}', headers=BAD_TOKEN)

    assert "Content-Type" not in response.request.headers
    assert_problem(response, 415)


def test_malformed_json_is_400_before_401(app_client: TestClient) -> None:
    response = app_client.post(
        "/api/v1/items",
        content=b'{"title": ',
        headers={**BAD_TOKEN, "Content-Type": "application/json"},
    )

    body = assert_problem(response, 400)
    assert "errors" not in body


def test_bad_token_is_401_before_422(app_client: TestClient) -> None:
    response = app_client.post(
        "/api/v1/items", json={"title": "", "owner_id": 1}, headers=BAD_TOKEN
    )

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


def test_missing_token_is_401_before_422(app_client: TestClient) -> None:
    response = app_client.post("/api/v1/items", json={"title": "", "owner_id": 1})

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_revoked_token_is_401_before_a_malformed_item_id_is_422(
    client: TestClient, session: Session, method: str
) -> None:
    user = make_user(session)
    headers = auth_headers(user)
    user.token_key = (
        new_token_key()
    )  # a password change revokes the token; its signature still holds
    session.flush()

    response = client.request(method, "/api/v1/items/0", json={"title": "x"}, headers=headers)

    assert_problem(response, 401)


def test_a_deactivated_caller_is_403_before_a_malformed_item_id_is_422(
    client: TestClient, session: Session
) -> None:
    user = make_user(session, is_active=False)

    response = client.get("/api/v1/items/not-a-number", headers=auth_headers(user))

    assert_problem(response, 403)


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/v1/items", {"title": ""}),
        ("GET", "/api/v1/items?page=0", None),
        ("PATCH", "/api/v1/users/me", {"role": "admin"}),
        ("POST", "/api/v1/users/me/password", {"new_password": "x"}),
    ],
    ids=[
        "create with an invalid body",
        "list with an invalid query",
        "update me with an invalid body",
        "change password with an invalid body",
    ],
)
@pytest.mark.parametrize("revoke", ["password changed", "user deleted"])
def test_a_revoked_token_is_401_before_an_invalid_body_or_query_is_422(
    client: TestClient, session: Session, method: str, path: str, body: Any, revoke: str
) -> None:
    user = make_user(session)
    headers = auth_headers(user)
    if revoke == "password changed":
        user.token_key = new_token_key()
    else:
        session.delete(user)
    session.flush()

    response = client.request(method, path, json=body, headers=headers)

    assert_problem(response, 401)
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize(
    ("method", "path", "body", "loc"),
    [
        ("POST", "/api/v1/items", {"title": ""}, ["body", "title"]),
        ("GET", "/api/v1/items?page=0", None, ["query", "page"]),
    ],
)
def test_an_allowed_caller_gets_the_422_for_an_invalid_body_or_query(
    client: TestClient,
    session: Session,
    user_headers: dict[str, str],
    method: str,
    path: str,
    body: Any,
    loc: list[str],
) -> None:
    response = client.request(method, path, json=body, headers=user_headers)

    problem = assert_problem(response, 422)
    assert [error["loc"] for error in problem["errors"]] == [loc]
    assert session.scalar(select(func.count()).select_from(Item)) == 0


@pytest.mark.parametrize("item_id", ["0", "2147483648", "not-a-number"])
def test_an_allowed_caller_still_gets_422_for_a_malformed_item_id(
    client: TestClient, user_headers: dict[str, str], item_id: str
) -> None:
    response = client.get(f"/api/v1/items/{item_id}", headers=user_headers)

    body = assert_problem(response, 422)
    assert [error["loc"] for error in body["errors"]] == [["path", "item_id"]]


# X-Request-ID ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"), [("/health", 200), ("/api/v1/nothing-here", 404), ("/api/v1/items", 401)]
)
def test_sane_client_request_id_is_echoed(app_client: TestClient, path: str, status: int) -> None:
    request_id = "req-" + "A1:b2/~!" * 15 + "1234"

    response = app_client.get(path, headers={"X-Request-ID": request_id})

    assert len(request_id) == 128
    assert response.status_code == status
    assert response.headers["X-Request-ID"] == request_id


@pytest.mark.parametrize(
    "request_id",
    ["x" * 129, "has space", "tab\there", "bell\x07", "del\x7f"],
    ids=["too-long", "space", "tab", "control", "delete"],
)
def test_insane_client_request_id_is_replaced(app_client: TestClient, request_id: str) -> None:
    response = app_client.get("/api/v1/nothing-here", headers={"X-Request-ID": request_id})

    body = assert_problem(response, 404)
    assert response.headers["X-Request-ID"] != request_id
    assert SANE_REQUEST_ID.match(response.headers["X-Request-ID"])
    assert body["request_id"] == response.headers["X-Request-ID"]


def test_each_request_without_an_id_gets_a_fresh_one(app_client: TestClient) -> None:
    first = app_client.get("/health")
    second = app_client.get("/health")

    assert SANE_REQUEST_ID.match(first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


# 500 ---------------------------------------------------------------------------------------


def test_unhandled_error_is_a_500_problem_without_internals(exploding_route: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get(exploding_route, headers={"X-Request-ID": "trace-500"})

    assert_problem(response, 500)
    assert response.headers["X-Request-ID"] == "trace-500"
    for leak in ("secret-sql", "SELECT", "password", "RuntimeError", "Traceback", "File "):
        assert leak not in response.text


def test_unhandled_error_is_logged_once_with_traceback_and_request_id(
    exploding_route: str, caplog: pytest.LogCaptureFixture
) -> None:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get(exploding_route, headers={"X-Request-ID": "trace-500-log"})

    errors = [record for record in caplog.records if record.levelno >= logging.ERROR]
    assert response.status_code == 500
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert errors[0].exc_info[0] is RuntimeError
    assert getattr(errors[0], "request_id", None) == "trace-500-log"


# Security headers --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status"),
    [("/health", 200), ("/api/v1/nothing-here", 404), ("/api/v1/users/me", 401), ("/docs", 200)],
)
def test_every_response_has_nosniff_and_referrer_policy(
    app_client: TestClient, path: str, status: int
) -> None:
    response = app_client.get(path)

    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"]


@pytest.mark.parametrize("path", ["/health", "/api/v1/nothing-here", "/openapi.json"])
def test_json_responses_have_a_strict_content_security_policy(
    app_client: TestClient, path: str
) -> None:
    response = app_client.get(path)

    assert "json" in response.headers["content-type"]
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_a_500_has_the_security_headers(exploding_route: str) -> None:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        response = test_client.get(exploding_route)

    assert response.status_code == 500
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]


def test_no_hsts_over_plain_http(app_client: TestClient) -> None:
    response = app_client.get("/health")

    assert response.url.scheme == "http"
    assert "Strict-Transport-Security" not in response.headers


def test_hsts_over_tls() -> None:
    with TestClient(app, base_url="https://testserver") as test_client:
        response = test_client.get("/health")

    assert response.url.scheme == "https"
    assert "max-age=" in response.headers["Strict-Transport-Security"]


# Unit of work: a failed commit is never a 2xx --------------------------------------------


def test_failed_commit_of_an_item_is_503_and_stores_nothing(
    commit_failing_with: Callable[[Exception], TestClient],
    committing_sessions: sessionmaker[Session],
    stored_user: User,
) -> None:
    error = OperationalError("COMMIT", {}, Exception("server closed the connection"))
    test_client = commit_failing_with(error)

    response = test_client.post(
        "/api/v1/items", json={"title": "never stored"}, headers=auth_headers(stored_user)
    )

    assert_problem(response, 503)
    assert response.headers["Retry-After"].isdigit()
    with committing_sessions() as session:
        assert session.scalar(select(func.count()).select_from(Item)) == 0


def test_failed_commit_of_a_sign_up_is_500_and_stores_nothing(
    commit_failing_with: Callable[[Exception], TestClient],
    committing_sessions: sessionmaker[Session],
) -> None:
    test_client = commit_failing_with(RuntimeError("commit failed"))

    response = test_client.post(
        "/api/v1/users",
        json={"email": "ghost@example.com", "username": "ghost", "password": "password123"},
    )

    assert_problem(response, 500)
    assert "commit failed" not in response.text
    assert users_with_email(committing_sessions, "ghost@example.com") == []


# Database unreachable -----------------------------------------------------------------------


def test_readiness_is_503_when_the_database_is_unreachable(
    app_client: TestClient, unreachable_database: list[int]
) -> None:
    response = app_client.get("/health/ready")

    assert_problem(response, 503)
    assert response.headers["Retry-After"].isdigit()


def test_authenticated_route_is_503_when_the_database_is_unreachable(
    app_client: TestClient, unreachable_database: list[int]
) -> None:
    token = create_access_token(user_id=1, token_key="0123456789abcdef0123456789abcdef")

    response = app_client.get(
        "/api/v1/users/me", headers={"Authorization": f"Bearer {token.token}"}
    )

    assert_problem(response, 503)
    assert response.headers["Retry-After"].isdigit()


def test_liveness_answers_without_touching_the_database(
    app_client: TestClient, unreachable_database: list[int]
) -> None:
    response = app_client.get("/health")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert unreachable_database == []


def test_readiness_is_200_when_the_database_is_up(client: TestClient) -> None:
    response = client.get("/health/ready")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


# OpenAPI and docs --------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc"])
def test_api_documentation_is_served(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)

    assert response.status_code == 200


def _operations(app_client: TestClient) -> Iterator[tuple[str, str, dict[str, Any]]]:
    document = app_client.get("/openapi.json").json()
    for path, path_item in document["paths"].items():
        for method, operation in path_item.items():
            yield method, path, operation


def test_every_operation_has_a_summary_and_tags(app_client: TestClient) -> None:
    operations = list(_operations(app_client))

    assert operations
    for method, path, operation in operations:
        assert operation.get("summary"), f"{method} {path} has no summary"
        assert operation.get("tags"), f"{method} {path} has no tags"


def test_every_documented_error_response_is_a_problem(app_client: TestClient) -> None:
    problem_ref = {"$ref": "#/components/schemas/Problem"}

    documented = [
        (f"{method} {path} {status}", response)
        for method, path, operation in _operations(app_client)
        for status, response in operation["responses"].items()
        if status.startswith(("4", "5"))
    ]

    assert documented
    for name, response in documented:
        assert list(response["content"]) == [PROBLEM_JSON], name
        problem = response["content"][PROBLEM_JSON]
        assert problem["schema"] == problem_ref, name
        # One example, with the response's own status.
        (example,) = problem["examples"].values()
        assert example["value"]["status"] == int(name.rpartition(" ")[2]), name


# Start-up: the first admin -----------------------------------------------------------------


def test_first_superuser_is_created_from_settings(
    committing_sessions: sessionmaker[Session],
    first_superuser_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifespan_module, "SessionLocal", committing_sessions)

    create_first_superuser(first_superuser_settings)

    [admin] = users_with_email(committing_sessions, "root@example.com")
    assert admin.role == Role.ADMIN
    assert admin.is_active
    assert verify_password("rootpass123", admin.hashed_password)


def test_first_superuser_creation_is_idempotent(
    committing_sessions: sessionmaker[Session],
    first_superuser_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifespan_module, "SessionLocal", committing_sessions)
    create_first_superuser(first_superuser_settings)

    create_first_superuser(first_superuser_settings)

    assert len(users_with_email(committing_sessions, "root@example.com")) == 1


def test_existing_user_with_the_first_superuser_email_is_left_untouched(
    committing_sessions: sessionmaker[Session],
    first_superuser_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(lifespan_module, "SessionLocal", committing_sessions)
    with committing_sessions() as session, unit_of_work(session):
        make_user(session, email="root@example.com", password="otherpass123")

    create_first_superuser(first_superuser_settings)

    [existing] = users_with_email(committing_sessions, "root@example.com")
    assert existing.role == Role.USER
    assert verify_password("otherpass123", existing.hashed_password)


def test_app_starts_while_the_database_is_down_and_creates_the_admin_later(
    committing_sessions: sessionmaker[Session],
    first_superuser_settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    down_engine = create_db_engine(UNREACHABLE_DATABASE_URL)
    down_sessions = sessionmaker(down_engine)
    calls: list[int] = []

    def sessions_down_twice() -> Session:
        calls.append(1)
        return down_sessions() if len(calls) <= 2 else committing_sessions()

    monkeypatch.setattr(lifespan_module, "SessionLocal", sessions_down_twice)
    monkeypatch.setattr(lifespan_module, "RETRY_DELAYS_S", (0.01,))

    try:
        with TestClient(app) as started:
            liveness = started.get("/health")
            for thread in threading.enumerate():
                if thread.name == "first-superuser":
                    thread.join(timeout=30)
    finally:
        down_engine.dispose()

    assert liveness.status_code == 200
    assert len(calls) == 3
    [admin] = users_with_email(committing_sessions, "root@example.com")
    assert admin.role == Role.ADMIN
