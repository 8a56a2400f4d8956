"""The OpenAPI document is written for generated clients, and the committed copy
(docs/openapi.json, which clients are generated from) is the one the service serves."""

import json
import re
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.cli import openapi_text

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"
PROBLEM_JSON = "application/problem+json"


@pytest.fixture(scope="module")
def document(app_client: TestClient) -> dict[str, Any]:
    response = app_client.get("/openapi.json")
    assert response.status_code == 200
    served: dict[str, Any] = response.json()
    return served


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, path_item in document["paths"].items()
        for method, operation in path_item.items()
    ]


def test_the_committed_document_is_the_served_one(document: dict[str, Any]) -> None:
    assert COMMITTED.read_text() == openapi_text(document), (
        "docs/openapi.json is stale: run `make openapi` and commit it"
    )


def test_operation_ids_are_short_stable_tag_action_names(document: dict[str, Any]) -> None:
    ids = [operation["operationId"] for _method, _path, operation in operations(document)]

    assert len(ids) == len(set(ids))
    for _method, _path, operation in operations(document):
        (tag,) = operation["tags"]
        assert re.fullmatch(rf"{tag}-[a-z]+(-[a-z]+)*", operation["operationId"])
    assert {"items-create", "users-read-me", "auth-login"} <= set(ids)


def test_schema_names_are_plain(document: dict[str, Any]) -> None:
    names = set(document["components"]["schemas"])

    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", name) for name in names), names
    assert {"ItemPage", "UserPage", "LoginForm", "Problem"} <= names


def test_header_parameters_are_plain_strings(document: dict[str, Any]) -> None:
    headers = [
        (f"{method} {path}", parameter)
        for method, path, operation in operations(document)
        for parameter in operation.get("parameters", [])
        if parameter["in"] == "header"
    ]

    assert headers
    for name, parameter in headers:
        assert parameter["schema"]["type"] == "string", name
        assert "anyOf" not in parameter["schema"], name
        assert not parameter["required"], name


def test_if_match_documents_the_syntax_the_server_reads(document: dict[str, Any]) -> None:
    parameter = next(
        p
        for p in document["paths"]["/api/v1/items/{item_id}"]["patch"]["parameters"]
        if p["name"] == "If-Match"
    )
    pattern = re.compile(parameter["schema"]["pattern"])

    for valid in ['"1.abc"', "*", '"1.a", W/"2.b"', ' "x" ']:
        assert pattern.fullmatch(valid), valid
    for invalid in ["null", "", "1.abc", '"a" "b"']:
        assert not pattern.fullmatch(invalid), invalid


def test_every_response_declares_the_headers_it_carries(document: dict[str, Any]) -> None:
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            name = f"{method} {path} {status}"
            headers = response.get("headers", {})
            assert "X-Request-ID" in headers, name
            if status == "201":
                assert {"Location", "ETag"} <= set(headers), name
            if status in {"429", "503"}:
                assert "Retry-After" in headers, name
            if status == "304" or (status == "200" and "{" in path and method == "GET"):
                assert "ETag" in headers, name


def test_the_login_form_says_what_the_server_checks(document: dict[str, Any]) -> None:
    login = document["paths"]["/api/v1/auth/token"]["post"]
    form = login["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
    schema = document["components"]["schemas"][form["$ref"].rpartition("/")[2]]

    assert set(schema["required"]) == {"username", "password"}
    assert all(schema["properties"][field]["minLength"] == 1 for field in schema["required"])
    assert login["responses"]["415"]["description"] == "Request body is not a form"
    example = login["responses"]["415"]["content"][PROBLEM_JSON]["examples"]["415"]["value"]
    assert "application/x-www-form-urlencoded" in example["detail"]


def test_problem_examples_belong_to_their_operation(document: dict[str, Any]) -> None:
    read = document["paths"]["/api/v1/items/{item_id}"]["get"]["responses"]
    not_found = read["404"]["content"][PROBLEM_JSON]["examples"]["404"]["value"]
    unauthorized = read["401"]["content"][PROBLEM_JSON]["examples"]["401"]["value"]

    assert not_found["detail"] == "Item 42 not found"
    assert not_found["instance"] == "/api/v1/items/42"
    assert unauthorized["status"] == 401
    assert "errors" not in unauthorized
    sign_up = document["paths"]["/api/v1/users"]["post"]["responses"]["422"]
    invalid = sign_up["content"][PROBLEM_JSON]["examples"]["422"]["value"]
    assert invalid["errors"][0]["loc"][0] == "body"


def test_the_document_is_json_a_generator_can_read() -> None:
    committed = json.loads(COMMITTED.read_text())

    assert committed["openapi"].startswith("3.")
