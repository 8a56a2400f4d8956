"""token keys, and ids that are never reused

Each account gets a random token key, carried by its tokens and replaced whenever they are
revoked, instead of a version counter that started at 0 for everyone: a token then never
speaks for another account, even one that got the same id. Existing tokens carry no key, so
everyone logs in again once after this upgrade.

On SQLite both tables are rebuilt with AUTOINCREMENT, so a deleted newest row's id is never
given to the next row (PostgreSQL's sequences never reuse ids). The rebuild copies every row;
alembic/env.py turns SQLite's foreign keys off around it, or dropping the old users table
would delete every item. The expression index on lower(username) cannot be reflected by the
rebuild, so it is dropped and created again by hand.

Revision ID: 5d0c2b7e1f4a
Revises: 9a908d540728
Create Date: 2026-11-30 12:30:00

"""

import secrets
from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "5d0c2b7e1f4a"
down_revision: str | Sequence[str] | None = "9a908d540728"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TOKEN_KEY_LENGTH = 32


def _is_sqlite() -> bool:
    return op.get_bind().dialect.name == "sqlite"


def _rebuild(table: str, *, autoincrement: bool) -> None:
    """On SQLite, copy ``table`` into a new one with or without AUTOINCREMENT."""
    if _is_sqlite():
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": autoincrement}
        ):
            pass


def upgrade() -> None:
    op.drop_index("uq_users_username_lower", table_name="users")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.add_column(sa.Column("token_key", sa.String(length=TOKEN_KEY_LENGTH)))

    users = sa.table("users", sa.column("id", sa.Integer), sa.column("token_key", sa.String))
    connection = op.get_bind()
    for (user_id,) in connection.execute(sa.select(users.c.id)).all():
        connection.execute(
            users.update()
            .where(users.c.id == user_id)
            .values(token_key=secrets.token_hex(TOKEN_KEY_LENGTH // 2))
        )

    with op.batch_alter_table(
        "users",
        schema=None,
        recreate="always" if _is_sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": True},
    ) as batch_op:
        batch_op.alter_column(
            "token_key", existing_type=sa.String(length=TOKEN_KEY_LENGTH), nullable=False
        )
        batch_op.drop_column("token_version")
    _rebuild("items", autoincrement=True)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)


def downgrade() -> None:
    op.drop_index("uq_users_username_lower", table_name="users")
    _rebuild("items", autoincrement=False)
    with op.batch_alter_table(
        "users",
        schema=None,
        recreate="always" if _is_sqlite() else "auto",
        table_kwargs={"sqlite_autoincrement": False},
    ) as batch_op:
        batch_op.add_column(
            sa.Column("token_version", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.drop_column("token_key")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.alter_column("token_version", existing_type=sa.Integer(), server_default=None)
    op.create_index("uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True)
