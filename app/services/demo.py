"""Demo data for trying the API and for benchmarks."""

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.core.errors import ConflictError
from app.core.roles import Role
from app.core.security import hash_password
from app.crud import item_crud, user_crud
from app.models.user import User
from app.schemas.item import ItemCreate
from app.schemas.user import UserCreate

ITEM_BATCH = 500


@dataclass(frozen=True, slots=True)
class DemoUser:
    email: str
    username: str


def demo_users(prefix: str, count: int) -> list[DemoUser]:
    return [
        DemoUser(email=f"{prefix}{n}@example.com", username=f"{prefix}_{n}")
        for n in range(1, count + 1)
    ]


def seed_user(session: Session, *, user: DemoUser, password: str, hashed_password: str) -> User:
    """One demo user (active, role ``user``) whose ``password`` is already hashed as
    ``hashed_password``; a taken email or username raises ``ConflictError``."""
    if user_crud.get_by_email(session, email=user.email) or user_crud.get_by_username(
        session, username=user.username
    ):
        raise ConflictError(f"{user.email} or {user.username} already exists")
    user_in = UserCreate(email=user.email, username=user.username, password=password)
    return user_crud.create(
        session,
        obj_in=user_in,
        exclude=frozenset({"password"}),
        hashed_password=hashed_password,
        role=Role.USER,
    )


def seed_items(
    session: Session,
    *,
    owner: User,
    count: int,
    on_batch: Callable[[int], None] = lambda _n: None,
) -> None:
    """``count`` items for ``owner``, inserted in batches; ``on_batch`` gets each batch's size."""
    for start in range(0, count, ITEM_BATCH):
        size = min(ITEM_BATCH, count - start)
        item_crud.create_many(
            session,
            objs_in=[
                ItemCreate(
                    title=f"Demo item {n}",
                    description=f"Item {n} of {owner.username}, made by seed-demo",
                )
                for n in range(start + 1, start + size + 1)
            ],
            owner_id=owner.id,
        )
        on_batch(size)


def hash_demo_password(password: str) -> str:
    # One hash for every demo user: bcrypt per user would dominate seeding time.
    return hash_password(password)
