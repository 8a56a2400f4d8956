"""Two app hosts behind PgBouncer: each a network namespace of its own running the real server
(gunicorn, two workers) on its own address, both using one PgBouncer (transaction pooling, a
pool of POOL server connections) in front of the shared PostgreSQL, and one Redis.

Topology, built per module with unique names and torn down whatever happens::

    root namespace: bridge (gateway address) ── PgBouncer ── PostgreSQL on 127.0.0.1
                                              ── redis-server (the test's own)
                                              ── the test's clients
        ├── veth ── namespace A: gunicorn on host A's address
        └── veth ── namespace B: gunicorn on host B's address

PostgreSQL and the machine's Redis listen on 127.0.0.1, which a namespace cannot reach: PgBouncer
listens on the bridge and connects to 127.0.0.1, and Redis is a redis-server of the test's own
bound to the bridge (a forwarder in the test process would put every Redis round trip through
Python threads that compete with the load's clients). Migrations run directly against
PostgreSQL, as a deploy's migration step does: DDL and its locks are an administrator's session,
not request traffic to queue in the application's small pool.

Needs root (or CAP_NET_ADMIN) for ``ip netns``, plus pgbouncer and redis-server (``make test``
installs PgBouncer): without them the module skips, saying why, and fails under CI.
"""

import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import psycopg2
import pytest
from sqlalchemy.engine import URL, make_url

from tests.conftest import scratch_postgres, unavailable
from tests.integration.conftest import (
    REQUEST_TIMEOUT_S,
    Server,
    free_port,
    log_in,
    metric,
    migrate,
    run_server,
    sign_up,
    wait_until,
)

# PgBouncer's default_pool_size and max_db_connections: every PostgreSQL connection there is.
POOL = 4
# Per worker: 2 hosts x 2 workers x (DB_POOL_SIZE + 2 login-budget connections) = 128 client
# connections the hosts may open, more than PostgreSQL's default max_connections (100).
DB_POOL_SIZE = 30
BUDGET = 5  # RATE_LIMIT_LOGIN=5/minute
LOGIN_ATTEMPTS = 16
LOAD_CLIENTS = 16
LOAD_SECONDS = 5.0
KILL_AFTER_S = 2.0
SAMPLE_EVERY_S = 0.02
WRONG = "wrong-password-1"


def report(line: str) -> None:
    """A result line for the run's record (shown with ``pytest -rA``); docs/scaling.md quotes
    them."""
    sys.stdout.write(f"multi-host: {line}\n")


# --- the network --------------------------------------------------------------------------


@dataclass(frozen=True)
class Namespace:
    name: str
    address: str


@dataclass(frozen=True)
class Network:
    gateway: str  # the root namespace's address on the bridge
    namespaces: tuple[Namespace, Namespace]


def _ip(*args: str) -> None:
    result = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=10, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {result.stderr.strip()}")


def _free_subnet() -> str:
    """A /24 under 10.0.0.0/8 that no route of this machine uses ("10.x.y.")."""
    routes = subprocess.run(
        ["ip", "-4", "route", "show", "table", "all"],
        capture_output=True,
        text=True,
        timeout=10,
        check=True,
    ).stdout
    while True:
        prefix = f"10.{random.randint(64, 250)}.{random.randint(0, 255)}."
        if prefix not in routes:
            return prefix


@contextmanager
def network() -> Iterator[Network]:
    """A bridge in the root namespace and two namespaces plugged into it by veth pairs;
    everything created is deleted on the way out, in reverse order, even after a failure."""
    if shutil.which("ip") is None:
        unavailable("iproute2's ip is not installed")
    tag = uuid.uuid4().hex[:6]
    probe = f"mh-{tag}-probe"
    try:
        _ip("netns", "add", probe)
    except RuntimeError as exc:
        unavailable(f"cannot create network namespaces (needs root or CAP_NET_ADMIN): {exc}")
    _ip("netns", "delete", probe)

    subnet = _free_subnet()
    gateway = f"{subnet}1"
    bridge = f"mhbr{tag}"
    with ExitStack() as stack:
        _ip("link", "add", bridge, "type", "bridge")
        stack.callback(_ip, "link", "delete", bridge)
        _ip("addr", "add", f"{gateway}/24", "dev", bridge)
        _ip("link", "set", bridge, "up")
        namespaces = []
        for index, letter in enumerate("ab"):
            name = f"mh-{tag}-{letter}"
            address = f"{subnet}{index + 2}"
            veth = f"mh{tag}{letter}"
            _ip("netns", "add", name)
            # Deleting the namespace deletes the veth end inside it, and with it the pair.
            stack.callback(_ip, "netns", "delete", name)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", name)
            _ip("link", "set", veth, "master", bridge)
            _ip("link", "set", veth, "up")
            _ip("-n", name, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", name, "link", "set", "eth0", "up")
            _ip("-n", name, "link", "set", "lo", "up")
            namespaces.append(Namespace(name, address))
        yield Network(gateway, (namespaces[0], namespaces[1]))


# --- PgBouncer and Redis in the root namespace ------------------------------------------------


def _executable(name: str) -> str:
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
    if found is None:
        unavailable(f"{name} is not installed (make test installs PgBouncer)")
    return found


def _wait_for_port(process: subprocess.Popen[bytes], host: str, port: int, log_path: Path) -> None:
    def listening() -> bool:
        if process.poll() is not None:
            pytest.fail(f"{process.args} exited with {process.returncode}:\n{log_path.read_text()}")
        with socket.socket() as probe:
            probe.settimeout(0.2)
            return probe.connect_ex((host, port)) == 0

    wait_until(listening, timeout=10, message=f"{process.args} to listen on {host}:{port}")


@contextmanager
def daemon(command: list[str], log_path: Path, host: str, port: int) -> Iterator[None]:
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    try:
        _wait_for_port(process, host, port, log_path)
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


@contextmanager
def pgbouncer(directory: Path, listen: str, database: URL) -> Iterator[URL]:
    """PgBouncer on ``listen`` in transaction pooling, with one pool of POOL server connections
    to ``database``; yields the URL the hosts use."""
    executable = _executable("pgbouncer")
    port = free_port(listen)
    user = database.username or "postgres"
    target = f"host={database.host or '127.0.0.1'} port={database.port or 5432}"
    target += f" dbname={database.database} user={user}"
    if database.password:
        target += f" password={database.password}"
    auth_file = directory / "users.txt"
    auth_file.write_text(f'"{user}" ""\n')
    ini = directory / "pgbouncer.ini"
    # auth_type=trust: the clients are the test's own hosts on a private bridge. In production
    # use scram-sha-256 (docs/scaling.md).
    ini.write_text(
        f"""[databases]
{database.database} = {target}

[pgbouncer]
listen_addr = {listen}
listen_port = {port}
unix_socket_dir =
auth_type = trust
auth_file = {auth_file}
admin_users = {user}
pool_mode = transaction
default_pool_size = {POOL}
max_db_connections = {POOL}
reserve_pool_size = 0
max_client_conn = 1000
"""
    )
    # PgBouncer refuses to run as root; it reads its files first, then drops to this user.
    run_as = ["-u", "nobody"] if os.geteuid() == 0 else []
    with daemon([executable, *run_as, str(ini)], directory / "pgbouncer.log", listen, port):
        yield database.set(host=listen, port=port, password=None)


@contextmanager
def redis_server(directory: Path, listen: str) -> Iterator[str]:
    executable = _executable("redis-server")
    port = free_port(listen)
    command = [
        executable, "--bind", listen, "--port", str(port), "--save", "", "--appendonly", "no",
        "--dir", str(directory), "--protected-mode", "no",
    ]  # fmt: skip
    with daemon(command, directory / "redis.log", listen, port):
        yield f"redis://{listen}:{port}/13"


# --- the cluster --------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    network: Network
    direct_url: str  # PostgreSQL itself: migrations and the test's own checks
    pooled_url: str  # through PgBouncer: what the hosts use
    redis_url: str
    cache_url: str  # the same Redis server, another database
    bouncer: str  # PgBouncer's admin console (libpq), for SHOW POOLS
    directory: Path
    # The namespaces are the test's own, so any port is free there; each pair of hosts gets
    # the next one, as a pair may still run while another starts.
    ports: Iterator[int] = field(default_factory=lambda: itertools.count(8000))

    @contextmanager
    def hosts(self, **env: str) -> Iterator[tuple[Server, Server]]:
        """Host A and host B, booted together, stopped (the whole process group) at the end."""
        port = next(self.ports)
        with ExitStack() as stack:
            servers = []
            for namespace in self.network.namespaces:
                directory = self.directory / f"{namespace.name}-{uuid.uuid4().hex[:6]}"
                server = run_server(
                    directory,
                    self.pooled_url,
                    migrated=True,
                    wait=False,
                    netns=namespace.name,
                    host=namespace.address,
                    port=port,
                    DB_POOL_SIZE=str(DB_POOL_SIZE),
                    # The clients reach the hosts through the bridge, as through a load
                    # balancer: X-Forwarded-For gives each test a client address of its own.
                    FORWARDED_ALLOW_IPS=self.network.gateway,
                    RATE_LIMIT_LOGIN=f"{BUDGET}/minute",
                    **env,
                )
                servers.append(stack.enter_context(server))
            for server in servers:
                server.wait_until_serving()
            yield servers[0], servers[1]


def _libpq(url: str) -> str:
    parsed = make_url(url)
    parts = {
        "host": parsed.host,
        "port": parsed.port,
        "dbname": parsed.database,
        "user": parsed.username,
        "password": parsed.password,
    }
    return " ".join(f"{key}={value}" for key, value in parts.items() if value is not None)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    with ExitStack() as stack:
        net = stack.enter_context(network())
        directory = tmp_path_factory.mktemp("multi-host")
        direct_url = stack.enter_context(scratch_postgres("mh"))
        migrate(direct_url, directory)
        pooled = stack.enter_context(pgbouncer(directory, net.gateway, make_url(direct_url)))
        redis_url = stack.enter_context(redis_server(directory, net.gateway))
        yield Cluster(
            network=net,
            direct_url=direct_url,
            pooled_url=pooled.render_as_string(hide_password=False),
            redis_url=redis_url,
            cache_url=redis_url.rpartition("/")[0] + "/12",
            bouncer=_libpq(pooled.set(database="pgbouncer").render_as_string(hide_password=False)),
            directory=directory,
        )


@pytest.fixture(scope="module")
def hosts(cluster: Cluster) -> Iterator[tuple[Server, Server]]:
    """Hosts A and B with the login budgets and the read cache in the shared Redis."""
    with cluster.hosts(REDIS_URL=cluster.redis_url, CACHE_URL=cluster.cache_url) as pair:
        yield pair


# --- clients ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    id: int
    headers: dict[str, str]


def new_account(signs_up: Server, logs_in: Server) -> Account:
    user = sign_up(signs_up)
    response = log_in(logs_in, user["email"])
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return Account(id=user["id"], headers={"Authorization": f"Bearer {token}"})


@pytest.fixture(scope="module")
def account(hosts: tuple[Server, Server]) -> Account:
    """Signed up on host A, logged in on host B."""
    return new_account(*hosts)


def random_address() -> dict[str, str]:
    octets = uuid.uuid4().bytes[:3]
    return {"X-Forwarded-For": "172." + ".".join(str(octet) for octet in octets)}


def with_clients(count: int, seconds: float, work: Callable[[httpx.Client, int], None]) -> None:
    """``count`` threads, each with a keep-alive client of its own, calling ``work(client,
    round)`` until ``seconds`` have passed."""
    deadline = time.monotonic() + seconds

    def client_loop(_: int) -> None:
        with httpx.Client(timeout=REQUEST_TIMEOUT_S) as client:
            round_ = 0
            while time.monotonic() < deadline:
                work(client, round_)
                round_ += 1

    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(client_loop, range(count)))


class Sampler:
    """Samples, every SAMPLE_EVERY_S on connections of its own, the connections PostgreSQL has
    open to the test's database and the clients PgBouncer holds for it; keeps the peaks."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.peak_server = 0
        self.peak_clients = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._error: BaseException | None = None

    def __enter__(self) -> "Sampler":
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        try:
            direct = psycopg2.connect(_libpq(self.cluster.direct_url))
            admin = psycopg2.connect(self.cluster.bouncer)
            direct.autocommit = admin.autocommit = True
            database = make_url(self.cluster.pooled_url).database
            try:
                while not self._stop.is_set():
                    self._sample(direct, admin, database)
                    self._stop.wait(SAMPLE_EVERY_S)
            finally:
                direct.close()
                admin.close()
        except BaseException as exc:  # reported by __exit__, in the test's thread
            self._error = exc

    def _sample(self, direct: Any, admin: Any, database: str | None) -> None:
        with direct.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
            self.peak_server = max(self.peak_server, cursor.fetchone()[0])
        with admin.cursor() as cursor:
            cursor.execute("SHOW POOLS")
            columns = [column.name for column in cursor.description]
            rows = [dict(zip(columns, values, strict=True)) for values in cursor]
        clients = sum(r["cl_active"] + r["cl_waiting"] for r in rows if r["database"] == database)
        self.peak_clients = max(self.peak_clients, clients)
        self.samples += 1


def in_postgres(cluster: Cluster, sql: str, *parameters: Any) -> list[tuple[Any, ...]]:
    """Rows read from PostgreSQL itself, not through PgBouncer."""
    connection = psycopg2.connect(_libpq(cluster.direct_url))
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, parameters)
            rows: list[tuple[Any, ...]] = cursor.fetchall()
        connection.rollback()
    finally:
        connection.close()
    return rows


# --- tests --------------------------------------------------------------------------------


def test_a_token_issued_by_one_host_works_on_the_other(hosts: tuple[Server, Server]) -> None:
    host_a, host_b = hosts
    user = sign_up(host_a)
    token = log_in(host_a, user["email"]).json()["access_token"]

    response = host_b.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 200, response.text
    assert response.json()["id"] == user["id"]


@pytest.fixture(scope="module")
def database_budget_hosts(cluster: Cluster) -> Iterator[tuple[Server, Server]]:
    """Hosts A and B without Redis: the login budgets are counted in the database, under
    advisory locks taken through PgBouncer's transaction pooling."""
    with cluster.hosts() as pair:
        yield pair


@pytest.fixture(params=["redis", "database"])
def budget_hosts(request: pytest.FixtureRequest) -> tuple[Server, Server]:
    fixture = {"redis": "hosts", "database": "database_budget_hosts"}[request.param]
    pair: tuple[Server, Server] = request.getfixturevalue(fixture)
    return pair


def test_wrong_logins_alternating_between_hosts_spend_one_budget(
    budget_hosts: tuple[Server, Server],
) -> None:
    host_a, host_b = budget_hosts
    email = sign_up(host_a)["email"]
    address = random_address()

    checked = [
        log_in((host_a, host_b)[n % 2], email, WRONG, headers=address) for n in range(BUDGET)
    ]
    limited = [
        pid_and_response
        for host in (host_a, host_b)
        for pid_and_response in host.spread(partial_log_in(host, email, address))
    ]

    assert [response.status_code for response in checked] == [401] * BUDGET
    assert {response.status_code for _, response in limited} == {429}  # every worker of both


def partial_log_in(host: Server, email: str, address: dict[str, str]) -> Callable[[], Any]:
    return lambda: log_in(host, email, WRONG, headers=address)


def test_simultaneous_wrong_logins_on_both_hosts_get_exactly_the_budget_checked(
    budget_hosts: tuple[Server, Server],
) -> None:
    email = sign_up(budget_hosts[0])["email"]
    address = random_address()
    start = threading.Barrier(LOGIN_ATTEMPTS)

    def attempt(index: int) -> httpx.Response:
        start.wait()
        return log_in(budget_hosts[index % 2], email, WRONG, headers=address)

    with ThreadPoolExecutor(max_workers=LOGIN_ATTEMPTS) as pool:
        responses = list(pool.map(attempt, range(LOGIN_ATTEMPTS)))

    statuses = Counter(response.status_code for response in responses)
    assert statuses == {401: BUDGET, 429: LOGIN_ATTEMPTS - BUDGET}


def test_a_write_on_one_host_is_read_on_the_other_at_once(
    hosts: tuple[Server, Server], account: Account
) -> None:
    def newest(host: Server) -> dict[str, Any]:
        """The first item of the caller's newest-first list: always the same query, which the
        read cache keeps until a write on either host renews it."""
        page = host.get("/api/v1/items?sort=-id&page_size=1", headers=account.headers)
        assert page.status_code == 200, page.text
        item: dict[str, Any] = page.json()["items"][0] if page.json()["items"] else {}
        return item

    for writer, reader in [hosts, hosts[::-1]] * 5:
        newest(reader), newest(writer)  # cached on both before the write
        created = writer.post(
            "/api/v1/items", json={"title": f"rw-{uuid.uuid4().hex}"}, headers=account.headers
        )
        listed_after_create = newest(reader)
        read = reader.get(f"/api/v1/items/{created.json()['id']}", headers=account.headers)
        updated = reader.request(
            "PATCH",
            f"/api/v1/items/{created.json()['id']}",
            json={"description": "changed on the other host"},
            headers={**account.headers, "If-Match": read.headers["ETag"]},
        )
        read_back = writer.get(f"/api/v1/items/{created.json()['id']}", headers=account.headers)

        assert created.status_code == 201, created.text
        assert (read.status_code, read.json()) == (200, created.json())
        assert read.headers["ETag"] == created.headers["ETag"]
        assert listed_after_create == created.json()
        assert updated.status_code == 200, updated.text
        assert (read_back.status_code, read_back.json()) == (200, updated.json())
        assert read_back.headers["ETag"] == updated.headers["ETag"] != created.headers["ETag"]
        assert newest(reader) == newest(writer) == updated.json()
    # The lists were served from the cache, not around it.
    assert sum(metric(host, "read_cache_lookups_total", result="hit") for host in hosts) >= 10


def test_both_hosts_under_load_use_no_more_postgresql_connections_than_the_pool(
    cluster: Cluster, hosts: tuple[Server, Server], account: Account
) -> None:
    lock = threading.Lock()
    outcomes: Counter[str] = Counter()
    errors: list[str] = []

    def work(client: httpx.Client, round_: int) -> None:
        writer, reader = hosts if round_ % 2 else hosts[::-1]
        try:
            created = client.post(
                writer.url("/api/v1/items"),
                json={"title": f"load-{uuid.uuid4().hex}"},
                headers=account.headers,
            )
            read = client.get(
                reader.url(f"/api/v1/items/{created.json()['id']}"), headers=account.headers
            )
            listed = client.get(writer.url("/api/v1/items?page_size=5"), headers=account.headers)
            statuses = (created.status_code, read.status_code, listed.status_code)
            ok = statuses == (201, 200, 200) and read.headers["ETag"] == created.headers["ETag"]
            problem = None if ok else f"{statuses}: {created.text[:200]}"
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            problem = repr(exc)
        with lock:
            outcomes["requests"] += 3
            if problem is not None:
                errors.append(problem)

    with Sampler(cluster) as sampler:
        with_clients(LOAD_CLIENTS, LOAD_SECONDS, work)

    report(
        f"load: {outcomes['requests']} requests in {LOAD_SECONDS:.0f} s from {LOAD_CLIENTS}"
        f" clients over 2 hosts x 2 workers (DB_POOL_SIZE={DB_POOL_SIZE}), {len(errors)} errors;"
        f" peak PostgreSQL connections {sampler.peak_server} (pool {POOL}), peak PgBouncer"
        f" clients {sampler.peak_clients}, {sampler.samples} samples"
    )
    assert errors == []
    assert outcomes["requests"] > 0
    assert sampler.samples > 10
    assert 0 < sampler.peak_server <= POOL
    # The hosts did ask for more than the pool: PgBouncer, not a quiet load, kept it at POOL.
    assert sampler.peak_clients > POOL


def test_killing_a_host_mid_load_loses_no_acknowledged_write(cluster: Cluster) -> None:
    with cluster.hosts(REDIS_URL=cluster.redis_url) as (host_a, host_b):
        account = new_account(host_b, host_a)
        lock = threading.Lock()
        acknowledged: list[tuple[str, float, dict[str, Any]]] = []  # host, when, body
        unacknowledged: list[tuple[str, str]] = []  # idempotency key, title
        errors: list[str] = []
        killed = threading.Event()
        killed_at = [0.0]

        def work(client: httpx.Client, round_: int) -> None:
            # A load balancer's view: host A is out of rotation once a request to it failed.
            host = host_b if round_ % 2 or killed.is_set() else host_a
            key, title = str(uuid.uuid4()), f"kill-{uuid.uuid4().hex}"
            try:
                response = client.post(
                    host.url("/api/v1/items"),
                    json={"title": title},
                    headers={**account.headers, "Idempotency-Key": key},
                )
            except httpx.TransportError as exc:
                with lock:
                    if host is host_a:
                        unacknowledged.append((key, title))
                    else:
                        errors.append(f"host B: {exc!r}")
                return
            with lock:
                if response.status_code == 201:
                    acknowledged.append((host.host, time.monotonic(), response.json()))
                else:
                    errors.append(f"{host.host}: {response.status_code} {response.text[:200]}")

        def kill_host_a() -> None:
            time.sleep(KILL_AFTER_S)
            os.killpg(host_a.pid, signal.SIGKILL)  # the master and both workers at once
            killed_at[0] = time.monotonic()
            killed.set()

        killer = threading.Thread(target=kill_host_a)
        killer.start()
        with_clients(LOAD_CLIENTS, LOAD_SECONDS, work)
        killer.join()

        ids = [body["id"] for _, _, body in acknowledged]
        stored = dict(in_postgres(cluster, "SELECT id, title FROM items WHERE id = ANY(%s)", ids))
        served_by_b_after = sum(
            1 for host, when, _ in acknowledged if host == host_b.host and when > killed_at[0]
        )
        # Retried on host B with the same key, an unacknowledged create is either replayed
        # (it had committed) or done now: never twice.
        retries = [
            host_b.post(
                "/api/v1/items",
                json={"title": title},
                headers={**account.headers, "Idempotency-Key": key},
            )
            for key, title in unacknowledged
        ]
        replayed = sum(1 for r in retries if r.headers.get("Idempotent-Replayed") == "true")
        retried = [title for _, title in unacknowledged]
        copies = Counter(
            title
            for (title,) in in_postgres(
                cluster, "SELECT title FROM items WHERE title = ANY(%s)", retried
            )
        )

        report(
            f"kill: {len(acknowledged)} creates acknowledged (201), all {len(stored)} in"
            f" PostgreSQL; host B served {served_by_b_after} after host A was killed"
            f" {KILL_AFTER_S:.0f} s in; {len(unacknowledged)} in flight on host A, retried on"
            f" host B with their keys: {replayed} replayed, {len(retries) - replayed} created"
        )
        assert errors == []
        assert acknowledged
        assert host_a.process.poll() is not None
        assert stored == {body["id"]: body["title"] for _, _, body in acknowledged}
        assert served_by_b_after > 0
        assert [r.status_code for r in retries] == [201] * len(retries)
        assert copies == Counter(retried)  # each exactly once
