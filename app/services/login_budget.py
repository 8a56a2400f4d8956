"""Budgets of failed logins, per account and per client address (``RATE_LIMIT_LOGIN``).

Both budgets are checked before any password hashing, so a guessing client is stopped cheaply.
Only failures count; a successful login clears the account's budget (not the address's, so one
known password cannot launder guesses at other accounts from the same address). While an
account's budget is spent, even its owner must wait out ``Retry-After``: the accepted price of
bounding guesses per account.
"""

import hashlib

from app.core.config import get_settings
from app.core.errors import RateLimitedError
from app.core.rate_limit import get_rate_limiter, parse_limit

_ACCOUNT = "login-account"
_ADDRESS = "login-address"


def _account_key(email: str) -> str:
    # Hashed: the counter store never holds email addresses, and odd input stays a short key.
    return hashlib.sha256(email.strip().lower().encode(errors="replace")).hexdigest()


def ensure_login_allowed(*, email: str, client_address: str) -> None:
    limit = parse_limit(get_settings().RATE_LIMIT_LOGIN)
    limiter = get_rate_limiter()
    waits = [
        wait
        for wait in (
            limiter.retry_after(limit, _ACCOUNT, _account_key(email)),
            limiter.retry_after(limit, _ADDRESS, client_address),
        )
        if wait is not None
    ]
    if waits:
        raise RateLimitedError(
            "Too many failed login attempts; retry later", retry_after=max(waits)
        )


def record_failed_login(*, email: str, client_address: str) -> None:
    limit = parse_limit(get_settings().RATE_LIMIT_LOGIN)
    limiter = get_rate_limiter()
    limiter.hit(limit, _ACCOUNT, _account_key(email))
    limiter.hit(limit, _ADDRESS, client_address)


def clear_failed_logins(*, email: str) -> None:
    limit = parse_limit(get_settings().RATE_LIMIT_LOGIN)
    get_rate_limiter().clear(limit, _ACCOUNT, _account_key(email))
