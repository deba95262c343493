"""``pip install .`` then ``canvos-doca render``: the CLI from a regular (non-editable)
install in a fresh virtualenv, with nothing of the source tree on its path.

The wheel is built once per test session. The fresh venv gets only that
wheel (``--no-deps``); its dependencies come from the test venv's
site-packages through a path file, so no network is needed and the test is
quick. A path file does not run the editable install's own hook, so
``pipeline`` can only come from the wheel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.unit.conftest import make_canvos_tree

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project's wheel, built like ``pip install .`` builds it."""
    directory = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", str(directory),
         str(REPO)],
        check=True,
    )  # fmt: skip
    (built,) = directory.glob("canvos_doca-*.whl")
    return built


@pytest.fixture(scope="session")
def installed(wheel: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed; its bin directory."""
    venv = tmp_path_factory.mktemp("venv") / "fresh"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--quiet",
         "--no-deps", "--no-index", str(wheel)],
        check=True,
    )  # fmt: skip
    purelib = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip
    (Path(purelib) / "test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}


def test_the_package_comes_from_the_wheel_not_the_source_tree(
    installed: Path, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(installed / "python"), "-c", "import pipeline.cli; print(pipeline.cli.__file__)"],
        cwd=tmp_path, env=clean_env(), check=True, capture_output=True, text=True,
    )  # fmt: skip
    location = Path(done.stdout.strip())
    assert location.is_relative_to(installed.parent) and not location.is_relative_to(REPO)


def test_render_works_from_a_regular_install(installed: Path, tmp_path: Path) -> None:
    # The example: pip install . then canvos-doca render crashed with
    # FileNotFoundError: .../site-packages/overlays/doca/Dockerfile.fragment.
    tree = make_canvos_tree(tmp_path / "CanvOS")
    out = tmp_path / "canvos-doca-build"
    done = subprocess.run(
        [str(installed / "canvos-doca"), "render", "--canvos", str(tree), "--out", str(out),
         "--k8s-version", "1.34.6"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "./earthly.sh +build-all-images" in done.stdout
    fragment = out / "canvos-doca" / "doca" / "Dockerfile.fragment"
    assert fragment.read_text() == (REPO / "overlays" / "doca" / "Dockerfile.fragment").read_text()
    install = out / "canvos-doca" / "doca" / "install" / "doca-install.sh"
    assert os.access(install, os.X_OK)  # scripts keep their executable bit through the wheel
    assert (out / "canvos-doca" / "doca" / "facts.env").is_file()


def test_presets_ship_with_a_regular_install(installed: Path, tmp_path: Path) -> None:
    # The presets are package data like the overlays: a wheel without them
    # would answer every --preset with "not a known preset".
    done = subprocess.run(
        [str(installed / "canvos-doca"), "presets"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    shipped = sorted(p.stem for p in (REPO / "presets").glob("*.yaml"))
    assert [line.split()[0] for line in done.stdout.splitlines()] == shipped
    tree = make_canvos_tree(tmp_path / "CanvOS")
    out = tmp_path / "out"
    done = subprocess.run(
        [str(installed / "canvos-doca"), "render", "--canvos", str(tree), "--out", str(out),
         "--preset", "ai-ra-infra"],
        cwd=tmp_path, env=clean_env(), capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    units = (out / "canvos-doca" / "host" / "units.list").read_text().splitlines()
    assert "lldpd.service" in units
