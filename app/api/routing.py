"""Route classes: how a request reaches its endpoint.

``DatabaseRoute`` runs a sync endpoint in a database thread and admits a request that uses
the database; ``CheckedRoute`` (every /api/v1 route) first runs the request checks
(``app.api.request_checks``). Both act after routing, so an unknown path stays 404 and a wrong
method 405.
"""

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any

from fastapi import Request, Response
from fastapi import params as fastapi_params
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from app.api.idempotency import Replay, declares_idempotency, reservation_of
from app.api.request_checks import checked_body, enforce_request_budget
from app.api.unit_of_work import get_session
from app.core.threads import in_thread

RouteHandler = Callable[[Request], Coroutine[Any, Any, Response]]


@asynccontextmanager
async def database_admission(request: Request) -> AsyncIterator[None]:
    """Wait (on the event loop, holding no thread) until fewer than DB_POOL_SIZE requests of
    this worker hold a database session. Past this point a request always finds a pooled
    connection and a free thread, so load makes requests queue instead of failing with pool
    time-outs. The slots are created with the app's lifespan (``app.api.lifespan``)."""
    slots: asyncio.Semaphore = request.app.state.database_slots
    async with slots:
        yield


def _in_thread(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    """A sync endpoint as a coroutine that runs it in a database thread (``app.core.threads``).
    FastAPI then validates the return value on the event loop (CPU-only work), as for an async
    endpoint, instead of in a second thread hop."""

    @functools.wraps(endpoint)
    async def endpoint_in_thread(**values: Any) -> Any:
        return await in_thread(endpoint, **values)

    return endpoint_in_thread


def _uses_session(dependant: Dependant) -> bool:
    return dependant.call is get_session or any(map(_uses_session, dependant.dependencies))


def _replaying_creates(route_handler: RouteHandler) -> RouteHandler:
    """A creating route's handler (``app.api.idempotency``): a retry's stored response is
    answered instead of running the endpoint, and a 2xx response is stored in the request's
    transaction, which commits after this returns."""

    async def handler(request: Request) -> Response:
        try:
            response = await route_handler(request)
        except Replay as replay:
            return replay.response()
        reservation = reservation_of(request)
        if reservation is not None and 200 <= response.status_code < 300:
            await in_thread(reservation.record, response)
        return response

    return handler


class DatabaseRoute(APIRoute):
    """A route whose sync endpoint runs in a database thread and, if it uses the request's
    session, whose requests are admitted to database work (``database_admission``) before any
    dependency runs."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        if not inspect.iscoroutinefunction(endpoint):
            endpoint = _in_thread(endpoint)
        super().__init__(path, endpoint, **kwargs)

    def get_route_handler(self) -> RouteHandler:
        route_handler = super().get_route_handler()
        if declares_idempotency(self):
            route_handler = _replaying_creates(route_handler)
        if not _uses_session(self.dependant):
            return route_handler

        async def admitted_handler(request: Request) -> Response:
            async with database_admission(request):
                return await route_handler(request)

        return admitted_handler


class CheckedRoute(DatabaseRoute):
    """A ``DatabaseRoute`` whose request first passes the request budget, then (when the route
    reads a body) the body size and media type checks: 429, 413, 415, before a queued request
    waits for admission and before anyone is authenticated."""

    def get_route_handler(self) -> RouteHandler:
        admitted_handler = super().get_route_handler()
        if self.body_field is None:

            async def checked_handler(request: Request) -> Response:
                await enforce_request_budget(request)
                return await admitted_handler(request)

            return checked_handler

        is_form = isinstance(self.body_field.field_info, fastapi_params.Form)

        async def checked_body_handler(request: Request) -> Response:
            await enforce_request_budget(request)
            return await admitted_handler(checked_body(request, is_form=is_form))

        return checked_body_handler
