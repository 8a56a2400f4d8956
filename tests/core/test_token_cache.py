"""A verified token is remembered, but never past its own time bounds or under another key."""

import time

import pytest
from jose import jwt

from app.core import security
from app.core.config import Settings, get_settings


def token(**claims: object) -> str:
    now = int(time.time())
    body = {
        "sub": "7",
        "iat": now,
        "exp": now + 60,
        "type": "access",
        "tkey": "0123456789abcdef0123456789abcdef",
        **claims,
    }
    return jwt.encode(body, get_settings().secret_key, algorithm="HS256")


def test_a_remembered_token_still_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    expiring = token()
    assert security.decode_access_token(expiring).user_id == 7

    monkeypatch.setattr(security, "_now", lambda: time.time() + 61)

    with pytest.raises(ValueError, match="invalid token"):
        security.decode_access_token(expiring)


def test_a_remembered_token_is_not_valid_before_nbf(monkeypatch: pytest.MonkeyPatch) -> None:
    now = int(time.time())
    early = token(nbf=now - 1)
    assert security.decode_access_token(early).user_id == 7

    monkeypatch.setattr(security, "_now", lambda: now - 30)

    with pytest.raises(ValueError, match="invalid token"):
        security.decode_access_token(early)


def test_failures_are_checked_every_time() -> None:
    forged = token()[:-4] + "AAAA"

    for _ in range(2):
        with pytest.raises(ValueError, match="invalid token"):
            security.decode_access_token(forged)


def test_a_token_is_not_remembered_across_keys() -> None:
    signed = token()
    security.decode_access_token(signed)
    other_key = Settings(SECRET_KEY="another-key-of-enough-length-0123456789abcdef")

    with pytest.raises(ValueError, match="invalid token"):
        security.decode_access_token(signed, settings=other_key)


def test_verification_happens_once_per_token(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_decode = security.jwt.decode
    monkeypatch.setattr(
        security.jwt, "decode", lambda *a, **k: calls.append("decode") or real_decode(*a, **k)
    )
    fresh = token(ver=41)

    for _ in range(3):
        security.decode_access_token(fresh)

    assert calls == ["decode"]
