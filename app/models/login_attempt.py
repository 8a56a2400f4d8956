from sqlalchemy import Double, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base


class LoginAttempt(Base):
    """One password check counted against a login budget: a failed one, or one still running.

    Budgets are named ``account:<sha-256 of the email>`` or ``address:<client address>``, so
    the table never holds an email address. Rows older than the budget's window count for
    nothing and are purged as new attempts arrive.
    """

    __tablename__ = "login_attempts"
    __table_args__ = (Index("ix_login_attempts_budget_attempted_at", "budget", "attempted_at"),)

    budget: Mapped[str] = mapped_column(String(80))
    # Seconds since the epoch: windows are rolling, computed in Python on every backend alike.
    attempted_at: Mapped[float] = mapped_column(Double(), index=True)
