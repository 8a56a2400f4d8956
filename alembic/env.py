"""Migrations for DATABASE_URL, or for a connection a caller (the tests) hands over."""

from collections.abc import Iterator
from contextlib import contextmanager
from logging.config import fileConfig
from typing import Literal

from alembic import context
from sqlalchemy import Connection, text

from app.core.config import get_settings
from app.core.db import create_db_engine
from app.models import Base
from app.models.base import UTCDateTime

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata
# A fixed advisory-lock key that only migrations take ("migratio").
MIGRATION_LOCK = 0x6D6967726174696F


def _render_item(type_: str, obj: object, _autogen_context: object) -> str | Literal[False]:
    # Migrations must not import app code that may change later: write plain SQLAlchemy types.
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def _configure(**kwargs: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        render_item=_render_item,
        render_as_batch=True,  # SQLite can only ALTER by copying the table
        **kwargs,
    )


def run_migrations_offline() -> None:
    _configure(url=get_settings().DATABASE_URL, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


@contextmanager
def _sqlite_foreign_keys_off(connection: Connection) -> Iterator[None]:
    """SQLite alters a table by copying it and dropping the old one, and with foreign keys on,
    dropping ``users`` would delete every item (ON DELETE CASCADE). The pragma is ignored inside
    a transaction, so it is set before the migrations' transaction begins; afterwards every
    reference is checked."""
    if connection.dialect.name != "sqlite":
        yield
        return
    if connection.in_transaction():
        raise RuntimeError("hand migrations a SQLite connection outside a transaction")
    dbapi_connection = connection.connection.driver_connection
    assert dbapi_connection is not None
    dbapi_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
        broken = dbapi_connection.execute("PRAGMA foreign_key_check").fetchall()
        if broken:
            raise RuntimeError(f"migrations left broken references: {broken[:5]}")
    finally:
        dbapi_connection.execute("PRAGMA foreign_keys=ON")


def _one_run_at_a_time(connection: Connection) -> None:
    """PostgreSQL: many replicas may run ``alembic upgrade head`` at once (each container's
    entrypoint, a migration Job). The first takes this lock for its transaction; the others
    wait, then find the schema at head and do nothing. SQLite's write lock does the same."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})


def _run_on(connection: Connection) -> None:
    with _sqlite_foreign_keys_off(connection):
        _configure(connection=connection)
        with context.begin_transaction():
            _one_run_at_a_time(connection)
            context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run_on(connection)
        return
    engine = create_db_engine(get_settings().DATABASE_URL)
    try:
        with engine.connect() as connection:
            _run_on(connection)
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
