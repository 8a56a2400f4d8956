"""The engine's transaction handling on each backend: read sessions hold no transaction, and a
pooled connection always comes back ready for a real one."""

import sqlite3
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from app.core import db
from app.models import User


@pytest.fixture
def single_connection_engine(engine: Engine) -> Iterator[Engine]:
    """The backend's database behind a pool of one connection, so every session reuses it."""
    url = engine.url.render_as_string(hide_password=False)
    single = db.create_db_engine(url, pool_size=1, max_overflow=0)
    yield single
    single.dispose()


def in_transaction(session: Session) -> bool:
    dbapi_connection: Any = session.connection().connection.dbapi_connection
    if hasattr(dbapi_connection, "in_transaction"):  # sqlite3
        return bool(dbapi_connection.in_transaction)
    import psycopg2.extensions

    return bool(
        dbapi_connection.info.transaction_status != psycopg2.extensions.TRANSACTION_STATUS_IDLE
    )


def read_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine.execution_options(**{db.AUTOCOMMIT_OPTION: True}))


def test_a_read_session_holds_no_transaction(single_connection_engine: Engine) -> None:
    with read_sessions(single_connection_engine)() as session:
        session.execute(text("SELECT 1"))

        assert not in_transaction(session)


def test_a_write_session_after_a_read_gets_a_transaction(
    single_connection_engine: Engine,
) -> None:
    with read_sessions(single_connection_engine)() as session:
        session.execute(text("SELECT 1"))

    with Session(single_connection_engine) as session:
        session.execute(text("SELECT 1"))

        assert in_transaction(session)


def test_a_write_after_a_read_is_rolled_back_whole(single_connection_engine: Engine) -> None:
    with read_sessions(single_connection_engine)() as session:
        session.execute(text("SELECT 1"))
    with Session(single_connection_engine) as session:
        session.add(User(email="rolled@example.com", username="rolled", hashed_password="x"))
        session.flush()
        session.rollback()

    with read_sessions(single_connection_engine)() as session:
        count = session.scalar(text("SELECT count(*) FROM users WHERE username = 'rolled'"))

    assert count == 0


def test_a_pinged_idle_connection_serves_a_read_session(
    single_connection_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every checkout counts as idle, so the (PostgreSQL) ping runs before the session starts.
    monkeypatch.setattr(db, "IDLE_PING_AFTER_S", 0.0)
    for _ in range(2):
        with read_sessions(single_connection_engine)() as session:
            assert session.scalar(text("SELECT 1")) == 1
            assert not in_transaction(session)


# --- SQLite: a request's transaction takes the write lock at its first write ---------------


@pytest.fixture
def sqlite_engine(engine: Engine) -> Engine:
    if engine.dialect.name != "sqlite":
        pytest.skip("SQLite's database-wide write lock")
    return engine


def request_sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine.execution_options(**{db.LOCK_AT_FIRST_WRITE_OPTION: True}))


def other_writer_gets_in(engine: Engine) -> bool:
    """Whether another connection can take the write lock right now."""
    connection = sqlite3.connect(str(engine.url.database), timeout=0.05, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:  # database is locked
        return False
    finally:
        connection.close()


def test_a_request_session_reads_without_the_write_lock(sqlite_engine: Engine) -> None:
    with request_sessions(sqlite_engine)() as session:
        session.execute(text("SELECT count(*) FROM users")).scalar()

        assert not in_transaction(session)
        assert other_writer_gets_in(sqlite_engine)


def test_a_request_session_holds_the_lock_from_its_first_write_to_its_end(
    sqlite_engine: Engine,
) -> None:
    with request_sessions(sqlite_engine)() as session:
        session.execute(text("SELECT count(*) FROM users")).scalar()
        session.execute(text("DELETE FROM users WHERE id = -1"))

        assert in_transaction(session)
        assert not other_writer_gets_in(sqlite_engine)
        session.rollback()

    assert other_writer_gets_in(sqlite_engine)


def test_take_write_lock_holds_it_before_any_write(sqlite_engine: Engine) -> None:
    with request_sessions(sqlite_engine)() as session:
        db.take_write_lock(session)

        assert not other_writer_gets_in(sqlite_engine)
        session.rollback()


# --- PostgreSQL: the statement timeout travels with each transaction ------------------------


@pytest.fixture
def postgres_engine(single_connection_engine: Engine) -> Engine:
    if single_connection_engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL's statement_timeout")
    return single_connection_engine


def server_default_timeout(engine: Engine) -> str:
    """statement_timeout as the pooled connection's session sees it, read through the driver
    (which the engine's events never rewrite)."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("SHOW statement_timeout")
        (value,) = cursor.fetchone()
        connection.rollback()
        return str(value)
    finally:
        connection.close()


def test_connections_send_no_startup_options(postgres_engine: Engine) -> None:
    # PgBouncer refuses a client that sends the "options" startup parameter.
    connection = postgres_engine.raw_connection()
    try:
        dbapi_connection: Any = connection.dbapi_connection
        parameters = dbapi_connection.get_dsn_parameters()
    finally:
        connection.close()

    assert not parameters.get("options")


def test_every_statement_of_a_read_session_is_bounded(postgres_engine: Engine) -> None:
    with read_sessions(postgres_engine)() as session:
        first = session.scalar(text("SHOW statement_timeout"))
        second = session.scalar(text("SHOW statement_timeout"))

    assert first == second == "15s"


def test_a_transaction_is_bounded_from_its_first_statement_to_its_end(
    postgres_engine: Engine,
) -> None:
    with Session(postgres_engine) as session:
        session.execute(text("SELECT 1"))
        later = session.scalar(text("SHOW statement_timeout"))

        assert in_transaction(session)
        assert later == "15s"


def test_a_streamed_read_is_bounded_too(postgres_engine: Engine) -> None:
    with Session(postgres_engine) as session:
        result = session.execute(
            text("SELECT current_setting('statement_timeout')"),
            execution_options={"stream_results": True},
        )

        assert result.scalar() == "15s"


def test_a_statement_past_its_own_timeout_is_cancelled(postgres_engine: Engine) -> None:
    with read_sessions(postgres_engine)() as session, pytest.raises(OperationalError) as caught:
        session.execute(
            text("SELECT pg_sleep(2)"), execution_options={db.STATEMENT_TIMEOUT_OPTION: 50}
        )

    assert "statement timeout" in str(caught.value)


def test_no_timeout_is_left_on_the_server_connection(postgres_engine: Engine) -> None:
    # Behind a transaction pooler the next transaction on this server connection may be
    # another client's: it must find the server's own setting, not ours.
    before = server_default_timeout(postgres_engine)
    with read_sessions(postgres_engine)() as session:
        session.execute(text("SELECT 1"), execution_options={db.STATEMENT_TIMEOUT_OPTION: 2000})
    with Session(postgres_engine) as session:
        session.execute(text("SELECT 1"))
        session.commit()

    assert server_default_timeout(postgres_engine) == before != "2s"
