"""RFC 9457 problem details for every 4xx/5xx, and the one table mapping errors to statuses."""

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm.exc import StaleDataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.core.errors import (
    AppError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    PreconditionFailedError,
    RateLimitedError,
    ServiceUnavailableError,
)
from app.core.head_requests import HEAD_SCOPE_KEY

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
DATABASE_RETRY_AFTER_S = 2
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

STATUS_BY_ERROR: dict[type[AppError], int] = {
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PreconditionFailedError: 412,
    InvalidInputError: 422,
    RateLimitedError: 429,
    ServiceUnavailableError: 503,
}


def request_id_of(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def problem_response(
    request: Request,
    status: int,
    detail: str,
    *,
    headers: dict[str, str] | None = None,
    errors: list[dict[str, Any]] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": request.url.path,
        "request_id": request_id_of(request),
    }
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers, media_type=PROBLEM_MEDIA_TYPE)


def status_of(exc: AppError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 500


async def handle_app_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, AppError)
    headers: dict[str, str] = {}
    errors = None
    if isinstance(exc, AuthenticationError):
        headers["WWW-Authenticate"] = 'Bearer error="invalid_token"' if exc.token_sent else "Bearer"
    elif isinstance(exc, RateLimitedError | ServiceUnavailableError):
        headers["Retry-After"] = str(exc.retry_after)
    elif isinstance(exc, InvalidInputError):
        errors = [{"loc": list(exc.loc), "msg": exc.detail, "type": exc.error_type}]
    return problem_response(request, status_of(exc), exc.detail, headers=headers, errors=errors)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(exc.status_code).phrase
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}"
    elif exc.status_code == 405 and detail == "Method Not Allowed":
        method = "HEAD" if request.scope.get(HEAD_SCOPE_KEY) else request.method
        detail = f"{method} is not allowed on {request.url.path}"
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request) or headers.get("Allow", "")
    return problem_response(request, exc.status_code, detail, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path (Starlette's 405 names only one route's);
    HEAD wherever GET (app.core.head_requests)."""
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": "GET" if method == "HEAD" else method})[0]
            is Match.FULL
            for route in routes
        )
    ]
    return ", ".join(allowed)


async def handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw_errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in raw_errors):
        return problem_response(request, 400, "The request body is not valid JSON")
    # Only loc, msg and type: the submitted value may be a password.
    errors = [
        {"loc": list(error["loc"]), "msg": error["msg"], "type": error["type"]}
        for error in raw_errors
    ]
    return problem_response(request, 422, "The request is not valid", errors=errors)


async def handle_integrity_error(request: Request, exc: Exception) -> JSONResponse:
    logger.info("Integrity error answered as 409: %s", type(exc.__cause__ or exc).__name__)
    return problem_response(request, 409, "The change conflicts with existing data")


async def handle_stale_data(request: Request, _exc: Exception) -> JSONResponse:
    return problem_response(
        request, 409, "The resource was changed by someone else during the request; retry"
    )


async def handle_database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Database unavailable: %s", type(exc).__name__, exc_info=exc)
    return problem_response(
        request,
        503,
        "The database is unavailable; retry shortly",
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def install_problem_handlers(app: FastAPI) -> None:
    """Every error FastAPI, Starlette, SQLAlchemy or a service raises becomes a problem body.

    Unexpected exceptions are turned into a 500 by the request-context middleware, which runs
    outside Starlette's error middleware and so can add the request id.
    """
    app.add_exception_handler(AppError, handle_app_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(IntegrityError, handle_integrity_error)
    app.add_exception_handler(StaleDataError, handle_stale_data)
    for exc_class in (OperationalError, InterfaceError, PoolTimeoutError):
        app.add_exception_handler(exc_class, handle_database_unavailable)
