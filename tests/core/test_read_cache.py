"""The read cache's versions on a real Redis: what one process (or host) renews, every other
sees at its next lookup, and an entry is never served under a version it was not read under."""

from collections.abc import Iterator

import pytest
import redis
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.core import read_cache as read_cache_module
from app.core.read_cache import KEY_PREFIX, ReadCache, mark_changed
from tests.conftest import empty_read_cache, read_cache_url

SCOPE = "items:owner:7"


@pytest.fixture
def hosts() -> Iterator[tuple[ReadCache, ReadCache]]:
    """Two caches on one Redis, as two hosts (or two workers) have them."""
    empty_read_cache(read_cache_url())
    yield ReadCache(read_cache_url()), ReadCache(read_cache_url())
    empty_read_cache(read_cache_url())


def cached(cache: ReadCache, key: str = "page 1") -> bytes | None:
    lookup = cache.lookup(SCOPE, key)
    assert lookup is not None
    return lookup.value


def store(cache: ReadCache, value: bytes, key: str = "page 1") -> None:
    lookup = cache.lookup(SCOPE, key)
    assert lookup is not None
    cache.store(lookup, value)


def test_an_entry_is_shared_until_any_host_renews_its_scope(
    hosts: tuple[ReadCache, ReadCache],
) -> None:
    a, b = hosts
    store(a, b"page")
    assert cached(b) == b"page"

    b.invalidate([SCOPE])

    assert cached(a) is None
    assert cached(b) is None


def test_other_scopes_keep_their_entries(hosts: tuple[ReadCache, ReadCache]) -> None:
    a, _ = hosts
    store(a, b"page")
    a.invalidate(["items:owner:8", "users"])
    assert cached(a) == b"page"


def test_a_lost_version_key_never_brings_old_entries_back(
    hosts: tuple[ReadCache, ReadCache],
) -> None:
    a, _ = hosts
    store(a, b"page")
    redis.Redis.from_url(read_cache_url()).delete(f"{KEY_PREFIX}{SCOPE}:version")  # evicted
    assert cached(a) is None


def test_a_version_owed_during_an_outage_is_published_before_the_next_read(
    hosts: tuple[ReadCache, ReadCache], monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = hosts
    store(a, b"page")

    def unreachable(*_args: object, **_kwargs: object) -> None:
        raise RedisConnectionError("down")

    with monkeypatch.context() as outage:
        outage.setattr(redis.client.Pipeline, "execute", unreachable)
        a.invalidate([SCOPE])  # the write has committed; its new version is not published
    assert a.lookup(SCOPE, "page 1") is None  # not read while the outage lasts

    a._backoff.reset()  # Redis is back

    assert cached(a) is None
    assert cached(b) is None


def test_a_rolled_back_write_renews_nothing_and_a_committed_one_does(
    session: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    renewed: list[set[str]] = []

    class Recorder:
        def invalidate(self, scopes: set[str]) -> None:
            renewed.append(set(scopes))

    monkeypatch.setattr(read_cache_module, "get_read_cache", Recorder)
    session.execute(text("SELECT 1"))  # a transaction runs, as any write's does
    mark_changed(session, [SCOPE])
    session.rollback()
    session.commit()
    assert renewed == []

    mark_changed(session, [SCOPE])
    session.begin_nested().rollback()  # a savepoint given up: the write before it stands
    session.commit()
    assert renewed == [{SCOPE}]
