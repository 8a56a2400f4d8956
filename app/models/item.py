from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.models.base import Base, VersionedMixin

if TYPE_CHECKING:
    from app.models.user import User


class Item(VersionedMixin, Base):
    __tablename__ = "items"
    __table_args__ = (
        # A user's list: filtered by owner, ordered by the default sort (-created_at, -id).
        Index("ix_items_owner_id_created_at_id", "owner_id", "created_at", "id"),
        # AUTOINCREMENT: SQLite would otherwise give a deleted newest row's id to the next one.
        {"sqlite_autoincrement": True},
    )

    title: Mapped[str] = mapped_column(String(200), index=True)
    description: Mapped[str | None] = mapped_column(String(5000))
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))

    owner: Mapped["User"] = relationship(back_populates="items", lazy="raise")
