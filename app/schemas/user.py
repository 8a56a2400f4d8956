import re
from datetime import datetime
from typing import Annotated

from pydantic import AfterValidator, EmailStr, Field, StrictBool, StringConstraints

from app.core.roles import Role
from app.core.security import BCRYPT_MAX_PASSWORD_BYTES
from app.schemas.base import NotNull, ReadSchema, Schema

MAX_EMAIL_LENGTH = 254
PASSWORD_MIN_LENGTH = 8
_LETTER = re.compile(r"[^\W\d_]")
_DIGIT = re.compile(r"\d")


def _normalize_email(value: str) -> str:
    value = value.lower()
    if len(value) > MAX_EMAIL_LENGTH:
        raise ValueError(f"must be at most {MAX_EMAIL_LENGTH} characters")
    return value


def _check_password(value: str) -> str:
    if len(value) < PASSWORD_MIN_LENGTH:
        raise ValueError(f"must be at least {PASSWORD_MIN_LENGTH} characters")
    if len(value.encode()) > BCRYPT_MAX_PASSWORD_BYTES:
        # bcrypt would silently ignore the rest; refuse instead of truncating.
        raise ValueError(f"must be at most {BCRYPT_MAX_PASSWORD_BYTES} bytes of UTF-8")
    if not _LETTER.search(value) or not _DIGIT.search(value):
        raise ValueError("must contain at least one letter and one digit")
    return value


Email = Annotated[
    EmailStr,
    Field(
        max_length=MAX_EMAIL_LENGTH,
        description="Compared ignoring case and returned lower-cased. Special-use domains "
        "(`.test`, `.local`, `.invalid`, `localhost`, ...) cannot receive mail and are refused.",
        examples=["ada@example.com"],
    ),
    AfterValidator(_normalize_email),
]
Username = Annotated[
    str,
    StringConstraints(min_length=3, max_length=50, pattern=r"^[A-Za-z0-9_]+$"),
    Field(description="3-50 of A-Z, a-z, 0-9, _; unique ignoring case", examples=["ada_l"]),
]
Password = Annotated[
    str,
    Field(
        description="8 to 72 bytes of UTF-8 with at least one letter and one digit",
        examples=["correct-horse-7"],
        # Documentation only (the validator gives the clearer messages). JSON Schema counts
        # characters, so maxLength is the ASCII bound; accented letters take more bytes.
        json_schema_extra={
            "minLength": PASSWORD_MIN_LENGTH,
            "maxLength": BCRYPT_MAX_PASSWORD_BYTES,
            "pattern": r"^[^\x00]*(?:\d[^\x00]*[^\W\d_]|[^\W\d_][^\x00]*\d)[^\x00]*$",
        },
    ),
    AfterValidator(_check_password),
]
FullName = Annotated[str, Field(max_length=100, examples=["Ada Lovelace"])]


class UserCreate(Schema):
    """Sign-up. Role and state cannot be chosen: new users are active, with the role `user`."""

    email: Email
    username: Username
    password: Password
    full_name: FullName | None = None


CurrentPassword = Annotated[
    str,
    Field(
        max_length=1024,
        description="The account's password as it is now. A wrong one is 422 here and counts "
        "as a failed login for the `RATE_LIMIT_LOGIN` budgets.",
    ),
]


class _AccountFields(Schema):
    email: NotNull[Email] = None
    username: NotNull[Username] = None
    full_name: FullName | None = None


class UserUpdateMe(_AccountFields):
    """Fields a user may change on their own account; omitted fields stay as they are.
    Changing the email (the login) needs ``current_password``."""

    current_password: NotNull[CurrentPassword] = None


class UserUpdateAdmin(_AccountFields):
    """Fields an admin may change on any account (a new password, or a deactivation, revokes
    the user's tokens)."""

    role: NotNull[Role] = None
    is_active: NotNull[StrictBool] = None  # JSON true/false only, not 0, 1 or "yes"
    password: NotNull[Password] = None


class PasswordChange(Schema):
    current_password: CurrentPassword
    new_password: Password


class UserRead(ReadSchema):
    id: int
    email: str
    username: str
    full_name: str | None
    role: Role
    is_active: bool
    created_at: datetime
    updated_at: datetime
