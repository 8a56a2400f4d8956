"""The yardstick's database access (bench/yardstick_app.py): the DB-API drivers the app's engine
uses (psycopg2, sqlite3), configured as the app configures them, one connection per thread.

Reads run in autocommit mode (no ``BEGIN`` or ``COMMIT`` round trip, no write lock on SQLite);
a write is one transaction, committed before the response.
"""

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from functools import cache
from typing import Any, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg2  # type: ignore[import-untyped]

# The app's values (app.core.db).
SQLITE_BUSY_TIMEOUT_S = 5.0
POSTGRES_CONNECT_TIMEOUT_S = 2
POSTGRES_STATEMENT_TIMEOUT_MS = 15000


class Cursor(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> object: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Database(Protocol):
    def unit_of_work(self, *, write: bool) -> AbstractContextManager[Cursor]: ...

    def sql(self, statement: str) -> str:
        """``statement`` (written with ``%s`` placeholders) in the driver's parameter style."""

    def timestamp(self, value: Any) -> datetime:
        """A stored timestamp as an aware UTC datetime."""

    def bind_timestamp(self, value: datetime) -> Any:
        """A timestamp as the app's engine stores it."""


class PostgresDatabase:
    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        self._dsn = urlunsplit(parts._replace(scheme=parts.scheme.split("+", 1)[0]))
        self._local = threading.local()

    def _connection(self) -> Any:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = psycopg2.connect(
                self._dsn,
                connect_timeout=POSTGRES_CONNECT_TIMEOUT_S,
                options=f"-c statement_timeout={POSTGRES_STATEMENT_TIMEOUT_MS}",
            )
            self._local.connection = connection
        return connection

    @contextmanager
    def unit_of_work(self, *, write: bool) -> Iterator[Cursor]:
        # psycopg2 sends BEGIN before a write's first statement by itself.
        connection = self._connection()
        if connection.autocommit == write:  # a client-side switch: no round trip
            connection.autocommit = not write
        try:
            with connection.cursor() as cursor:
                yield cursor
        except BaseException:
            if connection.closed:  # the server went away: reconnect on the next request
                self._local.connection = None
            elif write:
                connection.rollback()
            raise
        else:
            if write:
                connection.commit()

    def sql(self, statement: str) -> str:
        return statement

    def timestamp(self, value: Any) -> datetime:
        moment: datetime = value
        return moment.astimezone(UTC)

    def bind_timestamp(self, value: datetime) -> Any:
        return value


class SQLiteDatabase:
    """WAL, busy timeout and foreign keys, as the app's engine sets them."""

    def __init__(self, url: str) -> None:
        self._path = url.removeprefix("sqlite:///")
        self._local = threading.local()

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = sqlite3.connect(
                self._path, timeout=SQLITE_BUSY_TIMEOUT_S, isolation_level=None
            )
            connection.execute("PRAGMA foreign_keys=ON")
            connection.execute(f"PRAGMA busy_timeout={int(SQLITE_BUSY_TIMEOUT_S * 1000)}")
            connection.execute("PRAGMA journal_mode=WAL")
            connection.execute("PRAGMA synchronous=NORMAL")
            self._local.connection = connection
        return connection

    @contextmanager
    def unit_of_work(self, *, write: bool) -> Iterator[Cursor]:
        # A write takes the lock up front (BEGIN IMMEDIATE), as the app does.
        cursor = self._connection().cursor()
        try:
            if write:
                cursor.execute("BEGIN IMMEDIATE")
            yield cursor
        except BaseException:
            if cursor.connection.in_transaction:
                cursor.execute("ROLLBACK")
            raise
        else:
            if write:
                cursor.execute("COMMIT")
        finally:
            cursor.close()

    def sql(self, statement: str) -> str:
        return _qmark(statement)

    def timestamp(self, value: Any) -> datetime:
        # SQLAlchemy stores "YYYY-MM-DD HH:MM:SS.ffffff", UTC without an offset.
        return datetime.fromisoformat(str(value)).replace(tzinfo=UTC)

    def bind_timestamp(self, value: datetime) -> Any:
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


@cache
def _qmark(statement: str) -> str:
    return statement.replace("%s", "?")


def open_database(url: str) -> Database:
    """The database of a SQLAlchemy URL (``sqlite:///...`` or ``postgresql+psycopg2://...``)."""
    if url.startswith("sqlite"):
        return SQLiteDatabase(url)
    return PostgresDatabase(url)
