"""The read cache (``CACHE_URL``, a Redis URL): answers that are costly to compute, kept in
Redis and shared by every worker and host.

Invalidation is by version keys, never by deleting entries. Each cached answer belongs to a
*scope* (say, one owner's items), whose version key holds a random token; an entry's key
carries the token it was read under. A write marks the scopes it changes, and once its
transaction has committed each of them gets a new token, so the next read misses and goes to
the database. Entries left under an old token are never read again and expire on their own.

Why this order is safe: a reader reads the token first and the database second, so an entry
stored under the current token was read from the database after that token was published,
which is after the write committed. A missing version key (expired, evicted, flushed) is
replaced by a new random token, never by an earlier one.

The cache fails open: while Redis is unreachable every read goes to the database. A new token
that could not be published is kept and published before this process's next lookup; entries
expire after ``ENTRY_TTL_S`` in any case, which bounds how long another host could miss it.
"""

import hashlib
import logging
import secrets
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from redis.exceptions import RedisError
from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from app.core.config import get_settings
from app.core.db import AUTOCOMMIT_OPTION
from app.core.metrics import READ_CACHE_INVALIDATION_FAILURES, READ_CACHE_LOOKUPS
from app.core.outage import OutageBackoff
from app.core.redis_client import redis_client

logger = logging.getLogger(__name__)

OUTAGE_BACKOFF_S = 5.0
ENTRY_TTL_S = 300
# A version key outlives its entries, so a scope read now and then keeps its hits; when it
# does expire, readers start a new token and the old entries are simply never read.
VERSION_TTL_S = 24 * 3600
KEY_PREFIX = "read-cache:"
_CHANGED_SCOPES = "read_cache_changed_scopes"  # Session.info key

# KEYS[1]: the scope's version key. ARGV: a new token (used when no version is set), the
# version key's time to live, and the entry key around the token (prefix, suffix).
# Returns the token and the entry under it (nil when missing): one round trip.
_LOOKUP = """
local version = redis.call('GET', KEYS[1])
if not version then
  version = ARGV[1]
  redis.call('SET', KEYS[1], version, 'EX', ARGV[2])
end
return {version, redis.call('GET', ARGV[3] .. version .. ARGV[4])}
"""


@dataclass(frozen=True, slots=True)
class Lookup:
    """What a lookup found: the cached answer, or where to store one (``entry_key``)."""

    value: bytes | None
    entry_key: str


def _new_token() -> str:
    return secrets.token_hex(8)


class ReadCache:
    def __init__(self, url: str) -> None:
        self._client = redis_client(url)
        self._lookup = self._client.register_script(_LOOKUP)
        self._backoff = OutageBackoff(
            OUTAGE_BACKOFF_S,
            logger=logger,
            message="Read cache unreachable; reading from the database for %.0f s: %s",
        )
        self._unpublished: set[str] = set()
        self._unpublished_lock = threading.Lock()

    def lookup(self, scope: str, key: str) -> Lookup | None:
        """The entry for ``key`` under ``scope``'s current version, or None when the cache
        cannot be used now (read from the database, and store nothing)."""
        if not self._backoff.allows_a_try() or not self._publish_pending():
            READ_CACHE_LOOKUPS.labels("unavailable").inc()
            return None
        digest = hashlib.blake2b(key.encode(), digest_size=16).hexdigest()
        prefix = f"{KEY_PREFIX}{scope}:"
        try:
            version, value = self._lookup(
                keys=[f"{prefix}version"],
                args=[_new_token(), VERSION_TTL_S, f"{prefix}page:", f":{digest}"],
            )
        except RedisError as exc:
            self._backoff.failed(exc)
            READ_CACHE_LOOKUPS.labels("unavailable").inc()
            return None
        READ_CACHE_LOOKUPS.labels("miss" if value is None else "hit").inc()
        return Lookup(value, f"{prefix}page:{version.decode()}:{digest}")

    def store(self, lookup: Lookup, value: bytes) -> None:
        try:
            self._client.set(lookup.entry_key, value, ex=ENTRY_TTL_S)
        except RedisError as exc:
            self._backoff.failed(exc)

    def invalidate(self, scopes: Iterable[str]) -> None:
        """Give each scope a new version (after the write that changed it has committed). While
        Redis is unreachable the new versions are owed, and published before the next lookup."""
        with self._unpublished_lock:
            self._unpublished.update(scopes)
        if self._backoff.allows_a_try():
            self._publish_pending()

    def _publish_pending(self) -> bool:
        """Publish the versions still owed; False while that fails (the cache must not be
        read then: an entry under an owed scope's old version may be stale)."""
        with self._unpublished_lock:
            if not self._unpublished:
                return True
            scopes = sorted(self._unpublished)
            try:
                with self._client.pipeline(transaction=False) as pipe:
                    for scope in scopes:
                        pipe.set(f"{KEY_PREFIX}{scope}:version", _new_token(), ex=VERSION_TTL_S)
                    pipe.execute()
            except RedisError as exc:
                self._backoff.failed(exc)
                READ_CACHE_INVALIDATION_FAILURES.inc()
                return False
            self._unpublished.difference_update(scopes)
            return True


@lru_cache
def get_read_cache() -> ReadCache | None:
    """The process's read cache, or None when ``CACHE_URL`` is not set."""
    url = get_settings().CACHE_URL
    return ReadCache(url) if url else None


def mark_changed(session: Session, scopes: Iterable[str]) -> None:
    """Record that ``session``'s work changes ``scopes``: their versions are renewed once it
    commits, or at once when each statement commits on its own (an autocommit session)."""
    cache = get_read_cache()
    if cache is None:
        return
    if session.get_bind().get_execution_options().get(AUTOCOMMIT_OPTION):
        cache.invalidate(scopes)
    else:
        session.info.setdefault(_CHANGED_SCOPES, set()).update(scopes)


@event.listens_for(Session, "after_commit")
def _invalidate_committed(session: Session) -> None:
    scopes = session.info.pop(_CHANGED_SCOPES, None)
    cache = get_read_cache()
    if scopes and cache is not None:
        cache.invalidate(scopes)


@event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:  # the whole transaction, not a savepoint in it
        session.info.pop(_CHANGED_SCOPES, None)
