"""Settings read from the environment (and ``.env``), named as in the API contract."""

import logging
import os
import secrets
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Annotated, Literal

from limits import parse
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

logger = logging.getLogger(__name__)

DATA_DIR = Path("data")
DEFAULT_DATABASE_URL = f"sqlite:///./{DATA_DIR}/app.db"
SECRET_KEY_FILE = DATA_DIR / "secret_key"
# Values that must never sign tokens in production (copied from examples and templates).
INSECURE_SECRET_KEYS = frozenset({"", "changeme", "change-me", "secret", "development"})
MIN_PRODUCTION_SECRET_LENGTH = 32

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    # An empty variable is an unset one (``METRICS_TOKEN=`` in an env file or a manifest): so a
    # deployment can list every variable and still leave one at its default.
    model_config = SettingsConfigDict(
        env_file=".env", extra="ignore", case_sensitive=True, env_ignore_empty=True
    )

    ENVIRONMENT: Environment = "development"
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    SECRET_KEY: SecretStr | None = None
    JWT_ALGORITHM: Literal["HS256", "HS384", "HS512"] = "HS256"
    ACCESS_TOKEN_EXPIRE_MINUTES: int = Field(default=30, ge=1, le=60 * 24 * 30)
    FIRST_SUPERUSER_EMAIL: str | None = None
    FIRST_SUPERUSER_PASSWORD: SecretStr | None = None
    BACKEND_CORS_ORIGINS: Annotated[list[str], NoDecode] = []
    REDIS_URL: str | None = None
    CACHE_URL: str | None = None
    RATE_LIMIT_LOGIN: str = "5/minute"
    RATE_LIMIT_DEFAULT: str | None = None
    FORWARDED_ALLOW_IPS: str = "127.0.0.1"
    MAX_REQUEST_BODY_BYTES: int = Field(default=1024 * 1024, ge=1024)
    BCRYPT_ROUNDS: int = Field(default=12, ge=4, le=31)
    # Per worker process: requests holding a database session at once, and pool connections.
    DB_POOL_SIZE: int = Field(default=10, ge=1, le=200)
    LOG_LEVEL: str = "info"
    LOG_FORMAT: Literal["json", "console"] | None = None
    # /metrics in production: on a listen address of its own (served by the Gunicorn master,
    # gunicorn.conf.py) and/or on the main listener to this bearer token only.
    METRICS_BIND: str | None = Field(default=None, pattern=r"^[^\s:]*:\d{1,5}$")
    METRICS_TOKEN: SecretStr | None = Field(default=None, min_length=16)

    @field_validator("BACKEND_CORS_ORIGINS", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [origin.strip().rstrip("/") for origin in value.split(",") if origin.strip()]
        return value

    @field_validator("BACKEND_CORS_ORIGINS")
    @classmethod
    def reject_wildcard_origin(cls, value: list[str]) -> list[str]:
        # Credentials (the Authorization header) are allowed, so "*" would hand every site a token.
        if "*" in value:
            raise ValueError("'*' is not allowed; list the origins explicitly")
        return value

    @field_validator("RATE_LIMIT_LOGIN", "RATE_LIMIT_DEFAULT")
    @classmethod
    def check_rate_limit(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                parse(value)
            except ValueError as exc:
                raise ValueError(f"{value!r} is not a rate like '5/minute'") from exc
        return value

    @model_validator(mode="after")
    def check_production_safety(self) -> "Settings":
        if self.ENVIRONMENT != "production":
            return self
        key = self.SECRET_KEY.get_secret_value() if self.SECRET_KEY else ""
        if key.lower() in INSECURE_SECRET_KEYS or len(key) < MIN_PRODUCTION_SECRET_LENGTH:
            raise ValueError(
                "SECRET_KEY must be set to a random value of at least "
                f"{MIN_PRODUCTION_SECRET_LENGTH} characters in production "
                '(e.g. python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if self.BCRYPT_ROUNDS < 12:
            raise ValueError("BCRYPT_ROUNDS must be at least 12 in production")
        return self

    @property
    def log_format(self) -> Literal["json", "console"]:
        if self.LOG_FORMAT is not None:
            return self.LOG_FORMAT
        return "console" if self.ENVIRONMENT == "development" else "json"

    @property
    def is_sqlite(self) -> bool:
        return self.DATABASE_URL.startswith("sqlite")

    def deployment_warnings(self) -> list[str]:
        """Choices that work but that ops should know about (logged at start-up, shown by
        ``check-config``)."""
        warnings = []
        if self.RATE_LIMIT_DEFAULT and not self.REDIS_URL:
            # Login budgets are shared through the database either way.
            warnings.append(
                "REDIS_URL is not set: RATE_LIMIT_DEFAULT is counted per worker process and "
                "reset when a worker restarts; set REDIS_URL to share it across workers and hosts"
            )
        if self.ENVIRONMENT == "production" and not (self.METRICS_BIND or self.METRICS_TOKEN):
            warnings.append(
                "/metrics is not served in production without METRICS_BIND (a listen address "
                "of its own) or METRICS_TOKEN (a bearer token on the main listener)"
            )
        if self.ENVIRONMENT == "production" and self.is_sqlite:
            warnings.append(
                "SQLite in production: fine for one host, but every write is serialised; "
                "use PostgreSQL for anything larger"
            )
        return warnings

    @cached_property
    def secret_key(self) -> str:
        """The JWT signing key: configured, or (outside production) one kept under ./data/."""
        if self.SECRET_KEY is not None and self.SECRET_KEY.get_secret_value():
            return self.SECRET_KEY.get_secret_value()
        return _load_or_create_development_key()


def _load_or_create_development_key() -> str:
    # Every worker process and every restart must agree on the key, or tokens issued by one
    # worker fail on another. link() is atomic and refuses to overwrite: the first writer wins
    # and nobody can read a half-written file.
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    if not SECRET_KEY_FILE.exists():
        candidate = DATA_DIR / f".secret_key.{os.getpid()}"
        candidate.write_text(secrets.token_urlsafe(48))
        candidate.chmod(0o600)
        try:
            os.link(candidate, SECRET_KEY_FILE)
            logger.warning(
                "SECRET_KEY is not set: generated a development key in %s. "
                "Set SECRET_KEY in production.",
                SECRET_KEY_FILE,
            )
        except FileExistsError:
            pass
        finally:
            candidate.unlink()
    key = SECRET_KEY_FILE.read_text().strip()
    if not key:
        raise RuntimeError(f"{SECRET_KEY_FILE} is empty; delete it or set SECRET_KEY")
    return key


# Read by gunicorn.conf.py (and Gunicorn itself) rather than by Settings.
SERVER_VARIABLES = frozenset(
    {
        "BIND",
        "WEB_CONCURRENCY",
        "GUNICORN_TIMEOUT",
        "GUNICORN_GRACEFUL_TIMEOUT",
        "GUNICORN_KEEPALIVE",
        "GUNICORN_MAX_REQUESTS",
        "GUNICORN_MAX_REQUESTS_JITTER",
        "GUNICORN_CONTROL_SOCKET",
        "GUNICORN_CMD_ARGS",
        "PROMETHEUS_MULTIPROC_DIR",
    }
)


def service_variables() -> frozenset[str]:
    """Every environment variable that changes how the service runs: its settings and the
    server's. Harnesses that start the server clear these so nothing leaks in from outside."""
    return frozenset(Settings.model_fields) | SERVER_VARIABLES


# The OpenTelemetry SDK's standard variables, which it reads itself (app.core.tracing).
SERVICE_VARIABLE_PREFIXES = ("OTEL_",)


def is_service_variable(name: str) -> bool:
    """Whether ``name`` changes how the service runs: one of ``service_variables()`` or a
    variable of the OpenTelemetry SDK."""
    return name in service_variables() or name.startswith(SERVICE_VARIABLE_PREFIXES)


@lru_cache
def get_settings() -> Settings:
    return Settings()
