"""Metrics, the access log, and requests queueing for database connections."""

import asyncio
import logging
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from app.api.unit_of_work import get_session
from app.core.db import create_db_engine, unit_of_work
from app.main import app
from app.models import User
from app.services import items as item_service
from tests.factories import auth_headers, make_user


def sample(metrics: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{key}="{value}"' for key, value in sorted(labels.items()))
    for line in metrics.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


def test_requests_are_counted_by_route_template_not_raw_path(
    client: TestClient, user_headers: dict[str, str]
) -> None:
    before = client.get("/metrics").text

    client.get("/api/v1/items/424242", headers=user_headers)
    client.get("/api/v1/items/434343", headers=user_headers)
    after = client.get("/metrics").text

    labels = {"method": "GET", "route": "/api/v1/items/{item_id}", "status": "404"}
    assert (
        sample(after, "http_requests_total", **labels)
        - sample(before, "http_requests_total", **labels)
        == 2
    )
    assert "424242" not in after
    assert sample(after, "http_request_duration_seconds_count", **labels) >= 2


def test_unknown_paths_share_one_label(client: TestClient) -> None:
    client.get("/no/such/path/1")
    client.get("/no/such/path/2")

    metrics = client.get("/metrics").text

    assert (
        sample(metrics, "http_requests_total", method="GET", route="<unmatched>", status="404") >= 2
    )
    assert "/no/such/path" not in metrics


def test_probes_are_counted_too(client: TestClient) -> None:
    before = client.get("/metrics").text

    client.get("/health")
    after = client.get("/metrics").text

    labels = {"method": "GET", "route": "/health", "status": "200"}
    assert (
        sample(after, "http_requests_total", **labels)
        == sample(before, "http_requests_total", **labels) + 1
    )


def test_metrics_expose_in_flight_and_pool_gauges(client: TestClient) -> None:
    response = client.get("/metrics")

    assert response.headers["content-type"].startswith("text/plain")
    assert "http_requests_in_flight" in response.text
    assert "db_pool_checked_out_connections" in response.text


def test_one_access_line_per_request_with_route_status_and_user(
    client: TestClient, user: User, user_headers: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        response = client.get(
            "/api/v1/items/999", headers={**user_headers, "X-Request-ID": "trace-me-1"}
        )

    lines = [r for r in caplog.records if r.name == "app.access"]
    assert response.status_code == 404
    assert len(lines) == 1
    line = lines[0]
    assert line.request_id == "trace-me-1"  # type: ignore[attr-defined]
    assert line.method == "GET"  # type: ignore[attr-defined]
    assert line.route == "/api/v1/items/{item_id}"  # type: ignore[attr-defined]
    assert line.status == 404  # type: ignore[attr-defined]
    assert line.user_id == user.id  # type: ignore[attr-defined]
    assert line.duration_ms >= 0  # type: ignore[attr-defined]
    assert line.client == "testclient"  # type: ignore[attr-defined]


def test_anonymous_requests_log_no_user(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="app.access"):
        client.get("/health")

    (line,) = [r for r in caplog.records if r.name == "app.access"]
    assert line.user_id is None  # type: ignore[attr-defined]


@pytest.fixture
def tiny_pool(engine: Engine) -> Iterator[Engine]:
    """Two connections and a one-second pool time-out on the test database."""
    small = create_db_engine(
        engine.url.render_as_string(hide_password=False),
        pool_size=2,
        max_overflow=0,
        pool_timeout=1,
    )
    yield small
    small.dispose()


def post_in_parallel(
    client: TestClient,
    sessions: sessionmaker[Session],
    headers: dict[str, str],
    admission: int,
    requests: int = 16,
) -> list[int]:
    def session_override() -> Iterator[Session]:
        with sessions() as session, unit_of_work(session):
            yield session

    original_slots = app.state.database_slots
    app.dependency_overrides[get_session] = session_override
    app.state.database_slots = asyncio.Semaphore(admission)
    try:
        with ThreadPoolExecutor(max_workers=requests) as pool:
            return list(
                pool.map(
                    lambda n: (
                        client.post(
                            "/api/v1/items", json={"title": f"queued {n}"}, headers=headers
                        ).status_code
                    ),
                    range(requests),
                )
            )
    finally:
        app.dependency_overrides.clear()
        app.state.database_slots = original_slots


@pytest.fixture
def slow_writes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each item create holds its connection for a quarter second."""
    create = item_service.create_item

    def slow_create(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.25)
        return create(*args, **kwargs)

    monkeypatch.setattr(item_service, "create_item", slow_create)


def test_requests_queue_for_connections_instead_of_timing_out(
    app_client: TestClient,
    committing_sessions: sessionmaker[Session],
    tiny_pool: Engine,
    slow_writes: None,
) -> None:
    with committing_sessions() as session:
        user = make_user(session)
        session.commit()
        headers = auth_headers(user)
    tiny_sessions = sessionmaker(tiny_pool, expire_on_commit=False)

    admitted = post_in_parallel(app_client, tiny_sessions, headers, admission=2)
    unbounded = post_in_parallel(app_client, tiny_sessions, headers, admission=100)

    assert admitted == [201] * 16  # admission = pool size: everyone waits their turn
    assert 503 in unbounded  # without it the pool's one-second time-out fires
