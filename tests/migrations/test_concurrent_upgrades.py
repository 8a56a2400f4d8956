"""Many replicas may run `alembic upgrade head` at once: on PostgreSQL each run waits for the
migrations' advisory lock, so exactly one migrates and the others find the schema at head and
do nothing."""

import os
import subprocess
import time
from pathlib import Path

from sqlalchemy import inspect, text

from app.core.db import create_db_engine
from tests.conftest import ROOT, scratch_postgres

RUNS = 3
MIGRATION_LOCK = 0x6D6967726174696F  # alembic/env.py


def test_simultaneous_upgrades_wait_for_each_other_and_migrate_once(tmp_path: Path) -> None:
    with scratch_postgres("migrate") as database_url:
        engine = create_db_engine(database_url)
        env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        }
        try:
            with engine.connect() as holder:
                # Hold the lock, as a run in progress would: every run must queue behind it.
                holder.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
                runs = [
                    subprocess.Popen(
                        [str(ROOT / ".venv" / "bin" / "alembic"), "upgrade", "head"],
                        cwd=ROOT,
                        env=env,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                        text=True,
                    )
                    for _ in range(RUNS)
                ]
                time.sleep(3)  # long enough for every run to start and reach the lock
                assert all(run.poll() is None for run in runs)
                assert "users" not in inspect(holder).get_table_names()
                holder.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
                holder.commit()
            outputs = [run.communicate(timeout=120) for run in runs]

            assert [run.returncode for run in runs] == [0] * RUNS, outputs
            with engine.connect() as connection:
                versions = connection.execute(text("SELECT version_num FROM alembic_version"))
                assert len(versions.all()) == 1
                tables = set(inspect(connection).get_table_names())
            assert {"users", "items", "login_attempts", "idempotency_keys"} <= tables
            applied = [err for _out, err in outputs if "Running upgrade  -> " in err]
            assert len(applied) == 1, outputs
        finally:
            engine.dispose()
