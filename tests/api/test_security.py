"""Browser-facing defaults: CORS from BACKEND_CORS_ORIGINS only, security headers, and a
production start-up that refuses unsafe settings."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.api.contract import assert_problem

ROOT = Path(__file__).resolve().parents[2]
ALLOWED = "https://app.example.com"


@pytest.fixture(scope="module")
def cors_client() -> TestClient:
    app = create_app(Settings(BACKEND_CORS_ORIGINS=f"{ALLOWED}, https://admin.example.com"))
    return TestClient(app)


def preflight(client: TestClient, origin: str, headers: str) -> dict[str, str]:
    response = client.options(
        "/api/v1/items/1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": headers,
        },
    )
    return dict(response.headers)


def test_a_listed_origin_may_send_conditional_and_auth_headers(cors_client: TestClient) -> None:
    headers = preflight(cors_client, ALLOWED, "authorization, content-type, if-match, x-request-id")

    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["access-control-allow-credentials"] == "true"
    allowed = {h.strip().lower() for h in headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "if-match", "if-none-match", "x-request-id"} <= allowed
    assert "PATCH" in headers["access-control-allow-methods"]


def test_an_unlisted_origin_gets_no_cors_grant(cors_client: TestClient) -> None:
    headers = preflight(cors_client, "https://evil.example.net", "authorization")

    assert "access-control-allow-origin" not in headers


@pytest.mark.parametrize(
    ("origin", "method", "headers", "refused"),
    [
        ("https://evil.example.net", "PATCH", "authorization", "origin"),
        (ALLOWED, "PUT", "authorization", "method"),
        (ALLOWED, "PATCH", "authorization, x-evil", "headers"),
    ],
    ids=["origin", "method", "header"],
)
def test_a_refused_preflight_is_a_400_problem_granting_nothing(
    cors_client: TestClient, origin: str, method: str, headers: str, refused: str
) -> None:
    response = cors_client.options(
        "/api/v1/items/1",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": method,
            "Access-Control-Request-Headers": headers,
            "X-Request-ID": "preflight-1",
        },
    )

    body = assert_problem(response, 400)
    assert refused in body["detail"]
    assert body["request_id"] == "preflight-1"
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]


def test_responses_expose_the_headers_a_browser_app_needs(cors_client: TestClient) -> None:
    response = cors_client.get("/health", headers={"Origin": ALLOWED})

    assert response.headers["access-control-allow-origin"] == ALLOWED
    exposed = {
        h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
    }
    assert {"etag", "location", "x-request-id", "retry-after"} <= exposed


def test_no_cors_headers_without_configured_origins(app_client: TestClient) -> None:
    response = app_client.get("/health", headers={"Origin": ALLOWED})

    assert "access-control-allow-origin" not in response.headers


def test_a_wildcard_origin_is_refused() -> None:
    with pytest.raises(ValueError, match="not allowed"):
        Settings(BACKEND_CORS_ORIGINS="*")


@pytest.mark.parametrize("path", ["/health", "/api/v1/items", "/openapi.json", "/nowhere"])
def test_every_response_carries_the_security_headers(app_client: TestClient, path: str) -> None:
    response = app_client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert "Strict-Transport-Security" not in response.headers


def test_docs_get_a_policy_that_lets_them_run_from_this_host_only(app_client: TestClient) -> None:
    csp = app_client.get("/docs").headers["Content-Security-Policy"]

    assert "default-src 'self'" in csp
    assert "http" not in csp  # no other host is allowed


def test_hsts_is_sent_over_tls() -> None:
    with TestClient(create_app(), base_url="https://testserver") as client:
        response = client.get("/health")

    assert response.headers["Strict-Transport-Security"].startswith("max-age=")


def import_app_in_production(tmp_path: Path, **overrides: str) -> subprocess.CompletedProcess[str]:
    """Import the app in a fresh interpreter with safe production settings plus ``overrides``."""
    env = {
        **os.environ,
        "ENVIRONMENT": "production",
        "SECRET_KEY": "a-production-secret-key-of-forty-characters!",
        "BCRYPT_ROUNDS": "12",
        "DATABASE_URL": f"sqlite:///{tmp_path}/prod.db",
        **overrides,
    }
    return subprocess.run(
        [sys.executable, "-c", "import app.main"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY must be set"),
        ({"SECRET_KEY": "changeme"}, "SECRET_KEY must be set"),
        ({"BCRYPT_ROUNDS": "4"}, "BCRYPT_ROUNDS must be at least 12"),
    ],
)
def test_production_refuses_to_start_with_unsafe_settings(
    overrides: dict[str, str], message: str, tmp_path: Path
) -> None:
    result = import_app_in_production(tmp_path, **overrides)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_starts_with_safe_settings(tmp_path: Path) -> None:
    result = import_app_in_production(tmp_path)

    assert result.returncode == 0, result.stderr
