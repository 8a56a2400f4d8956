"""The limiter against the real Redis: shared counts, rolling windows, failing open, recovery."""

import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from limits import parse
from limits.storage import RedisStorage

from app.core import rate_limit
from app.core.rate_limit import RateLimiter
from app.core.redis_client import REDIS_TIMEOUT_S
from tests.conftest import unavailable

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def redis_limiter(url: str = REDIS_URL) -> RateLimiter:
    return RateLimiter(
        RedisStorage(
            url,
            wrap_exceptions=True,
            socket_timeout=REDIS_TIMEOUT_S,
            socket_connect_timeout=REDIS_TIMEOUT_S,
        )
    )


@pytest.fixture
def shared_redis() -> str:
    """The machine's Redis; a test fails under CI rather than skip when it is down."""
    if not redis_limiter().storage.check():
        unavailable(f"Redis at {REDIS_URL} is unreachable")
    return REDIS_URL


@pytest.fixture
def key() -> str:
    return f"test-{uuid.uuid4().hex}"


def test_two_limiters_on_one_redis_share_the_budget(shared_redis: str, key: str) -> None:
    """Two worker processes each build their own limiter; Redis makes them count together."""
    first, second = redis_limiter(shared_redis), redis_limiter(shared_redis)
    limit = parse("3/minute")

    results = [first.consume(limit, key), second.consume(limit, key), first.consume(limit, key)]
    refused = second.consume(limit, key)

    assert results == [None, None, None]
    assert refused is not None
    assert 1 <= refused <= 60


def test_retry_after_counts_down_a_rolling_window(shared_redis: str, key: str) -> None:
    limiter = redis_limiter(shared_redis)
    limit = parse("2/second")
    limiter.hit(limit, key)
    limiter.hit(limit, key)

    waiting = limiter.retry_after(limit, key)
    time.sleep(1.1)

    assert waiting == 1
    assert limiter.retry_after(limit, key) is None


def test_clear_gives_the_budget_back(shared_redis: str, key: str) -> None:
    limiter = redis_limiter(shared_redis)
    limit = parse("1/minute")
    limiter.hit(limit, key)

    limiter.clear(limit, key)

    assert limiter.retry_after(limit, key) is None


def test_an_unreachable_redis_fails_open_and_logs_once(
    caplog: pytest.LogCaptureFixture, key: str
) -> None:
    limiter = redis_limiter(f"redis://127.0.0.1:{_free_port()}/0")
    limit = parse("1/minute")

    with caplog.at_level(logging.WARNING, logger=rate_limit.__name__):
        results = [limiter.consume(limit, key) for _ in range(3)]
        waits = [limiter.retry_after(limit, key) for _ in range(3)]

    assert results == [None, None, None]
    assert waits == [None, None, None]
    assert len([r for r in caplog.records if "unreachable" in r.getMessage()]) == 1


def test_the_limiter_recovers_when_redis_comes_back(
    private_redis: "PrivateRedis", monkeypatch: pytest.MonkeyPatch, key: str
) -> None:
    monkeypatch.setattr(rate_limit, "OUTAGE_BACKOFF_S", 0.0)
    limiter = redis_limiter(private_redis.url)
    limit = parse("1/minute")
    assert limiter.consume(limit, key) is None

    private_redis.stop()
    during_outage = limiter.consume(limit, key)
    private_redis.start()
    after = [limiter.consume(limit, key) for _ in range(2)]

    assert during_outage is None  # fail open
    assert after[0] is None  # the restarted Redis (no persistence) starts a fresh count
    assert after[1] is not None  # and enforces it again: the client reconnected by itself


class PrivateRedis:
    """A redis-server of the test's own, so it can be stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        self.port = _free_port()
        self.workdir = workdir
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary is not None
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    if shutil.which("redis-server") is None:
        unavailable("redis-server is not installed")
    server = PrivateRedis(tmp_path)
    server.start()
    yield server
    server.stop()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
