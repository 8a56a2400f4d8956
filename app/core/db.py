"""Engines and session factories (the request's unit of work is ``app.api.unit_of_work``).

SQLite is configured so several Gunicorn worker processes can share one file: WAL (readers never
block the writer), a busy timeout, foreign keys, and ``BEGIN IMMEDIATE`` so a transaction takes
the write lock before it writes instead of failing with "database is locked" when a read turns
into a write halfway through. A request's transaction takes it at its first write (reads before
it run on their own), so the lock is held only from the write to the commit; read-only
requests run in autocommit mode and take no lock.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

from app.core.config import get_settings
from app.core.metrics import DB_POOL_CHECKED_OUT

SQLITE_BUSY_TIMEOUT_MS = 5000
CONNECT_TIMEOUT_S = 2
# Bounds every statement, so a stuck query or lock frees its worker thread instead of hanging it.
POSTGRES_STATEMENT_TIMEOUT_MS = 15000
# An execution option: another statement timeout (milliseconds) for the transaction a statement
# starts, such as the readiness probe's shorter one.
STATEMENT_TIMEOUT_OPTION = "statement_timeout_ms"
IDLE_PING_AFTER_S = 10.0
SEPARATE_POOL_SIZE = 2
# An execution option: sessions on ``engine.execution_options(session_autocommit=True)`` run every
# statement in its own transaction, so ending one costs no COMMIT (and on SQLite no lock).
AUTOCOMMIT_OPTION = "session_autocommit"
# An execution option for SQLite: the transaction takes the database's write lock at its first
# statement that is not a SELECT, instead of at its first statement. Reads before it run on
# their own, each seeing the latest commit (as every statement of a PostgreSQL READ COMMITTED
# transaction does), so the one write lock is held for as short a time as possible.
LOCK_AT_FIRST_WRITE_OPTION = "sqlite_lock_at_first_write"
_TAKE_NO_LOCK = ("SELECT", "PRAGMA", "BEGIN")
_TRANSACTION_STATUS_IDLE = 0  # psycopg2.extensions.TRANSACTION_STATUS_IDLE
_BOUNDED_PING = f"SET LOCAL statement_timeout = {POSTGRES_STATEMENT_TIMEOUT_MS}; SELECT 1"


def _unicode_lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy (pysqlite's own BEGIN is deferred).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()
        # SQLite's own lower() folds ASCII only, so case-insensitive search (lower() LIKE
        # lower()) would miss "École" for "école"; Python's folds Unicode like PostgreSQL's.
        dbapi_connection.create_function("lower", 1, _unicode_lower, deterministic=True)

    @event.listens_for(engine, "begin")
    def begin_immediate(connection: Any) -> None:
        # Autocommit: pysqlite (isolation_level=None) runs each statement on its own and takes
        # no write lock; everything else takes the lock up front, or at its first write.
        options = connection.get_execution_options()
        if not options.get(AUTOCOMMIT_OPTION) and not options.get(LOCK_AT_FIRST_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine, "before_cursor_execute")
    def begin_immediate_at_first_write(
        connection: Any, cursor: Any, statement: str, *_args: Any
    ) -> None:
        if (
            connection.get_execution_options().get(LOCK_AT_FIRST_WRITE_OPTION)
            and not connection.connection.dbapi_connection.in_transaction
            and not statement.lstrip()[:6].upper().startswith(_TAKE_NO_LOCK)
        ):
            cursor.execute("BEGIN IMMEDIATE")


def _configure_postgres(engine: Engine) -> None:
    # psycopg2's ``autocommit`` is a client-side flag while the session's characteristics are
    # the server's defaults. SQLAlchemy's isolation_level="AUTOCOMMIT" would instead restore
    # READ COMMITTED explicitly at check-in, after which psycopg2 sends SET round trips on every
    # switch: two extra statements per read.
    @event.listens_for(engine, "begin")
    def begin_in_autocommit(connection: Any) -> None:
        if connection.get_execution_options().get(AUTOCOMMIT_OPTION):
            pooled = connection.connection
            pooled.dbapi_connection.autocommit = True
            pooled.info[AUTOCOMMIT_OPTION] = True

    @event.listens_for(engine, "checkin")
    def leave_autocommit(dbapi_connection: Any, record: Any) -> None:
        # Only what begin_in_autocommit switched on (an engine may be in autocommit itself).
        if record.info.pop(AUTOCOMMIT_OPTION, False) and dbapi_connection is not None:
            dbapi_connection.autocommit = False


def _bound_every_transaction(engine: Engine) -> None:
    """Send the statement timeout with the first statement of each server-side transaction.

    Not as a startup option (``-c statement_timeout``) nor a session-level SET: behind a
    transaction-pooling PgBouncer a client's consecutive transactions run on whichever server
    connection is free, so session state set by one client reaches others or is lost, and
    PgBouncer refuses the ``options`` startup parameter outright. ``SET LOCAL`` lasts exactly
    one transaction; prefixed to the statement that starts it, it costs no round trip (a
    simple query of several statements runs as one transaction, in autocommit too).

    A connection in autocommit for a reason of its own (``isolation_level="AUTOCOMMIT"``, used
    for statements that cannot run inside a transaction, such as CREATE DATABASE) is left as is.
    """

    @event.listens_for(engine, "before_cursor_execute", retval=True)
    def set_local_timeout(
        connection: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> tuple[str, Any]:
        pooled = connection.connection
        dbapi_connection = pooled.dbapi_connection
        if dbapi_connection.info.transaction_status != _TRANSACTION_STATUS_IDLE or (
            dbapi_connection.autocommit and not pooled.info.get(AUTOCOMMIT_OPTION)
        ):
            return statement, parameters
        options = context.execution_options if context is not None else {}
        timeout_ms = int(options.get(STATEMENT_TIMEOUT_OPTION, POSTGRES_STATEMENT_TIMEOUT_MS))
        set_local = f"SET LOCAL statement_timeout = {timeout_ms}"
        if cursor.name is not None:
            # A server-side cursor: psycopg2 wraps its statement in DECLARE, which takes one
            # statement, so the timeout goes first, in a round trip of its own.
            with dbapi_connection.cursor() as setter:
                setter.execute(set_local)
            return statement, parameters
        return f"{set_local}; {statement}", parameters


def _ping_idle_connections(engine: Engine) -> None:
    """Check a connection that sat in the pool for a while before handing it out.

    Cheaper than ``pool_pre_ping`` (a round trip on every checkout): connections in steady use
    are not pinged, and one that went stale during an outage is replaced before a request uses
    it. A connection that breaks while busy fails that request with a 503, and SQLAlchemy then
    invalidates the whole pool, so the service recovers by itself either way.
    """

    @event.listens_for(engine, "checkin")
    def remember_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < IDLE_PING_AFTER_S:
            return
        try:
            cursor = dbapi_connection.cursor()
            cursor.execute(_BOUNDED_PING if engine.dialect.name == "postgresql" else "SELECT 1")
            cursor.close()
            dbapi_connection.rollback()  # no transaction left open for the session to find
        except Exception as exc:
            raise DisconnectionError("stale pooled connection") from exc  # the pool retries


def _count_checked_out(engine: Engine) -> None:
    @event.listens_for(engine, "checkout")
    def checked_out(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.inc()

    @event.listens_for(engine, "checkin")
    def checked_in(*_args: Any) -> None:
        DB_POOL_CHECKED_OUT.dec()


def create_db_engine(url: str, **kwargs: Any) -> Engine:
    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        database = sa_url.database
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # check_same_thread=False: FastAPI runs a sync dependency and its route in different
        # threadpool threads; the pool still hands a connection to one thread at a time.
        engine = create_engine(
            sa_url,
            connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            **kwargs,
        )
        _configure_sqlite(engine)
        return engine
    connect_args: dict[str, Any] = {}
    if sa_url.get_backend_name() == "postgresql":
        connect_args = {"connect_timeout": CONNECT_TIMEOUT_S}
    engine = create_engine(sa_url, connect_args=connect_args, **kwargs)
    if sa_url.get_backend_name() == "postgresql":
        _configure_postgres(engine)
        _bound_every_transaction(engine)
    _ping_idle_connections(engine)
    return engine


# max_overflow=0: at most DB_POOL_SIZE requests hold a session at once (see
# app.api.admission), so every admitted request finds a connection.
engine = create_db_engine(
    get_settings().DATABASE_URL, pool_size=get_settings().DB_POOL_SIZE, max_overflow=0
)
_count_checked_out(engine)
SessionLocal = sessionmaker(
    engine.execution_options(**{LOCK_AT_FIRST_WRITE_OPTION: True}), expire_on_commit=False
)
# Same pool; statements commit as they run, so ending the request costs no round trip.
ReadOnlySessionLocal = sessionmaker(
    engine.execution_options(**{AUTOCOMMIT_OPTION: True}), expire_on_commit=False
)


def take_write_lock(session: Session) -> None:
    """SQLite: hold the database's write lock from now until the transaction ends, as a
    request session otherwise does only from its first write (PostgreSQL: nothing to do)."""
    if session.get_bind().dialect.name == "sqlite":
        connection = session.connection()
        if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
            connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def unit_of_work(session: Session) -> Iterator[Session]:
    """Commit when the block succeeds, roll back when it raises."""
    try:
        yield session
    except BaseException:
        session.rollback()
        raise
    else:
        session.commit()


# Login attempts are counted in short units of work on connections of their own
# (app.services.login_budget), committed before the password is checked: the count binds every
# worker at once, whatever becomes of the request. A pool of its own, so a request holding a
# connection never waits for another from its own pool.
_separate_engine = create_db_engine(
    get_settings().DATABASE_URL, pool_size=SEPARATE_POOL_SIZE, max_overflow=0
)
SeparateSessionLocal = sessionmaker(_separate_engine, expire_on_commit=False)
# Every engine the service's requests use (app.core.tracing traces their statements).
ENGINES = (engine, _separate_engine)


@contextmanager
def separate_unit_of_work() -> Iterator[Session]:
    """A unit of work apart from the request's, committed when the block ends."""
    with SeparateSessionLocal() as session, unit_of_work(session):
        yield session
