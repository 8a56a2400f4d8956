from fastapi import APIRouter

from app.api.deps import DatabaseAdmission
from app.api.routes import auth, items, users

# Admission runs before any other dependency, so a queued request holds no session yet.
api_router = APIRouter(prefix="/api/v1", dependencies=[DatabaseAdmission])
api_router.include_router(auth.router)
api_router.include_router(users.router)
api_router.include_router(items.router)
