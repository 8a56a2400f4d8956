"""Pure ASGI middleware (no BaseHTTPMiddleware: it costs a task per request and breaks
streaming): request id, security headers, access log, metrics and the last-resort 500."""

import json
import logging
import re
import time
import uuid
from collections.abc import Iterable
from http import HTTPStatus

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.metrics import IN_FLIGHT, UNMATCHED_ROUTE, observe_request

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("app.access")

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


_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode()


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:  # ASGI header names are lower-case
        if name == _REQUEST_ID_KEY:
            sent: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(sent):
                return sent
            break
    return uuid.uuid4().hex


class RequestContextMiddleware:
    """Request id, security headers, one access-log line and metrics per request, and the
    problem response for anything unhandled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        status = 500
        response_started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal response_started, status
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                message["headers"] = _with_context_headers(
                    message.get("headers", ()),
                    request_id=request_id,
                    https=scope.get("scheme") == "https",
                )
            await send(message)

        IN_FLIGHT.inc()
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
        finally:
            IN_FLIGHT.dec()
            _record(scope, status, time.perf_counter() - started, request_id)


def _route_template(scope: Scope) -> str:
    # FastAPI (0.16x) includes routers lazily: scope["route"] is the inner route with a path
    # relative to its router; the full template is on the effective route context. The metrics
    # tests pin the expected /api/v1/... label, so a change here fails loudly.
    context = scope.get("fastapi", {}).get("effective_route_context")
    template = getattr(context, "path_format", None) or getattr(scope.get("route"), "path", None)
    if template is None and scope.get("root_path"):
        return f"{scope['root_path']}/{{path}}"  # a mounted app (the docs assets)
    return template or UNMATCHED_ROUTE


def _record(scope: Scope, status: int, seconds: float, request_id: str) -> None:
    method, route = scope["method"], _route_template(scope)
    observe_request(method, route, status, seconds)
    if access_logger.isEnabledFor(logging.INFO):
        client = scope.get("client")
        # makeRecord + handle is logger.info() without findCaller's stack walk (the access
        # line has no use for a source line): a measurable share of a request's CPU.
        record = access_logger.makeRecord(
            access_logger.name,
            logging.INFO,
            "",
            0,
            "%s %s %d",
            (method, scope.get("path", ""), status),
            None,
            extra={
                "request_id": request_id,
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": round(seconds * 1000, 2),
                "client": client[0] if client else None,
                "user_id": scope["state"].get("user_id"),
            },
        )
        access_logger.handle(record)


_SECURITY_HEADERS = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)
_CSP = b"content-security-policy"
_HSTS_HEADER = (b"strict-transport-security", _HSTS.encode())


def _with_context_headers(
    raw: Iterable[tuple[bytes, bytes]], *, request_id: str, https: bool
) -> list[tuple[bytes, bytes]]:
    """The response's headers plus the request id and the security headers it does not set
    itself (the docs set none; a JSON response's CSP forbids everything)."""
    headers = [(name, value) for name, value in raw if name.lower() != _REQUEST_ID_KEY]
    names = {name.lower() for name, _ in headers}
    headers.append((_REQUEST_ID_KEY, request_id.encode("latin-1")))
    headers.extend(header for header in _SECURITY_HEADERS if header[0] not in names)
    if _CSP not in names:
        html = any(
            name.lower() == b"content-type" and value.startswith(b"text/html")
            for name, value in headers
        )
        headers.append((_CSP, (_DOCS_CSP if html else _JSON_CSP).encode()))
    if https and _HSTS_HEADER[0] not in names:
        headers.append(_HSTS_HEADER)
    return headers


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
