"""Prometheus metrics, aggregated over every Gunicorn worker.

Gunicorn's config sets ``PROMETHEUS_MULTIPROC_DIR`` before the workers start, so each worker
writes its samples to files there and ``/metrics`` (served by any worker) sums them all. Without
it (a single Uvicorn, tests) the process's own registry is served.
"""

import os
from functools import lru_cache
from pathlib import Path

# prometheus_client refuses a multiprocess directory that does not exist; Gunicorn creates it,
# but other entry points (alembic in the container's entrypoint, the CLI) import this too.
if _multiprocess_dir := os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    Path(_multiprocess_dir).mkdir(parents=True, exist_ok=True)

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

UNMATCHED_ROUTE = "<unmatched>"  # unknown paths share one label: no label explosion

REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests by method, route template and status",
    ["method", "route", "status"],
)
REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from receiving a request to sending its response, by route template",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
IN_FLIGHT = Gauge(
    "http_requests_in_flight",
    "Requests being served right now",
    multiprocess_mode="livesum",
)
DB_POOL_CHECKED_OUT = Gauge(
    "db_pool_checked_out_connections",
    "Database connections currently checked out of the pools",
    multiprocess_mode="livesum",
)
READ_CACHE_LOOKUPS = Counter(
    "read_cache_lookups_total",
    "Read cache lookups: hit, miss, or unavailable (Redis unreachable; read from the database)",
    ["result"],
)
READ_CACHE_INVALIDATION_FAILURES = Counter(
    "read_cache_invalidation_failures_total",
    "New versions that could not be published after a write (retried before the next lookup)",
)


@lru_cache(maxsize=4096)  # bounded label sets: route templates (not paths) x methods x statuses
def _request_series(method: str, route: str, status: int) -> tuple[Counter, Histogram]:
    labels = (method, route, str(status))
    return REQUESTS.labels(*labels), REQUEST_DURATION.labels(*labels)


def observe_request(method: str, route: str, status: int, seconds: float) -> None:
    requests, duration = _request_series(method, route, status)
    requests.inc()
    duration.observe(seconds)


def render_latest() -> bytes:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
