import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException, Request, Response

from app.api.responses import problems
from app.core.config import Settings, get_settings
from app.core.errors import AuthenticationError
from app.core.metrics import METRICS_CONTENT_TYPE, render_latest
from app.core.threads import in_thread

router = APIRouter(tags=["health"])


async def metrics_settings() -> Settings:
    # Async: a sync dependency would run in AnyIO's thread pool, which the app never uses.
    return get_settings()


async def check_metrics_access(
    request: Request, settings: Annotated[Settings, Depends(metrics_settings)]
) -> None:
    """With METRICS_TOKEN, only its bearer reads /metrics here; without it, /metrics is open
    on this listener outside production unless METRICS_BIND gives it a listener of its own."""
    if settings.METRICS_TOKEN is not None:
        scheme, _, sent = request.headers.get("authorization", "").partition(" ")
        expected = settings.METRICS_TOKEN.get_secret_value().encode()
        if scheme.lower() != "bearer" or not hmac.compare_digest(sent.encode(), expected):
            raise AuthenticationError("The metrics token is required", token_sent=bool(sent))
    elif settings.METRICS_BIND or settings.ENVIRONMENT == "production":
        raise HTTPException(404)


@router.get(
    "/metrics",
    operation_id="health-metrics",
    dependencies=[Depends(check_metrics_access)],
    summary="Prometheus metrics",
    description=(
        "Prometheus text format, summed over every worker process: `http_requests_total` and "
        "`http_request_duration_seconds` by method, route template and status, "
        "`http_requests_in_flight`, `db_pool_checked_out_connections`. With `METRICS_TOKEN` "
        "set, only `Authorization: Bearer <METRICS_TOKEN>` reads it (else 401). In production "
        "without the token, and wherever `METRICS_BIND` serves it on a listener of its own, it "
        "is not served here (404)."
    ),
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {"schema": {"type": "string"}}}},
        **problems(401, 404),
    },
)
async def metrics() -> Response:
    # Reads every worker's metric files.
    return Response(await in_thread(render_latest), media_type=METRICS_CONTENT_TYPE)
