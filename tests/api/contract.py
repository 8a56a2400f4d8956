"""What every API test reads the same way: the contract's paths and its problem responses."""

from typing import Any

ITEMS = "/api/v1/items"
USERS = "/api/v1/users"
ME = f"{USERS}/me"
MY_PASSWORD = f"{ME}/password"
TOKEN = "/api/v1/auth/token"
PROBLEM_JSON = "application/problem+json"
PROBLEM_KEYS = {"type", "title", "status", "detail", "instance", "request_id"}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """The response is an RFC 9457 problem for ``status`` whose request_id is the header's."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_JSON
    body: dict[str, Any] = response.json()
    assert body.keys() >= PROBLEM_KEYS
    assert body["status"] == status
    assert body["request_id"] == response.headers["X-Request-ID"]
    assert body["instance"] == response.url.path
    return body
