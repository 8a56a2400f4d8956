from typing import Any

from fastapi import FastAPI

from app.api.docs import install_docs
from app.api.idempotency import REPLAYED_HEADER
from app.api.lifespan import lifespan
from app.api.openapi import document_for_clients
from app.api.router import include_api
from app.api.routes import health, metrics
from app.core.config import Settings, get_settings
from app.core.cors import ProblemCORSMiddleware
from app.core.head_requests import HeadAsGetMiddleware
from app.core.logging import configure_logging
from app.core.middleware import REQUEST_ID_HEADER, RequestContextMiddleware
from app.core.problems import install_problem_handlers
from app.core.tracing import tracing_configured
from app.services.idempotency import KEY_HEADER

DESCRIPTION = """
User accounts (sign-up, login, roles, admin management) and the items users own.

* Authenticate with `POST /api/v1/auth/token` (OAuth2 password flow) and send
  `Authorization: Bearer <token>`.
* Every error is an RFC 9457 problem (`application/problem+json`) carrying the `request_id`
  that is also in the `X-Request-ID` response header.
* Request bodies are JSON; unknown fields are rejected (422). Lists are paged with `page`
  and `page_size` and return `{items, total, page, page_size, pages}`.
"""

TAGS = [
    {"name": "auth", "description": "Obtain access tokens."},
    {"name": "users", "description": "Sign-up, one's own account, and admin management."},
    {"name": "items", "description": "Items owned by users."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    configure_logging(settings.LOG_LEVEL, settings.log_format)
    app = FastAPI(
        title="Accounts & Items API",
        version="1.0.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
        redirect_slashes=False,
        # Metrics and logs are our own (Prometheus, the access line). The request span is
        # FastAPI's: outermost, named by the route template once routing has found it. Off,
        # not merely idle, unless tracing is configured (app.core.tracing starts it).
        telemetry={
            "tracing": tracing_configured(),
            "operation_spans": False,
            "metrics": False,
            "logs": False,
            "auto_configure": False,
        },
        docs_url=None,  # served by install_docs, without a CDN
        redoc_url=None,  # the contract: a trailing slash is a different (unknown) path
    )
    install_problem_handlers(app)
    # Innermost: the app below sees a HEAD as its GET; CORS and the request context see HEAD.
    app.add_middleware(HeadAsGetMiddleware)
    if settings.BACKEND_CORS_ORIGINS:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.BACKEND_CORS_ORIGINS,
            allow_credentials=True,
            allow_methods=["GET", "HEAD", "POST", "PATCH", "DELETE", "OPTIONS"],
            allow_headers=[
                "Authorization",
                "Content-Type",
                "If-Match",
                "If-None-Match",
                KEY_HEADER,
                REQUEST_ID_HEADER,
            ],
            expose_headers=[
                "ETag",
                "Location",
                REQUEST_ID_HEADER,
                "Retry-After",
                REPLAYED_HEADER,
            ],
            max_age=600,
        )
    app.add_middleware(RequestContextMiddleware)
    # FastAPI tries routes in the order they were included: the probes (cheap, two routes)
    # first, then the API, which carries the traffic.
    app.include_router(health.router)
    include_api(app)
    app.include_router(metrics.router)
    install_docs(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document_for_clients(FastAPI.openapi(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


app = create_app()
