"""TypeScript types generated from the committed OpenAPI document (openapi-typescript) type-check
a script using openapi-fetch (tsc --noEmit, strict), which then drives sign-up, login, an
idempotent create and conditional requests against the real server. The project and its lock
file are clients/typescript; the generator must not warn."""

import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import unavailable
from tests.integration.conftest import ROOT, Server

PROJECT = ROOT / "clients" / "typescript"
NPM_BIN = PROJECT / "node_modules" / ".bin"


def run(*argv: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        list(argv), cwd=cwd, capture_output=True, text=True, timeout=180, check=False
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of clients/typescript (its installed packages linked), so generated files never
    land in the repository."""
    if shutil.which("node") is None or not (NPM_BIN / "tsc").exists():
        unavailable("Node.js or the client's packages are missing: run `make clients`")
    copy = tmp_path_factory.mktemp("typescript-client")
    for name in ("package.json", "tsconfig.json"):
        shutil.copy(PROJECT / name, copy / name)
    shutil.copytree(PROJECT / "src", copy / "src", ignore=shutil.ignore_patterns("schema.d.ts"))
    (copy / "node_modules").symlink_to(PROJECT / "node_modules")
    generated = run(
        str(copy / "node_modules" / ".bin" / "openapi-typescript"),
        str(ROOT / "docs" / "openapi.json"),
        "--output",
        "src/schema.d.ts",
        cwd=copy,
    )
    output = generated.stdout + generated.stderr
    assert generated.returncode == 0, output
    assert "warn" not in output.lower(), output
    return copy


def test_the_generated_types_check_the_script(project: Path) -> None:
    result = run(str(project / "node_modules" / ".bin" / "tsc"), "--noEmit", cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_typed_client_drives_the_flow(project: Path, shared_server: Server) -> None:
    built = run(str(project / "node_modules" / ".bin" / "tsc"), cwd=project)
    assert built.returncode == 0, built.stdout + built.stderr

    result = run("node", "build/flow.js", shared_server.url(""), cwd=project)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "flow ok" in result.stdout
