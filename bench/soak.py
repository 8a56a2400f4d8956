"""``python -m bench.soak``: the app under steady load for a long while, at the default
configuration, counting every failed request and watching the workers' memory.

PostgreSQL (``BENCH_POSTGRES_URL``), Gunicorn with 2 workers as ``gunicorn.conf.py`` sets it up
(worker recycling as configured: ``GUNICORN_MAX_REQUESTS`` from the environment, else the
default), wrk with 16 connections cycling through item get, list and create one minute at a
time for ``SOAK_MINUTES`` (default 10). Prints one line per minute and a summary: requests,
non-2xx, socket errors, and each worker's resident memory after the first (warm-up) minute and
at the end. Exits 1 when any request failed.
"""

import os
import sys
import tempfile
from pathlib import Path

from bench.databases import check_postgres, migrate_and_seed, scratch_database
from bench.load import BENCH_EMAIL, BENCH_PASSWORD, SCENARIOS, SEED_PREFIX, measure
from bench.procs import install_signal_handlers
from bench.servers import APP, access_token, running_server, server_env
from bench.settings import BenchSettings

CONNECTIONS = 16
ROUND_S = 60
MIX = ("item_get", "item_list", "item_create")


def log(message: str) -> None:
    sys.stderr.write(f"{message}\n")
    sys.stderr.flush()


def soak(minutes: int, postgres_url: str) -> int:
    check_postgres(postgres_url)
    scenarios = {scenario.name: scenario for scenario in SCENARIOS}
    max_requests = int(os.environ.get("GUNICORN_MAX_REQUESTS", "-1"))
    with tempfile.TemporaryDirectory(prefix="apisoak-") as temp:
        directory = Path(temp)
        with scratch_database("postgresql", directory, postgres_url) as database:
            env = dict(server_env(database.url, workers=2, max_requests=max(max_requests, 0)))
            if max_requests < 0:  # the configuration's own default
                env.pop("GUNICORN_MAX_REQUESTS", None)
                env.pop("GUNICORN_MAX_REQUESTS_JITTER", None)
            migrate_and_seed(database, env=env, items=1000, prefix=SEED_PREFIX)
            ids = database.item_ids(BENCH_EMAIL)
            ids_file = directory / "item_ids.txt"
            ids_file.write_text("".join(f"{item_id}\n" for item_id in ids))
            with running_server(APP, env=env, directory=directory / "app", workers=2) as server:
                rss_warm: list[int] = []
                totals = {"requests": 0, "non_2xx": 0, "socket_errors": 0}
                for minute in range(minutes):
                    scenario = scenarios[MIX[minute % len(MIX)]]
                    token = access_token(server, email=BENCH_EMAIL, password=BENCH_PASSWORD)
                    run = measure(
                        server,
                        scenario,
                        round_number=minute + 1,
                        script_args=scenario.wrk_args(token=token, ids_file=ids_file),
                        threads=2,
                        connections=CONNECTIONS,
                        duration_s=ROUND_S,
                        timeout_s=10,
                    )
                    totals["requests"] += run.wrk.requests
                    totals["non_2xx"] += run.wrk.non_2xx
                    totals["socket_errors"] += run.wrk.socket_errors
                    log(
                        f"minute {minute + 1:>2} {scenario.name:<11} "
                        f"{run.requests_per_s:7.1f} req/s  non-2xx {run.wrk.non_2xx}  "
                        f"socket errors {run.wrk.socket_errors}  "
                        f"RSS {server.worker_rss_kib()} KiB"
                    )
                    if minute == 0:  # after a minute of load: caches and pools are warm
                        rss_warm = server.worker_rss_kib()
                rss_end = server.worker_rss_kib()
    recycling = "default" if max_requests < 0 else str(max_requests)
    sys.stdout.write(
        f"soak: {minutes} min, GUNICORN_MAX_REQUESTS {recycling}, {CONNECTIONS} connections: "
        f"{totals['requests']} requests, {totals['non_2xx']} non-2xx, "
        f"{totals['socket_errors']} socket errors; "
        f"worker RSS after the first minute {rss_warm} -> at the end {rss_end} KiB\n"
    )
    return 0 if totals["non_2xx"] == totals["socket_errors"] == 0 else 1


def main() -> int:
    install_signal_handlers()
    settings = BenchSettings.from_env(os.environ, tuple(s.name for s in SCENARIOS))
    return soak(int(os.environ.get("SOAK_MINUTES", "10")), settings.postgres_url)


if __name__ == "__main__":
    sys.exit(main())
