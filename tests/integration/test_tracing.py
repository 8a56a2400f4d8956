"""Traces from the real server (gunicorn, two Uvicorn workers) to a real OTLP/HTTP receiver in
the test process: each worker exports its own spans, a request continues the trace its
``traceparent`` names, its SQL statements and Redis commands are spans below it, and the
access line carries the trace id."""

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from tests.conftest import unavailable
from tests.integration.conftest import (
    Server,
    StartServer,
    log_in,
    run_server,
    scratch_database,
    sign_up,
)
from tests.otlp import OtlpReceiver, ReceivedSpan, descends_from, otlp_receiver, traceparent

# This module's own Redis database: the other tests use 14, other checkouts other numbers.
REDIS_URL = "redis://127.0.0.1:6379/11"


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with otlp_receiver() as receiver:
        yield receiver


def tracing_env(receiver: OtlpReceiver, *, delay_ms: int = 100) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.endpoint,
        "OTEL_BSP_SCHEDULE_DELAY": str(delay_ms),
        "OTEL_SERVICE_NAME": "it-traces",
    }


def new_trace() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def request_spans(
    receiver: OtlpReceiver, trace_id: str, *, below: str
) -> tuple[ReceivedSpan, list[ReceivedSpan]] | None:
    """The trace's server span and the statements (or commands) below it of ``db.system``
    ``below`` (``sqlite``, ``postgresql``, ``redis``, or some joined by ``|``), once both have
    arrived. Pool checkouts are spans too ("connect"), with no statement."""
    spans = receiver.of_trace(trace_id)
    server = next((span for span in spans if span.kind == "SERVER"), None)
    if server is None:
        return None
    children = [
        span
        for span in spans
        if span.kind == "CLIENT"
        and span.attributes.get("db.system") in below.split("|")
        and span.attributes.get("db.statement")
        and descends_from(span, server, spans)
    ]
    return (server, children) if children else None


def test_each_worker_exports_the_request_and_its_sql_in_the_incoming_trace(
    start_server: StartServer, receiver: OtlpReceiver
) -> None:
    server = start_server(**tracing_env(receiver))
    user = sign_up(server)
    token = log_in(server, user["email"]).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    item = server.post("/api/v1/items", json={"title": "traced"}, headers=headers).json()

    def send() -> object:
        trace_id, parent_id = new_trace()
        return server.get(
            f"/api/v1/items/{item['id']}",
            headers={**headers, "traceparent": traceparent(trace_id, parent_id)},
        )

    answered = server.spread(send)  # type: ignore[arg-type]

    access = server.wait_for_access([response for _, response in answered])
    for pid, response in answered:
        assert response.status_code == 200
        _, trace_id, parent_id, _ = response.request.headers["traceparent"].split("-")
        found = receiver.wait_for(
            lambda trace_id=trace_id: request_spans(receiver, trace_id, below="sqlite|postgresql"),
            message=f"the server span and SQL spans of trace {trace_id}",
        )
        span, sql = found
        assert span.name == "GET /api/v1/items/{item_id}"
        assert span.parent_span_id == parent_id
        assert span.attributes["http.response.status_code"] == 200
        assert span.resource["service.name"] == "it-traces"
        # Exported by the worker that answered: each has its own processor and thread.
        assert {s.resource["process.pid"] for s in (span, *sql)} == {pid}
        (line,) = access[response.headers["X-Request-ID"]]
        assert line["trace_id"] == trace_id


def test_redis_commands_are_spans_below_the_request(tmp_path: Path, receiver: OtlpReceiver) -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.flushdb()
    except redis.RedisError as exc:
        unavailable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    with (
        scratch_database("sqlite", tmp_path) as database_url,
        run_server(tmp_path, database_url, REDIS_URL=REDIS_URL, **tracing_env(receiver)) as server,
    ):
        user = sign_up(server)
        trace_id, parent_id = new_trace()

        response = log_in(
            server, user["email"], headers={"traceparent": traceparent(trace_id, parent_id)}
        )

        assert response.status_code == 200
        span, commands = receiver.wait_for(
            lambda: request_spans(receiver, trace_id, below="redis"),
            message="the login's span and its Redis commands",
        )
    client.flushdb()
    client.close()
    assert span.name == "POST /api/v1/auth/token"
    assert span.parent_span_id == parent_id
    # Budgets are keyed by e-mail address: the instrumentation records "EVALSHA ? ? ...".
    statements = [str(s.attributes["db.statement"]) for s in commands]
    assert not [statement for statement in statements if user["email"] in statement]


def test_spans_still_queued_are_exported_when_the_server_stops(
    tmp_path: Path, receiver: OtlpReceiver
) -> None:
    with scratch_database("sqlite", tmp_path) as database_url:
        server: Server
        with run_server(tmp_path, database_url, **tracing_env(receiver, delay_ms=600_000)) as (
            server
        ):
            trace_id, parent_id = new_trace()
            response = server.get(
                "/health/ready", headers={"traceparent": traceparent(trace_id, parent_id)}
            )
            assert response.status_code == 200
            assert receiver.of_trace(trace_id) == []  # held by the batch processor

        # run_server stopped it (SIGTERM: each worker's lifespan ends and flushes).
        span, sql = receiver.wait_for(
            lambda: request_spans(receiver, trace_id, below="sqlite"),
            message="spans exported at shutdown",
            timeout=1.0,
        )
    assert span.name == "GET /health/ready"
    assert sql
