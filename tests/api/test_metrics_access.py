"""Who may read /metrics on the main listener: anyone outside production; only the bearer of
METRICS_TOKEN when it is set; nobody (404) in production without the token or where
METRICS_BIND gives the metrics a listener of their own."""

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.api.routes.metrics import metrics_settings
from app.core.config import Settings
from app.main import app
from tests.api.contract import assert_problem

TOKEN = "metrics-token-0123456789"
Configure = Callable[..., TestClient]


@pytest.fixture
def configured(app_client: TestClient) -> Iterator[Configure]:
    def configure(**settings: object) -> TestClient:
        configured_settings = Settings(**settings)  # type: ignore[arg-type]

        async def override() -> Settings:
            return configured_settings

        app.dependency_overrides[metrics_settings] = override
        return app_client

    yield configure
    app.dependency_overrides.clear()


def test_outside_production_metrics_are_open(app_client: TestClient) -> None:
    response = app_client.get("/metrics")

    assert response.status_code == 200
    assert "http_requests_total" in response.text


def test_with_a_token_only_its_bearer_reads_metrics(configured: Configure) -> None:
    client = configured(METRICS_TOKEN=TOKEN)

    missing = client.get("/metrics")
    wrong = client.get("/metrics", headers={"Authorization": "Bearer not-the-token-at-all"})
    right = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})

    assert_problem(missing, 401)
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    assert_problem(wrong, 401)
    assert right.status_code == 200
    assert "http_requests_total" in right.text


@pytest.mark.parametrize(
    "settings",
    [
        {"METRICS_BIND": "127.0.0.1:9100"},
        {"ENVIRONMENT": "production", "SECRET_KEY": "p" * 48, "BCRYPT_ROUNDS": 12},
    ],
    ids=["own listener", "production"],
)
def test_otherwise_metrics_are_not_on_the_main_listener(
    configured: Configure, settings: dict[str, object]
) -> None:
    client = configured(**settings)

    assert_problem(client.get("/metrics"), 404)


def test_production_without_either_is_announced() -> None:
    production = Settings(ENVIRONMENT="production", SECRET_KEY="p" * 48, BCRYPT_ROUNDS=12)

    assert any("/metrics is not served" in warning for warning in production.deployment_warnings())
    with_token = Settings(
        ENVIRONMENT="production", SECRET_KEY="p" * 48, BCRYPT_ROUNDS=12, METRICS_TOKEN=TOKEN
    )
    assert not any("/metrics" in warning for warning in with_token.deployment_warnings())
