"""Small factories: each call makes distinct, valid rows."""

import itertools

from sqlalchemy.orm import Session

from app.core.roles import Role
from app.core.security import create_access_token, hash_password
from app.models import Item, User

DEFAULT_PASSWORD = "password123"
_sequence = itertools.count(1)


def make_user(
    session: Session,
    *,
    email: str | None = None,
    username: str | None = None,
    password: str = DEFAULT_PASSWORD,
    role: Role | str = Role.USER,
    is_active: bool = True,
    full_name: str | None = None,
) -> User:
    n = next(_sequence)
    user = User(
        email=(email or f"user{n}@example.com").lower(),
        username=username or f"user_{n}",
        full_name=full_name,
        hashed_password=hash_password(password),
        role=Role(role),
        is_active=is_active,
    )
    session.add(user)
    session.flush()
    return user


def make_item(
    session: Session,
    *,
    owner: User,
    title: str | None = None,
    description: str | None = None,
) -> Item:
    item = Item(
        title=title or f"item {next(_sequence)}", description=description, owner_id=owner.id
    )
    session.add(item)
    session.flush()
    return item


def auth_headers(user: User) -> dict[str, str]:
    token = create_access_token(user_id=user.id, token_key=user.token_key)
    return {"Authorization": f"Bearer {token.token}"}
