import hashlib
from collections.abc import Collection, Sequence

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from app.crud.base import CRUDBase
from app.models.login_attempt import LoginAttempt
from app.schemas.login_attempt import LoginAttemptCreate

_ADVISORY_LOCK = text("SELECT pg_advisory_xact_lock(:key)")
_ASYNCHRONOUS_COMMIT = text("SET LOCAL synchronous_commit TO OFF")


def _lock_key(budget: str) -> int:
    """A budget's name as a signed 64-bit advisory-lock key."""
    return int.from_bytes(hashlib.sha256(budget.encode()).digest()[:8], "big", signed=True)


class LoginAttemptCRUD(CRUDBase[LoginAttempt, LoginAttemptCreate, LoginAttemptCreate]):
    def commit_without_waiting_for_disk(self, session: Session) -> None:
        """PostgreSQL: this transaction's commit does not wait for its WAL flush. Other
        sessions see it at once all the same; a crash of the server may forget the last
        fraction of a second of attempts, which costs a guesser nothing it could use."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(_ASYNCHRONOUS_COMMIT)

    def lock_budgets(self, session: Session, *, budgets: Collection[str]) -> None:
        """Hold ``budgets`` until the transaction ends, so counting and adding an attempt is
        one step however many workers try at once. PostgreSQL: advisory locks, taken in one
        order (no deadlock). SQLite: nothing to do, the transaction already holds the
        database's write lock (BEGIN IMMEDIATE, app.core.db)."""
        if session.get_bind().dialect.name == "postgresql":
            for key in sorted(_lock_key(budget) for budget in budgets):
                session.execute(_ADVISORY_LOCK, {"key": key})

    def window(self, session: Session, *, budget: str, since: float) -> tuple[int, float | None]:
        """How many attempts ``budget`` has after ``since``, and when the oldest of them was."""
        stmt = select(func.count(), func.min(LoginAttempt.attempted_at)).where(
            LoginAttempt.budget == budget, LoginAttempt.attempted_at > since
        )
        count, oldest = session.execute(stmt).one()
        return int(count), oldest

    def delete_ids(self, session: Session, *, ids: Sequence[int]) -> None:
        session.execute(delete(LoginAttempt).where(LoginAttempt.id.in_(ids)))

    def delete_budget(self, session: Session, *, budget: str) -> None:
        session.execute(delete(LoginAttempt).where(LoginAttempt.budget == budget))

    def purge(self, session: Session, *, before: float) -> None:
        session.execute(delete(LoginAttempt).where(LoginAttempt.attempted_at <= before))


login_attempt_crud = LoginAttemptCRUD(LoginAttempt, sort_columns={}, search_columns=())
