import hashlib
from datetime import datetime

from sqlalchemy import bindparam, delete, select, text
from sqlalchemy.orm import Session

from app.core.db import take_write_lock
from app.crud.base import CRUDBase
from app.models.idempotency_key import IdempotencyKey
from app.schemas.idempotency import IdempotencyKeyCreate

_TRY_ADVISORY_LOCK = text("SELECT pg_try_advisory_xact_lock(:key)")
# Expired keys are deleted a few at a time by the creates that come after them.
PURGE_BATCH = 100


def _lock_key(scope: str, key: str) -> int:
    digest = hashlib.sha256(f"idempotency\0{scope}\0{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class IdempotencyKeyCRUD(CRUDBase[IdempotencyKey, IdempotencyKeyCreate, IdempotencyKeyCreate]):
    def __init__(self) -> None:
        super().__init__(IdempotencyKey, sort_columns={}, search_columns=())
        self._by_key = select(IdempotencyKey).where(
            IdempotencyKey.scope == bindparam("scope"), IdempotencyKey.key == bindparam("key")
        )

    def try_lock(self, session: Session, *, scope: str, key: str) -> bool:
        """Hold ``key`` until the transaction ends; False if another transaction holds it.
        PostgreSQL: an advisory lock. SQLite: the database's write lock, taken now rather than
        at the first write (app.core.db), so a duplicate waits for it and then replays."""
        if session.get_bind().dialect.name != "postgresql":
            take_write_lock(session)
            return True
        return bool(session.execute(_TRY_ADVISORY_LOCK, {"key": _lock_key(scope, key)}).scalar())

    def get_by_key(self, session: Session, *, scope: str, key: str) -> IdempotencyKey | None:
        return session.execute(self._by_key, {"scope": scope, "key": key}).scalar_one_or_none()

    def purge_expired(self, session: Session, *, now: datetime) -> None:
        expired = (
            select(IdempotencyKey.id).where(IdempotencyKey.expires_at <= now).limit(PURGE_BATCH)
        )
        session.execute(delete(IdempotencyKey).where(IdempotencyKey.id.in_(expired)))


idempotency_key_crud = IdempotencyKeyCRUD()
