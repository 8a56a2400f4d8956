"""Password hashing (bcrypt through passlib) and access tokens (JWT through python-jose)."""

import hmac
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from jose import JWTError, jwt
from passlib.context import CryptContext

from app.core.config import Settings, get_settings

ACCESS_TOKEN_TYPE = "access"
BCRYPT_MAX_PASSWORD_BYTES = 72
# Far beyond any real token; refuses garbage before it reaches the decoder.
MAX_TOKEN_LENGTH = 4096
MAX_USER_ID = 2**31 - 1
TOKEN_KEY_BYTES = 16
VERIFIED_TOKEN_CACHE_SIZE = 4096


@lru_cache
def _password_context(rounds: int) -> CryptContext:
    return CryptContext(schemes=["bcrypt"], bcrypt__rounds=rounds)


def _context() -> CryptContext:
    return _password_context(get_settings().BCRYPT_ROUNDS)


def password_fits_hash(password: str) -> bool:
    """bcrypt reads at most 72 bytes and stops at NUL; such passwords are refused, never cut."""
    return "\x00" not in password and len(password.encode()) <= BCRYPT_MAX_PASSWORD_BYTES


def hash_password(password: str) -> str:
    if not password_fits_hash(password):
        raise ValueError("password does not fit bcrypt's 72-byte limit or contains NUL")
    hashed: str = _context().hash(password)
    return hashed


@lru_cache
def _dummy_hash(rounds: int) -> str:
    hashed: str = _password_context(rounds).hash("dummy password for unknown accounts 1")
    return hashed


def verify_password(password: str, hashed_password: str | None) -> bool:
    """Constant-time check that costs one bcrypt round whatever the input.

    ``hashed_password=None`` (unknown account) and unusable passwords are checked against a dummy
    hash, so a wrong email and a wrong password take the same time and give the same answer.
    """
    usable = password_fits_hash(password)
    target = hashed_password if hashed_password and usable else _dummy_hash(_rounds())
    try:
        matches = bool(_context().verify(password if usable else "", target))
    except (ValueError, TypeError):
        return False
    return matches and usable and hashed_password is not None


def _rounds() -> int:
    return get_settings().BCRYPT_ROUNDS


@dataclass(frozen=True, slots=True)
class AccessToken:
    token: str
    expires_in: int


def new_token_key() -> str:
    """A random value only one account has, until its tokens are revoked: its tokens carry it,
    so a token never speaks for another account (even one that got the same id) and a new key
    revokes every token issued before it, even within the same second."""
    return secrets.token_hex(TOKEN_KEY_BYTES)


def token_keys_match(claimed: str, actual: str) -> bool:
    return hmac.compare_digest(claimed.encode(), actual.encode())


@dataclass(frozen=True, slots=True)
class TokenClaims:
    user_id: int
    token_key: str


def create_access_token(
    *, user_id: int, token_key: str, settings: Settings | None = None
) -> AccessToken:
    settings = settings or get_settings()
    lifetime = timedelta(minutes=settings.ACCESS_TOKEN_EXPIRE_MINUTES)
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "type": ACCESS_TOKEN_TYPE,
        "tkey": token_key,
    }
    token = jwt.encode(claims, settings.secret_key, algorithm=settings.JWT_ALGORITHM)
    return AccessToken(token=token, expires_in=int(lifetime.total_seconds()))


def decode_access_token(token: str, *, settings: Settings | None = None) -> TokenClaims:
    """Verify signature (pinned algorithm), ``exp``, ``nbf``, ``iat``, ``type`` and ``sub``.

    Raises ``ValueError`` for anything that is not a valid access token of ours. A token string
    always verifies the same way under the same key, so a successful verification is kept
    (bounded, per process) and only the clock-dependent claims are checked again on each use;
    failures are never kept.
    """
    settings = settings or get_settings()
    if len(token) > MAX_TOKEN_LENGTH:
        raise ValueError("token too long")
    verified = _verify(token, settings.secret_key, settings.JWT_ALGORITHM)
    now = _now()
    if now > verified.expires_at or (verified.not_before is not None and now < verified.not_before):
        raise ValueError("invalid token")
    return verified.claims


@dataclass(frozen=True, slots=True)
class _VerifiedToken:
    claims: TokenClaims
    expires_at: float
    not_before: float | None


def _now() -> float:
    return time.time()


@lru_cache(maxsize=VERIFIED_TOKEN_CACHE_SIZE)
def _verify(token: str, key: str, algorithm: str) -> _VerifiedToken:
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            options={"require_exp": True, "require_iat": True, "require_sub": True},
        )
    except (JWTError, ValueError, TypeError, KeyError, UnicodeError) as exc:
        raise ValueError("invalid token") from exc
    subject, token_key = claims.get("sub"), claims.get("tkey")
    if claims.get("type") != ACCESS_TOKEN_TYPE:
        raise ValueError("not an access token")
    if not isinstance(subject, str) or not subject.isascii() or not subject.isdigit():
        raise ValueError("malformed subject")
    if not isinstance(token_key, str) or len(token_key) != 2 * TOKEN_KEY_BYTES:
        raise ValueError("malformed token key")
    user_id = int(subject)
    if not 1 <= user_id <= MAX_USER_ID:
        raise ValueError("subject out of range")
    not_before = claims.get("nbf")
    return _VerifiedToken(
        claims=TokenClaims(user_id=user_id, token_key=token_key),
        expires_at=float(claims["exp"]),
        not_before=float(not_before) if not_before is not None else None,
    )
