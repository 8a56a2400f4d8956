from fastapi import APIRouter

from app.api.deps import AutocommitSession, DatabaseAdmission, SessionDep
from app.api.responses import problems
from app.crud import health
from app.schemas.health import Liveness, Readiness

router = APIRouter(tags=["health"])


@router.get("/health", summary="Liveness", description="Never touches the database.")
async def liveness() -> Liveness:
    return Liveness()


@router.get(
    "/health/ready",
    dependencies=[AutocommitSession, DatabaseAdmission],
    summary="Readiness",
    description="`SELECT 1` on the database, bounded to about 2 s; 503 when it is unreachable.",
    responses=problems(503),
)
def readiness(session: SessionDep) -> Readiness:
    health.ping(session)
    return Readiness()
