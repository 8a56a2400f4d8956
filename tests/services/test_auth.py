"""Unit tests of logging in and resolving a token's user (app.services.auth)."""

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
from passlib.context import CryptContext
from sqlalchemy.orm import Session

from app.core.errors import AuthenticationError, PermissionDeniedError
from app.core.security import TokenClaims, decode_access_token, new_token_key
from app.models import User
from app.services import auth as auth_service
from app.services.auth import Caller, get_token_caller, get_token_user, issue_access_token
from app.services.login_budget import LoginBudgets
from tests.factories import DEFAULT_PASSWORD, make_user

CLIENT = "203.0.113.7"


@pytest.fixture
def authenticate(login_budgets: LoginBudgets) -> Callable[..., User]:
    return partial(auth_service.authenticate, budgets=login_budgets)


def _auth_error(
    authenticate: Callable[..., User], session: Session, *, email: str, password: str
) -> AuthenticationError:
    with pytest.raises(AuthenticationError) as caught:
        authenticate(session, email=email, password=password, client_address=CLIENT)
    return caught.value


@pytest.fixture
def bcrypt_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every bcrypt verification performed by the code under test."""
    calls: list[str] = []
    original = CryptContext.verify

    def counting_verify(self: CryptContext, secret: Any, hashed: Any, **kwargs: Any) -> Any:
        calls.append(hashed)
        return original(self, secret, hashed, **kwargs)

    monkeypatch.setattr(CryptContext, "verify", counting_verify)
    return calls


def test_authenticate_returns_the_user(
    authenticate: Callable[..., User], session: Session, user: User
) -> None:
    result = authenticate(
        session, email=user.email, password=DEFAULT_PASSWORD, client_address=CLIENT
    )

    assert result is user


def test_authenticate_matches_email_ignoring_case(
    authenticate: Callable[..., User], session: Session
) -> None:
    user = make_user(session, email="ada.lovelace@example.com")

    result = authenticate(
        session, email="Ada.Lovelace@EXAMPLE.com", password=DEFAULT_PASSWORD, client_address=CLIENT
    )

    assert result is user


def test_authenticate_ignores_surrounding_whitespace_in_email(
    authenticate: Callable[..., User], session: Session, user: User
) -> None:
    result = authenticate(
        session, email=f"  {user.email} ", password=DEFAULT_PASSWORD, client_address=CLIENT
    )

    assert result is user


def test_authenticate_wrong_password_is_authentication_error(
    authenticate: Callable[..., User], session: Session, user: User
) -> None:
    error = _auth_error(authenticate, session, email=user.email, password="wrong-password-1")

    assert error.detail == "Incorrect email or password"
    assert error.token_sent is False


def test_authenticate_unknown_email_is_the_same_error_as_a_wrong_password(
    authenticate: Callable[..., User], session: Session, user: User
) -> None:
    wrong_password = _auth_error(
        authenticate, session, email=user.email, password="wrong-password-1"
    )

    unknown_email = _auth_error(
        authenticate, session, email="nobody@example.com", password=DEFAULT_PASSWORD
    )

    assert type(unknown_email) is type(wrong_password)
    assert unknown_email.detail == wrong_password.detail
    assert unknown_email.token_sent == wrong_password.token_sent


@pytest.mark.parametrize(
    "password",
    [DEFAULT_PASSWORD + "é" * 40, DEFAULT_PASSWORD + "\x00", DEFAULT_PASSWORD + "\x00x", ""],
    ids=["over-72-bytes", "trailing-nul", "nul-inside", "empty"],
)
def test_authenticate_impossible_password_is_the_same_authentication_error(
    authenticate: Callable[..., User], session: Session, user: User, password: str
) -> None:
    error = _auth_error(authenticate, session, email=user.email, password=password)

    assert error.detail == "Incorrect email or password"


def test_authenticate_refuses_password_that_only_matches_when_truncated(
    authenticate: Callable[..., User], session: Session
) -> None:
    password = "a1" * 36  # exactly bcrypt's 72 bytes
    user = make_user(session, password=password)

    error = _auth_error(authenticate, session, email=user.email, password=password + "anything")

    assert error.detail == "Incorrect email or password"


@pytest.mark.parametrize(
    "email",
    ["", "   ", "nul\x00@example.com", "a" * 250 + "@example.com"],
    ids=["empty", "blank", "nul", "too-long"],
)
def test_authenticate_implausible_email_is_the_same_authentication_error(
    authenticate: Callable[..., User], session: Session, email: str
) -> None:
    error = _auth_error(authenticate, session, email=email, password=DEFAULT_PASSWORD)

    assert error.detail == "Incorrect email or password"


def test_authenticate_inactive_user_with_right_password_is_permission_denied(
    authenticate: Callable[..., User],
    session: Session,
) -> None:
    user = make_user(session, is_active=False)

    with pytest.raises(PermissionDeniedError):
        authenticate(session, email=user.email, password=DEFAULT_PASSWORD, client_address=CLIENT)


def test_authenticate_inactive_user_with_wrong_password_is_authentication_error(
    authenticate: Callable[..., User],
    session: Session,
) -> None:
    user = make_user(session, is_active=False)

    error = _auth_error(authenticate, session, email=user.email, password="wrong-password-1")

    assert error.detail == "Incorrect email or password"


@pytest.mark.parametrize(
    ("email", "password"),
    [
        ("known", DEFAULT_PASSWORD),
        ("known", "wrong-password-1"),
        ("nobody@example.com", DEFAULT_PASSWORD),
        ("", DEFAULT_PASSWORD),
        ("known", "é" * 40),
        ("known", "password1\x00"),
    ],
    ids=["success", "wrong-password", "unknown-email", "empty-email", "too-long", "nul"],
)
def test_authenticate_costs_one_bcrypt_check_whatever_the_outcome(
    authenticate: Callable[..., User],
    session: Session,
    user: User,
    bcrypt_verifications: list[str],
    email: str,
    password: str,
) -> None:
    email = user.email if email == "known" else email

    with contextlib.suppress(AuthenticationError):
        authenticate(session, email=email, password=password, client_address=CLIENT)

    assert len(bcrypt_verifications) == 1


def test_issued_token_decodes_to_the_user_and_token_key(session: Session, user: User) -> None:
    token = issue_access_token(user)

    claims = decode_access_token(token.token)

    assert claims == TokenClaims(user_id=user.id, token_key=user.token_key)


def test_get_token_user_returns_the_user(session: Session, user: User) -> None:
    claims = decode_access_token(issue_access_token(user).token)

    result = get_token_user(session, claims=claims)

    assert result is user


# --- the caller check, whether it loads the account (get_token_user) or only what it checks
# (get_token_caller): the same answers ------------------------------------------------------

CALLER_CHECKS = [get_token_user, get_token_caller]
REVOCATIONS = ["unknown user", "deleted", "key replaced", "another account's key", "random key"]


def test_get_token_caller_is_the_accounts_id_and_role(session: Session) -> None:
    admin = make_user(session, role="admin")
    claims = decode_access_token(issue_access_token(admin).token)

    caller = get_token_caller(session, claims=claims)

    assert caller == Caller(id=admin.id, role=admin.role)


@pytest.mark.parametrize("check", CALLER_CHECKS)
@pytest.mark.parametrize("change", REVOCATIONS)
def test_a_revoked_token_is_invalid_token(
    session: Session, user: User, other_user: User, check: Callable[..., object], change: str
) -> None:
    claims = decode_access_token(issue_access_token(user).token)
    if change == "unknown user":
        claims = TokenClaims(user_id=2**31 - 1, token_key=new_token_key())
    elif change == "deleted":
        session.delete(user)
    elif change == "key replaced":
        user.token_key = new_token_key()
    elif change == "another account's key":
        claims = TokenClaims(user_id=user.id, token_key=other_user.token_key)
    else:
        claims = TokenClaims(user_id=user.id, token_key=new_token_key())
    session.flush()

    with pytest.raises(AuthenticationError) as caught:
        check(session, claims=claims)

    assert caught.value.token_sent is True


@pytest.mark.parametrize("check", CALLER_CHECKS)
def test_a_deactivated_users_token_is_permission_denied(
    session: Session, user: User, check: Callable[..., object]
) -> None:
    claims = decode_access_token(issue_access_token(user).token)
    user.is_active = False
    session.flush()

    with pytest.raises(PermissionDeniedError):
        check(session, claims=claims)
