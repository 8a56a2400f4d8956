from fastapi import APIRouter, Response

from app.core.metrics import METRICS_CONTENT_TYPE, render_latest
from app.core.threads import in_thread

router = APIRouter(tags=["health"])


@router.get(
    "/metrics",
    operation_id="health-metrics",
    summary="Prometheus metrics",
    description=(
        "Prometheus text format, summed over every worker process: `http_requests_total` and "
        "`http_request_duration_seconds` by method, route template and status, "
        "`http_requests_in_flight`, `db_pool_checked_out_connections`."
    ),
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
async def metrics() -> Response:
    # Reads every worker's metric files.
    return Response(await in_thread(render_latest), media_type=METRICS_CONTENT_TYPE)
