"""Operations commands for the Accounts & Items API."""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from pydantic import SecretStr, ValidationError
from rich.console import Console
from rich.progress import Progress
from sqlalchemy.orm import Session

from app.core.config import Settings
from app.core.errors import AppError
from app.core.roles import Role
from app.schemas.user import UserCreate
from app.services import demo
from app.services import users as user_service

cli = typer.Typer(
    help=__doc__, no_args_is_help=True, add_completion=False, rich_markup_mode="markdown"
)
console = Console(stderr=True)
DEMO_PASSWORD = "demo-password-1"


@contextmanager
def open_session() -> Iterator[Session]:
    """A committing session. Imported here, not at the top: building the engine reads the
    settings, and check-config must be able to report bad settings instead of crashing."""
    from app.core.db import SessionLocal, unit_of_work

    with SessionLocal() as session, unit_of_work(session):
        yield session


def fail(message: str) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code=1)


def read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@cli.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="The admin's email (stored lower-cased)")],
    username: Annotated[str, typer.Option(help="3-50 of A-Z a-z 0-9 _")],
    full_name: Annotated[str | None, typer.Option(help="Optional display name")] = None,
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from the first stdin line")
    ] = False,
) -> None:
    """Create an active admin.

    The password is prompted for (or read from stdin), never an argument, so it stays out of
    shell history and process lists.
    """
    try:
        user_in = UserCreate(
            email=email,
            username=username,
            full_name=full_name,
            password=read_password(password_stdin),
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise fail(problems) from None
    try:
        with open_session() as session:
            admin = user_service.sign_up(session, user_in=user_in, role=Role.ADMIN)
    except AppError as exc:
        raise fail(exc.detail) from None
    console.print(f"Created admin {admin.email} (id {admin.id})")


@cli.command("seed-demo")
def seed_demo(
    users: Annotated[int, typer.Option(min=1, max=10_000, help="How many demo users")] = 10,
    items_per_user: Annotated[
        int, typer.Option(min=0, max=1_000_000, help="Items for each demo user")
    ] = 20,
    prefix: Annotated[str, typer.Option(help="Emails are <prefix><n>@example.com")] = "demo",
) -> None:
    """Demo users (password `demo-password-1`) with items. Refused in production."""
    if Settings().ENVIRONMENT == "production":
        raise fail("seed-demo is refused in production (it creates known passwords)")
    if not prefix.isalnum() or len(prefix) > 20:
        raise fail("--prefix must be 1-20 letters or digits")
    accounts = demo.demo_users(prefix.lower(), users)
    hashed = demo.hash_demo_password(DEMO_PASSWORD)
    try:
        with Progress(console=console) as progress:
            task = progress.add_task("Seeding", total=users * (items_per_user + 1))
            for account in accounts:
                with open_session() as session:
                    owner = demo.seed_user(
                        session, user=account, password=DEMO_PASSWORD, hashed_password=hashed
                    )
                    progress.advance(task)
                    demo.seed_items(
                        session,
                        owner=owner,
                        count=items_per_user,
                        on_batch=lambda size: progress.advance(task, size),
                    )
    except AppError as exc:
        raise fail(exc.detail) from None
    console.print(
        f"Seeded {users} users ({accounts[0].email}...) with {items_per_user} items each; "
        f"password {DEMO_PASSWORD!r}"
    )


@cli.command("check-config")
def check_config() -> None:
    """Print the effective settings (secrets masked); exit 1 if they are unsafe."""
    try:
        settings = Settings()
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(map(str, error["loc"])) or "settings"
            console.print(f"[red]unsafe or invalid:[/red] {field}: {error['msg']}")
        raise typer.Exit(code=1) from None
    # Plain "NAME  value" lines: easy to grep and to diff between hosts. Unset settings show the
    # value in effect.
    effective = {
        "SECRET_KEY": "(generated, kept in ./data/secret_key)",
        "LOG_FORMAT": f"{settings.log_format!r} (default for {settings.ENVIRONMENT})",
    }
    for name, value in settings.model_dump().items():
        if value is None and name in effective:
            shown = effective[name]
        else:
            shown = "********" if isinstance(value, SecretStr) and value else repr(value)
        typer.echo(f"{name:<28} {_mask_url(shown) if name.endswith('_URL') else shown}")
    for warning in _warnings(settings):
        console.print(f"[yellow]warning:[/yellow] {warning}")


@cli.command("openapi")
def openapi() -> None:
    """Print the OpenAPI document the service serves at /openapi.json.

    The repository keeps a copy (`docs/openapi.json`, written by `make openapi`) that clients
    are generated from; the test suite fails when the served document drifts from it.
    """
    from app.main import app

    sys.stdout.write(openapi_text(app.openapi()))


def openapi_text(document: dict[str, object]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def _mask_url(value: str) -> str:
    """Hide the password in ``scheme://user:password@host``."""
    scheme, sep, rest = value.partition("://")
    credentials, at, host = rest.rpartition("@")
    if not sep or not at or ":" not in credentials:
        return value
    return f"{scheme}://{credentials.split(':', 1)[0]}:********@{host}"


def _warnings(settings: Settings) -> list[str]:
    warnings = []
    if settings.SECRET_KEY is None:
        warnings.append("SECRET_KEY unset: a development key is generated under ./data/")
    return warnings + settings.deployment_warnings()


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
