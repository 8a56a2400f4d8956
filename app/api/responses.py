"""OpenAPI descriptions of the problem responses routes can give."""

from typing import Any

from app.schemas.problem import Problem

_DESCRIPTIONS = {
    400: "Malformed request body (invalid JSON)",
    401: "Missing, invalid or expired token (`WWW-Authenticate: Bearer`)",
    403: "Authenticated but not allowed (or the account is deactivated)",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with existing data or state, or changed concurrently (retry)",
    412: "`If-Match` names none of the current tags",
    413: "Request body larger than `MAX_REQUEST_BODY_BYTES`",
    415: "Request body is not `application/json`",
    422: "Validation failed; `errors` lists each problem as `loc`, `msg`, `type`",
    429: "Rate limited; retry after `Retry-After` seconds",
    503: "The database is unavailable; retry after `Retry-After` seconds",
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {
        status: {
            "model": Problem,
            "description": _DESCRIPTIONS[status],
            "content": {"application/problem+json": {}},
        }
        for status in statuses
    }


# Every route that reads the database can answer 503; every route with a body 413/415/400.
BODY_PROBLEMS = (400, 413, 415, 422)
AUTH_PROBLEMS = (401, 403)
