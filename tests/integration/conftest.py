"""Harness for tests that run the real server: ``gunicorn -c gunicorn.conf.py app.main:app`` with
two Uvicorn workers on a free loopback port, after ``alembic upgrade head``, as ops start it.

The server logs JSON lines (with the worker's ``pid``) to a file; every request carries a unique
``X-Request-ID``, so a response is mapped to the worker that answered it through its access-log
line. Every wait polls against a deadline, and the whole process group is killed at teardown.
"""

import json
import os
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from app.core.config import is_service_variable
from tests.conftest import require_postgres, scratch_postgres, unavailable, wait_until

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = ROOT / ".venv" / "bin"
WORKERS = 2
SECRET_KEY = "integration-secret-key-long-enough-for-hs256-0123456789"
REDIS_URL = "redis://127.0.0.1:6379/14"
PASSWORD = "password123"

BOOT_TIMEOUT_S = 25.0
REQUEST_TIMEOUT_S = 10.0
LOG_TIMEOUT_S = 5.0
SPREAD_TIMEOUT_S = 10.0
STARTUP_COMPLETE = "Application startup complete."

# The server gets exactly what the harness and the test set, never a value leaking from the test
# process: none of what the service reads (is_service_variable: its settings, Gunicorn's and the
# OpenTelemetry SDK's), nor these.
_ALSO_CLEARED = {"XDG_RUNTIME_DIR"}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def _children(parent: int) -> set[int]:
    """Live (not zombie) child processes of ``parent``, read from /proc."""
    children = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # pid (comm) state ppid ...: comm may contain spaces, so split after its ")".
        state, ppid = stat.rpartition(")")[2].split()[:2]
        if int(ppid) == parent and state != "Z":
            children.add(int(entry.name))
    return children


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    env: dict[str, str] = field(repr=False)
    host: str = "127.0.0.1"

    @property
    def pid(self) -> int:
        return self.process.pid

    def url(self, path: str) -> str:
        return f"http://{self.host}:{self.port}{path}"

    # --- requests -----------------------------------------------------------------------------

    def request(
        self, method: str, path: str, *, headers: dict[str, str] | None = None, **kwargs: Any
    ) -> httpx.Response:
        """One request on a new connection (closed afterwards), with a unique X-Request-ID."""
        sent = {"X-Request-ID": f"it-{uuid.uuid4().hex}", "Connection": "close", **(headers or {})}
        return httpx.request(
            method, self.url(path), headers=sent, timeout=REQUEST_TIMEOUT_S, **kwargs
        )

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    # --- logs ---------------------------------------------------------------------------------

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                with suppress(ValueError):
                    records.append(json.loads(line))
        return records

    def access_records(self, request_id: str) -> list[dict[str, Any]]:
        return [
            r
            for r in self.log_records()
            if r.get("logger") == "app.access" and r.get("request_id") == request_id
        ]

    def wait_for_access(self, responses: list[httpx.Response]) -> dict[str, list[dict[str, Any]]]:
        """The access-log lines of each response's request (written just after the response)."""
        ids = [response.headers["X-Request-ID"] for response in responses]

        def lines() -> dict[str, list[dict[str, Any]]] | None:
            found: dict[str, list[dict[str, Any]]] = {request_id: [] for request_id in ids}
            for record in self.log_records():
                if record.get("logger") == "app.access" and record.get("request_id") in found:
                    found[record["request_id"]].append(record)
            return found if all(found.values()) else None

        found: dict[str, list[dict[str, Any]]] = wait_until(
            lines, timeout=LOG_TIMEOUT_S, message=f"access-log lines for {ids}"
        )
        return found

    def pids_of(self, responses: list[httpx.Response]) -> list[int]:
        """The pid of the worker that answered each response."""
        found = self.wait_for_access(responses)
        return [found[response.headers["X-Request-ID"]][0]["pid"] for response in responses]

    def pid_of(self, response: httpx.Response) -> int:
        return self.pids_of([response])[0]

    def started_workers(self) -> set[int]:
        return {r["pid"] for r in self.log_records() if r.get("message") == STARTUP_COMPLETE}

    # --- processes ----------------------------------------------------------------------------

    def worker_pids(self) -> set[int]:
        return _children(self.pid)

    def wait_for_workers(
        self, *, excluding: frozenset[int] = frozenset(), timeout: float = BOOT_TIMEOUT_S
    ) -> set[int]:
        """Wait until WORKERS child processes (none of ``excluding``) run and each has
        finished its start-up."""

        def ready() -> set[int] | None:
            if self.process.poll() is not None:
                pytest.fail(f"gunicorn exited with {self.process.returncode}:\n{self.log_text()}")
            workers = self.worker_pids()
            if (
                len(workers) == WORKERS
                and not workers & excluding
                and workers <= self.started_workers()
            ):
                return workers
            return None

        workers: set[int] = wait_until(ready, timeout=timeout, message="workers to boot")
        return workers

    def wait_until_serving(self) -> None:
        self.wait_for_workers()
        wait_until(lambda: _answers(self), timeout=BOOT_TIMEOUT_S, message="GET /health to answer")

    def spread(
        self, send: Callable[[], httpx.Response], *, timeout: float = SPREAD_TIMEOUT_S
    ) -> list[tuple[int, httpx.Response]]:
        """Send concurrent batches of requests until every worker has answered at least one;
        returns (worker pid, response) for every request sent."""
        answered: list[tuple[int, httpx.Response]] = []
        deadline = time.monotonic() + timeout
        with ThreadPoolExecutor(max_workers=8) as pool:
            while len({pid for pid, _ in answered}) < WORKERS:
                if time.monotonic() >= deadline:
                    pytest.fail(f"only workers {sorted({p for p, _ in answered})} answered")
                responses = list(pool.map(lambda _: send(), range(8)))
                answered.extend(zip(self.pids_of(responses), responses, strict=True))
        return answered

    def stop(self) -> None:
        """Terminate gracefully, then kill whatever is left of the process group."""
        if self.process.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=10)
        with suppress(ProcessLookupError):
            os.killpg(self.pid, signal.SIGKILL)  # stragglers: workers can outlive their master
        with suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)


def server_env(directory: Path, database_url: str, **overrides: str) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not is_service_variable(k) and k not in _ALSO_CLEARED
    }
    env.update(
        {
            "ENVIRONMENT": "test",
            "SECRET_KEY": SECRET_KEY,
            "BCRYPT_ROUNDS": "4",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
            "DATABASE_URL": database_url,
            "WEB_CONCURRENCY": str(WORKERS),
            "GUNICORN_GRACEFUL_TIMEOUT": "5",
            "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
            # Gunicorn's control socket defaults to one path per user: give each server its own.
            "XDG_RUNTIME_DIR": str(directory),
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(overrides)
    return env


def migrate(database_url: str, directory: Path) -> None:
    env = server_env(directory, database_url)
    del env["PROMETHEUS_MULTIPROC_DIR"]  # gunicorn.conf.py creates it; alembic does not
    result = subprocess.run(
        [str(VENV_BIN / "alembic"), "upgrade", "head"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, f"alembic upgrade head failed:\n{result.stdout}{result.stderr}"


@contextmanager
def run_server(
    directory: Path,
    database_url: str,
    *,
    migrate_url: str | None = None,
    migrated: bool = False,
    wait: bool = True,
    netns: str | None = None,
    host: str = "127.0.0.1",
    port: int | None = None,
    **env_overrides: str,
) -> Iterator[Server]:
    """Migrate ``migrate_url`` (default: ``database_url``) unless the caller has ``migrated``
    it already, start gunicorn serving ``database_url`` on ``host``:``port`` (default: a free
    port) and, with ``wait``, wait until both workers answer. With ``netns`` the server runs in
    that network namespace (``ip netns exec``), where ``host`` is one of its addresses."""
    directory.mkdir(parents=True, exist_ok=True)
    if not migrated:
        migrate(migrate_url or database_url, directory)
    port = port or free_port()
    env = server_env(directory, database_url, BIND=f"{host}:{port}", **env_overrides)
    log_path = directory / "server.log"
    in_namespace = ["ip", "netns", "exec", netns] if netns else []
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            # ip netns exec execs gunicorn in place: the pid and process group are gunicorn's.
            [*in_namespace, str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", "app.main:app"],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    server = Server(process=process, port=port, log_path=log_path, env=env, host=host)
    try:
        if wait:
            server.wait_until_serving()
        yield server
    finally:
        server.stop()


def _answers(server: Server) -> bool:
    try:
        return server.get("/health").status_code == 200
    except httpx.TransportError:
        return False


# --- databases --------------------------------------------------------------------------------


@contextmanager
def scratch_database(backend: str, directory: Path) -> Iterator[str]:
    if backend == "sqlite":
        directory.mkdir(parents=True, exist_ok=True)
        yield f"sqlite:///{directory / 'app.db'}"
    else:
        with scratch_postgres("it") as url:
            yield url


# --- redis ------------------------------------------------------------------------------------


def redis_available() -> bool:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


def flush_redis() -> None:
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=0.5, socket_timeout=0.5)
    try:
        client.flushdb()
    finally:
        client.close()


def require_redis() -> None:
    if redis_available():
        return
    unavailable(f"Redis at {REDIS_URL} is unreachable")


# --- a TCP proxy the tests can cut ------------------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to a target; ``stop`` closes the listener and every forwarded
    connection (the database "goes away"), ``start`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()

    def start(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        listener.settimeout(0.1)
        self._stopping.clear()
        self._listener = listener
        self._spawn(self._accept_loop, listener)

    def stop(self) -> None:
        self._stopping.set()
        with self._lock:
            sockets = list(self._sockets)
            self._sockets.clear()
        for sock in sockets:
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        for thread in self._threads:
            thread.join(timeout=2)
        self._threads = [t for t in self._threads if t.is_alive()]
        assert not self._threads, "proxy threads did not stop"
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _spawn(self, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._stopping.is_set():
                return False
            self._sockets.add(sock)
            return True

    def _accept_loop(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            if not (self._track(client) and self._track(upstream)):
                client.close()
                upstream.close()
                return
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client)

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "postgresql":
        require_postgres()
    return str(request.param)


StartServer = Callable[..., Server]


@pytest.fixture
def start_server(backend: str, tmp_path: Path) -> Iterator[StartServer]:
    """Start a server of its own on a fresh database of ``backend`` (for destructive tests)."""
    with ExitStack() as stack:

        def start(**env: str) -> Server:
            directory = tmp_path / f"server-{uuid.uuid4().hex[:8]}"
            database_url = stack.enter_context(scratch_database(backend, directory))
            return stack.enter_context(run_server(directory, database_url, **env))

        yield start


@pytest.fixture(scope="module")
def shared_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server per backend for the tests that leave it as they found it. Its login budget
    (3 failures a minute) lives in Redis db 14 when Redis is up (flushed first)."""
    if redis_available():
        flush_redis()
    directory = tmp_path_factory.mktemp(f"shared-{backend}")
    with (
        scratch_database(backend, directory) as database_url,
        run_server(
            directory, database_url, REDIS_URL=REDIS_URL, RATE_LIMIT_LOGIN="3/minute"
        ) as server,
    ):
        yield server


@dataclass(frozen=True)
class Account:
    id: int
    email: str
    headers: dict[str, str]


def sign_up(server: Server, *, password: str = PASSWORD) -> dict[str, Any]:
    name = f"it_{uuid.uuid4().hex[:12]}"
    response = server.post(
        "/api/v1/users",
        json={"email": f"{name}@example.com", "username": name, "password": password},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def log_in(server: Server, email: str, password: str = PASSWORD, **kwargs: Any) -> httpx.Response:
    return server.post(
        "/api/v1/auth/token", data={"username": email, "password": password}, **kwargs
    )


@pytest.fixture(scope="module")
def account(shared_server: Server) -> Account:
    """A user of the shared server, logged in once."""
    user = sign_up(shared_server)
    response = log_in(shared_server, user["email"])
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return Account(id=user["id"], email=user["email"], headers={"Authorization": f"Bearer {token}"})


def metric(server: Server, name: str, **labels: str) -> float:
    """The value of one sample of GET /metrics (0 when absent)."""
    response = server.get("/metrics")
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return float(sample.value)
    return 0.0
