"""Logging in and turning a verified token into the acting user."""

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.orm import Session

from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.roles import Role
from app.core.security import (
    AccessToken,
    TokenClaims,
    create_access_token,
    token_keys_match,
    verify_password,
)
from app.crud import user_crud
from app.crud.user import TokenState
from app.models.user import User
from app.services.login_budget import LoginBudgets

MAX_EMAIL_LENGTH = 254
INVALID_CREDENTIALS = "Incorrect email or password"


def authenticate(
    session: Session, *, budgets: LoginBudgets, email: str, password: str, client_address: str
) -> User:
    """The user whose email and password these are.

    An unknown email, a wrong password and a password that could never match all cost one bcrypt
    verification, count against the login budgets and raise the same ``AuthenticationError``;
    an inactive account with the right password raises ``PermissionDeniedError``. A spent
    budget raises ``RateLimitedError`` before any hashing.
    """
    email = email.strip().lower()
    with budgets.attempt(email=email, client_address=client_address) as check:
        plausible_email = "\x00" not in email and 0 < len(email) <= MAX_EMAIL_LENGTH
        user = user_crud.get_by_email(session, email=email) if plausible_email else None
        if not verify_password(password, user.hashed_password if user else None) or user is None:
            raise AuthenticationError(INVALID_CREDENTIALS)
        check.passed()
    if not user.is_active:
        raise PermissionDeniedError("This account is deactivated")
    budgets.clear_account(email)
    return user


def issue_access_token(user: User) -> AccessToken:
    return create_access_token(user_id=user.id, token_key=user.token_key)


class Actor(Protocol):
    """Whoever acts: all that permission rules read of the caller (a ``Caller`` or a ``User``)."""

    @property
    def id(self) -> int: ...

    @property
    def role(self) -> Role: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """The account a checked token speaks for, as far as permissions need it."""

    id: int
    role: Role


def get_token_caller(session: Session, *, claims: TokenClaims) -> Caller:
    """The active account a verified token speaks for, loading only what the check reads.

    A deleted user, or a token issued before the account's last password change or
    deactivation, is a 401; a deactivated user is a 403 (the token is genuine, the account is
    not allowed). Ids are never reused, and the token must also carry the account's own token
    key, so no other account ever accepts it.
    """
    return ensure_token_state(user_crud.get_token_state(session, claims.user_id), claims=claims)


def get_token_user(session: Session, *, claims: TokenClaims) -> User:
    """Like ``get_token_caller``, for requests that need the account itself."""
    user = user_crud.get(session, claims.user_id)
    ensure_token_state(None if user is None else _token_state(user), claims=claims)
    assert user is not None  # a missing account was refused just above
    return user


def ensure_token_state(state: TokenState | None, *, claims: TokenClaims) -> Caller:
    """The caller, if the token still speaks for the active account ``state`` describes."""
    if state is None:
        raise AuthenticationError("Token is no longer valid", token_sent=True)
    if not state.is_active:
        raise PermissionDeniedError("This account is deactivated")
    if not token_keys_match(claims.token_key, state.token_key):
        raise AuthenticationError("Token is no longer valid", token_sent=True)
    return Caller(id=state.id, role=state.role)


def _token_state(user: User) -> TokenState:
    return TokenState(user.id, user.role, user.is_active, user.token_key)
