"""What routes answer besides their body: the problem responses they document, and where a
created resource lives."""

from datetime import datetime
from typing import Any

from fastapi import Request, Response

from app.core.etags import entity_tag
from app.core.problems import PROBLEM_MEDIA_TYPE
from app.schemas.problem import Problem

Responses = dict[int | str, dict[str, Any]]

DESCRIPTIONS = {
    400: "Malformed request body (invalid JSON)",
    401: "Missing, invalid or expired token (`WWW-Authenticate: Bearer`)",
    403: "Authenticated but not allowed (or the account is deactivated)",
    404: "Not found, or not visible to the caller",
    409: "Conflicts with existing data or state, or changed concurrently (retry)",
    412: "`If-Match` names none of the current tags",
    413: "Request body larger than `MAX_REQUEST_BODY_BYTES`",
    415: "Request body is not `application/json`",
    422: "Validation failed; `errors` lists each problem as `loc`, `msg`, `type`",
    429: "Rate limited (failed logins, or `RATE_LIMIT_DEFAULT` when on); retry after "
    "`Retry-After` seconds",
    503: "The database is unavailable; retry after `Retry-After` seconds",
}


def _header(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "required": True, "schema": schema}


_RETRY_AFTER = {"Retry-After": _header("Whole seconds to wait", {"type": "integer", "minimum": 1})}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {
        "WWW-Authenticate": _header(
            '`Bearer`, with `error="invalid_token"` when a token was sent',
            {"type": "string", "pattern": '^Bearer( error="invalid_token")?$'},
        )
    },
    429: _RETRY_AFTER,
    503: _RETRY_AFTER,
}

# Successful responses' headers, merged into the routes' ``responses=``.
ETAG = {
    "ETag": _header(
        "Strong entity tag of the resource's current version",
        {"type": "string", "pattern": '^"[!#-~]*"$'},
    )
}
LOCATION = {"Location": _header("Path of the created resource", {"type": "string"})}
# A create carries the new resource's ETag, so a client can update it without reading it first.
REPLAYED = {
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored response to an earlier request with "
        "the same `Idempotency-Key`",
        "required": False,
        "schema": {"type": "string", "enum": ["true"]},
    }
}
CREATED: Responses = {201: {"headers": {**LOCATION, **ETAG, **REPLAYED}}}
TAGGED: Responses = {200: {"headers": ETAG}}
TAGGED_OR_NOT_MODIFIED: Responses = {
    **TAGGED,
    304: {"description": "Not modified (no body)", "headers": ETAG},
}


def problems(*statuses: int) -> Responses:
    return {
        status: {
            "model": Problem,
            "description": DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {}},
            **({"headers": _HEADERS[status]} if status in _HEADERS else {}),
        }
        for status in statuses
    }


# Every route that reads the database can answer 503; every route with a body 413/415/400.
# Every /api/v1 route uses one of these two, and every one can answer 429 once
# RATE_LIMIT_DEFAULT is on.
BODY_PROBLEMS = (400, 413, 415, 422, 429)
AUTH_PROBLEMS = (401, 403, 429)


def describe_created(
    request: Request, response: Response, *, resource_id: int, version: int, created_at: datetime
) -> None:
    """A 201's headers: where the new resource lives, and its ETag."""
    response.headers["Location"] = created_location(request, resource_id)
    response.headers["ETag"] = entity_tag(version=version, created_at=created_at)


def created_location(request: Request, resource_id: int) -> str:
    """The path of a resource created by POSTing to its collection: the collection's path plus
    the new id, as every resource of the contract is addressed (``/api/v1/items/42``), under
    the app's ``root_path`` when it has one. ``request.url_for`` gives the same path but tries
    every route by name on each call (a few percent of a create's CPU)."""
    root_path: str = request.scope.get("root_path", "")
    path: str = request.scope["path"]
    if root_path and not path.startswith(f"{root_path}/"):
        path = root_path + path  # servers differ on whether the path includes root_path
    return f"{path}/{resource_id}"
