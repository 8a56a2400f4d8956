"""Logging in and turning a verified token into the acting user."""

from sqlalchemy.orm import Session

from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.security import (
    AccessToken,
    TokenClaims,
    create_access_token,
    token_keys_match,
    verify_password,
)
from app.crud import user_crud
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


def get_token_user(session: Session, *, claims: TokenClaims) -> User:
    """The active user a verified token speaks for.

    A deleted user, or a token issued before the account's last password change or
    deactivation, is a 401; a deactivated user is a 403 (the token is genuine, the account is
    not allowed). Ids are never reused, and the token must also carry the account's own token
    key, so no other account ever accepts it.
    """
    return ensure_token_user(user_crud.get(session, claims.user_id), claims=claims)


def ensure_token_user(user: User | None, *, claims: TokenClaims) -> User:
    """``user`` (as loaded for ``claims``) if the token still speaks for an active account."""
    if user is None:
        raise AuthenticationError("Token is no longer valid", token_sent=True)
    if not user.is_active:
        raise PermissionDeniedError("This account is deactivated")
    if not token_keys_match(claims.token_key, user.token_key):
        raise AuthenticationError("Token is no longer valid", token_sent=True)
    return user
