from typing import TYPE_CHECKING

from sqlalchemy import Enum, Index, String, func
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.core.roles import Role
from app.core.security import TOKEN_KEY_BYTES, new_token_key
from app.models.base import Base, VersionedMixin

if TYPE_CHECKING:
    from app.models.item import Item


class User(VersionedMixin, Base):
    __tablename__ = "users"
    # AUTOINCREMENT: SQLite would otherwise give a deleted newest row's id to the next one.
    __table_args__ = ({"sqlite_autoincrement": True},)
    # Stored lower-cased by the schemas, so a plain unique index is case-insensitive.
    email: Mapped[str] = mapped_column(String(254), unique=True)
    username: Mapped[str] = mapped_column(String(50))
    full_name: Mapped[str | None] = mapped_column(String(100))
    hashed_password: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = mapped_column(
        Enum(
            Role,
            native_enum=False,
            length=16,
            create_constraint=True,
            values_callable=lambda roles: [role.value for role in roles],
        ),
        default=Role.USER,
        index=True,
    )
    is_active: Mapped[bool] = mapped_column(default=True, index=True)
    # Carried by the account's tokens; replaced on a password change or a deactivation, which
    # revokes every token issued before (see app.core.security.new_token_key).
    token_key: Mapped[str] = mapped_column(String(2 * TOKEN_KEY_BYTES), default=new_token_key)

    items: Mapped[list["Item"]] = relationship(
        back_populates="owner", lazy="raise", passive_deletes=True
    )


# Usernames are unique regardless of case but shown as the user typed them.
Index("uq_users_username_lower", func.lower(User.username), unique=True)
