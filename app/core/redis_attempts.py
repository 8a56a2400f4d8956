"""Exact rolling-window attempt counters in Redis: one sorted set per budget, scored by time.

Counting and adding happen in one Lua script over every budget of an attempt, so concurrent
attempts on any number of workers and hosts never overshoot a budget, and the script reads
Redis's own clock, so hosts whose clocks differ agree on every window.
"""

import math
import uuid
from collections.abc import Sequence

from redis.exceptions import RedisError

from app.core.redis_client import redis_client

KEY_PREFIX = "login-budget:"

# KEYS: the budgets. ARGV: limit, window (ms), the attempt's member. Returns 0 and adds the
# attempt to every budget, or the milliseconds until the fullest budget has room again.
_RESERVE = """
local limit, window, member = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3]
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + math.floor(tonumber(time[2]) / 1000)
local wait = 0
for _, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', now - window)
  if redis.call('ZCARD', key) >= limit then
    local oldest = redis.call('ZRANGE', key, 0, 0, 'WITHSCORES')
    wait = math.max(wait, tonumber(oldest[2]) + window - now, 1)
  end
end
if wait > 0 then
  return wait
end
for _, key in ipairs(KEYS) do
  redis.call('ZADD', key, now, member)
  redis.call('PEXPIRE', key, window)
end
return 0
"""


class AttemptStoreUnavailable(Exception):
    """The store could not be reached or did not answer in time."""


class RedisAttempts:
    def __init__(self, url: str) -> None:
        self._client = redis_client(url)
        self._reserve = self._client.register_script(_RESERVE)

    def reserve(self, budgets: Sequence[str], *, limit: int, window_s: int) -> list[str] | int:
        """Take a place in every budget: the entries taken, or the whole seconds to wait."""
        member = uuid.uuid4().hex
        try:
            wait_ms = int(
                self._reserve(keys=self._keys(budgets), args=[limit, window_s * 1000, member])
            )
        except RedisError as exc:
            raise AttemptStoreUnavailable(repr(exc)) from exc
        if wait_ms:
            return max(1, math.ceil(wait_ms / 1000))
        return [member] * len(budgets)

    def release(self, budgets: Sequence[str], entries: Sequence[str]) -> None:
        try:
            with self._client.pipeline(transaction=False) as pipe:
                for key, entry in zip(self._keys(budgets), entries, strict=True):
                    pipe.zrem(key, entry)
                pipe.execute()
        except RedisError as exc:
            raise AttemptStoreUnavailable(repr(exc)) from exc

    def clear(self, budget: str) -> None:
        try:
            self._client.delete(*self._keys([budget]))
        except RedisError as exc:
            raise AttemptStoreUnavailable(repr(exc)) from exc

    @staticmethod
    def _keys(budgets: Sequence[str]) -> list[str]:
        return [KEY_PREFIX + budget for budget in budgets]
