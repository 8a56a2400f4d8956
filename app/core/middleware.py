"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request and breaks
streaming): request id, security headers and the last-resort 500."""

import json
import logging
import re
import uuid
from http import HTTPStatus

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Up to 128 visible ASCII characters: anything else could forge log lines or bloat them.
_SANE_REQUEST_ID = re.compile(r"^[\x21-\x7e]{1,128}$")

_JSON_CSP = "default-src 'none'; frame-ancestors 'none'"
# Swagger UI and ReDoc run inline scripts and styles, all served from this host.
_DOCS_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; worker-src 'self' blob:; frame-ancestors 'none'"
)
_HSTS = "max-age=63072000; includeSubDomains"


def _request_id(scope: Scope) -> str:
    sent = Headers(scope=scope).get(REQUEST_ID_HEADER)
    if sent is not None and _SANE_REQUEST_ID.match(sent):
        return sent
    return uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _request_id(scope)
        scope.setdefault("state", {})["request_id"] = request_id
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
                headers = MutableHeaders(scope=message)
                headers[REQUEST_ID_HEADER] = request_id
                _add_security_headers(headers, https=scope.get("scheme") == "https")
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            logger.exception(
                "Unhandled error in %s %s",
                scope.get("method"),
                scope.get("path"),
                extra={"request_id": request_id},
            )
            if response_started:
                raise  # too late to answer; the server closes the connection
            await _send_internal_error(scope, send_with_headers, request_id)


def _add_security_headers(headers: MutableHeaders, *, https: bool) -> None:
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("X-Frame-Options", "DENY")
    content_type = headers.get("content-type", "")
    if content_type.startswith("text/html"):
        headers.setdefault("Content-Security-Policy", _DOCS_CSP)
    else:
        headers.setdefault("Content-Security-Policy", _JSON_CSP)
    if https:
        headers.setdefault("Strict-Transport-Security", _HSTS)


async def _send_internal_error(scope: Scope, send: Send, request_id: str) -> None:
    body = json.dumps(
        {
            "type": "about:blank",
            "title": HTTPStatus.INTERNAL_SERVER_ERROR.phrase,
            "status": 500,
            "detail": "An unexpected error occurred; it has been logged",
            "instance": scope.get("path", ""),
            "request_id": request_id,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 500,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
