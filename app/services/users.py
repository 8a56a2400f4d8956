"""Accounts: sign-up, self-service, admin management and the first admin."""

import logging
import re

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.core.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from app.core.etags import Precondition
from app.core.roles import Role
from app.core.security import hash_password, new_token_key, verify_password
from app.crud import user_crud
from app.crud.read_scopes import ALL_USERS
from app.models.user import User
from app.schemas.page import UserListQuery
from app.schemas.user import PasswordChange, UserCreate, UserRead, UserUpdateAdmin, UserUpdateMe
from app.services.auth import Actor
from app.services.cached_pages import PageRows, cached_page
from app.services.common import conflict_on_duplicate, guarded_write
from app.services.login_budget import LoginBudgets

logger = logging.getLogger(__name__)

DUPLICATE_ACCOUNT = "A user with this email or username already exists"


def sign_up(session: Session, *, user_in: UserCreate, role: Role = Role.USER) -> User:
    # Hash before the first query: on SQLite that query takes the write lock, which no one
    # should hold through a quarter second of bcrypt.
    hashed_password = hash_password(user_in.password)
    _ensure_unique(session, email=user_in.email, username=user_in.username)
    with conflict_on_duplicate(DUPLICATE_ACCOUNT):
        return user_crud.create(
            session,
            obj_in=user_in,
            exclude=frozenset({"password"}),
            hashed_password=hashed_password,
            role=role,
        )


def get_user(session: Session, *, viewer: Actor, user_id: int) -> User:
    """A user as seen by ``viewer``: admins see anyone, others only themselves (403)."""
    if viewer.role != Role.ADMIN and viewer.id != user_id:
        raise PermissionDeniedError("Only admins may read other users")
    user = user_crud.get(session, user_id)
    if user is None:
        raise NotFoundError(f"User {user_id} not found")
    return user


def list_users(session: Session, *, query: UserListQuery) -> PageRows:
    """Every account (the caller is an admin: the route declares it)."""
    return cached_page(
        ALL_USERS,
        query,
        read_as=UserRead,
        load=lambda: user_crud.get_multi(
            session,
            filters={"is_active": query.is_active, "role": query.role},
            search=query.q,
            sort=query.sort_keys,
            offset=query.offset,
            limit=query.page_size,
        ),
    )


def update_me(
    session: Session,
    *,
    budgets: LoginBudgets,
    user: User,
    user_in: UserUpdateMe,
    client_address: str,
    precondition: Precondition | None = None,
) -> User:
    """Change the caller's own account. A new email (the login) needs the current password,
    so a stolen token alone cannot take the account over; a password sent is checked even when
    the email stays."""
    changes = user_in.model_dump(exclude_unset=True)
    current_password = changes.pop("current_password", None)
    if changes.get("email", user.email) != user.email and current_password is None:
        raise InvalidInputError(
            "Changing the email needs current_password",
            loc=("body", "current_password"),
            error_type="missing",
        )
    if current_password is not None:
        _confirm_password(
            budgets, user=user, password=current_password, client_address=client_address
        )
    with guarded_write(user, precondition):
        _ensure_unique(
            session, email=changes.get("email"), username=changes.get("username"), user=user
        )
        with conflict_on_duplicate(DUPLICATE_ACCOUNT):
            return user_crud.update(session, db_obj=user, obj_in=changes)


def change_password(
    session: Session,
    *,
    budgets: LoginBudgets,
    user: User,
    change: PasswordChange,
    client_address: str,
) -> None:
    """Verify the current password, store the new one and revoke every earlier token."""
    _confirm_password(
        budgets, user=user, password=change.current_password, client_address=client_address
    )
    user_crud.update(session, db_obj=user, obj_in=_password_change(change.new_password))


def _confirm_password(
    budgets: LoginBudgets, *, user: User, password: str, client_address: str
) -> None:
    """A wrong password is a failed login for the login budgets (else these endpoints would be
    an unmetered password oracle for anyone holding a stolen token) and a 422, not a 401: the
    caller is still logged in."""
    with budgets.attempt(email=user.email, client_address=client_address) as check:
        if not verify_password(password, user.hashed_password):
            raise InvalidInputError(
                "Current password is incorrect",
                loc=("body", "current_password"),
                error_type="invalid_password",
            )
        check.passed()


def update_user(
    session: Session,
    *,
    actor: Actor,
    user: User,
    user_in: UserUpdateAdmin,
    precondition: Precondition | None = None,
) -> User:
    with guarded_write(user, precondition):
        return _apply_admin_update(session, actor=actor, user=user, user_in=user_in)


def _apply_admin_update(
    session: Session, *, actor: Actor, user: User, user_in: UserUpdateAdmin
) -> User:
    changes = user_in.model_dump(exclude_unset=True)
    password = changes.pop("password", None)
    loses_admin = changes.get("role", user.role) != Role.ADMIN or not changes.get(
        "is_active", user.is_active
    )
    if loses_admin and user.role == Role.ADMIN and user.is_active:
        if user.id == actor.id:
            raise ConflictError("Admins cannot demote or deactivate themselves")
        _ensure_another_admin_remains(session, leaving=user)
    _ensure_unique(session, email=changes.get("email"), username=changes.get("username"), user=user)
    if password is not None:
        changes.update(_password_change(password))
    if user.is_active and changes.get("is_active") is False:
        # Like a password change: tokens issued before stay refused after a reactivation.
        changes["token_key"] = new_token_key()
    with conflict_on_duplicate(DUPLICATE_ACCOUNT):
        return user_crud.update(session, db_obj=user, obj_in=changes)


def delete_user(
    session: Session, *, actor: Actor, user: User, precondition: Precondition | None = None
) -> None:
    """Delete an account; its items go with it (ON DELETE CASCADE)."""
    with guarded_write(user, precondition):
        if user.id == actor.id:
            raise ConflictError("Admins cannot delete themselves")
        if user.role == Role.ADMIN and user.is_active:
            _ensure_another_admin_remains(session, leaving=user)
        user_crud.delete(session, db_obj=user)


def ensure_first_superuser(session: Session, *, email: str, password: str) -> User | None:
    """Create the configured first admin unless a user with that email exists.

    Safe when several workers start at once: the loser of the race sees a duplicate and steps
    back. Returns the new admin, or ``None`` when nothing was created.
    """
    existing = user_crud.get_by_email(session, email=email)
    if existing is not None:
        # Every worker and restart gets here once the admin exists: only a user who is not
        # (or no longer) an active admin deserves a warning.
        in_charge = existing.role == Role.ADMIN and existing.is_active
        logger.log(
            logging.INFO if in_charge else logging.WARNING,
            "First superuser %s already exists; left untouched (role=%s, active=%s)",
            existing.email,
            existing.role,
            existing.is_active,
        )
        return None
    user_in = UserCreate(email=email, username=_free_username(session, email), password=password)
    try:
        with session.begin_nested():
            admin = sign_up(session, user_in=user_in, role=Role.ADMIN)
    except (ConflictError, IntegrityError):
        logger.info("First superuser %s was created by another process", email)
        return None
    logger.info("Created first superuser %s", admin.email)
    return admin


def _password_change(password: str) -> dict[str, object]:
    """The new hash, and a new token key that revokes every token issued before it."""
    return {"hashed_password": hash_password(password), "token_key": new_token_key()}


def _ensure_unique(
    session: Session, *, email: str | None, username: str | None, user: User | None = None
) -> None:
    """Friendly 409s for the common case; the unique indexes still decide races."""
    if email is not None:
        owner = user_crud.get_by_email(session, email=email)
        if owner is not None and owner is not user:
            raise ConflictError("A user with this email already exists")
    if username is not None:
        owner = user_crud.get_by_username(session, username=username)
        if owner is not None and owner is not user:
            raise ConflictError("A user with this username already exists")


def _ensure_another_admin_remains(session: Session, *, leaving: User) -> None:
    if not set(user_crud.active_admin_ids(session, lock=True)) - {leaving.id}:
        raise ConflictError("The last active admin cannot be removed, demoted or deactivated")


def _free_username(session: Session, email: str) -> str:
    base = re.sub(r"[^A-Za-z0-9_]", "_", email.split("@", 1)[0])[:40]
    base = base if len(base) >= 3 else "admin"
    candidate, suffix = base, 1
    while user_crud.get_by_username(session, username=candidate) is not None:
        suffix += 1
        candidate = f"{base}_{suffix}"
    return candidate
