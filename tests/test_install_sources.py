"""Where ``make`` gets torch's CPU build: the local wheel folder when it holds the pinned wheel,
else PyTorch's CPU index. Resolved offline: both sources and PyPI are local stand-ins here."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "uv-with-torch.sh"
UV = Path(sys.executable).parent / "uv"


def torch_pin() -> str:
    """``torch==<version>`` as requirements.lock pins it."""
    lines = (ROOT / "requirements.lock").read_text().splitlines()
    (pin,) = [line for line in lines if line.startswith("torch==")]
    return pin


def fake_wheel(folder: Path, version: str) -> Path:
    """A torch wheel with metadata only (resolvers read nothing else)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"torch-{version}-py3-none-any.whl"
    info = f"torch-{version}.dist-info"
    with zipfile.ZipFile(path, "w") as wheel:
        wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: torch\nVersion: {version}\n")
        wheel.writestr(
            f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
        )
        wheel.writestr(f"{info}/RECORD", "")
    return path


class Sources:
    """A PyPI stand-in without torch, a PyTorch CPU index stand-in with it, a local wheel folder."""

    def __init__(self, root: Path):
        self.root = root
        self.version = torch_pin().removeprefix("torch==")
        self.pypi = root / "pypi"
        self.pypi.mkdir()
        self.torch_index = root / "pytorch-cpu"
        wheel = fake_wheel(self.torch_index / "torch", self.version)
        (self.torch_index / "index.html").write_text('<a href="torch/">torch</a>')
        (self.torch_index / "torch" / "index.html").write_text(f'<a href="{wheel.name}">{wheel.name}</a>')
        self.requirements = root / "requirements.txt"
        self.requirements.write_text(torch_pin() + "\n")

    def run(self, wheels_dir: Path, *uv_args: str) -> subprocess.CompletedProcess[str]:
        """``scripts/uv-with-torch.sh <uv_args>`` offline, with these stand-ins for the sources."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("UV_")}
        env.update(
            UV=str(UV),
            UV_OFFLINE="1",
            UV_NO_CACHE="1",
            UV_NO_CONFIG="1",
            UV_INDEX_URL=self.pypi.as_uri(),
            AIMPACT_WHEELS_DIR=str(wheels_dir),
            AIMPACT_TORCH_INDEX=self.torch_index.as_uri(),
        )
        return subprocess.run([str(SCRIPT), *uv_args], env=env, capture_output=True, text=True, timeout=120)

    def compile(self, wheels_dir: Path) -> subprocess.CompletedProcess[str]:
        """Resolve the torch pin, each package annotated with the source it came from."""
        return self.run(
            wheels_dir,
            *("pip", "compile", str(self.requirements), "--python-version", "3.11"),
            *("--emit-index-annotation", "--no-header"),
        )


@pytest.fixture
def sources(tmp_path: Path) -> Sources:
    return Sources(tmp_path)


def test_the_lock_names_no_wheel_folder_or_index() -> None:
    options = [line for line in (ROOT / "requirements.lock").read_text().splitlines() if line.startswith("-")]
    assert options == []
    assert torch_pin().endswith("+cpu")


@pytest.mark.parametrize("folder", ["missing", "empty", "other-version"])
def test_without_the_pinned_wheel_in_the_local_folder_torch_comes_from_the_cpu_index(
    sources: Sources, folder: str
) -> None:
    wheels = sources.root / "wheels"
    if folder == "empty":
        wheels.mkdir()
    elif folder == "other-version":
        fake_wheel(wheels, "2.0.0+cpu")

    result = sources.compile(wheels)

    assert result.returncode == 0, result.stderr
    assert f"{torch_pin()}\n" in result.stdout
    assert f"# from {sources.torch_index.as_uri()}" in result.stdout
    assert f"from {sources.torch_index.as_uri()}" in result.stderr  # what make prints

    env = sources.root / "venv"
    subprocess.run([str(UV), "venv", "-q", "--python", sys.executable, str(env)], check=True, timeout=60)
    dry_run = sources.run(
        wheels, "pip", "install", "--dry-run", "--python", str(env / "bin" / "python"), "-r", str(sources.requirements)
    )
    assert dry_run.returncode == 0, dry_run.stderr
    assert f"+ {torch_pin()}" in dry_run.stderr


def test_the_pinned_wheel_in_the_local_folder_is_used_first(sources: Sources) -> None:
    wheels = sources.root / "wheels"
    fake_wheel(wheels, sources.version)

    result = sources.compile(wheels)

    assert result.returncode == 0, result.stderr
    assert f"{torch_pin()}\n" in result.stdout
    assert f"# from {wheels.as_uri()}" in result.stdout
    assert "local wheel folder" in result.stderr


def test_no_source_has_the_pin_resolution_fails(sources: Sources) -> None:
    """The stand-ins are the only sources: with neither holding the wheel nothing is found."""
    (sources.torch_index / "torch" / "index.html").write_text("")

    result = sources.compile(sources.root / "missing")

    assert result.returncode != 0
    assert "torch" in result.stderr
