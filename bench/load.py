"""The scenarios, and one wrk run against one server with the server's CPU time around it."""

import json
import math
import os
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.procs import run_command
from bench.servers import BARE, YARDSTICK, Server
from bench.settings import BENCH_DIR

LUA_SCRIPT = BENCH_DIR / "wrk.lua"
RESULT_MARKER = "BENCH_RESULT "
# seed-demo --users 1 --prefix bench makes this account; app.cli.DEMO_PASSWORD is its password.
SEED_PREFIX = "bench"
BENCH_EMAIL = f"{SEED_PREFIX}1@example.com"
BENCH_PASSWORD = "demo-password-1"
# wrk gets this long past -d to report before it is killed.
WRK_GRACE_S = 30
IDLE_PROBE_S = 0.1
IDLE_TOLERANCE_S = 1e-6  # far below a clock tick


class LoadError(RuntimeError):
    """wrk failed or reported nothing."""


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    title: str  # what the tables show
    path: str  # the URL path wrk is given (with random_item: the prefix of the id)
    against: str  # the ServerSpec name of the server the app is compared with
    method: str = "GET"
    body: str | None = None
    content_type: str | None = None
    authenticated: bool = False
    random_item: bool = False
    writes: bool = False  # rows it adds are deleted after every run

    def wrk_args(self, *, token: str | None, ids_file: Path | None) -> list[str]:
        args = [f"method={self.method}"]
        if self.body is not None:
            args.append(f"body={self.body}")
        if self.content_type is not None:
            args.append(f"content_type={self.content_type}")
        if self.authenticated:
            if token is None:
                raise LoadError(f"{self.name} needs a token")
            args.append(f"token={token}")
        if self.random_item:
            if ids_file is None:
                raise LoadError(f"{self.name} needs the item ids")
            args.append(f"ids={ids_file}")
        return args


# The order they run in: the write scenario last, so reads never see its rows (which are
# deleted after each run anyway).
SCENARIOS: tuple[Scenario, ...] = (
    Scenario("health", "GET /health", "/health", against=BARE.name),
    Scenario(
        "item_get",
        "GET /api/v1/items/{id}",
        "/api/v1/items/",
        against=YARDSTICK.name,
        authenticated=True,
        random_item=True,
    ),
    Scenario(
        "item_list",
        "GET /api/v1/items?page=1&page_size=20",
        "/api/v1/items?page=1&page_size=20",
        against=YARDSTICK.name,
        authenticated=True,
    ),
    Scenario(
        "login",
        "POST /api/v1/auth/token",
        "/api/v1/auth/token",
        against=YARDSTICK.name,
        method="POST",
        body=urllib.parse.urlencode({"username": BENCH_EMAIL, "password": BENCH_PASSWORD}),
        content_type="application/x-www-form-urlencoded",
    ),
    Scenario(
        "item_create",
        "POST /api/v1/items",
        "/api/v1/items",
        against=YARDSTICK.name,
        method="POST",
        body=json.dumps({"title": "Bench item", "description": "Created by the load benchmark"}),
        content_type="application/json",
        authenticated=True,
        writes=True,
    ),
)
SCENARIO_NAMES = tuple(scenario.name for scenario in SCENARIOS)


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    duration_s: float
    bytes: int
    statuses: dict[int, int]
    errors: dict[str, int]  # connect, read, write, timeout (socket errors); status (>= 400)
    latency_ms: dict[str, float]  # p50, p90, p99, mean, max
    sample: str | None  # status and start of the body of the first non-2xx response

    @property
    def non_2xx(self) -> int:
        return sum(count for status, count in self.statuses.items() if not 200 <= status < 300)

    @property
    def socket_errors(self) -> int:
        return sum(self.errors.get(kind, 0) for kind in ("connect", "read", "write", "timeout"))

    @classmethod
    def parse(cls, output: str) -> "WrkResult":
        lines = [line for line in output.splitlines() if line.startswith(RESULT_MARKER)]
        if not lines:
            raise LoadError(f"wrk printed no result:\n{output}")
        raw: dict[str, Any] = json.loads(lines[-1].removeprefix(RESULT_MARKER))
        return cls(
            requests=int(raw["requests"]),
            duration_s=int(raw["duration_us"]) / 1e6,
            bytes=int(raw["bytes"]),
            statuses={int(status): int(count) for status, count in raw["statuses"].items()},
            errors={kind: int(count) for kind, count in raw["errors"].items()},
            latency_ms={name: float(us) / 1000 for name, us in raw["latency_us"].items()},
            sample=raw.get("sample"),
        )


def run_wrk(
    url: str,
    script_args: Sequence[str],
    *,
    threads: int,
    connections: int,
    duration_s: int,
    timeout_s: int,
) -> WrkResult:
    argv = [
        "wrk",
        f"--threads={min(threads, connections)}",
        f"--connections={connections}",
        f"--duration={duration_s}s",
        f"--timeout={timeout_s}s",
        f"--script={LUA_SCRIPT}",
        url,
        "--",
        *script_args,
    ]
    # A failure or overrun raises CommandError (which the runner reports like a LoadError).
    text = run_command(
        argv, env=os.environ, cwd=BENCH_DIR, timeout_s=duration_s + timeout_s + WRK_GRACE_S
    )
    return WrkResult.parse(text)


@dataclass(frozen=True, slots=True)
class Measurement:
    """One wrk run against one server, with the CPU its workers spent meanwhile."""

    scenario: str
    target: str  # a ServerSpec name: "app", "yardstick" or "bare"
    round: int  # 0 for the warm-up
    wrk: WrkResult
    cpu_ms: float  # from wrk's start until the server is idle again
    in_flight: int  # requests wrk left unanswered when it stopped: one per connection
    recycled_workers: int  # workers replaced during the run (GUNICORN_MAX_REQUESTS)
    log_errors: tuple[str, ...]

    @property
    def requests_per_s(self) -> float:
        return self.wrk.requests / self.wrk.duration_s if self.wrk.duration_s else 0.0

    @property
    def served(self) -> int:
        """Requests the server worked on: those wrk counted, and those it stopped waiting for
        (the server still answers them, and its CPU time includes them)."""
        return self.wrk.requests + self.in_flight

    @property
    def cpu_ms_per_request(self) -> float | None:
        return self.cpu_ms / self.served if self.wrk.requests else None

    @property
    def problems(self) -> list[str]:
        """Why the run is invalid; empty when it is valid."""
        found = []
        if self.wrk.requests == 0:
            found.append("no request completed")
        if self.wrk.non_2xx:
            statuses = ", ".join(
                f"{count}x{status}"
                for status, count in sorted(self.wrk.statuses.items())
                if not 200 <= status < 300
            )
            found.append(f"non-2xx: {statuses} (first: {self.wrk.sample})")
        if self.wrk.socket_errors:
            errors = ", ".join(f"{kind} {n}" for kind, n in self.wrk.errors.items() if n)
            found.append(f"socket errors: {errors}")
        return found

    @property
    def valid(self) -> bool:
        return not self.problems


def _cpu_s_once_idle(server: Server, *, timeout_s: float) -> float:
    """The workers' CPU seconds once they have finished the requests wrk left in flight: two
    reads ``IDLE_PROBE_S`` apart agree (or ``timeout_s`` has passed). The kernel counts in clock
    ticks, so an idle server's two reads differ by float rounding at most."""
    deadline = time.monotonic() + timeout_s
    cpu_s = server.cpu_s()
    while time.monotonic() < deadline:
        time.sleep(IDLE_PROBE_S)
        now = server.cpu_s()
        if math.isclose(now, cpu_s, rel_tol=0, abs_tol=IDLE_TOLERANCE_S):
            break
        cpu_s = now
    return cpu_s


def measure(
    server: Server,
    scenario: Scenario,
    *,
    round_number: int,
    script_args: Sequence[str],
    threads: int,
    connections: int,
    duration_s: int,
    timeout_s: int,
) -> Measurement:
    server.ensure_running()
    server.take_log()  # start the run's log empty
    cpu_s_before = server.cpu_s()
    result = run_wrk(
        server.url(scenario.path),
        script_args,
        threads=threads,
        connections=connections,
        duration_s=duration_s,
        timeout_s=timeout_s,
    )
    cpu_s_after = _cpu_s_once_idle(server, timeout_s=timeout_s)
    server.ensure_running()
    log = server.take_log()
    return Measurement(
        scenario=scenario.name,
        target=server.spec.name,
        round=round_number,
        wrk=result,
        cpu_ms=(cpu_s_after - cpu_s_before) * 1000,
        in_flight=connections,
        recycled_workers=log.workers_booted,
        log_errors=log.errors,
    )
