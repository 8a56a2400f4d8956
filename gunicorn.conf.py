"""Gunicorn settings, all from the environment (README: Operations).

Workers are Uvicorn workers from the maintained ``uvicorn-worker`` package (``uvicorn.workers``
is deprecated). Each worker is its own process with its own database pool: nothing opened
before the fork is shared, because the app is imported in each worker (no ``preload_app``).
"""

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

bind = os.environ.get("BIND", "127.0.0.1:8000")
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) * 2)
worker_class = "uvicorn_worker.UvicornWorker"

# A worker that stops answering for this long is killed and replaced.
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# On SIGTERM, in-flight requests get this long to finish before workers are killed.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(os.environ.get("GUNICORN_KEEPALIVE", "5"))
# Off by default: a recycled worker drops requests clients have just sent on its keep-alive
# connections, and a 10-minute soak (bench/soak.py, bench/README.md) showed no memory growth to
# bound. GUNICORN_MAX_REQUESTS turns recycling on (jitter keeps workers from restarting together).
max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "1000"))

# X-Forwarded-* (client address, scheme) are believed only from these proxies.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")

# Gunicorn 27's control socket defaults to one path per user, so two servers on a host would
# take over each other's; it is off unless GUNICORN_CONTROL_SOCKET names a path.
control_socket = os.environ.get("GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

accesslog = None  # the app writes one structured access line per request
errorlog = "-"
loglevel = os.environ.get("LOG_LEVEL", "info")

# Metrics from every worker are summed through files in one directory (prometheus-client's
# multiprocess mode); the variable must be set before the workers import prometheus_client.
_own_metrics_dir = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="api-metrics-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(_server: Any) -> None:
    # Samples of a previous run would be summed into this one's.
    path = Path(_metrics_dir)
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True, exist_ok=True)


def post_fork(_server: Any, _worker: Any) -> None:
    # Only matters with preload_app: never reuse a connection opened before the fork.
    import sys

    db = sys.modules.get("app.core.db")
    if db is not None:
        db.engine.dispose(close=False)


def child_exit(_server: Any, worker: Any) -> None:
    # A dead worker's live gauges (in-flight, pool) must stop counting.
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def when_ready(server: Any) -> None:
    # METRICS_BIND: /metrics on a listen address of its own, served by the master from the
    # workers' files (the app then answers 404 for /metrics on the main listener).
    metrics_bind = os.environ.get("METRICS_BIND")
    if not metrics_bind:
        return
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    host, _, port = metrics_bind.rpartition(":")
    start_http_server(int(port), addr=host or "0.0.0.0", registry=registry)
    server.log.info("Metrics on http://%s/metrics", metrics_bind)


def on_exit(_server: Any) -> None:
    if _own_metrics_dir:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
