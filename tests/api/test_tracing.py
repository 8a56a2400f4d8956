"""Traces in-process: an app with tracing on exports to a real OTLP/HTTP receiver in the test
process (tests/integration/test_tracing.py does the same against the real Gunicorn)."""

import json
import logging
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from opentelemetry import trace
from opentelemetry.util._once import Once
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from app.api.unit_of_work import get_session
from app.core.db import unit_of_work
from app.core.tracing import start_tracing
from app.main import create_app
from tests.factories import auth_headers, make_item, make_user
from tests.otlp import OtlpReceiver, ReceivedSpan, descends_from, otlp_receiver, traceparent

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Traced:
    client: TestClient
    receiver: OtlpReceiver


@pytest.fixture(scope="module")
def traced_app(engine: Engine) -> Iterator[Traced]:
    """An app with tracing on, the test database's engine instrumented, spans exported to a
    receiver every 50 ms."""
    with otlp_receiver() as receiver, pytest.MonkeyPatch.context() as env:
        env.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint)
        env.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        env.delenv("OTEL_SDK_DISABLED", raising=False)
        tracing = start_tracing([engine])
        assert tracing is not None
        try:
            app = create_app()
            with TestClient(app) as client:  # the lifespan finds tracing running: leaves it
                yield Traced(client, receiver)
        finally:
            tracing.stop()
            # A process sets its tracer provider once; later tests start from none.
            trace._TRACER_PROVIDER_SET_ONCE = Once()
            trace._TRACER_PROVIDER = None


@pytest.fixture
def traced(traced_app: Traced, session: Session) -> Iterator[Traced]:
    def session_override() -> Iterator[Session]:
        session.commit()
        session.expire_all()
        with unit_of_work(session):
            yield session

    app = traced_app.client.app
    app.dependency_overrides[get_session] = session_override  # type: ignore[attr-defined]
    yield traced_app
    app.dependency_overrides.clear()  # type: ignore[attr-defined]


def new_trace() -> tuple[str, str]:
    return secrets.token_hex(16), secrets.token_hex(8)


def server_span(spans: list[ReceivedSpan]) -> ReceivedSpan | None:
    return next((span for span in spans if span.kind == "SERVER"), None)


def test_request_span_is_named_by_route_and_continues_the_incoming_trace(
    traced: Traced, session: Session
) -> None:
    user = make_user(session)
    item = make_item(session, owner=user)
    trace_id, parent_id = new_trace()

    response = traced.client.get(
        f"/api/v1/items/{item.id}",
        headers={**auth_headers(user), "traceparent": traceparent(trace_id, parent_id)},
    )

    assert response.status_code == 200
    span = traced.receiver.wait_for(
        lambda: server_span(traced.receiver.of_trace(trace_id)), message="the server span"
    )
    assert span.name == "GET /api/v1/items/{item_id}"
    assert span.parent_span_id == parent_id
    assert span.attributes["http.route"] == "/api/v1/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.resource["service.name"] == "accounts-items-api"


def test_every_sql_statement_is_a_span_below_the_request_span(
    traced: Traced, session: Session
) -> None:
    user = make_user(session)
    trace_id, parent_id = new_trace()

    response = traced.client.post(
        "/api/v1/items",
        json={"title": "traced"},
        headers={**auth_headers(user), "traceparent": traceparent(trace_id, parent_id)},
    )

    assert response.status_code == 201

    def sql_below_request() -> list[ReceivedSpan]:
        spans = traced.receiver.of_trace(trace_id)
        request = server_span(spans)
        return [
            span
            for span in spans
            if request and span.kind == "CLIENT" and descends_from(span, request, spans)
            # Not Redis's: the read cache (on when the suite runs with TEST_CACHE_URL) has some.
            if span.attributes.get("db.system") in {"sqlite", "postgresql"}
            if "db.statement" in span.attributes or "db.query.text" in span.attributes
        ]

    # The statements run in the app's thread pool (app.core.threads): the span context has to
    # cross into it for these to be children, and without them tracing is half blind.
    sql = traced.receiver.wait_for(sql_below_request, message="SQL spans below the request")
    statements = " ".join(str(span.attributes.get("db.statement")) for span in sql)
    assert "INSERT INTO items" in statements


def test_unmatched_path_span_is_named_by_method_alone(traced: Traced) -> None:
    trace_id, parent_id = new_trace()

    response = traced.client.get(
        "/no/such/path/42", headers={"traceparent": traceparent(trace_id, parent_id)}
    )

    assert response.status_code == 404
    span = traced.receiver.wait_for(
        lambda: server_span(traced.receiver.of_trace(trace_id)), message="the server span"
    )
    assert span.name == "GET"
    assert span.attributes["http.response.status_code"] == 404


def test_head_request_span_is_named_head(traced: Traced) -> None:
    trace_id, parent_id = new_trace()

    traced.client.head("/health", headers={"traceparent": traceparent(trace_id, parent_id)})

    span = traced.receiver.wait_for(
        lambda: server_span(traced.receiver.of_trace(trace_id)), message="the server span"
    )
    assert span.name == "HEAD /health"


def test_access_line_carries_the_trace_id(traced: Traced, caplog: pytest.LogCaptureFixture) -> None:
    trace_id, parent_id = new_trace()
    caplog.set_level(logging.INFO, logger="app.access")

    traced.client.get("/health", headers={"traceparent": traceparent(trace_id, parent_id)})

    (line,) = [r for r in caplog.records if r.name == "app.access"]
    assert line.trace_id == trace_id  # type: ignore[attr-defined]


def test_a_request_without_traceparent_starts_a_trace_of_its_own(
    traced: Traced, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="app.access")

    traced.client.get("/health")

    (line,) = [r for r in caplog.records if r.name == "app.access"]
    trace_id = line.trace_id  # type: ignore[attr-defined]
    span = traced.receiver.wait_for(
        lambda: server_span(traced.receiver.of_trace(trace_id)), message="the server span"
    )
    assert span.parent_span_id == ""


def test_a_trace_the_caller_did_not_sample_is_logged_but_not_exported(
    traced: Traced, caplog: pytest.LogCaptureFixture
) -> None:
    unsampled_id, parent_id = new_trace()
    sampled_id, sampled_parent = new_trace()
    caplog.set_level(logging.INFO, logger="app.access")

    traced.client.get(
        "/health", headers={"traceparent": traceparent(unsampled_id, parent_id, sampled=False)}
    )
    traced.client.get("/health", headers={"traceparent": traceparent(sampled_id, sampled_parent)})

    # Spans are exported in order: once the later request's span is in, the earlier's would be.
    traced.receiver.wait_for(
        lambda: traced.receiver.of_trace(sampled_id), message="the sampled request's span"
    )
    assert traced.receiver.of_trace(unsampled_id) == []
    lines = [r for r in caplog.records if r.name == "app.access"]
    assert [line.trace_id for line in lines] == [unsampled_id, sampled_id]  # type: ignore[attr-defined]


_OFF_PROBE = """
import json, sys
from fastapi.testclient import TestClient
from opentelemetry import trace
from app.main import app

with TestClient(app) as client:
    status = client.get("/health", headers={"traceparent": sys.argv[1]}).status_code
print(json.dumps({
    "status": status,
    "provider": type(trace.get_tracer_provider()).__name__,
    "loaded": sorted(
        name for name in sys.modules
        # Not opentelemetry.sdk itself: redis-py imports its metrics part when installed.
        if name.startswith(("opentelemetry.sdk.trace", "opentelemetry.instrumentation",
                            "opentelemetry.exporter"))
    ),
}))
"""


def test_without_an_endpoint_nothing_of_tracing_is_loaded(tmp_path: Path) -> None:
    with otlp_receiver() as receiver:
        env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
        env.update(
            DATABASE_URL=f"sqlite:///{tmp_path}/app.db",
            # Every other standard variable set: the endpoint alone turns tracing on.
            OTEL_SERVICE_NAME="off",
            OTEL_BSP_SCHEDULE_DELAY="10",
            OTEL_TRACES_SAMPLER="always_on",
        )
        trace_id, parent_id = new_trace()

        result = subprocess.run(
            [sys.executable, "-c", _OFF_PROBE, traceparent(trace_id, parent_id)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

        assert result.returncode == 0, result.stderr
        probe = json.loads(result.stdout.splitlines()[-1])
        assert probe == {"status": 200, "provider": "ProxyTracerProvider", "loaded": []}
        assert receiver.requests == 0
