"""Databases of their own for the migration tests: a fresh SQLite file, or a fresh PostgreSQL
database created for the test and dropped afterwards."""

from collections.abc import Iterator

import pytest
from alembic import command
from sqlalchemy import Engine

from app.core.db import create_db_engine
from tests.conftest import alembic_config, scratch_postgres


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The URL of a new, empty database (skipped or failed like conftest's when PostgreSQL is
    down)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('migrations')}/empty.db"
        return
    with scratch_postgres("migr") as url:
        yield url


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
