"""The real server (gunicorn, two Uvicorn workers) on SQLite and PostgreSQL: workers share the
load, tokens, the login budget (Redis) and the metrics; shutdown is graceful; a dead worker is
replaced; readiness follows the database. The harness is in ``conftest.py``."""

import os
import re
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx2 as httpx
import pytest
from sqlalchemy.engine import make_url

from tests.conftest import scratch_postgres
from tests.integration.conftest import (
    LOG_TIMEOUT_S,
    PASSWORD,
    Account,
    Server,
    StartServer,
    TcpProxy,
    free_port,
    log_in,
    metric,
    require_redis,
    run_server,
    sign_up,
    wait_until,
)

# Errors a client may see for a request that was in flight on a worker when it was killed.
CONNECTION_ERRORS = (
    httpx.ConnectError,
    httpx.ReadError,
    httpx.WriteError,
    httpx.RemoteProtocolError,
)


def proxied(database_url: str, port: int) -> str:
    return make_url(database_url).set(host="127.0.0.1", port=port).render_as_string(False)


def every_worker_answers(status: int, server: Server, path: str) -> list[httpx.Response] | None:
    """Requests spread over every worker, if they all answered ``status``."""
    responses = [response for _, response in server.spread(lambda: server.get(path))]
    return responses if {response.status_code for response in responses} == {status} else None


# --- one server per backend, left as it was found -----------------------------------------------


def test_both_workers_serve_requests(shared_server: Server) -> None:
    answered = shared_server.spread(lambda: shared_server.get("/health"))

    assert {pid for pid, _ in answered} == shared_server.worker_pids()
    assert {response.status_code for _, response in answered} == {200}


def test_token_issued_by_one_worker_is_accepted_by_both(
    shared_server: Server, account: Account
) -> None:
    answered = shared_server.spread(
        lambda: shared_server.get("/api/v1/users/me", headers=account.headers)
    )

    assert len({pid for pid, _ in answered}) == 2
    assert {response.status_code for _, response in answered} == {200}
    assert {response.json()["id"] for _, response in answered} == {account.id}


def test_metrics_count_the_requests_of_every_worker(shared_server: Server) -> None:
    labels = {"method": "GET", "route": "/health", "status": "200"}
    before = metric(shared_server, "http_requests_total", **labels)

    answered = shared_server.spread(lambda: shared_server.get("/health"))

    assert len({pid for pid, _ in answered}) == 2
    assert metric(shared_server, "http_requests_total", **labels) - before == len(answered)


def test_metrics_label_requests_by_route_template(shared_server: Server, account: Account) -> None:
    raw_id = "1234567"
    response = shared_server.get(f"/api/v1/items/{raw_id}", headers=account.headers)
    shared_server.wait_for_access([response])

    text = shared_server.get("/metrics").text

    assert response.status_code == 404
    labels = {"method": "GET", "route": "/api/v1/items/{item_id}", "status": "404"}
    assert metric(shared_server, "http_requests_total", **labels) >= 1
    routes = set(re.findall(r'route="([^"]*)"', text))
    assert "/api/v1/items/{item_id}" in routes
    assert not [route for route in routes if raw_id in route]


def test_access_log_has_one_line_per_request(shared_server: Server, account: Account) -> None:
    responses = [
        shared_server.get("/health"),
        shared_server.get("/api/v1/users/me", headers=account.headers),
        shared_server.get("/api/v1/items/2147483647", headers=account.headers),
    ]
    shared_server.wait_for_access(responses)
    # A later request answered by every worker: a second line for the requests above, had
    # either worker written one, would be in the file by now.
    shared_server.spread(lambda: shared_server.get("/health"))

    lines = [shared_server.access_records(r.headers["X-Request-ID"]) for r in responses]

    assert [len(found) for found in lines] == [1, 1, 1]
    assert [
        (line["method"], line["route"], line["status"], line["user_id"]) for [line] in lines
    ] == [
        ("GET", "/health", 200, None),
        ("GET", "/api/v1/users/me", 200, account.id),
        ("GET", "/api/v1/items/{item_id}", 404, account.id),
    ]
    assert all(isinstance(line["duration_ms"], int | float) for [line] in lines)
    assert all(line["duration_ms"] >= 0 for [line] in lines)


def test_login_budget_is_shared_by_the_workers_through_redis(shared_server: Server) -> None:
    require_redis()
    email = sign_up(shared_server)["email"]
    # Its own client address (the peer is a trusted proxy), so no other test spends this budget.
    octets = uuid.uuid4().bytes[:3]
    forwarded = {"X-Forwarded-For": "127." + ".".join(str(b) for b in octets)}

    def fail_login() -> httpx.Response:
        return log_in(shared_server, email, "wrong-password-1", headers=forwarded)

    failures = [fail_login() for _ in range(3)]
    limited = shared_server.spread(fail_login)

    assert [response.status_code for response in failures] == [401, 401, 401]
    # Every worker refuses the 4th attempt and later ones, though neither saw 3 failures
    # itself (or one saw none): the count is shared.
    assert len({pid for pid, _ in limited}) == 2
    assert {response.status_code for _, response in limited} == {429}
    assert all(response.headers["Retry-After"].isdigit() for _, response in limited)


# --- a server of its own per test ---------------------------------------------------------------


def test_sigterm_lets_an_in_flight_request_finish_and_master_exit_0(
    start_server: StartServer,
) -> None:
    graceful_timeout = 10
    # About a second per bcrypt hash, so the login is still running when the signal comes.
    server = start_server(BCRYPT_ROUNDS="13", GUNICORN_GRACEFUL_TIMEOUT=str(graceful_timeout))
    email = sign_up(server)["email"]

    with ThreadPoolExecutor(max_workers=1) as pool:
        login = pool.submit(log_in, server, email)
        # /metrics counts itself as in flight: 2 means the login is being served.
        wait_until(
            lambda: metric(server, "http_requests_in_flight") >= 2,
            timeout=5,
            message="the login to be in flight",
        )
        os.kill(server.pid, signal.SIGTERM)
        signalled = time.monotonic()
        response = login.result(timeout=graceful_timeout)
    wait_until(
        lambda: server.process.poll() is not None,
        timeout=graceful_timeout - (time.monotonic() - signalled),
        message="the master to exit within the graceful timeout",
    )

    assert response.status_code == 200
    assert response.json()["token_type"] == "bearer"
    assert server.process.returncode == 0


def test_killed_worker_is_replaced_while_service_keeps_answering(start_server: StartServer) -> None:
    server = start_server()
    victim = min(server.worker_pids())
    outcomes: list[tuple[float, int | Exception]] = []
    stop = threading.Event()

    def keep_asking() -> None:
        deadline = time.monotonic() + 25
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                outcome: int | Exception = server.get("/health").status_code
            except httpx.TransportError as exc:
                outcome = exc
            outcomes.append((time.monotonic(), outcome))

    asker = threading.Thread(target=keep_asking)
    asker.start()
    try:
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        workers = server.wait_for_workers(excluding=frozenset({victim}))
        replaced_at = time.monotonic()
    finally:
        stop.set()
        asker.join(timeout=15)
    answered = server.spread(lambda: server.get("/health"))

    assert len(workers) == 2
    assert victim not in workers
    during = [outcome for at, outcome in outcomes if killed_at <= at <= replaced_at]
    assert 200 in during  # the surviving worker kept answering
    failures = [outcome for _, outcome in outcomes if outcome != 200]
    # At most the one request the victim was serving (the asker sends one at a time).
    assert len(failures) <= 1
    assert all(isinstance(failure, CONNECTION_ERRORS) for failure in failures)
    assert {pid for pid, _ in answered} == workers
    assert {response.status_code for _, response in answered} == {200}


# --- PostgreSQL behind a proxy the test controls -------------------------------------------------


@pytest.fixture
def database_behind_proxy() -> Iterator[tuple[str, TcpProxy]]:
    """A scratch PostgreSQL database and a (not yet started) proxy to its server."""
    with ExitStack() as stack:
        real_url = stack.enter_context(scratch_postgres("it"))
        url = make_url(real_url)
        proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
        stack.callback(proxy.stop)
        yield real_url, proxy


def test_readiness_follows_postgresql_and_recovers_by_itself(
    database_behind_proxy: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    real_url, proxy = database_behind_proxy
    proxy.start()
    with run_server(tmp_path, proxied(real_url, proxy.port), migrate_url=real_url) as server:
        ready = [response for _, response in server.spread(lambda: server.get("/health/ready"))]

        proxy.stop()
        down = wait_until(
            lambda: every_worker_answers(503, server, "/health/ready"),
            timeout=3.5,
            message="/health/ready to answer 503 on every worker once the database is gone",
        )
        proxy.start()
        back = wait_until(
            lambda: every_worker_answers(200, server, "/health/ready"),
            timeout=10,
            message="/health/ready to answer 200 on every worker once the database is back",
        )

    assert {response.status_code for response in ready} == {200}
    assert {response.headers["Content-Type"] for response in down} == {"application/problem+json"}
    assert {response.json()["status"] for response in down} == {503}
    assert all(response.headers["Retry-After"].isdigit() for response in down)
    assert all(response.json() == {"status": "ok", "database": "ok"} for response in back)


def test_server_starts_without_postgresql_and_creates_first_admin_when_it_appears(
    database_behind_proxy: tuple[str, TcpProxy], tmp_path: Path
) -> None:
    real_url, proxy = database_behind_proxy
    email = f"admin_{uuid.uuid4().hex[:8]}@example.com"
    with run_server(
        tmp_path,
        proxied(real_url, proxy.port),  # nothing listens there yet
        migrate_url=real_url,
        FIRST_SUPERUSER_EMAIL=email,
        FIRST_SUPERUSER_PASSWORD=PASSWORD,
        RATE_LIMIT_LOGIN="1000/minute",  # the polling below fails many logins
    ) as server:
        live = [response for _, response in server.spread(lambda: server.get("/health"))]
        not_ready = [r for _, r in server.spread(lambda: server.get("/health/ready"))]

        proxy.start()
        login = wait_until(
            lambda: logged_in(server, email),
            timeout=20,
            message="the first admin to be created and able to log in",
        )
        me = server.get(
            "/api/v1/users/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"}
        )

    assert {response.status_code for response in live} == {200}
    assert {response.status_code for response in not_ready} == {503}
    assert me.json()["email"] == email
    assert me.json()["role"] == "admin"


def logged_in(server: Server, email: str) -> httpx.Response | None:
    response = log_in(server, email)
    return response if response.status_code == 200 else None


def test_metrics_bind_serves_every_workers_metrics_on_a_listener_of_its_own(
    start_server: StartServer,
) -> None:
    metrics_port = free_port()
    server = start_server(METRICS_BIND=f"127.0.0.1:{metrics_port}")
    for _ in range(6):
        assert server.get("/health").status_code == 200

    assert server.get("/metrics").status_code == 404

    def health_count() -> float | None:
        text = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text
        labels = ('method="GET"', 'route="/health"', 'status="200"')
        for line in text.splitlines():
            if line.startswith("http_requests_total{") and all(label in line for label in labels):
                return float(line.rsplit(" ", 1)[1])
        return None

    count = wait_until(health_count, timeout=LOG_TIMEOUT_S, message="/health in the metrics")
    assert count >= 6
