"""``make bench``: the load benchmark, the app against the yardstick (the same work in raw SQL
in FastAPI routes) and, for /health, a bare FastAPI route, on SQLite and PostgreSQL.

Per backend: a fresh database, migrated and seeded (one user, BENCH_ITEMS items) and analysed;
the app and the servers it is compared with (bench/servers.py) each served by Gunicorn; then
every scenario, warm-up first, in rounds that alternate the app and its reference, with wrk
from another process. Results go to
bench/results/<timestamp>.json and .md; the table is printed too. The exit status is 0 when
every run was valid (no non-2xx, no socket error), 1 otherwise. See bench/README.md.
"""

import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import redis

from bench.databases import (
    BenchDatabase,
    DatabaseError,
    check_postgres,
    migrate_and_seed,
    scratch_database,
)
from bench.load import (
    BENCH_EMAIL,
    BENCH_PASSWORD,
    SCENARIO_NAMES,
    SCENARIOS,
    SEED_PREFIX,
    LoadError,
    Measurement,
    Scenario,
    measure,
)
from bench.procs import CommandError, install_signal_handlers
from bench.report import BackendResult, Report, ServerInfo, markdown, write_report
from bench.servers import (
    APP,
    BARE,
    YARDSTICK,
    Server,
    ServerError,
    ServerSpec,
    access_token,
    running_server,
    server_env,
)
from bench.settings import ROOT, BenchSettings, SettingsError


def log(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


@dataclass(frozen=True, slots=True)
class Bench:
    """What every scenario of one backend needs."""

    backend: str
    settings: BenchSettings
    database: BenchDatabase
    ids_file: Path
    last_seeded_id: int
    servers: dict[str, Server]


def _schedule(settings: BenchSettings, targets: Sequence[Server]) -> list[tuple[int, Server]]:
    """(round, server) in running order: warm-ups (round 0), then app, reference, app, ..."""
    warmups = [(0, server) for server in targets] if settings.warmup_s else []
    rounds = [(n, server) for n in range(1, settings.rounds + 1) for server in targets]
    return warmups + rounds


def _progress(bench: Bench, run: Measurement) -> str:
    what = "warm-up" if run.round == 0 else f"round {run.round}"
    cpu = run.cpu_ms_per_request
    verdict = "ok" if run.valid else "INVALID: " + "; ".join(run.problems)
    return (
        f"[{bench.backend}] {run.scenario:<11} {run.target:<9} {what:<8} "
        f"{run.requests_per_s:9.1f} req/s  p50 {run.wrk.latency_ms['p50']:7.2f} ms  "
        f"p99 {run.wrk.latency_ms['p99']:7.2f} ms  "
        f"CPU {'-' if cpu is None else f'{cpu:.3f}'} ms/req  {verdict}"
    )


def bench_scenario(bench: Bench, scenario: Scenario) -> list[Measurement]:
    settings = bench.settings
    app = bench.servers[APP.name]
    targets = [app, bench.servers[scenario.against]]
    for server in targets:
        server.ensure_running()
    # A fresh token per scenario: a long run must not outlive it (30 minutes).
    token = (
        access_token(app, email=BENCH_EMAIL, password=BENCH_PASSWORD)
        if scenario.authenticated
        else None
    )
    script_args = scenario.wrk_args(token=token, ids_file=bench.ids_file)
    runs = []
    for round_number, server in _schedule(settings, targets):
        run = measure(
            server,
            scenario,
            round_number=round_number,
            script_args=script_args,
            threads=settings.threads,
            connections=settings.connections_for(scenario.name),
            duration_s=settings.warmup_s if round_number == 0 else settings.duration_s,
            timeout_s=settings.timeout_s,
        )
        if scenario.writes:
            bench.database.delete_items_after(bench.last_seeded_id)
        log(_progress(bench, run))
        runs.append(run)
    return runs


def _specs(scenarios: Sequence[Scenario]) -> list[ServerSpec]:
    """The app (always: it issues the tokens) and the servers the scenarios compare it with."""
    needed = {scenario.against for scenario in scenarios}
    return [APP, *(spec for spec in (YARDSTICK, BARE) if spec.name in needed)]


def _server_info(server: Server) -> ServerInfo:
    assert server.boot is not None
    return ServerInfo(
        name=server.spec.name,
        label=server.spec.label,
        boot=server.boot,
        rss_kib_after_load=tuple(server.worker_rss_kib()),
    )


def bench_backend(backend: str, settings: BenchSettings) -> BackendResult:
    scenarios = [scenario for scenario in SCENARIOS if scenario.name in settings.scenarios]
    with ExitStack() as stack:
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="apibench-")))
        database = stack.enter_context(scratch_database(backend, directory, settings.postgres_url))
        env = server_env(
            database.url,
            workers=settings.workers,
            max_requests=settings.max_requests,
            cache_url=settings.cache_url,
        )
        log(f"[{backend}] migrating and seeding {settings.items} items ({database.url})")
        migrate_and_seed(database, env=env, items=settings.items, prefix=SEED_PREFIX)
        ids = database.item_ids(BENCH_EMAIL)
        if settings.cache_url:
            # Entries of an earlier bench database (same ids, other rows) must not be served.
            redis.Redis.from_url(settings.cache_url).flushdb()
        ids_file = directory / "item_ids.txt"
        ids_file.write_text("".join(f"{item_id}\n" for item_id in ids))
        servers: dict[str, Server] = {}
        for spec in _specs(scenarios):
            log(f"[{backend}] starting {spec.name} ({spec.target})")
            servers[spec.name] = stack.enter_context(
                running_server(
                    spec, env=env, directory=directory / spec.name, workers=settings.workers
                )
            )
        bench = Bench(backend, settings, database, ids_file, max(ids), servers)
        measurements = [run for scenario in scenarios for run in bench_scenario(bench, scenario)]
        infos = [_server_info(server) for server in servers.values()]
        log(f"[{backend}] stopping servers and removing the database")
    return BackendResult(
        backend=backend,
        servers=infos,
        measurements=measurements,
        connections={s.name: settings.connections_for(s.name) for s in scenarios},
    )


def _output(argv: Sequence[str]) -> str:
    try:
        result = subprocess.run(
            list(argv), cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except OSError:
        return ""
    return (result.stdout or result.stderr).strip()


def environment() -> dict[str, str]:
    commit = _output(["git", "rev-parse", "--short", "HEAD"]) or "unknown commit"
    dirty = _output(["git", "status", "--porcelain", "--untracked-files=no"])
    return {
        "git": f"{commit}{' with uncommitted changes' if dirty else ''}",
        "python": platform.python_version(),
        "wrk": _output(["wrk", "--version"]).splitlines()[0].split(" Copyright")[0]
        if shutil.which("wrk")
        else "no wrk",
        "cpus": str(os.cpu_count()),
        "cpu_model": _cpu_model() or platform.machine() or "unknown CPU",
    }


def _cpu_model() -> str | None:
    """The "Model name" lscpu reports (its JSON nests fields in some versions)."""
    try:
        fields: list[dict[str, Any]] = json.loads(_output(["lscpu", "--json"]))["lscpu"]
    except (ValueError, KeyError, TypeError):
        return None
    while fields:
        field = fields.pop()
        if field.get("field") == "Model name:" and field.get("data"):
            return str(field["data"])
        fields.extend(field.get("children", []))
    return None


def _preflight(settings: BenchSettings) -> None:
    if shutil.which("wrk") is None:
        raise LoadError("wrk is not installed: apt-get install -y wrk (make bench does it as root)")
    if "postgresql" in settings.backends:
        check_postgres(settings.postgres_url)


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def run(settings: BenchSettings) -> int:
    _preflight(settings)
    started_at, started = datetime.now(UTC), time.monotonic()
    scenarios = [scenario for scenario in SCENARIOS if scenario.name in settings.scenarios]
    minutes = settings.estimated_seconds([2] * len(scenarios)) / 60
    log(
        f"bench: {', '.join(settings.backends)}; {', '.join(settings.scenarios)}; "
        f"{settings.rounds} x {settings.duration_s} s per server and scenario "
        f"(about {minutes:.0f} min of load, plus start-up)"
    )
    backends = [bench_backend(backend, settings) for backend in settings.backends]
    report = Report(started_at, time.monotonic() - started, settings, environment(), backends)
    json_path, md_path = write_report(report, settings.results_dir)
    sys.stdout.write(markdown(report))
    sys.stdout.flush()
    log(f"bench: wrote {_shown(json_path)} and {_shown(md_path)}")
    if not report.valid:
        log("bench: some runs are INVALID (non-2xx responses or socket errors): see Notes")
    return 0 if report.valid else 1


def main() -> int:
    install_signal_handlers()
    try:
        settings = BenchSettings.from_env(os.environ, SCENARIO_NAMES)
        return run(settings)
    except SettingsError as exc:
        log(f"bench: {exc}")
        return 2
    except (CommandError, DatabaseError, LoadError, ServerError) as exc:
        log(f"bench: {exc}")
        return 1
    except KeyboardInterrupt as exc:
        log(f"bench: interrupted ({str(exc) or 'Ctrl-C'}); servers stopped, databases removed")
        return 130


if __name__ == "__main__":
    sys.exit(main())
