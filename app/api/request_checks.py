"""The checks every API request passes before its body is read or anyone is authenticated, in
the contract's order: 429 (request budget), 413 (body size), 415 (media type)."""

from fastapi import HTTPException, Request
from starlette.types import Message

from app.core.config import get_settings
from app.core.errors import RateLimitedError
from app.core.rate_limit import get_rate_limiter, parse_limit
from app.core.security import decode_access_token
from app.core.threads import in_thread

JSON_MEDIA_TYPES = "application/json or application/*+json"
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


def _budget_key(request: Request) -> tuple[str, str]:
    """The caller's account when it sent a valid token (no database needed), else its address.
    The account's token key is part of it, so a revoked token spends a budget of its own, not
    the account's current one."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            claims = decode_access_token(token)
        except ValueError:
            pass
        else:
            return "user", f"{claims.user_id}:{claims.token_key}"
    return "address", request.client.host if request.client else "unknown"


def _consume_request_budget(request: Request, rate: str) -> None:
    kind, key = _budget_key(request)
    wait = get_rate_limiter().consume(parse_limit(rate), "requests", kind, key)
    if wait is not None:
        raise RateLimitedError("Request budget spent; retry later", retry_after=wait)


async def enforce_request_budget(request: Request) -> None:
    """``RATE_LIMIT_DEFAULT`` per user (or per address for anonymous calls). The store may be
    Redis, so the check runs off the event loop."""
    rate = get_settings().RATE_LIMIT_DEFAULT
    if rate:
        await in_thread(_consume_request_budget, request, rate)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def _is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def _too_large(limit: int) -> HTTPException:
    return HTTPException(413, f"The request body is larger than {limit} bytes")


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


def _limit_body(request: Request, limit: int) -> Request:
    """A request whose body stream fails with 413 once it exceeds ``limit`` bytes, so a body
    without Content-Length (chunked) is never read whole either."""
    received = 0
    receive = request.receive

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > limit:
                raise _too_large(limit)
        return message

    return Request(request.scope, limited_receive)


def checked_body(request: Request, *, is_form: bool) -> Request:
    """413 for a declared length over ``MAX_REQUEST_BODY_BYTES``, 415 for a body of the wrong
    media type; the request returned stops reading at the limit."""
    limit = get_settings().MAX_REQUEST_BODY_BYTES
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise _too_large(limit)
    if _has_body(request):
        media_type = _media_type(request)
        if is_form and media_type not in FORM_MEDIA_TYPES:
            raise HTTPException(415, f"Expected one of {', '.join(FORM_MEDIA_TYPES)}")
        if not is_form and not _is_json(media_type):
            raise HTTPException(415, f"Expected {JSON_MEDIA_TYPES}")
    return _limit_body(request, limit)
