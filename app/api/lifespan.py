"""Start-up work that must not stop a worker from starting when the database is down."""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from sqlalchemy.exc import DBAPIError

from app.core.config import Settings, get_settings
from app.core.db import ENGINES, SessionLocal, unit_of_work
from app.core.threads import in_thread
from app.core.tracing import start_tracing, tracing_configured
from app.services import users as user_service

logger = logging.getLogger(__name__)

RETRY_DELAYS_S = (1, 2, 4, 8, 15, 30)


def create_first_superuser(settings: Settings) -> None:
    if not settings.FIRST_SUPERUSER_EMAIL or settings.FIRST_SUPERUSER_PASSWORD is None:
        return
    with SessionLocal() as session, unit_of_work(session):
        user_service.ensure_first_superuser(
            session,
            email=settings.FIRST_SUPERUSER_EMAIL.lower(),
            password=settings.FIRST_SUPERUSER_PASSWORD.get_secret_value(),
        )


def _retry_until_done(settings: Settings, stop: threading.Event) -> None:
    attempt = 0
    while not stop.wait(RETRY_DELAYS_S[min(attempt, len(RETRY_DELAYS_S) - 1)]):
        attempt += 1
        try:
            create_first_superuser(settings)
        except DBAPIError as exc:
            logger.warning("First superuser: database still unavailable (%s)", type(exc).__name__)
        else:
            return


def warn_about_deployment(settings: Settings) -> None:
    for warning in settings.deployment_warnings():
        logger.warning(warning)


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    warn_about_deployment(settings)
    # Here rather than at import: the lifespan runs in each worker, after Gunicorn's fork.
    tracing = start_tracing(ENGINES) if tracing_configured() else None
    # Per app run (an asyncio primitive belongs to one event loop); see database_admission.
    app.state.database_slots = asyncio.Semaphore(settings.DB_POOL_SIZE)
    stop = threading.Event()
    try:
        await in_thread(create_first_superuser, settings)
    except DBAPIError as exc:
        # Serve anyway: readiness says 503 until the database is back, and this retries.
        logger.warning("First superuser: database unavailable (%s); retrying", type(exc).__name__)
        threading.Thread(
            target=_retry_until_done, args=(settings, stop), name="first-superuser", daemon=True
        ).start()
    try:
        yield
    finally:
        stop.set()
        if tracing is not None:
            await in_thread(tracing.stop)  # exports what is queued: blocks up to a timeout
