"""The route class every API route uses: body size and content type are checked after routing
(so unknown paths stay 404 and wrong methods 405) and before the body is read or anyone is
authenticated, giving the contract's order 429, 413, 415, 400, 401."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi import params as fastapi_params
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from starlette.types import Message

from app.core.config import get_settings
from app.core.errors import RateLimitedError
from app.core.rate_limit import get_rate_limiter, parse_limit
from app.core.security import decode_access_token

JSON_MEDIA_TYPES = "application/json or application/*+json"
FORM_MEDIA_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")


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


def _budget_key(request: Request) -> tuple[str, str]:
    """The caller's user id when it sent a valid token (no database needed), else its address."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        try:
            return "user", str(decode_access_token(token).user_id)
        except ValueError:
            pass
    return "address", request.client.host if request.client else "unknown"


def _consume_request_budget(request: Request, rate: str) -> None:
    kind, key = _budget_key(request)
    wait = get_rate_limiter().consume(parse_limit(rate), "requests", kind, key)
    if wait is not None:
        raise RateLimitedError("Request budget spent; retry later", retry_after=wait)


async def enforce_request_budget(request: Request) -> None:
    """``RATE_LIMIT_DEFAULT`` per user (or per address for anonymous calls), checked before the
    body is read. The store may be Redis, so the check runs off the event loop."""
    rate = get_settings().RATE_LIMIT_DEFAULT
    if rate:
        await run_in_threadpool(_consume_request_budget, request, rate)


class ContractRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        reads_body = self.body_field is not None
        is_form = self.body_field is not None and isinstance(
            self.body_field.field_info, fastapi_params.Form
        )

        async def checked_handler(request: Request) -> Response:
            await enforce_request_budget(request)
            if not reads_body:
                return await handler(request)
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
            return await handler(_limit_body(request, limit))

        return checked_handler
