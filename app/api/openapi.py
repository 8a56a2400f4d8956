"""The OpenAPI document as generated clients and Swagger UI need it: problem bodies under their
own media type, an example of each problem with its own status and the operation's own path,
and the headers every response carries."""

import re
from http import HTTPStatus
from typing import Any

from app.api.responses import DESCRIPTIONS
from app.core.config import Settings
from app.core.middleware import REQUEST_ID_HEADER
from app.core.problems import PROBLEM_MEDIA_TYPE

EXAMPLE_ID = 42
EXAMPLE_REQUEST_ID = "3f2b8c0e9a4d4e6f8a1b2c3d4e5f6a7b"
_PATH_PARAMETER = re.compile(r"\{(\w+)\}")
_RESOURCES = {"item_id": "Item", "user_id": "User"}
_FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"
_DEFAULT_BODY_LIMIT = Settings.model_fields["MAX_REQUEST_BODY_BYTES"].default

# What a created resource leads to (OpenAPI links, from the new id in the body): Swagger UI
# shows them, and Schemathesis' stateful phase follows them from create to read, update, delete.
_LINKS = {
    ("/api/v1/items", "post"): ("item_id", ("items-read", "items-update", "items-delete")),
    ("/api/v1/users", "post"): ("user_id", ("users-read", "users-update", "users-delete")),
}

_REQUEST_ID = {
    REQUEST_ID_HEADER: {
        "description": "The client's request id when it sent a sane one, else a fresh one; "
        "also in every problem body as `request_id`",
        "required": True,
        "schema": {"type": "string", "pattern": "^[!-~]{1,128}$"},
    }
}
_DETAILS = {
    400: "The request body is not valid JSON",
    401: "Not authenticated",
    403: "Admin role required",
    409: "The resource changed while the request ran; retry",
    412: "The resource changed since the tag given in If-Match was read",
    415: "Expected application/json or application/*+json",
    422: "Request validation failed",
    429: "Request budget spent; retry later",
    503: "The database is unavailable; retry later",
}


def _body_field(operation: dict[str, Any], schemas: dict[str, Any]) -> str | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media in content.values():
        ref = media.get("schema", {}).get("$ref", "")
        schema = schemas.get(ref.rpartition("/")[2], {})
        required = schema.get("required") or list(schema.get("properties", {}))
        if required:
            return str(required[0])
    return None


def _validation_error(operation: dict[str, Any], schemas: dict[str, Any]) -> dict[str, Any]:
    field = _body_field(operation, schemas)
    if field is not None:
        loc: list[str] = ["body", field]
    else:
        parameters = operation.get("parameters", [])
        first = next((p for p in parameters if p["in"] in {"path", "query"}), None)
        loc = [first["in"], first["name"]] if first else ["body"]
    return {"loc": loc, "msg": "Field required", "type": "missing"}


def _example(path: str, operation: dict[str, Any], status: int, schemas: dict[str, Any]) -> Any:
    resource = next((_RESOURCES.get(name) for name in _PATH_PARAMETER.findall(path)), None)
    detail = _DETAILS.get(status, HTTPStatus(status).phrase)
    if status == 413:
        # The default, not this deployment's value: the document is the same everywhere.
        detail = f"The request body is larger than {_DEFAULT_BODY_LIMIT} bytes"
    if status == 404:
        detail = f"{resource or 'Resource'} {EXAMPLE_ID} not found"
    if status == 415 and _FORM_MEDIA_TYPE in operation.get("requestBody", {}).get("content", {}):
        detail = "Expected one of application/x-www-form-urlencoded, multipart/form-data"
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "instance": _PATH_PARAMETER.sub(str(EXAMPLE_ID), path),
        "request_id": EXAMPLE_REQUEST_ID,
    }
    if status == 422:
        body["errors"] = [_validation_error(operation, schemas)]
    return {"value": body}


def document_for_clients(openapi: dict[str, Any]) -> dict[str, Any]:
    schemas = openapi.get("components", {}).get("schemas", {})
    problem_schema = {"$ref": "#/components/schemas/Problem"}
    for path, path_item in openapi.get("paths", {}).items():
        for method, operation in path_item.items():
            if (path, method) in _LINKS:
                parameter, targets = _LINKS[path, method]
                operation["responses"]["201"]["links"] = {
                    target: {
                        "operationId": target,
                        "parameters": {parameter: "$response.body#/id"},
                    }
                    for target in targets
                }
            is_form = _FORM_MEDIA_TYPE in operation.get("requestBody", {}).get("content", {})
            for status_text, response in operation.get("responses", {}).items():
                status = int(status_text)
                response["headers"] = {**_REQUEST_ID, **response.get("headers", {})}
                if status < 400:
                    continue
                content = response.setdefault("content", {})
                # FastAPI puts a response ``model`` under application/json, and documents its
                # own 422 (HTTPValidationError), which is not what the service sends.
                content.pop("application/json", None)
                content[PROBLEM_MEDIA_TYPE] = {
                    "schema": problem_schema,
                    "examples": {status_text: _example(path, operation, status, schemas)},
                }
                if status == 422:
                    response["description"] = DESCRIPTIONS[422]
                if status == 415 and is_form:
                    response["description"] = "Request body is not a form"
    for unused in ("HTTPValidationError", "ValidationError"):
        schemas.pop(unused, None)
    return openapi
