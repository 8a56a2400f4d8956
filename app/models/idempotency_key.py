from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.models.base import Base, utc_now


class IdempotencyKey(Base):
    """The response to a create sent with an ``Idempotency-Key``, kept so a retry gets it again.

    Written in the same transaction as the row the create made, so either both exist or
    neither does. ``scope`` is whose key it is (``user:<id>``, or ``anonymous`` for sign-up);
    ``fingerprint`` is a digest of the request (operation and body) a retry must repeat.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("scope", "key", name="uq_idempotency_keys_scope_key"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    scope: Mapped[str] = mapped_column(String(40))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer())
    # The response headers a replay repeats (Location, ETag), as JSON.
    headers: Mapped[str] = mapped_column(Text())
    body: Mapped[str] = mapped_column(Text())
    created_at: Mapped[datetime] = mapped_column(default=utc_now)
    expires_at: Mapped[datetime] = mapped_column()
