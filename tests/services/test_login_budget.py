"""Login budgets on really committing sessions (SQLite and PostgreSQL) and the real Redis: an
attempt's place is taken atomically before its password is checked, so simultaneous attempts
never overshoot a budget, whichever store counts them."""

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.core.db import unit_of_work
from app.core.errors import RateLimitedError
from app.core.redis_attempts import RedisAttempts
from app.models import LoginAttempt
from app.services.login_budget import (
    PURGE_MARGIN_S,
    DatabaseAttempts,
    LoginBudgets,
    account_budget,
)
from tests.conftest import unavailable
from tests.integration.conftest import free_port

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
BUDGET = 5  # the default RATE_LIMIT_LOGIN, 5/minute
ADDRESS = "203.0.113.9"


@pytest.fixture
def database(committing_sessions: sessionmaker[Session]) -> DatabaseAttempts:
    @contextmanager
    def units() -> Iterator[Session]:
        with committing_sessions() as session, unit_of_work(session):
            yield session

    return DatabaseAttempts(units)


@pytest.fixture
def redis_store() -> Iterator[RedisAttempts]:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5)
    try:
        client.ping()
    except redis.RedisError:
        unavailable(f"Redis at {REDIS_URL} is unreachable")
    client.flushdb()
    yield RedisAttempts(REDIS_URL)
    client.flushdb()
    client.close()


def attempts_of(sessions: sessionmaker[Session]) -> int:
    with sessions() as session:
        return session.scalar(select(func.count()).select_from(LoginAttempt)) or 0


def fail(budgets: LoginBudgets, email: str, address: str = ADDRESS) -> int:
    """One wrong password: 401 once its place is taken, 429 when the budget is spent."""
    try:
        with budgets.attempt(email=email, client_address=address):
            return 401
    except RateLimitedError:
        return 429


def at_once(count: int, call: Callable[[], int]) -> list[int]:
    start = threading.Barrier(count)
    results: list[int] = []
    lock = threading.Lock()

    def run() -> None:
        start.wait()
        result = call()
        with lock:
            results.append(result)

    threads = [threading.Thread(target=run) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(results)


def test_simultaneous_attempts_in_the_database_never_overshoot(database: DatabaseAttempts) -> None:
    budgets = LoginBudgets(database=database)

    statuses = at_once(12, lambda: fail(budgets, "victim@example.com"))

    assert statuses == [401] * BUDGET + [429] * 7


def test_simultaneous_attempts_in_redis_never_overshoot(redis_store: RedisAttempts) -> None:
    budgets = LoginBudgets(database=DatabaseAttempts(_no_database), redis=redis_store)

    statuses = at_once(12, lambda: fail(budgets, "victim@example.com"))

    assert statuses == [401] * BUDGET + [429] * 7


def test_the_address_budget_counts_attempts_at_every_account(database: DatabaseAttempts) -> None:
    budgets = LoginBudgets(database=database)

    statuses = [fail(budgets, f"user{n}@example.com") for n in range(BUDGET + 1)]

    assert statuses == [401] * BUDGET + [429]


def test_a_refused_attempt_says_when_to_retry(database: DatabaseAttempts) -> None:
    budgets = LoginBudgets(database=database)
    for _ in range(BUDGET):
        fail(budgets, "victim@example.com")

    with pytest.raises(RateLimitedError) as refused:
        fail_or_raise(budgets, "victim@example.com")

    assert 1 <= refused.value.retry_after <= 60


def fail_or_raise(budgets: LoginBudgets, email: str) -> None:
    with budgets.attempt(email=email, client_address=ADDRESS):
        pass


@pytest.mark.parametrize("store", ["database", "redis"])
def test_a_right_password_gives_its_place_back(
    request: pytest.FixtureRequest,
    database: DatabaseAttempts,
    committing_sessions: sessionmaker[Session],
    store: str,
) -> None:
    budgets = _budgets(request, database, store)

    for _ in range(BUDGET + 2):
        with budgets.attempt(email="owner@example.com", client_address=ADDRESS) as check:
            check.passed()

    assert fail(budgets, "owner@example.com") == 401
    if store == "database":
        assert attempts_of(committing_sessions) == 2  # the failure, in both budgets


@pytest.mark.parametrize("store", ["database", "redis"])
def test_clearing_the_account_forgets_its_failures_but_not_the_addresss(
    request: pytest.FixtureRequest, database: DatabaseAttempts, store: str
) -> None:
    budgets = _budgets(request, database, store)
    for _ in range(BUDGET - 1):
        fail(budgets, "owner@example.com")

    budgets.clear_account("owner@example.com")

    assert fail(budgets, "owner@example.com", address="198.51.100.1") == 401
    assert fail(budgets, "someone@example.com") == 401  # the address's 5th
    assert fail(budgets, "someone@example.com") == 429


def test_attempts_well_past_their_window_are_purged(
    database: DatabaseAttempts, committing_sessions: sessionmaker[Session]
) -> None:
    long_ago = time.time() - 60 - PURGE_MARGIN_S - 1
    with committing_sessions() as session, unit_of_work(session):
        session.add(LoginAttempt(budget=account_budget("old@example.com"), attempted_at=long_ago))

    fail(LoginBudgets(database=database), "new@example.com")

    assert attempts_of(committing_sessions) == 2  # the new attempt's two places only


def test_an_unreachable_redis_hands_the_budgets_to_the_database(
    database: DatabaseAttempts,
    committing_sessions: sessionmaker[Session],
    caplog: pytest.LogCaptureFixture,
) -> None:
    budgets = LoginBudgets(
        database=database, redis=RedisAttempts(f"redis://127.0.0.1:{free_port()}/0")
    )

    with caplog.at_level(logging.WARNING, logger="app.services.login_budget"):
        statuses = at_once(12, lambda: fail(budgets, "victim@example.com"))

    assert statuses == [401] * BUDGET + [429] * 7
    assert attempts_of(committing_sessions) == 2 * BUDGET
    outage_warnings = [r for r in caplog.records if "Redis unreachable" in r.getMessage()]
    assert 1 <= len(outage_warnings) <= 2  # once per outage (two threads may see it first)


@contextmanager
def _no_database() -> Iterator[Session]:
    raise AssertionError("Redis is up: the database must not be asked")
    yield  # a generator, never reached


def _budgets(
    request: pytest.FixtureRequest, database: DatabaseAttempts, store: str
) -> LoginBudgets:
    if store == "redis":
        return LoginBudgets(
            database=DatabaseAttempts(_no_database), redis=request.getfixturevalue("redis_store")
        )
    return LoginBudgets(database=database)
