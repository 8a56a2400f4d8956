from typing import NamedTuple

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from app.core.roles import Role
from app.crud.base import CRUDBase
from app.crud.read_scopes import written_user
from app.models.user import User
from app.schemas.user import UserCreate, UserUpdateAdmin


class TokenState(NamedTuple):
    """What checking a token needs of its account, and nothing else (no entity, no hash)."""

    id: int
    role: Role
    is_active: bool
    token_key: str


TOKEN_STATE_COLUMNS = (User.id, User.role, User.is_active, User.token_key)
_TOKEN_STATE = select(*TOKEN_STATE_COLUMNS).where(User.id == bindparam("id"))


class UserCRUD(CRUDBase[User, UserCreate, UserUpdateAdmin]):
    def get_token_state(self, session: Session, id: int) -> TokenState | None:
        row = session.execute(_TOKEN_STATE, {"id": id}).first()
        return None if row is None else TokenState(*row)

    def get_by_email(self, session: Session, *, email: str) -> User | None:
        return session.scalar(select(User).where(User.email == email.lower()))

    def get_by_username(self, session: Session, *, username: str) -> User | None:
        return session.scalar(select(User).where(func.lower(User.username) == username.lower()))

    def active_admin_ids(self, session: Session, *, lock: bool = False) -> list[int]:
        """Ids of active admins; ``lock`` holds their rows until commit (PostgreSQL), so two
        admins demoting each other at once cannot leave nobody in charge."""
        stmt = select(User.id).where(User.role == Role.ADMIN, User.is_active.is_(True))
        if lock:
            stmt = stmt.with_for_update()
        return list(session.scalars(stmt))


user_crud = UserCRUD(
    User,
    sort_columns={
        "id": User.id,
        "email": User.email,
        "username": User.username,
        "created_at": User.created_at,
        "updated_at": User.updated_at,
    },
    search_columns=(User.email, User.username, User.full_name),
    read_scopes=written_user,
)
