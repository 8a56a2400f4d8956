from fastapi import APIRouter

from app.api.deps import AutocommitSession, SessionDep
from app.api.responses import problems
from app.api.routing import DatabaseRoute
from app.crud import health
from app.schemas.health import Liveness, Readiness

# Probes are not budgeted; readiness queues for the database like any request using it.
router = APIRouter(tags=["health"], route_class=DatabaseRoute)


@router.get(
    "/health",
    operation_id="health-liveness",
    summary="Liveness",
    description="Never touches the database.",
)
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    operation_id="health-readiness",
    dependencies=[AutocommitSession],
    summary="Readiness",
    description="`SELECT 1` on the database, bounded to about 2 s; 503 when it is unreachable.",
    responses=problems(503),
)
def readiness(session: SessionDep) -> Readiness:
    health.ping(session)
    return Readiness()
