"""The benchmark's database: a fresh SQLite file or PostgreSQL database per run, migrated and
seeded through the project's own tools, and removed afterwards."""

import secrets
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]

from bench.procs import run_command, signals_deferred
from bench.settings import ROOT, VENV_BIN

CONNECT_TIMEOUT_S = 5


class DatabaseError(RuntimeError):
    """The benchmark database cannot be created or reached."""


def libpq_dsn(url: str) -> str:
    """``postgresql+psycopg2://...`` (SQLAlchemy) as a URI libpq accepts."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))


def with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


@dataclass(frozen=True, slots=True)
class BenchDatabase:
    """One scratch database: ``url`` is what the app and the yardstick get as DATABASE_URL."""

    backend: str
    url: str

    @property
    def sqlite_path(self) -> str:
        return self.url.removeprefix("sqlite:///")

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode (``%s`` placeholders on both backends)."""
        if self.backend == "sqlite":
            with closing(sqlite3.connect(self.sqlite_path, isolation_level=None)) as connection:
                return connection.execute(sql.replace("%s", "?"), tuple(params)).fetchall()
        connection = psycopg2.connect(libpq_dsn(self.url), connect_timeout=CONNECT_TIMEOUT_S)
        try:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(sql, tuple(params))
                return list(cursor.fetchall()) if cursor.description else []
        finally:
            connection.close()

    def analyze(self) -> None:
        """Planner statistics, as after a routine maintenance run."""
        self.query("ANALYZE" if self.backend == "sqlite" else "VACUUM ANALYZE")

    def item_ids(self, owner_email: str) -> list[int]:
        rows = self.query(
            "SELECT items.id FROM items JOIN users ON users.id = items.owner_id "
            "WHERE users.email = %s ORDER BY items.id",
            (owner_email,),
        )
        return [int(row[0]) for row in rows]

    def delete_items_after(self, last_id: int) -> int:
        """Remove rows a write scenario added, so every run sees the same table; returns how
        many there were."""
        count = int(self.query("SELECT count(*) FROM items WHERE id > %s", (last_id,))[0][0])
        if count:
            self.query("DELETE FROM items WHERE id > %s", (last_id,))
            self.query("ANALYZE items" if self.backend == "sqlite" else "VACUUM ANALYZE items")
        return count


def check_postgres(server_url: str) -> None:
    """Fail early, before the SQLite half has run, when PostgreSQL is unreachable."""
    try:
        psycopg2.connect(libpq_dsn(server_url), connect_timeout=CONNECT_TIMEOUT_S).close()
    except psycopg2.Error as exc:
        raise DatabaseError(
            f"PostgreSQL is unreachable at {server_url} ({str(exc).strip()}); set "
            "BENCH_POSTGRES_URL, or BENCH_BACKENDS=sqlite to skip it"
        ) from None


def _postgres_admin(server_url: str, sql: str) -> None:
    connection = psycopg2.connect(libpq_dsn(server_url), connect_timeout=CONNECT_TIMEOUT_S)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(sql)
    finally:
        connection.close()


@contextmanager
def scratch_postgres(server_url: str) -> Iterator[BenchDatabase]:
    """A database created for this run on ``server_url``'s server, dropped afterwards (with
    whatever connections are still open to it)."""
    name = f"apibench_{secrets.token_hex(6)}"
    _postgres_admin(server_url, f'CREATE DATABASE "{name}"')
    try:
        yield BenchDatabase("postgresql", with_database(server_url, name))
    finally:
        with signals_deferred():
            _postgres_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextmanager
def scratch_database(backend: str, directory: Path, postgres_url: str) -> Iterator[BenchDatabase]:
    if backend == "sqlite":
        # Lives in the run's temporary directory, removed with it.
        yield BenchDatabase("sqlite", f"sqlite:///{directory / 'bench.db'}")
        return
    with scratch_postgres(postgres_url) as database:
        yield database


def migrate_and_seed(
    database: BenchDatabase, *, env: Mapping[str, str], items: int, prefix: str
) -> None:
    """Schema through Alembic, one user with ``items`` items through the ops CLI (as the
    README tells operators to), then planner statistics."""
    run_command([str(VENV_BIN / "alembic"), "upgrade", "head"], env=env, cwd=ROOT, timeout_s=120)
    run_command(
        [
            str(VENV_BIN / "python"),
            "-m",
            "app.cli",
            "seed-demo",
            "--users",
            "1",
            "--items-per-user",
            str(items),
            "--prefix",
            prefix,
        ],
        env=env,
        cwd=ROOT,
        timeout_s=300,
    )
    database.analyze()
