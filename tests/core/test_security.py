"""Unit tests of password hashing and access tokens (app.core.security)."""

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
from jose import jwt
from passlib.context import CryptContext

from app.core.config import get_settings
from app.core.security import (
    MAX_TOKEN_LENGTH,
    MAX_USER_ID,
    TokenClaims,
    create_access_token,
    decode_access_token,
    hash_password,
    verify_password,
)

PASSWORD = "correct-horse-7"
# Exactly bcrypt's 72-byte limit.
PASSWORD_72_BYTES = "a1" * 36


def _b64url(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _claims(**overrides: Any) -> dict[str, Any]:
    """Valid access-token claims for user 1, with ``overrides`` applied (None removes a claim)."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "sub": "1",
        "iat": now,
        "exp": now + 600,
        "type": "access",
        "tkey": "0123456789abcdef0123456789abcdef",
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def _sign(claims: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key or get_settings().secret_key, algorithm=algorithm)


def _unsigned_token() -> str:
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(_claims())}."


INVALID = "invalid token"
# Each case: how to make the token, and the reason decode_access_token must give.
BAD_TOKENS: dict[str, tuple[Callable[[], str], str]] = {
    "garbage": (lambda: "not-a-jwt", INVALID),
    "three-garbage-segments": (lambda: "aaa.bbb.ccc", INVALID),
    "expired": (
        lambda: _sign(_claims(iat=int(time.time()) - 3600, exp=int(time.time()) - 60)),
        INVALID,
    ),
    "wrong-key": (
        lambda: _sign(_claims(), key="another-secret-key-of-a-decent-length-0123456"),
        INVALID,
    ),
    "alg-none": (_unsigned_token, INVALID),
    "alg-swap-hs512": (lambda: _sign(_claims(), algorithm="HS512"), INVALID),
    "type-refresh": (lambda: _sign(_claims(type="refresh")), "not an access token"),
    "type-missing": (lambda: _sign(_claims(type=None)), "not an access token"),
    "exp-missing": (lambda: _sign(_claims(exp=None)), INVALID),
    "iat-missing": (lambda: _sign(_claims(iat=None)), INVALID),
    "sub-missing": (lambda: _sign(_claims(sub=None)), INVALID),
    "sub-not-numeric": (lambda: _sign(_claims(sub="abc")), "malformed subject"),
    "sub-integer-not-string": (lambda: _sign(_claims(sub=1)), INVALID),
    "sub-negative": (lambda: _sign(_claims(sub="-1")), "malformed subject"),
    # Fullwidth "1": str.isdigit() accepts it, int() would too.
    "sub-non-ascii-digits": (lambda: _sign(_claims(sub="\uff11")), "malformed subject"),
    "sub-zero": (lambda: _sign(_claims(sub="0")), "subject out of range"),
    "sub-too-large": (lambda: _sign(_claims(sub="99999999999")), "subject out of range"),
    "sub-just-too-large": (
        lambda: _sign(_claims(sub=str(MAX_USER_ID + 1))),
        "subject out of range",
    ),
    "key-missing": (lambda: _sign(_claims(tkey=None)), "malformed token key"),
    "key-not-string": (lambda: _sign(_claims(tkey=0)), "malformed token key"),
    "key-too-short": (lambda: _sign(_claims(tkey="0123")), "malformed token key"),
    "oversized": (
        lambda: _sign(_claims(padding="x" * MAX_TOKEN_LENGTH)),
        "token too long",
    ),
}


def test_hashed_password_verifies() -> None:
    hashed = hash_password(PASSWORD)

    assert verify_password(PASSWORD, hashed) is True


def test_hash_is_salted_and_never_the_password() -> None:
    first, second = hash_password(PASSWORD), hash_password(PASSWORD)

    assert first != second
    assert PASSWORD not in first


def test_hash_uses_bcrypt_with_configured_rounds() -> None:
    hashed = hash_password(PASSWORD)

    assert hashed.startswith("$2b$")
    assert int(hashed.split("$")[2]) == get_settings().BCRYPT_ROUNDS


def test_wrong_password_does_not_verify() -> None:
    hashed = hash_password(PASSWORD)

    assert verify_password("correct-horse-8", hashed) is False


def test_missing_hash_does_not_verify() -> None:
    assert verify_password(PASSWORD, None) is False


def test_malformed_hash_does_not_verify() -> None:
    assert verify_password(PASSWORD, "not-a-bcrypt-hash") is False


def test_password_of_exactly_72_bytes_is_hashed_and_verifies() -> None:
    hashed = hash_password(PASSWORD_72_BYTES)

    assert verify_password(PASSWORD_72_BYTES, hashed) is True


@pytest.mark.parametrize(
    "password",
    [PASSWORD_72_BYTES + "x", "é" * 37, "pass\x00word1"],
    ids=["73-ascii-bytes", "74-utf8-bytes", "nul"],
)
def test_hash_password_refuses_what_bcrypt_would_truncate(password: str) -> None:
    with pytest.raises(ValueError, match="72-byte"):
        hash_password(password)


def test_password_longer_than_72_bytes_does_not_match_its_72_byte_prefix() -> None:
    hashed = hash_password(PASSWORD_72_BYTES)

    # bcrypt alone would ignore the 73rd byte and accept this.
    assert verify_password(PASSWORD_72_BYTES + "x", hashed) is False


def test_password_with_nul_does_not_match_its_prefix() -> None:
    hashed = hash_password("password1")

    # bcrypt alone stops at NUL and would accept this.
    assert verify_password("password1\x00anything", hashed) is False


@pytest.mark.parametrize("password", ["é" * 40, "password1\x00"], ids=["over-72-bytes", "nul"])
def test_unusable_password_does_not_verify_against_any_hash(password: str) -> None:
    hashed = hash_password(PASSWORD)

    assert verify_password(password, hashed) is False


@pytest.fixture
def bcrypt_verifications(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every bcrypt verification the code under test performs."""
    calls: list[str] = []
    original = CryptContext.verify

    def counting_verify(self: CryptContext, secret: Any, hashed: Any, **kwargs: Any) -> Any:
        calls.append(hashed)
        return original(self, secret, hashed, **kwargs)

    monkeypatch.setattr(CryptContext, "verify", counting_verify)
    return calls


@pytest.mark.parametrize(
    ("password", "has_hash"),
    [(PASSWORD, True), ("wrong-password-1", True), (PASSWORD, False), ("é" * 40, True)],
    ids=["right-password", "wrong-password", "no-hash", "unusable-password"],
)
def test_verify_costs_one_bcrypt_check_whatever_the_input(
    bcrypt_verifications: list[str], password: str, has_hash: bool
) -> None:
    hashed = hash_password(PASSWORD) if has_hash else None

    verify_password(password, hashed)

    assert len(bcrypt_verifications) == 1


def test_fresh_token_decodes_to_its_user_and_token_key() -> None:
    token = create_access_token(user_id=42, token_key="0123456789abcdef0123456789abcdef")

    claims = decode_access_token(token.token)

    assert claims == TokenClaims(user_id=42, token_key="0123456789abcdef0123456789abcdef")


def test_token_carries_the_contract_claims() -> None:
    settings = get_settings()

    token = create_access_token(user_id=7, token_key="0123456789abcdef0123456789abcdef")

    claims = jwt.decode(token.token, settings.secret_key, algorithms=[settings.JWT_ALGORITHM])
    assert claims["sub"] == "7"
    assert claims["type"] == "access"
    assert claims["exp"] - claims["iat"] == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60
    assert token.expires_in == settings.ACCESS_TOKEN_EXPIRE_MINUTES * 60


def test_token_header_names_the_configured_algorithm() -> None:
    token = create_access_token(user_id=7, token_key="0123456789abcdef0123456789abcdef")

    assert jwt.get_unverified_header(token.token)["alg"] == get_settings().JWT_ALGORITHM == "HS256"


def test_hand_crafted_valid_token_decodes() -> None:
    # Guards the bad-token cases below: they differ from this one in one respect only.
    claims = decode_access_token(_sign(_claims(sub=str(MAX_USER_ID))))

    assert claims == TokenClaims(user_id=MAX_USER_ID, token_key="0123456789abcdef0123456789abcdef")


def test_oversized_token_case_is_really_oversized() -> None:
    make_token, _reason = BAD_TOKENS["oversized"]

    assert len(make_token()) > MAX_TOKEN_LENGTH


@pytest.mark.parametrize(("make_token", "reason"), BAD_TOKENS.values(), ids=BAD_TOKENS.keys())
def test_decode_refuses_bad_token(make_token: Callable[[], str], reason: str) -> None:
    token = make_token()

    with pytest.raises(ValueError, match=reason):
        decode_access_token(token)


@pytest.mark.parametrize("token", ["", " ", "Bearer x", "\x00", "é.é.é"])
def test_decode_refuses_junk_strings(token: str) -> None:
    with pytest.raises(ValueError, match=INVALID):
        decode_access_token(token)
