"""Fixtures shared by every test layer.

Each database test runs once per backend: SQLite always, PostgreSQL when reachable
(``TEST_DATABASE_URL``; with ``CI`` set an unreachable server fails the run instead of skipping).
The schema is built once per backend with ``alembic upgrade head``; each test runs inside an
outer transaction that is rolled back, and the app's commits become SAVEPOINT releases.
"""

import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any, NoReturn

_TMP = Path(tempfile.mkdtemp(prefix="api-tests-"))
os.environ.update(
    {
        "ENVIRONMENT": "test",
        "SECRET_KEY": "test-secret-key-that-is-long-enough-for-hs256-0123456789",
        "BCRYPT_ROUNDS": "4",
        "DATABASE_URL": f"sqlite:///{_TMP}/app.db",
        "LOG_LEVEL": "warning",
        "LOG_FORMAT": "console",
    }
)
for _name in (
    "FIRST_SUPERUSER_EMAIL",
    "FIRST_SUPERUSER_PASSWORD",
    "BACKEND_CORS_ORIGINS",
    "REDIS_URL",
    "CACHE_URL",
    "RATE_LIMIT_DEFAULT",
    "RATE_LIMIT_LOGIN",
):
    os.environ.pop(_name, None)
for _name in [name for name in os.environ if name.startswith("OTEL_")]:
    os.environ.pop(_name)  # tracing is on only in the tests that turn it on
# TEST_CACHE_URL runs the suite with the read cache on (make test runs tests/api so once more).
if os.environ.get("TEST_CACHE_URL"):
    os.environ["CACHE_URL"] = os.environ["TEST_CACHE_URL"]

import pytest  # noqa: E402
import redis  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from sqlalchemy import Engine, text  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402
from sqlalchemy.orm import Session, sessionmaker  # noqa: E402

from app.api import unit_of_work as unit_of_work_module  # noqa: E402
from app.api.deps import get_login_budgets  # noqa: E402
from app.api.unit_of_work import get_session  # noqa: E402
from app.core.db import (  # noqa: E402
    AUTOCOMMIT_OPTION,
    LOCK_AT_FIRST_WRITE_OPTION,
    create_db_engine,
    unit_of_work,
)
from app.core.rate_limit import get_rate_limiter  # noqa: E402
from app.main import app  # noqa: E402
from app.models import IdempotencyKey, Item, LoginAttempt, User  # noqa: E402
from app.services.login_budget import DatabaseAttempts, LoginBudgets  # noqa: E402
from tests.factories import auth_headers, make_user  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TEST_DATABASE_URL = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


def postgres_url() -> str:
    return os.environ.get("TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


def unavailable(what: str) -> NoReturn:
    """Skip the test because ``what`` is missing, or fail it when ``CI`` is set: in CI every
    service and tool the suite uses must be there."""
    if os.environ.get("CI"):
        pytest.fail(f"{what}, and CI requires it")
    pytest.skip(what)


def wait_until(
    condition: Callable[[], Any], *, timeout: float, message: str | Callable[[], str]
) -> Any:
    """Poll ``condition`` until it returns something truthy (and return it), or fail after
    ``timeout`` saying ``message`` (a callable says what it found by then)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() >= deadline:
            said = message() if callable(message) else message
            pytest.fail(f"timed out after {timeout} s: {said}")
        time.sleep(0.05)


def require_postgres() -> str:
    """The PostgreSQL URL, or skip (fail under CI) when the server cannot be reached."""
    url = postgres_url()
    probe = create_db_engine(url)
    try:
        with probe.connect():
            pass
    except Exception as exc:
        unavailable(f"PostgreSQL at {url} is unreachable: {exc}")
    finally:
        probe.dispose()
    return url


def alembic_config(connection: object | None = None) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.attributes["configure_logger"] = False
    if connection is not None:
        config.attributes["connection"] = connection
    return config


@contextmanager
def scratch_postgres(prefix: str = "test") -> Iterator[str]:
    """A new, empty database on TEST_DATABASE_URL's server, dropped afterwards: the suite never
    drops or changes a database it did not create."""
    url = make_url(require_postgres())
    name = f"{prefix}_{uuid.uuid4().hex[:16]}"
    maintenance = create_db_engine(
        url.render_as_string(hide_password=False), isolation_level="AUTOCOMMIT"
    )
    try:
        with maintenance.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            yield url.set(database=name).render_as_string(hide_password=False)
        finally:
            with maintenance.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        maintenance.dispose()


@pytest.fixture(autouse=True)
def _fresh_rate_limits() -> None:
    """Every test starts with unspent budgets (the in-process store is shared by all tests)."""
    get_rate_limiter().reset()


def read_cache_url() -> str:
    return os.environ.get("TEST_CACHE_URL", "redis://127.0.0.1:6379/12")


def empty_read_cache(url: str) -> None:
    try:
        redis.Redis.from_url(url).flushdb()
    except redis.RedisError as exc:
        unavailable(f"the read cache's Redis at {url} is unreachable: {exc}")


@pytest.fixture(autouse=True)
def _empty_read_cache() -> None:
    """With the read cache on (TEST_CACHE_URL), every test starts with it empty: each test's
    rows are rolled back afterwards, which a real commit never is, so entries and versions
    must not outlive the test that made them."""
    if url := os.environ.get("CACHE_URL"):
        empty_read_cache(url)


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    with ExitStack() as stack:
        if request.param == "sqlite":
            url = f"sqlite:///{tmp_path_factory.mktemp('sqlite')}/test.db"
        else:
            url = stack.enter_context(scratch_postgres())
        engine = create_db_engine(url)
        stack.callback(engine.dispose)
        with engine.connect() as connection:  # alembic commits (see alembic/env.py for SQLite)
            command.upgrade(alembic_config(connection), "head")
        yield engine


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    """One outer transaction per test, rolled back at the end."""
    with engine.connect() as connection:
        outer = connection.begin()
        with Session(
            bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
        ) as session:
            yield session
        outer.rollback()


@pytest.fixture
def login_budgets(session: Session) -> LoginBudgets:
    """Login budgets counted in the test's transaction (each unit commits a SAVEPOINT)."""

    @contextmanager
    def units() -> Iterator[Session]:
        with unit_of_work(session):
            yield session

    return LoginBudgets(database=DatabaseAttempts(units))


@pytest.fixture(scope="session")
def app_client() -> Iterator[TestClient]:
    with TestClient(app) as client:
        yield client


@pytest.fixture
def client(
    app_client: TestClient, session: Session, login_budgets: LoginBudgets
) -> Iterator[TestClient]:
    """The app, with each request's unit of work running in the test's transaction."""

    def session_override() -> Iterator[Session]:
        # Like a fresh production session: the test's set-up is settled (a failing request
        # rolls back only its own work) and nothing is served from a stale identity map.
        session.commit()
        session.expire_all()
        with unit_of_work(session):
            yield session

    app.dependency_overrides[get_session] = session_override
    app.dependency_overrides[get_login_budgets] = lambda: login_budgets
    yield app_client
    app.dependency_overrides.clear()


@pytest.fixture
def committing_sessions(engine: Engine) -> Iterator[sessionmaker[Session]]:
    """Real, independently committing sessions (for races and commit failures); the tables are
    emptied afterwards."""
    yield sessionmaker(engine, expire_on_commit=False)
    with engine.begin() as connection:
        connection.execute(LoginAttempt.__table__.delete())
        connection.execute(IdempotencyKey.__table__.delete())
        connection.execute(Item.__table__.delete())
        connection.execute(User.__table__.delete())


@pytest.fixture
def committing_client(
    app_client: TestClient,
    committing_sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[TestClient]:
    """The app with production's unit of work (app.api.unit_of_work), on the test database."""
    autocommit_sessions = sessionmaker(
        committing_sessions.kw["bind"].execution_options(**{AUTOCOMMIT_OPTION: True}),
        expire_on_commit=False,
    )
    request_sessions = sessionmaker(
        committing_sessions.kw["bind"].execution_options(**{LOCK_AT_FIRST_WRITE_OPTION: True}),
        expire_on_commit=False,
    )
    monkeypatch.setattr(unit_of_work_module, "SessionLocal", request_sessions)
    monkeypatch.setattr(unit_of_work_module, "ReadOnlySessionLocal", autocommit_sessions)

    @contextmanager
    def separate_units() -> Iterator[Session]:
        with committing_sessions() as session, unit_of_work(session):
            yield session

    budgets = LoginBudgets(database=DatabaseAttempts(separate_units))

    async def budgets_override() -> LoginBudgets:
        return budgets

    app.dependency_overrides[get_login_budgets] = budgets_override
    yield app_client
    app.dependency_overrides.clear()


@pytest.fixture
def user(session: Session) -> User:
    return make_user(session)


@pytest.fixture
def other_user(session: Session) -> User:
    return make_user(session)


@pytest.fixture
def admin(session: Session) -> User:
    return make_user(session, role="admin")


@pytest.fixture
def user_headers(user: User) -> dict[str, str]:
    return auth_headers(user)


@pytest.fixture
def admin_headers(admin: User) -> dict[str, str]:
    return auth_headers(admin)
