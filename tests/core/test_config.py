"""Settings: parsing, production safety checks and the development signing key."""

import logging
import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.core import config
from app.core.config import Settings

STRONG_KEY = secrets.token_urlsafe(48)
# Variables conftest sets for the app under test; each test here starts without them.
_SETTINGS_ENV = (
    "ENVIRONMENT",
    "SECRET_KEY",
    "BCRYPT_ROUNDS",
    "LOG_FORMAT",
    "LOG_LEVEL",
    "BACKEND_CORS_ORIGINS",
    "DATABASE_URL",
)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in _SETTINGS_ENV:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Point the development-key storage at an empty temporary ./data/."""
    directory = tmp_path / "data"
    monkeypatch.setattr(config, "DATA_DIR", directory)
    monkeypatch.setattr(config, "SECRET_KEY_FILE", directory / "secret_key")
    return directory


def make_settings(**values: Any) -> Settings:
    """Settings from ``values`` and the environment only, never from a stray ``.env``."""
    return Settings(_env_file=None, **values)


def production(**values: Any) -> Settings:
    return make_settings(**{"ENVIRONMENT": "production", "SECRET_KEY": STRONG_KEY, **values})


def test_cors_origins_are_parsed_from_a_comma_separated_string() -> None:
    settings = make_settings(BACKEND_CORS_ORIGINS=" https://a.example , https://b.example:8443/ ,")

    assert settings.BACKEND_CORS_ORIGINS == ["https://a.example", "https://b.example:8443"]


def test_cors_origins_are_parsed_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "https://a.example,http://localhost:3000")

    settings = make_settings()

    assert settings.BACKEND_CORS_ORIGINS == ["https://a.example", "http://localhost:3000"]


def test_cors_origins_default_to_none() -> None:
    assert make_settings().BACKEND_CORS_ORIGINS == []


@pytest.mark.parametrize("origins", ["*", "https://a.example, *", ["*"]])
def test_cors_wildcard_origin_is_rejected(origins: str | list[str]) -> None:
    with pytest.raises(ValidationError, match=r"'\*' is not allowed"):
        make_settings(BACKEND_CORS_ORIGINS=origins)


def test_cors_wildcard_origin_from_the_environment_is_rejected(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("BACKEND_CORS_ORIGINS", "*")

    with pytest.raises(ValidationError, match=r"'\*' is not allowed"):
        make_settings()


def test_production_accepts_a_strong_key_and_default_rounds() -> None:
    settings = production()

    assert settings.secret_key == STRONG_KEY
    assert settings.BCRYPT_ROUNDS == 12


def test_production_refuses_a_missing_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(SECRET_KEY=None)


def test_production_refuses_an_empty_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(SECRET_KEY="")


def test_production_refuses_a_short_secret_key() -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(SECRET_KEY="x" * (config.MIN_PRODUCTION_SECRET_LENGTH - 1))


@pytest.mark.parametrize("key", sorted(config.INSECURE_SECRET_KEYS - {""}))
def test_production_refuses_a_default_secret_key(key: str) -> None:
    with pytest.raises(ValidationError, match="SECRET_KEY"):
        production(SECRET_KEY=key)


def test_production_refuses_a_missing_secret_key_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings()


@pytest.mark.parametrize(
    "name", ["RATE_LIMIT_DEFAULT", "LOG_FORMAT", "METRICS_BIND", "METRICS_TOKEN", "CACHE_URL"]
)
def test_an_empty_variable_is_left_at_its_default(
    monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    monkeypatch.setenv(name, "")
    assert getattr(make_settings(), name) is None


def test_an_empty_secret_key_is_refused_in_production_as_a_missing_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", "")

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        make_settings()


def test_production_refuses_fewer_than_12_bcrypt_rounds() -> None:
    with pytest.raises(ValidationError, match="BCRYPT_ROUNDS"):
        production(BCRYPT_ROUNDS=11)


def test_production_refuses_low_bcrypt_rounds_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ENVIRONMENT", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_KEY)
    monkeypatch.setenv("BCRYPT_ROUNDS", "4")

    with pytest.raises(ValidationError, match="BCRYPT_ROUNDS"):
        make_settings()


@pytest.mark.parametrize("environment", ["development", "test"])
def test_outside_production_weak_settings_are_allowed(environment: str) -> None:
    settings = make_settings(ENVIRONMENT=environment, SECRET_KEY="short", BCRYPT_ROUNDS=4)

    assert settings.BCRYPT_ROUNDS == 4


def test_unknown_environment_is_rejected() -> None:
    with pytest.raises(ValidationError, match="ENVIRONMENT"):
        make_settings(ENVIRONMENT="staging")


def test_environment_defaults_to_development() -> None:
    assert make_settings().ENVIRONMENT == "development"


@pytest.mark.parametrize(
    ("environment", "expected"),
    [("development", "console"), ("test", "json"), ("production", "json")],
)
def test_log_format_defaults_by_environment(environment: str, expected: str) -> None:
    settings = make_settings(ENVIRONMENT=environment, SECRET_KEY=STRONG_KEY)

    assert settings.log_format == expected


@pytest.mark.parametrize(
    ("environment", "log_format"), [("development", "json"), ("production", "console")]
)
def test_explicit_log_format_wins_over_the_default(environment: str, log_format: str) -> None:
    settings = make_settings(ENVIRONMENT=environment, SECRET_KEY=STRONG_KEY, LOG_FORMAT=log_format)

    assert settings.log_format == log_format


def test_development_key_is_generated_once_and_kept(data_dir: Path) -> None:
    key = make_settings().secret_key

    assert len(key) >= config.MIN_PRODUCTION_SECRET_LENGTH
    assert (data_dir / "secret_key").read_text().strip() == key


def test_development_key_is_reused_by_every_later_settings_instance(data_dir: Path) -> None:
    first = make_settings().secret_key

    second = make_settings().secret_key

    assert second == first


def test_development_key_file_is_private(data_dir: Path) -> None:
    make_settings().secret_key  # noqa: B018

    assert (data_dir / "secret_key").stat().st_mode & 0o777 == 0o600


def test_development_key_leaves_no_temporary_files(data_dir: Path) -> None:
    make_settings().secret_key  # noqa: B018

    assert [path.name for path in data_dir.iterdir()] == ["secret_key"]


def test_existing_development_key_file_is_used(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("kept-from-an-earlier-run\n")

    key = make_settings().secret_key

    assert key == "kept-from-an-earlier-run"


def test_generating_the_development_key_warns_once(
    data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="app.core.config"):
        make_settings().secret_key  # noqa: B018
        make_settings().secret_key  # noqa: B018

    warnings = [r for r in caplog.records if r.name == "app.core.config"]
    assert len(warnings) == 1
    assert "SECRET_KEY is not set" in warnings[0].getMessage()
    assert make_settings().secret_key not in caplog.text


def test_empty_development_key_file_is_an_error(data_dir: Path) -> None:
    data_dir.mkdir()
    (data_dir / "secret_key").write_text("")

    with pytest.raises(RuntimeError, match="empty"):
        make_settings().secret_key  # noqa: B018


def test_configured_secret_key_is_used_and_nothing_is_written(data_dir: Path) -> None:
    settings = make_settings(SECRET_KEY="configured-key")

    assert settings.secret_key == "configured-key"
    assert not data_dir.exists()


def test_secret_key_is_hidden_from_repr() -> None:
    settings = production()

    assert STRONG_KEY not in repr(settings)
