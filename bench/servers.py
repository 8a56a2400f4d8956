"""Gunicorn serving the app, the yardstick or the bare FastAPI app: started exactly as
production starts the app (``gunicorn -c gunicorn.conf.py <module>:app``), on a free loopback
port, with stdout and stderr going to a log file."""

import json
import os
import re
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

from app.core.config import is_service_variable
from bench.procs import children, children_cpu_s, resident_kib, spawn, stop_group
from bench.settings import ROOT, VENV_BIN

# Fixed, so a token issued by the app is accepted by the yardstick (and long enough for
# production's check).
SECRET_KEY = "bench-secret-key-not-for-production-0123456789abcdef"
# Failed logins only are counted, and the bench's logins all succeed; still, a budget no run
# can reach keeps the login scenario from ever measuring 429s.
RATE_LIMIT_LOGIN = "1000000/minute"
BCRYPT_ROUNDS = "12"  # production's cost (ENVIRONMENT=production refuses less)

BOOT_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.01
REQUEST_TIMEOUT_S = 10.0
STARTUP_COMPLETE = "Application startup complete."
WORKER_BOOTING = "Booting worker with pid"
# gunicorn's own log format: "[2026-11-24 10:37:09 +0000] [29640] [INFO] message".
_TEXT_LOG_LINE = re.compile(r"^\[[^\]]*\] \[(\d+)\] \[(\w+)\] (.*)$")
_ERROR_LEVELS = frozenset({"error", "critical"})

# Servers get exactly the values set here, never one leaking from the shell that runs the
# benchmark: none of what the service reads (is_service_variable: its settings, Gunicorn's and
# the OpenTelemetry SDK's), nor these.
_ALSO_CLEARED = {"XDG_RUNTIME_DIR", "PYTHONPATH"}


class ServerError(RuntimeError):
    """A server did not start, or stopped answering."""


@dataclass(frozen=True, slots=True)
class ServerSpec:
    name: str
    target: str  # module:attribute Gunicorn loads
    label: str


APP = ServerSpec("app", "app.main:app", "the service (app.main:app)")
YARDSTICK = ServerSpec("yardstick", "bench.yardstick_app:app", "raw SQL in FastAPI routes")
BARE = ServerSpec("bare", "bench.bare_app:app", "bare FastAPI, one sync route")


def server_env(
    database_url: str, *, workers: int, max_requests: int, cache_url: str = ""
) -> dict[str, str]:
    """The environment of every server and of the project commands (migrate, seed)."""
    env = {
        name: value
        for name, value in os.environ.items()
        if not is_service_variable(name) and name not in _ALSO_CLEARED
    }
    env.update(
        {
            # "production" refuses nothing here, but logs a warning for SQLite and refuses
            # seed-demo; "test" changes nothing else that the benchmark touches.
            "ENVIRONMENT": "test",
            "DATABASE_URL": database_url,
            "SECRET_KEY": SECRET_KEY,
            "BCRYPT_ROUNDS": BCRYPT_ROUNDS,
            "RATE_LIMIT_LOGIN": RATE_LIMIT_LOGIN,
            "REDIS_URL": "",  # unset for the app (in-process limits), also against a .env
            "CACHE_URL": cache_url,
            "LOG_LEVEL": "info",
            "LOG_FORMAT": "json",
            "WEB_CONCURRENCY": str(workers),
            # A recycled worker closes its keep-alive connections, and a request the client
            # sent on one meanwhile fails (wrk: a read error): off unless asked for.
            "GUNICORN_MAX_REQUESTS": str(max_requests),
            "PYTHONUNBUFFERED": "1",  # as in the Dockerfile
        }
    )
    return env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class BootTimes:
    """Seconds from starting Gunicorn to the first 200 on /health, and to each worker's
    "Application startup complete." log line."""

    first_200_s: float
    workers_ready_s: tuple[float, ...]


@dataclass
class Server:
    spec: ServerSpec
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path
    boot: BootTimes | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def workers(self) -> set[int]:
        return children(self.process.pid)

    def cpu_s(self) -> float:
        return children_cpu_s(self.process.pid)

    def worker_rss_kib(self) -> list[int]:
        sizes = (resident_kib(pid) for pid in sorted(self.workers()))
        return [size for size in sizes if size is not None]

    def log_lines(self) -> list[str]:
        return self.log_path.read_text(errors="replace").splitlines()

    def take_log(self) -> "LogSummary":
        """What was logged since the last call; the log is emptied (a run can log hundreds of
        megabytes of access lines)."""
        with self.log_path.open("r+b") as log:
            text = log.read().decode(errors="replace")
            log.truncate(0)
        return LogSummary.of(text.splitlines())

    def ensure_running(self) -> None:
        if self.process.poll() is not None:
            tail = "\n".join(self.log_lines()[-30:])
            raise ServerError(f"{self.spec.name} exited with {self.process.returncode}:\n{tail}")


@dataclass(frozen=True, slots=True)
class LogSummary:
    errors: tuple[str, ...]  # error and critical lines, tracebacks
    workers_booted: int  # by the master: each one replaced a worker that exited

    @classmethod
    def of(cls, lines: list[str]) -> "LogSummary":
        return cls(
            errors=tuple(line for line in lines if _is_error_line(line)),
            workers_booted=sum(WORKER_BOOTING in line for line in lines),
        )


def _parse_log_line(line: str) -> tuple[int | None, str, str]:
    """(pid, level, message) of a JSON line (the app) or a Gunicorn text line (the others)."""
    if line.startswith("{"):
        with suppress(ValueError):
            record = json.loads(line)
            pid = record.get("pid")
            return (
                (pid if isinstance(pid, int) else None),
                str(record.get("level", "")),
                str(record.get("message", "")),
            )
    match = _TEXT_LOG_LINE.match(line)
    if match:
        return int(match.group(1)), match.group(2).lower(), match.group(3)
    return None, "", line


def _is_error_line(line: str) -> bool:
    _, level, message = _parse_log_line(line)
    return level in _ERROR_LEVELS or message.startswith("Traceback")


def _started_workers(lines: list[str]) -> set[int]:
    started = set()
    for line in lines:
        pid, _, message = _parse_log_line(line)
        if pid is not None and message == STARTUP_COMPLETE:
            started.add(pid)
    return started


def answers_ok(url: str, *, timeout_s: float = 0.5) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status) == 200
    except (OSError, urllib.error.URLError):
        return False


def _wait_until_booted(server: Server, workers: int, started: float) -> BootTimes:
    ready: dict[int, float] = {}
    first_200: float | None = None
    while first_200 is None or len(ready) < workers:
        server.ensure_running()
        elapsed = time.monotonic() - started
        if elapsed > BOOT_TIMEOUT_S:
            raise ServerError(f"{server.spec.name} did not boot within {BOOT_TIMEOUT_S:.0f} s")
        for pid in _started_workers(server.log_lines()):
            ready.setdefault(pid, elapsed)
        if first_200 is None and answers_ok(server.url("/health")):
            first_200 = time.monotonic() - started
        time.sleep(POLL_INTERVAL_S)
    return BootTimes(first_200, tuple(sorted(ready.values())[:workers]))


@contextmanager
def running_server(
    spec: ServerSpec, *, env: Mapping[str, str], directory: Path, workers: int
) -> Iterator[Server]:
    """Start Gunicorn, wait until /health answers and every worker has started, and stop the
    whole process group on the way out."""
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    server_env = {
        **env,
        "BIND": f"127.0.0.1:{port}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory / "metrics"),
        # Gunicorn's control socket is one path per user by default: one per server.
        "XDG_RUNTIME_DIR": str(directory),
    }
    log_path = directory / "server.log"
    argv = [str(VENV_BIN / "gunicorn"), "-c", "gunicorn.conf.py", spec.target]
    started = time.monotonic()
    # Append mode: take_log_errors() can empty the file under the running server.
    with log_path.open("ab") as log:
        process = spawn(argv, env=server_env, cwd=ROOT, stdout=log)
    server = Server(spec=spec, process=process, port=port, log_path=log_path)
    try:
        server.boot = _wait_until_booted(server, workers, started)
        yield server
    finally:
        stop_group(process)


def access_token(server: Server, *, email: str, password: str) -> str:
    """Log in through the app (OAuth2 password form) and return the bearer token."""
    body = urllib.parse.urlencode({"username": email, "password": password}).encode()
    request = urllib.request.Request(server.url("/api/v1/auth/token"), data=body, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=REQUEST_TIMEOUT_S) as response:
            token: str = json.loads(response.read())["access_token"]
    except (OSError, urllib.error.URLError, KeyError, ValueError) as exc:
        raise ServerError(f"logging in as {email} on {server.spec.name} failed: {exc}") from exc
    return token
