"""A Python client generated from the committed OpenAPI document (openapi-python-client, in an
environment of its own: clients/python) drives sign-up, login, an idempotent create and
conditional requests against the real server. The generator must not warn: whatever it warns
about is fixed in the document."""

import subprocess
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.integration.conftest import ROOT, Server

DOCUMENT = ROOT / "docs" / "openapi.json"
CLIENT_PROJECT = ROOT / "clients" / "python"
CLIENT_BIN = CLIENT_PROJECT / ".venv" / "bin"


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not (CLIENT_BIN / "openapi-python-client").exists():
        unavailable("the generator's environment is missing: run `make clients`")
    package = tmp_path_factory.mktemp("python-client") / "accounts_items_client"
    result = subprocess.run(
        [
            str(CLIENT_BIN / "openapi-python-client"),
            "generate",
            "--path",
            str(DOCUMENT),
            "--output-path",
            str(package),
            "--meta",
            "none",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={"PATH": f"{CLIENT_BIN}:/usr/bin:/bin", "HOME": str(package.parent)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "Warning" not in output, output
    return package


def test_the_generated_client_drives_the_flow(generated: Path, shared_server: Server) -> None:
    flow = [str(CLIENT_BIN / "python"), str(CLIENT_PROJECT / "flow.py"), str(generated)]
    result = subprocess.run(
        [*flow, shared_server.url("")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "flow ok" in result.stdout
