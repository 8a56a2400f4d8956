"""The container files cannot be built here (no Docker engine), so keep them in step with what
the tests do run: the same server command and only variables the service reads."""

import re
from pathlib import Path

import yaml

from app.core.config import SERVER_VARIABLES, Settings, service_variables

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_COMMAND = ["gunicorn", "-c", "gunicorn.conf.py", "app.main:app"]


def gunicorn_variables() -> set[str]:
    return set(
        re.findall(r'os\.environ\.get\("([A-Z_]+)"', (ROOT / "gunicorn.conf.py").read_text())
    )


def test_the_server_variables_are_the_ones_gunicorn_conf_reads() -> None:
    read = gunicorn_variables() - set(Settings.model_fields)

    assert read <= SERVER_VARIABLES, read - SERVER_VARIABLES


def test_the_image_runs_the_tested_server_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()

    cmd = re.search(r"^CMD (\[.*\])$", dockerfile, re.MULTILINE)

    assert cmd is not None
    assert yaml.safe_load(cmd.group(1)) == GUNICORN_COMMAND


def test_the_image_migrates_before_serving() -> None:
    entrypoint = (ROOT / "docker-entrypoint.sh").read_text()

    assert "alembic upgrade head" in entrypoint
    assert 'exec "$@"' in entrypoint
    assert 'ENTRYPOINT ["./docker-entrypoint.sh"]' in (ROOT / "Dockerfile").read_text()


def test_compose_sets_only_variables_the_service_reads() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    known = service_variables()

    app_environment = set(compose["services"]["app"]["environment"])

    assert app_environment <= known, app_environment - known


def test_compose_runs_the_app_on_postgres_and_redis_after_health_checks() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    app = compose["services"]["app"]

    assert app["environment"]["DATABASE_URL"].startswith("postgresql+psycopg2://")
    assert app["environment"]["REDIS_URL"].startswith("redis://")
    assert app["depends_on"]["db"]["condition"] == "service_healthy"
    assert "healthcheck" in compose["services"]["db"]
    assert "pgdata" in compose["volumes"]


def test_the_makefile_serves_with_the_same_command() -> None:
    makefile = (ROOT / "Makefile").read_text()

    assert "$(VENV)/" + " ".join(GUNICORN_COMMAND) in makefile
