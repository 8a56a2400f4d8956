"""Budgets of failed logins, per account and per client address (``RATE_LIMIT_LOGIN``).

Every password check, at login and wherever a password confirms a change, first takes a place
in both budgets: atomically, in a store every worker and host shares, before any hashing. A
full budget is a 429. The place is kept as a failure unless the password was right, so at most
N passwords are checked per account (and per address) in any window while they fail, however
many attempts arrive at once. A successful login clears the account's budget (not the
address's, so one known password cannot launder guesses at other accounts from the same
address). While an account's budget is spent, even its owner must wait out ``Retry-After``:
the accepted price of bounding guesses per account.

The store is the database (``login_attempts``) or, with ``REDIS_URL``, Redis; while Redis is
unreachable the database takes over, never no limit. Attempts made at the switch are counted
in the store that took them, so a window that spans an outage's start or end may hold up to N
failures in each store.
"""

import hashlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Protocol

from limits import RateLimitItem
from sqlalchemy.orm import Session

from app.core.config import get_settings
from app.core.errors import RateLimitedError
from app.core.outage import OutageBackoff
from app.core.rate_limit import parse_limit
from app.core.redis_attempts import AttemptStoreUnavailable
from app.crud import login_attempt_crud
from app.schemas.login_attempt import LoginAttemptCreate

logger = logging.getLogger(__name__)

OUTAGE_BACKOFF_S = 5.0
# Rows this much past their window are purged: never one that a slower concurrent attempt,
# with a slightly earlier clock reading, still counts.
PURGE_MARGIN_S = 60.0
TOO_MANY_ATTEMPTS = "Too many failed login attempts; retry later"


class AttemptStore(Protocol):
    def reserve(self, budgets: Sequence[str], *, limit: int, window_s: int) -> list[str] | int:
        """A place in every budget (the entries taken), or the whole seconds to wait."""

    def release(self, budgets: Sequence[str], entries: Sequence[str]) -> None: ...

    def clear(self, budget: str) -> None: ...


class DatabaseAttempts:
    """Attempts as rows, counted under a lock per budget in short units of work of their own."""

    def __init__(self, units: Callable[[], AbstractContextManager[Session]]) -> None:
        self._units = units

    def reserve(self, budgets: Sequence[str], *, limit: int, window_s: int) -> list[str] | int:
        now = time.time()
        since = now - window_s
        with self._units() as session:
            login_attempt_crud.commit_without_waiting_for_disk(session)
            login_attempt_crud.lock_budgets(session, budgets=budgets)
            login_attempt_crud.purge(session, before=since - PURGE_MARGIN_S)
            waits = []
            for budget in budgets:
                count, oldest = login_attempt_crud.window(session, budget=budget, since=since)
                if count >= limit and oldest is not None:
                    waits.append(oldest + window_s - now)
            if waits:
                return max(1, math.ceil(max(waits)))
            attempts = login_attempt_crud.create_many(
                session,
                objs_in=[LoginAttemptCreate(budget=budget, attempted_at=now) for budget in budgets],
            )
            return [str(attempt.id) for attempt in attempts]

    def release(self, budgets: Sequence[str], entries: Sequence[str]) -> None:  # noqa: ARG002 (rows have ids)
        with self._units() as session:
            login_attempt_crud.commit_without_waiting_for_disk(session)
            login_attempt_crud.delete_ids(session, ids=[int(entry) for entry in entries])

    def clear(self, budget: str) -> None:
        with self._units() as session:
            login_attempt_crud.commit_without_waiting_for_disk(session)
            login_attempt_crud.delete_budget(session, budget=budget)


@dataclass
class PasswordCheck:
    """Handed to the block that checks a password; ``passed()`` when it was right."""

    right: bool = field(default=False, init=False)

    def passed(self) -> None:
        self.right = True


class LoginBudgets:
    def __init__(self, *, database: AttemptStore, redis: AttemptStore | None = None) -> None:
        self._database = database
        self._redis = redis
        self._redis_backoff = OutageBackoff(
            OUTAGE_BACKOFF_S,
            logger=logger,
            message="Login budgets: Redis unreachable, counting in the database for %.0f s: %s",
        )

    @contextmanager
    def attempt(self, *, email: str, client_address: str) -> Iterator[PasswordCheck]:
        """Take a place in the account's and the address's budgets (``RateLimitedError`` when
        either is spent), then let the block check the password. The place stays taken, as a
        failure, unless the block calls ``check.passed()``."""
        budgets = (account_budget(email), address_budget(client_address))
        limit = parse_limit(get_settings().RATE_LIMIT_LOGIN)
        store, taken = self._reserve(budgets, limit)
        if isinstance(taken, int):
            raise RateLimitedError(TOO_MANY_ATTEMPTS, retry_after=taken)
        check = PasswordCheck()
        try:
            yield check
        finally:
            if check.right:
                self._quietly(lambda: store.release(budgets, taken))

    def clear_account(self, email: str) -> None:
        """Forget the account's failures (after a successful login)."""
        budget = account_budget(email)
        store = self._live_redis() or self._database
        self._quietly(lambda: store.clear(budget))

    def _reserve(
        self, budgets: Sequence[str], limit: RateLimitItem
    ) -> tuple[AttemptStore, list[str] | int]:
        window_s = limit.get_expiry()
        if (redis := self._live_redis()) is not None:
            try:
                return redis, redis.reserve(budgets, limit=limit.amount, window_s=window_s)
            except AttemptStoreUnavailable as exc:
                self._redis_backoff.failed(exc)
        return self._database, self._database.reserve(
            budgets, limit=limit.amount, window_s=window_s
        )

    def _live_redis(self) -> AttemptStore | None:
        """Redis, unless it is not configured or failed a moment ago."""
        if self._redis is not None and self._redis_backoff.allows_a_try():
            return self._redis
        return None

    def _quietly(self, call: Callable[[], None]) -> None:
        """Giving a place back may fail (Redis gone): the attempt then counts until its window
        ends, which errs on the safe side."""
        try:
            call()
        except AttemptStoreUnavailable as exc:
            self._redis_backoff.failed(exc)


def account_budget(email: str) -> str:
    # Hashed: the store never holds email addresses, and odd input stays a short key.
    digest = hashlib.sha256(email.strip().lower().encode(errors="replace")).hexdigest()
    return f"account:{digest}"


def address_budget(client_address: str) -> str:
    return f"address:{client_address[:64]}"
