"""Databases of their own for the migration tests: a fresh SQLite file, or a fresh PostgreSQL
database created for the test and dropped afterwards."""

import uuid
from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

from app.core.db import create_db_engine
from tests.conftest import alembic_config, require_postgres


def _create_postgres_database() -> tuple[Engine, str, str]:
    server_url = make_url(require_postgres())
    name = f"migr_{uuid.uuid4().hex[:12]}"
    maintenance = create_db_engine(
        server_url.set(database="postgres").render_as_string(hide_password=False),
        isolation_level="AUTOCOMMIT",
    )
    with maintenance.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    return maintenance, name, server_url.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a new, empty database (skipped or failed like conftest's when PostgreSQL is
    down)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('migrations')}/empty.db"
        return
    maintenance, name, url = _create_postgres_database()
    try:
        yield url
    finally:
        with maintenance.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        maintenance.dispose()


@pytest.fixture
def empty_engine(database_url: str) -> Iterator[Engine]:
    engine = create_db_engine(database_url)
    yield engine
    engine.dispose()


def upgrade(engine: Engine, revision: str = "head") -> None:
    with engine.connect() as connection:  # alembic commits (see alembic/env.py for SQLite)
        command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    with engine.connect() as connection:
        command.downgrade(alembic_config(connection), revision)
