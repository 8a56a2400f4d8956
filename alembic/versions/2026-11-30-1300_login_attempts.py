"""login attempts

The login budgets' counters, shared by every worker and host through the database (or kept
in Redis when REDIS_URL is set, falling back to this table while Redis is unreachable).

Revision ID: 8e3f1a6c9b20
Revises: 5d0c2b7e1f4a
Create Date: 2026-11-30 13:00:00

"""

from collections.abc import Sequence

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = "8e3f1a6c9b20"
down_revision: str | Sequence[str] | None = "5d0c2b7e1f4a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "login_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("budget", sa.String(length=80), nullable=False),
        sa.Column("attempted_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_login_attempts")),
    )
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_login_attempts_attempted_at"), ["attempted_at"], unique=False
        )
        batch_op.create_index(
            "ix_login_attempts_budget_attempted_at", ["budget", "attempted_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("login_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_login_attempts_budget_attempted_at")
        batch_op.drop_index(batch_op.f("ix_login_attempts_attempted_at"))

    op.drop_table("login_attempts")
