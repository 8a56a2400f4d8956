"""The route class every API route uses: body size and content type are checked after routing
(so unknown paths stay 404 and wrong methods 405) and before the body is read or anyone is
authenticated, giving the contract's order 429, 413, 415, 400, 401."""

import asyncio
import functools
import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi import params as fastapi_params
from fastapi.concurrency import run_in_threadpool
from fastapi.routing import APIRoute
from sqlalchemy.orm import Session
from starlette.types import Message

from app.core.config import get_settings
from app.core.db import commit_in_this_thread
from app.core.errors import RateLimitedError
from app.core.rate_limit import get_rate_limiter, parse_limit
from app.core.security import decode_access_token
from app.core.threads import in_database_thread

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
    """``RATE_LIMIT_DEFAULT`` per user (or per address for anonymous calls), checked before the
    body is read. The store may be Redis, so the check runs off the event loop."""
    rate = get_settings().RATE_LIMIT_DEFAULT
    if rate:
        await run_in_threadpool(_consume_request_budget, request, rate)


def database_admission(request: Request) -> asyncio.Semaphore:
    """``async with`` it to wait (on the event loop, holding no thread) until fewer than
    DB_POOL_SIZE requests of this worker hold a database session. Past this point a request
    always finds a pooled connection, so load makes requests queue instead of failing with
    pool time-outs."""
    slots: asyncio.Semaphore | None = getattr(request.app.state, "database_slots", None)
    if slots is None:
        slots = request.app.state.database_slots = asyncio.Semaphore(get_settings().DB_POOL_SIZE)
    return slots


def _in_one_thread_hop(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint as a coroutine that runs it, then commits its session, in one
    thread-pool call. Left sync, FastAPI would hop to a thread for the endpoint, again to
    validate its return value and again (in get_session) to commit; each hop costs about as
    much CPU as a query. The return value is then validated on the event loop, as for async
    endpoints (CPU-only work), after the commit: the unit of work ends with the endpoint, and
    a failed commit is an error response, never a 2xx."""

    def run_and_commit(values: dict[str, Any]) -> Any:
        result = endpoint(**values)
        for value in values.values():
            if isinstance(value, Session):
                commit_in_this_thread(value)
        return result

    @functools.wraps(endpoint)
    async def endpoint_in_thread(**values: Any) -> Any:
        return await in_database_thread(run_and_commit, values)

    return endpoint_in_thread


class ContractRoute(APIRoute):
    """Every API route: checks in the contract's order, then database admission around the
    dependencies, the endpoint and the commit (a queued request holds no session yet)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_one_thread_hop(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        route_handler = super().get_route_handler()

        async def handler(request: Request) -> Response:
            async with database_admission(request):
                return await route_handler(request)

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
