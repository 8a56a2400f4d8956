"""The ops CLI (python -m app.cli), run in-process against the test database."""

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from app.cli import DEMO_PASSWORD, cli
from app.core import db
from app.core.roles import Role
from app.core.security import verify_password
from app.models import Item, User

runner = CliRunner()


@pytest.fixture
def cli_sessions(
    committing_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> sessionmaker[Session]:
    monkeypatch.setattr(db, "SessionLocal", committing_sessions)
    return committing_sessions


def stored_user(sessions: sessionmaker[Session], email: str) -> User | None:
    with sessions() as session:
        return session.scalar(select(User).where(User.email == email))


def test_create_admin_reads_the_password_from_stdin(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "Root@Example.com", "--username", "root", "--password-stdin"],
        input="s3cret-password\n",
    )

    admin = stored_user(cli_sessions, "root@example.com")
    assert result.exit_code == 0, result.output
    assert admin is not None
    assert admin.role == Role.ADMIN
    assert admin.is_active
    assert verify_password("s3cret-password", admin.hashed_password)
    assert "s3cret-password" not in result.output


def test_create_admin_prompts_twice_for_the_password(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "ops@example.com", "--username", "ops"],
        input="s3cret-password\ns3cret-password\n",
    )

    assert result.exit_code == 0, result.output
    assert stored_user(cli_sessions, "ops@example.com") is not None


def test_create_admin_has_no_password_argument(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "a@example.com", "--username", "abc", "--password", "x1"],
    )

    assert result.exit_code == 2
    assert "No such option" in result.output


def test_create_admin_refuses_a_weak_password(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(
        cli,
        ["create-admin", "--email", "weak@example.com", "--username", "weak", "--password-stdin"],
        input="short\n",
    )

    assert result.exit_code == 1
    assert "password" in result.output
    assert stored_user(cli_sessions, "weak@example.com") is None


def test_create_admin_refuses_a_taken_email(cli_sessions: sessionmaker[Session]) -> None:
    args = ["create-admin", "--email", "dup@example.com", "--password-stdin"]
    runner.invoke(cli, [*args, "--username", "dup1"], input="s3cret-password\n")

    result = runner.invoke(cli, [*args, "--username", "dup2"], input="s3cret-password\n")

    assert result.exit_code == 1
    assert "already exists" in result.output


def test_seed_demo_creates_users_with_items(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(
        cli, ["seed-demo", "--users", "3", "--items-per-user", "7", "--prefix", "demo"]
    )

    with cli_sessions() as session:
        users = session.scalars(select(User).order_by(User.email)).all()
        items = session.scalar(select(func.count()).select_from(Item))
    assert result.exit_code == 0, result.output
    assert [u.email for u in users] == [f"demo{n}@example.com" for n in (1, 2, 3)]
    assert all(u.role == Role.USER for u in users)
    assert verify_password(DEMO_PASSWORD, users[0].hashed_password)
    assert items == 21


def test_seed_demo_rejects_bad_arguments(cli_sessions: sessionmaker[Session]) -> None:
    result = runner.invoke(cli, ["seed-demo", "--users", "0"])

    assert result.exit_code == 2
    assert "--users" in result.output


def test_seed_demo_is_refused_in_production(
    cli_sessions: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("BCRYPT_ROUNDS", "12")

    result = runner.invoke(cli, ["seed-demo", "--users", "1"])

    assert result.exit_code == 1
    assert "production" in result.output
    assert stored_user(cli_sessions, "demo1@example.com") is None


def test_check_config_masks_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "super-secret-signing-key-0123456789")
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://app:db-pass-42@db:5432/app")

    result = runner.invoke(cli, ["check-config"])

    assert result.exit_code == 0, result.output
    assert "super-secret-signing-key" not in result.output
    assert "db-pass-42" not in result.output
    assert "SECRET_KEY" in result.output
    assert "app:********@db:5432/app" in result.output


@pytest.mark.parametrize(
    ("variable", "value"),
    [("SECRET_KEY", "changeme"), ("BCRYPT_ROUNDS", "10"), ("RATE_LIMIT_LOGIN", "often")],
)
def test_check_config_fails_on_an_unsafe_production_config(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "p" * 48)
    monkeypatch.setenv("BCRYPT_ROUNDS", "12")
    monkeypatch.setenv(variable, value)

    result = runner.invoke(cli, ["check-config"])

    assert result.exit_code == 1
    assert "unsafe or invalid" in result.output


def test_unknown_commands_fail_with_usage() -> None:
    result = runner.invoke(cli, ["drop-everything"])

    assert result.exit_code == 2
    assert "No such command" in result.output
