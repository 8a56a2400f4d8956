"""Summaries of the runs, and the results as JSON and as a Markdown table."""

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.load import SCENARIOS, Measurement, Scenario
from bench.servers import BARE, RATE_LIMIT_LOGIN, YARDSTICK, BootTimes
from bench.settings import BenchSettings

BACKEND_TITLES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}
REFERENCE_TITLES = {YARDSTICK.name: "yardstick", BARE.name: "bare FastAPI"}


@dataclass(frozen=True, slots=True)
class TargetSummary:
    """One server's measured rounds of one scenario (warm-ups excluded)."""

    target: str
    rounds: int
    requests: int
    requests_per_s: float  # all requests over all measured time
    p50_ms: float  # median over rounds
    p99_ms: float  # median over rounds
    non_2xx: int
    socket_errors: int
    cpu_ms_per_request: float | None  # all CPU over all requests served
    recycled_workers: int
    log_errors: int
    problems: tuple[str, ...]

    @property
    def valid(self) -> bool:
        return self.rounds > 0 and not self.problems

    @classmethod
    def of(cls, target: str, runs: Sequence[Measurement]) -> "TargetSummary":
        requests = sum(run.wrk.requests for run in runs)
        seconds = sum(run.wrk.duration_s for run in runs)
        cpu_ms = sum(run.cpu_ms for run in runs)
        served = sum(run.served for run in runs)
        return cls(
            target=target,
            rounds=len(runs),
            requests=requests,
            requests_per_s=requests / seconds if seconds else 0.0,
            p50_ms=_median([run.wrk.latency_ms["p50"] for run in runs]),
            p99_ms=_median([run.wrk.latency_ms["p99"] for run in runs]),
            non_2xx=sum(run.wrk.non_2xx for run in runs),
            socket_errors=sum(run.wrk.socket_errors for run in runs),
            cpu_ms_per_request=cpu_ms / served if requests and served else None,
            recycled_workers=sum(run.recycled_workers for run in runs),
            log_errors=sum(len(run.log_errors) for run in runs),
            problems=tuple(
                f"round {run.round}: {problem}" for run in runs for problem in run.problems
            ),
        )


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else 0.0


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


@dataclass(frozen=True, slots=True)
class ScenarioSummary:
    scenario: Scenario
    connections: int
    app: TargetSummary
    reference: TargetSummary  # the server the scenario compares the app with

    @property
    def throughput_ratio(self) -> float | None:
        """app / reference: below 1, the app serves fewer requests per second."""
        return _ratio(self.app.requests_per_s, self.reference.requests_per_s)

    @property
    def cpu_ratio(self) -> float | None:
        """app / reference CPU per request: above 1, the app spends more on each."""
        return _ratio(self.app.cpu_ms_per_request, self.reference.cpu_ms_per_request)

    @property
    def targets(self) -> tuple[TargetSummary, ...]:
        return (self.app, self.reference)

    @property
    def valid(self) -> bool:
        return all(target.valid for target in self.targets)


@dataclass(frozen=True, slots=True)
class ServerInfo:
    name: str
    label: str
    boot: BootTimes
    rss_kib_after_load: tuple[int, ...]


@dataclass
class BackendResult:
    backend: str
    servers: list[ServerInfo]
    measurements: list[Measurement]
    connections: dict[str, int]
    warnings: list[str] = field(default_factory=list)

    def summaries(self) -> list[ScenarioSummary]:
        found = []
        for scenario in SCENARIOS:
            runs = [m for m in self.measurements if m.scenario == scenario.name and m.round > 0]
            if not runs:
                continue
            app = [run for run in runs if run.target == "app"]
            reference = [run for run in runs if run.target == scenario.against]
            found.append(
                ScenarioSummary(
                    scenario=scenario,
                    connections=self.connections[scenario.name],
                    app=TargetSummary.of("app", app),
                    reference=TargetSummary.of(scenario.against, reference),
                )
            )
        return found


@dataclass
class Report:
    started_at: datetime
    elapsed_s: float
    settings: BenchSettings
    environment: dict[str, str]
    backends: list[BackendResult]

    @property
    def valid(self) -> bool:
        return all(s.valid for backend in self.backends for s in backend.summaries())

    def to_json(self) -> dict[str, Any]:
        return {
            "started_at": self.started_at.isoformat(),
            "elapsed_s": round(self.elapsed_s, 1),
            "valid": self.valid,
            "settings": asdict(self.settings),
            "environment": self.environment,
            "server_environment": {
                "ENVIRONMENT": "test",
                "BCRYPT_ROUNDS": "12",
                "LOG_LEVEL": "info",
                "LOG_FORMAT": "json (to a file)",
                "RATE_LIMIT_LOGIN": RATE_LIMIT_LOGIN,
                "REDIS_URL": "unset",
                "CACHE_URL": self.settings.cache_url or "unset",
                "GUNICORN_MAX_REQUESTS": str(self.settings.max_requests),
            },
            "backends": [_backend_json(backend) for backend in self.backends],
        }


def _backend_json(backend: BackendResult) -> dict[str, Any]:
    return {
        "backend": backend.backend,
        "servers": [asdict(server) for server in backend.servers],
        "scenarios": [
            {
                "name": s.scenario.name,
                "title": s.scenario.title,
                "connections": s.connections,
                "compared_with": s.reference.target,
                "app": {**asdict(s.app), "valid": s.app.valid},
                "reference": {**asdict(s.reference), "valid": s.reference.valid},
                "throughput_ratio": s.throughput_ratio,
                "cpu_ratio": s.cpu_ratio,
                "valid": s.valid,
            }
            for s in backend.summaries()
        ],
        "runs": [asdict(run) | {"valid": run.valid} for run in backend.measurements],
        "warnings": backend.warnings,
    }


# --- Markdown ---------------------------------------------------------------------------------


def _number(value: float | None, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:.2f}" if value < 10 else f"{value:.1f}" if value < 100 else f"{value:.0f}"


def _pair(app: str, reference: str) -> str:
    return f"{app} / {reference}"


SCENARIO_HEADER = (
    "| scenario | conns | app req/s | ref req/s | req/s app/ref "
    "| p50 ms app / ref | p99 ms app / ref | CPU ms/req app / ref | CPU app/ref "
    "| non-2xx app / ref | socket errors app / ref | valid |\n"
    "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|:-:|"
)


def _scenario_row(s: ScenarioSummary) -> str:
    app, ref = s.app, s.reference
    cells = [
        f"`{s.scenario.title}` (vs {REFERENCE_TITLES[ref.target]})",
        str(s.connections),
        _number(app.requests_per_s),
        _number(ref.requests_per_s),
        _number(s.throughput_ratio, 2),
        _pair(_ms(app.p50_ms), _ms(ref.p50_ms)),
        _pair(_ms(app.p99_ms), _ms(ref.p99_ms)),
        _pair(_ms(app.cpu_ms_per_request), _ms(ref.cpu_ms_per_request)),
        _number(s.cpu_ratio, 2),
        _pair(str(app.non_2xx), str(ref.non_2xx)),
        _pair(str(app.socket_errors), str(ref.socket_errors)),
        "yes" if s.valid else "**NO**",
    ]
    return "| " + " | ".join(cells) + " |"


SERVER_HEADER = (
    "| server | boot to first 200 on /health | each worker's start-up complete "
    "| RSS per worker after the load |\n|---|--:|--:|--:|"
)


def _server_row(server: ServerInfo) -> str:
    ready = ", ".join(f"{seconds:.2f}" for seconds in server.boot.workers_ready_s)
    rss = ", ".join(f"{kib / 1024:.1f}" for kib in server.rss_kib_after_load)
    return (
        f"| {server.name}: {server.label} | {server.boot.first_200_s:.2f} s | {ready} s "
        f"| {rss} MiB |"
    )


def _notes(backend: BackendResult) -> list[str]:
    notes = list(backend.warnings)
    for s in backend.summaries():
        for target in s.targets:
            notes.extend(
                f"{s.scenario.name} / {target.target}: {problem}" for problem in target.problems
            )
            if target.recycled_workers:
                notes.append(
                    f"{s.scenario.name} / {target.target}: {target.recycled_workers} worker(s) "
                    "recycled during the measured rounds (GUNICORN_MAX_REQUESTS)"
                )
            if target.log_errors:
                notes.append(
                    f"{s.scenario.name} / {target.target}: {target.log_errors} error line(s) "
                    "in the server log (see the JSON)"
                )
    return notes


def backend_markdown(backend: BackendResult) -> str:
    lines = [f"## {BACKEND_TITLES.get(backend.backend, backend.backend)}", "", SCENARIO_HEADER]
    lines += [_scenario_row(s) for s in backend.summaries()]
    lines += ["", SERVER_HEADER, *(_server_row(server) for server in backend.servers)]
    notes = _notes(backend)
    if notes:
        lines += ["", "Notes:", "", *(f"- {note}" for note in notes)]
    return "\n".join(lines)


def markdown(report: Report) -> str:
    settings, env = report.settings, report.environment
    header = [
        f"# Load benchmark, {report.started_at:%Y-%m-%d %H:%M} UTC",
        "",
        f"- Code: {env['git']}; Python {env['python']}; {env['wrk']}; "
        f"{env['cpus']} CPUs ({env['cpu_model']}); total time {report.elapsed_s / 60:.1f} min.",
        f"- Each server: Gunicorn (gunicorn.conf.py) with {settings.workers} Uvicorn workers, "
        f"{_recycling(settings.max_requests)}. "
        f"Per scenario: {settings.rounds} round(s) of {settings.duration_s} s per server, app "
        f"and reference alternating, after a {settings.warmup_s} s warm-up each; wrk "
        f"{settings.threads} threads, {settings.connections} connections "
        f"(login: {settings.login_connections}), loopback.",
        "- App settings: ENVIRONMENT=test, BCRYPT_ROUNDS=12 (production cost), LOG_LEVEL=info, "
        "LOG_FORMAT=json (to a file), REDIS_URL unset, "
        f"CACHE_URL {settings.cache_url or 'unset'}, "
        f"RATE_LIMIT_LOGIN={RATE_LIMIT_LOGIN} (the login scenario is never rate limited).",
        "- req/s: all requests over all rounds; p50/p99: wrk's latency, median over rounds; "
        "CPU: user + system time of the server's workers from wrk's start until the server is "
        "idle again, per request served (wrk's, plus the one per connection left in flight). "
        "Ratios are app / ref: req/s below 1 and CPU above 1 mean the app costs more.",
        "- ref: the yardstick for the item scenarios and login (the same work in raw SQL in "
        "FastAPI routes, bench/yardstick_app.py), bare FastAPI for /health (bench/bare_app.py).",
        f"- Result: {'all runs valid' if report.valid else '**some runs are INVALID**'}.",
    ]
    sections = [backend_markdown(backend) for backend in report.backends]
    return "\n\n".join(["\n".join(header), *sections]) + "\n"


def _recycling(max_requests: int) -> str:
    if max_requests:
        return f"recycled after GUNICORN_MAX_REQUESTS={max_requests} requests (+ jitter)"
    return "no recycling (GUNICORN_MAX_REQUESTS=0, the default)"


def write_report(report: Report, directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{report.started_at:%Y%m%dT%H%M%SZ}"
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(report.to_json(), indent=2, default=str) + "\n")
    md_path.write_text(markdown(report))
    return json_path, md_path
