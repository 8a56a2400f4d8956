"""Rolling-window request budgets (the ``limits`` library, moving-window strategy).

With ``REDIS_URL`` the counters live in Redis, shared by every worker process and host; without
it they live in the process, so each worker counts on its own and forgets on recycle (a warning
says so at start-up). When Redis is unreachable the limiter fails open: requests are served,
the outage is logged, and for a few seconds Redis is not asked at all (so requests do not each
wait for a timeout); after that the client reconnects by itself.
"""

import logging
import math
import time
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar

from limits import RateLimitItem, parse
from limits.errors import StorageError
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter
from redis.exceptions import RedisError

from app.core.config import get_settings
from app.core.outage import OutageBackoff
from app.core.redis_client import REDIS_TIMEOUT_S

logger = logging.getLogger(__name__)

OUTAGE_BACKOFF_S = 5.0
T = TypeVar("T")


class RateLimiter:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._backoff = OutageBackoff(
            OUTAGE_BACKOFF_S,
            logger=logger,
            message="Rate-limit store unreachable; serving without limits for %.0f s: %r",
        )

    def retry_after(self, item: RateLimitItem, *key: str) -> int | None:
        """Seconds until one more hit fits the budget, or ``None`` if it fits now."""

        def check() -> int | None:
            if self._strategy.test(item, *key):
                return None
            return self._seconds_until_reset(item, *key)

        return self._fail_open(check, None)

    def consume(self, item: RateLimitItem, *key: str) -> int | None:
        """Count one hit; ``None`` if it fit, else the seconds to wait (nothing counted)."""

        def hit() -> int | None:
            if self._strategy.hit(item, *key):
                return None
            return self._seconds_until_reset(item, *key)

        return self._fail_open(hit, None)

    def hit(self, item: RateLimitItem, *key: str) -> None:
        self._fail_open(lambda: self._strategy.hit(item, *key), True)

    def clear(self, item: RateLimitItem, *key: str) -> None:
        self._fail_open(lambda: self._strategy.clear(item, *key), None)

    def reset(self) -> None:
        """Forget every counter (tests, and ops after an incident)."""
        self.storage.reset()
        self._backoff.reset()

    def _seconds_until_reset(self, item: RateLimitItem, *key: str) -> int:
        reset_at = self._strategy.get_window_stats(item, *key).reset_time
        return max(1, math.ceil(reset_at - time.time()))

    def _fail_open(self, call: Callable[[], T], fallback: T) -> T:
        if not self._backoff.allows_a_try():
            return fallback
        try:
            return call()
        except (StorageError, RedisError) as exc:
            self._backoff.failed(exc)
            return fallback


@lru_cache
def get_rate_limiter() -> RateLimiter:
    redis_url = get_settings().REDIS_URL
    if not redis_url:
        return RateLimiter(MemoryStorage())
    storage = RedisStorage(
        redis_url,
        wrap_exceptions=True,
        socket_timeout=REDIS_TIMEOUT_S,
        socket_connect_timeout=REDIS_TIMEOUT_S,
    )
    return RateLimiter(storage)


@lru_cache
def parse_limit(value: str) -> RateLimitItem:
    return parse(value)
