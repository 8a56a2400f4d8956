"""The container files and the Kubernetes manifests cannot be run here (no Docker engine, no
cluster), so keep them in step with what the tests do run: the same server command, the same
probes, and only variables the service reads. (make k8s-lint renders and validates the
manifests; these checks need neither the tools nor a network.)"""

import re
import secrets
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from app.core.config import SERVER_VARIABLES, Settings, is_service_variable, service_variables

ROOT = Path(__file__).resolve().parents[1]
GUNICORN_COMMAND = ["gunicorn", "-c", "gunicorn.conf.py", "app.main:app"]
K8S = ROOT / "deploy" / "k8s"
OVERLAYS = ["dev", "prod"]
# In the README's table, but read by the test suite, not by the service.
TEST_ONLY_VARIABLES = frozenset({"TEST_DATABASE_URL"})
CREDENTIALS = frozenset(
    {
        "SECRET_KEY",
        "DATABASE_URL",
        "REDIS_URL",
        "CACHE_URL",
        "FIRST_SUPERUSER_PASSWORD",
        "METRICS_TOKEN",
    }
)
NGINX_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


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

    app_environment = set(compose["services"]["app"]["environment"])

    unread = {name for name in app_environment if not is_service_variable(name)}
    assert not unread, unread


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


def documented_variables() -> set[str]:
    """The variables in the README's Configuration table."""
    section = (ROOT / "README.md").read_text().split("\n## Configuration\n")[1].split("\n## ")[0]
    first_cells = re.findall(r"^\| (`.+?) \|", section, re.MULTILINE)
    return {name for cell in first_cells for name in re.findall(r"`([A-Z0-9_]+)`", cell)}


def runtime_variables() -> set[str]:
    return documented_variables() - TEST_ONLY_VARIABLES


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines, as kustomize's generators read them (no quoting, # comments)."""
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line.strip() and not line.startswith("#"))


def generated_data(directory: Path, generator: str) -> dict[str, str]:
    """What a kustomization's configMapGenerator or secretGenerator puts into the object. A
    file kept out of git is read from its committed example, as make k8s-lint renders it."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    data: dict[str, str] = {}
    for entry in kustomization.get(generator, []):
        assert entry["name"] == "accounts-items-api"
        assert "literals" not in entry, "keep the values in env files, where these tests read them"
        for name in entry["envs"]:
            example = directory / f"{name}.example"
            data |= read_env_file(example if example.exists() else directory / name)
    return data


def overlay_environment(overlay: str) -> tuple[dict[str, str], dict[str, str]]:
    """The overlay's ConfigMap (base merged with its own) and Secret."""
    config = generated_data(K8S / "base", "configMapGenerator")
    config |= generated_data(K8S / "overlays" / overlay, "configMapGenerator")
    return config, generated_data(K8S / "overlays" / overlay, "secretGenerator")


def manifest(name: str) -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((K8S / "base" / name).read_text())
    return document


def server_container() -> dict[str, Any]:
    [container] = manifest("deployment.yaml")["spec"]["template"]["spec"]["containers"]
    return container


def container_port(container: dict[str, Any], name: str) -> int:
    [port] = [port["containerPort"] for port in container["ports"] if port["name"] == name]
    return int(port)


def configured_settings(monkeypatch: pytest.MonkeyPatch, environment: dict[str, str]) -> Settings:
    for name in service_variables():
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    return Settings(_env_file=None)


def test_the_readme_documents_only_variables_the_service_reads() -> None:
    unread = {name for name in runtime_variables() if not is_service_variable(name)}
    assert not unread, unread


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_overlay_sets_exactly_the_documented_runtime_variables(overlay: str) -> None:
    config, secret = overlay_environment(overlay)
    configured = set(config) | set(secret)

    assert configured == runtime_variables(), configured ^ runtime_variables()
    assert set(secret) == CREDENTIALS
    assert not set(config) & set(secret)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_overlay_merges_its_configuration_over_the_base(overlay: str) -> None:
    # As overlay_environment() reads them; "create" would drop the base's values.
    path = K8S / "overlays" / overlay / "kustomization.yaml"

    [generator] = yaml.safe_load(path.read_text())["configMapGenerator"]

    assert generator["behavior"] == "merge"


def test_the_dev_configuration_starts_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret = overlay_environment("dev")

    settings = configured_settings(monkeypatch, config | secret)

    assert settings.ENVIRONMENT == "development"


def test_the_prod_placeholders_cannot_start_the_service(monkeypatch: pytest.MonkeyPatch) -> None:
    config, secret = overlay_environment("prod")

    with pytest.raises(ValidationError, match="SECRET_KEY"):
        configured_settings(monkeypatch, config | secret)


def test_the_prod_configuration_starts_with_a_real_key_and_no_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config, secret = overlay_environment("prod")

    settings = configured_settings(
        monkeypatch, config | secret | {"SECRET_KEY": secrets.token_urlsafe(48)}
    )

    assert settings.ENVIRONMENT == "production"
    assert settings.deployment_warnings() == []


def test_the_deployment_runs_the_tested_server_command_after_the_entrypoint() -> None:
    container = server_container()

    assert "command" not in container  # the image's entrypoint migrates first
    assert container["args"] == GUNICORN_COMMAND


def test_the_migration_job_migrates_with_the_servers_image_and_configuration() -> None:
    [job_container] = manifest("migration-job.yaml")["spec"]["template"]["spec"]["containers"]

    assert job_container["command"] == ["alembic", "upgrade", "head"]
    assert job_container["image"] == server_container()["image"]
    assert job_container["envFrom"] == server_container()["envFrom"]


def test_the_deployment_reads_the_generated_configuration_and_secret() -> None:
    env_from = server_container()["envFrom"]

    assert env_from == [
        {"configMapRef": {"name": "accounts-items-api"}},
        {"secretRef": {"name": "accounts-items-api"}},
    ]
    assert "env" not in server_container()  # one source of values: the generators


def test_the_probes_are_liveness_on_health_and_readiness_on_health_ready() -> None:
    container = server_container()
    config, _ = overlay_environment("prod")
    app_port = container_port(container, "http")

    assert container["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["livenessProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert container["readinessProbe"]["httpGet"] == {"path": "/health/ready", "port": "http"}
    assert config["BIND"] == f"0.0.0.0:{app_port}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_metrics_are_scraped_from_the_metrics_bind_port(overlay: str) -> None:
    config, _ = overlay_environment(overlay)
    deployment = manifest("deployment.yaml")
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    metrics_port = container_port(server_container(), "metrics")

    assert config["METRICS_BIND"] == f"0.0.0.0:{metrics_port}"
    assert annotations["prometheus.io/port"] == str(metrics_port)
    assert annotations["prometheus.io/path"] == "/metrics"


def test_the_network_policy_admits_the_app_and_metrics_ports_only() -> None:
    ingress_rules = manifest("networkpolicy.yaml")["spec"]["ingress"]

    ports = [port["port"] for rule in ingress_rules for port in rule["ports"]]

    assert ports == ["http", "metrics"]
    assert all(rule["from"] for rule in ingress_rules)


def test_the_grace_period_covers_the_pre_stop_pause_and_gunicorns_graceful_timeout() -> None:
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    pause = server_container()["lifecycle"]["preStop"]["sleep"]["seconds"]

    for overlay in OVERLAYS:
        config, _ = overlay_environment(overlay)

        assert pod["terminationGracePeriodSeconds"] > pause + int(
            config["GUNICORN_GRACEFUL_TIMEOUT"]
        )


def test_the_writable_paths_are_on_an_empty_dir() -> None:
    pod = manifest("deployment.yaml")["spec"]["template"]["spec"]
    config, _ = overlay_environment("prod")
    empty_dirs = {volume["name"] for volume in pod["volumes"] if "emptyDir" in volume}
    mounts = [m["mountPath"] for m in server_container()["volumeMounts"] if m["name"] in empty_dirs]

    assert server_container()["securityContext"]["readOnlyRootFilesystem"] is True
    assert "/tmp" in mounts  # Gunicorn's worker heartbeat files
    assert any(Path(config["PROMETHEUS_MULTIPROC_DIR"]).is_relative_to(m) for m in mounts)


def test_the_ingress_refuses_bodies_larger_than_the_service_accepts() -> None:
    annotations = manifest("ingress.yaml")["metadata"]["annotations"]
    size = re.fullmatch(
        r"(\d+)([kmg]?)", annotations["nginx.ingress.kubernetes.io/proxy-body-size"].lower()
    )
    assert size is not None
    number, unit = size.groups()

    for overlay in OVERLAYS:
        config, _ = overlay_environment(overlay)

        assert int(number) * NGINX_SIZE_UNITS[unit] == int(config["MAX_REQUEST_BODY_BYTES"])


def test_prod_at_its_largest_stays_within_postgres_default_connections() -> None:
    # max_connections 100 less 3 reserved for superusers; docs/kubernetes.md, "Sizing".
    config, _ = overlay_environment("prod")
    hpa = yaml.safe_load((K8S / "overlays" / "prod" / "hpa.yaml").read_text())
    surge = manifest("deployment.yaml")["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    pods = hpa["spec"]["maxReplicas"] + surge
    per_pod = int(config["WEB_CONCURRENCY"]) * (int(config["DB_POOL_SIZE"]) + 2)
    migration_job = 1

    assert pods * per_pod + migration_job <= 97
