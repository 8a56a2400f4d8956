"""The route class every API route uses: body size and content type are checked after routing
(so unknown paths stay 404 and wrong methods 405) and before the body is read or anyone is
authenticated, giving the contract's order 413, 415, 400, 401."""

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import HTTPException, Request, Response
from fastapi import params as fastapi_params
from fastapi.routing import APIRoute
from starlette.types import Message

from app.core.config import get_settings

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


class ContractRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        is_form = isinstance(self.body_field.field_info, fastapi_params.Form)

        async def checked_handler(request: Request) -> Response:
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
