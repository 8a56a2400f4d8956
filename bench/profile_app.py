"""Where one request's CPU goes, in-process: ``python -m bench.profile_app [scenario] [n]``.

Runs the real app (middleware, dependencies, ORM, serialization) on a scratch SQLite database
or on ``DATABASE_URL``, calling the ASGI app directly (no server, no sockets) under cProfile.
Thread-pool calls (AnyIO's and the app's database threads) run inline on the profiled thread,
so their work is attributed to functions; what a thread hop itself costs is measured by the
load bench, not here.

Scenarios: item_get, item_list, item_create, health. Traces are on when the environment
turns them on (``OTEL_EXPORTER_OTLP_ENDPOINT``, app.core.tracing).

``--instructions`` profiles nothing itself: it switches callgrind's instrumentation on around
the measured requests, for ``python -m bench.instructions`` (which runs this under valgrind).
"""

import asyncio
import cProfile
import io
import logging
import os
import pstats
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any

_SCRATCH = tempfile.mkdtemp(prefix="apiprofile-")
os.environ.setdefault("DATABASE_URL", f"sqlite:///{_SCRATCH}/profile.db")
os.environ.update(
    SECRET_KEY="profile-secret-key-0123456789-0123456789-abcdef",
    ENVIRONMENT="test",
    BCRYPT_ROUNDS="4",
    LOG_LEVEL="info",
    LOG_FORMAT="json",
)

import anyio.to_thread  # noqa: E402
from alembic import command  # noqa: E402
from alembic.config import Config  # noqa: E402

from app.core import threads  # noqa: E402
from app.core.db import SessionLocal, unit_of_work  # noqa: E402
from app.core.security import create_access_token  # noqa: E402
from app.services import demo  # noqa: E402

SCENARIOS: dict[str, tuple[str, Callable[[int], str], bytes]] = {
    "health": ("GET", lambda _n: "/health", b""),
    "item_get": ("GET", lambda n: f"/api/v1/items/{n % 100 + 1}", b""),
    "item_list": ("GET", lambda _n: "/api/v1/items", b""),
    "item_create": ("POST", lambda _n: "/api/v1/items", b'{"title": "Profiled item"}'),
}


async def _inline(func: Callable[..., Any], *args: Any, **_kwargs: Any) -> Any:
    return func(*args)


class InlineExecutor(Executor):
    """Runs what the app sends to its database threads (app.core.threads) right away, on the
    profiled thread."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> "Future[Any]":
        future: Future[Any] = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except BaseException as exc:
            future.set_exception(exc)
        return future


def prepare() -> str:
    command.upgrade(Config("alembic.ini"), "head")
    with SessionLocal() as session, unit_of_work(session):
        owner = demo.seed_user(
            session,
            user=demo.DemoUser(email="profile@example.com", username="profile"),
            password="demo-password-1",
            hashed_password=demo.hash_demo_password("demo-password-1"),
        )
        demo.seed_items(session, owner=owner, count=100)
        return create_access_token(user_id=owner.id, token_key=owner.token_key).token


async def call(app: Any, method: str, path: str, body: bytes, token: str) -> int:
    headers = [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")]
    if body:
        headers += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    status = 0
    sent = False

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def run(scenario: str, requests: int, *, instructions: bool = False) -> None:
    from app.main import app

    # Formatting and writing the access log is part of the cost; its output is noise here.
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(open(os.devnull, "w"))  # noqa: SIM115
    token = prepare()
    anyio.to_thread.run_sync = _inline  # type: ignore[assignment]
    threads._executor = InlineExecutor()  # type: ignore[assignment]
    async with app.router.lifespan_context(app):
        await _measure(app, scenario, requests, token=token, instructions=instructions)


async def _measure(
    app: Any, scenario: str, requests: int, *, token: str, instructions: bool
) -> None:
    method, path_of, body = SCENARIOS[scenario]
    for n in range(50):  # warm caches (statement cache, pydantic, imports)
        assert await call(app, method, path_of(n), body, token) < 300
    if instructions:
        # With tracing on, the spans of exactly the measured requests are exported in the
        # measured window: none of the warm-up's, none left queued.
        _flush_spans()
        _callgrind("on")
        for n in range(requests):
            await call(app, method, path_of(n), body, token)
        _flush_spans()
        _callgrind("off")
        return
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    for n in range(requests):
        await call(app, method, path_of(n), body, token)
    profiler.disable()
    elapsed = time.perf_counter() - started
    sys.stdout.write(
        f"{scenario}: {requests} requests, {elapsed / requests * 1e6:.0f} us each under cProfile\n"
    )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
    sys.stdout.write(out.getvalue())


def _flush_spans() -> None:
    from opentelemetry import trace

    flush = getattr(trace.get_tracer_provider(), "force_flush", None)  # the SDK's provider
    if flush is not None:
        flush()


def _callgrind(switch: str) -> None:
    subprocess.run(["callgrind_control", "-i", switch, str(os.getpid())], check=True)


def main() -> None:
    args = [arg for arg in sys.argv[1:] if arg != "--instructions"]
    scenario = args[0] if args else "item_get"
    requests = int(args[1]) if len(args) > 1 else 2000
    if scenario not in SCENARIOS:
        raise SystemExit(f"unknown scenario {scenario!r}; one of {', '.join(SCENARIOS)}")
    asyncio.run(run(scenario, requests, instructions="--instructions" in sys.argv))


if __name__ == "__main__":
    main()
