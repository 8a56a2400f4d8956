"""Odds and ends of the hardening contract: not-yet-valid tokens, self-hosted docs assets,
and the start-up warnings about deployment choices."""

import logging
import re
import time

import pytest
from fastapi.testclient import TestClient
from jose import jwt

from app.api.lifespan import warn_about_deployment
from app.core.config import Settings, get_settings
from app.models import User


def test_a_not_yet_valid_token_is_refused(client: TestClient, user: User) -> None:
    now = int(time.time())
    claims = {
        "sub": str(user.id),
        "iat": now,
        "nbf": now + 3600,
        "exp": now + 7200,
        "type": "access",
        "tkey": user.token_key,
    }
    token = jwt.encode(claims, get_settings().secret_key, algorithm="HS256")

    response = client.get("/api/v1/users/me", headers={"Authorization": f"Bearer {token}"})

    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_load_every_asset_from_this_host(app_client: TestClient, page: str) -> None:
    html = app_client.get(page).text

    assets = re.findall(r'(?:src|href)="([^"]+)"', html)

    assert assets
    assert not re.search(r"https?://", html)
    for asset in assets:
        assert asset.startswith("/")
        assert app_client.get(asset).status_code == 200, asset


def test_the_redoc_bundle_fetches_no_logo_from_its_cdn(app_client: TestClient) -> None:
    bundle = app_client.get("/docs-assets/redoc.standalone.js")

    assert bundle.status_code == 200
    assert bundle.headers["content-type"].startswith("text/javascript")
    assert b"cdn.redoc.ly" not in bundle.content
    assert b"data:image/svg+xml" in bundle.content


def test_the_swagger_ui_validator_badge_is_off(app_client: TestClient) -> None:
    assert '"validatorUrl": null' in app_client.get("/docs").text


def test_an_in_process_request_budget_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_about_deployment(Settings(REDIS_URL=None, RATE_LIMIT_DEFAULT="600/minute"))

    assert any("per worker process" in r.getMessage() for r in caplog.records)


def test_login_budgets_alone_need_no_redis(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        warn_about_deployment(Settings(REDIS_URL=None, RATE_LIMIT_DEFAULT=None))

    assert not any("per worker process" in r.getMessage() for r in caplog.records)


def test_sqlite_in_production_is_announced(caplog: pytest.LogCaptureFixture) -> None:
    settings = Settings(
        ENVIRONMENT="production",
        SECRET_KEY="p" * 48,
        BCRYPT_ROUNDS=12,
        DATABASE_URL="sqlite:///./data/app.db",
        REDIS_URL="redis://127.0.0.1:6379/0",
    )

    with caplog.at_level(logging.WARNING):
        warn_about_deployment(settings)

    messages = [r.getMessage() for r in caplog.records]
    assert any("SQLite in production" in m for m in messages)
    assert not any("per worker process" in m for m in messages)
