"""The module installs and loads the way Dagger's Python runtime does it.

What the runtime does (dagger/dagger v0.21.x ``sdk/python/runtime``; read at
v0.21.8 and on main of 2026-08-20, the newest snapshot available):

- ``main.go`` ``WithSDK`` copies the SDK bundled with the engine to ``./sdk``
  of the module source, filtered by the runtime's ``+ignore`` list. Its
  ``pyproject.toml`` says ``version = "0.0.0"``: only PyPI releases carry the
  real version.
- ``discovery.go`` ``UseUvLock``: with a ``uv.lock`` it runs ``uv lock`` and
  ``uv sync --no-dev``; without one (and without a ``requirements.lock``),
  ``main.go`` ``WithInstall`` runs ``uv pip install -e ./sdk -e .`` then
  ``uv pip check``, with ``UV_LINK_MODE=copy``, ``UV_NATIVE_TLS=1``,
  ``UV_COMPILE_BYTECODE=1`` and ``UV_SYSTEM_PYTHON=1``, using uv 0.10.3
  (``images/uv/Dockerfile``).
- ``template/runtime.py`` calls ``dagger.mod.cli.app()``, which loads the main
  object from the entry point ``[project.entry-points."dagger.mod"]
  main_object``; ``WithSource`` sets ``DAGGER_MAIN_OBJECT`` (the PascalCase of
  dagger.json's ``name``) before that import.

Here the same happens for real, outside a container: ``./sdk`` is the real
dagger-io sdist of the version dagger.json pins (downloaded from PyPI once,
checked against its sha256, cached in pytest's cache directory) with its
version set to 0.0.0; the module is a copy of this checkout's files (what a
git ref holds); the runtime's command runs with the runtime's uv in a fresh
virtualenv (instead of the image's system Python); the main object is loaded
in that environment by the SDK's own loader. Dependencies come from PyPI, as
in the runtime (uv's cache makes repeat runs take seconds).

Differences that remain: the interpreter is the one running the tests (the
runtime picks ``python:<requires-python minimum>-slim``, 3.10 today); the
runtime regenerates ``sdk/src/dagger/client/gen.py`` against the live schema
(the sdist's copy is that same version's); the SDK's ``codegen/`` workspace
member, which the engine ships and PyPI does not, is a metadata-only stand-in.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import pytest

from tests.pipeline import registration
from tests.runtime import fake_engine

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).parents[2]
DAGGER_JSON = json.loads((ROOT / "dagger.json").read_text())
SDK_VERSION = DAGGER_JSON["engineVersion"].removeprefix("v")
RUNTIME_UV = "0.10.3"
# The dagger-io sdists on PyPI (https://pypi.org/simple/dagger-io/), by version.
SDISTS = {
    "0.21.11": (
        "https://files.pythonhosted.org/packages/2e/0b/"
        "aacad0e98fb186ad8be87f388e1da26e7760ea651a103373a92c3a4627b1/dagger_io-0.21.11.tar.gz",
        "4a779b8497f5a79b7a6e2aa47b7a3ad09c24bb92281fc19f6646a95c8ec7328c",
    ),
}
# The runtime's filter of the SDK source (runtime main.go New, +ignore).
SDK_FILES = re.compile(
    r"pyproject\.toml|uv\.lock|LICENSE|README\.md|src/.+\.(py|typed)|codegen/(pyproject\.toml|.+\.py)"
)
INSTALL = ["uv", "pip", "install", "-e", "./sdk", "-e", "."]
CHECK = ["uv", "pip", "check"]
RUNTIME_ENV = {"UV_LINK_MODE": "copy", "UV_NATIVE_TLS": "1", "UV_COMPILE_BYTECODE": "1"}


@dataclass(frozen=True)
class Runtime:
    """One module source with ./sdk, and the uv settings of the runtime."""

    source: Path
    uv: Path
    cache: Path

    def env(self, venv: Path) -> dict[str, str]:
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("UV_", "PYTHON", "DAGGER_")) and k != "VIRTUAL_ENV"
        }
        return {**base, **RUNTIME_ENV, "UV_CACHE_DIR": str(self.cache), "VIRTUAL_ENV": str(venv)}

    def uv_run(self, args: list[str], venv: Path) -> subprocess.CompletedProcess[str]:
        assert args[0] == "uv"
        return subprocess.run(
            [str(self.uv), *args[1:]],
            cwd=self.source,
            env=self.env(venv),
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )

    def install(self, venv: Path) -> list[subprocess.CompletedProcess[str]]:
        """A fresh virtualenv, then the runtime's commands until one fails."""
        made = self.uv_run(["uv", "venv", "--quiet", "--python", sys.executable, str(venv)], venv)
        assert made.returncode == 0, made.stderr
        results = []
        for command in (INSTALL, CHECK):
            results.append(self.uv_run(command, venv))
            if results[-1].returncode != 0:
                break
        return results


def runtime_uv() -> Path:
    found = Path(sys.executable).parent / "uv"
    uv = found if found.exists() else Path(shutil.which("uv") or "uv")
    version = subprocess.run([str(uv), "--version"], capture_output=True, text=True, check=False)
    if version.stdout.split()[1:2] != [RUNTIME_UV]:
        pytest.fail(
            f"{uv} is not uv {RUNTIME_UV} ({version.stdout.strip() or version.stderr.strip()}): "
            "install the dev extras (pip install -e '.[dev]') to get the runtime's uv"
        )
    return uv


def fetch_sdist(cache: Path) -> Path:
    """The dagger-io sdist that dagger.json's engineVersion bundles, checked by sha256."""
    if SDK_VERSION not in SDISTS:
        pytest.fail(
            f"dagger.json pins engine {SDK_VERSION}: add its dagger-io sdist URL and sha256 "
            "(https://pypi.org/simple/dagger-io/) to SDISTS"
        )
    url, sha256 = SDISTS[SDK_VERSION]
    path = cache / url.rsplit("/", 1)[1]
    if not path.exists() or hashlib.sha256(path.read_bytes()).hexdigest() != sha256:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
        got = hashlib.sha256(data).hexdigest()
        assert got == sha256, f"{url}: sha256 {got}, expected {sha256}"
        partial = path.with_suffix(".part")
        partial.write_bytes(data)
        partial.replace(path)
    return path


def bundled_sdk(sdist: Path, target: Path) -> None:
    """``target`` as the engine vendors it: the runtime's file filter, version 0.0.0."""
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            parts = PurePosixPath(member.name).parts[1:]  # below dagger_io-<version>/
            relative = "/".join(parts)
            if not member.isfile() or ".." in parts or not SDK_FILES.fullmatch(relative):
                continue
            out = target / relative
            out.parent.mkdir(parents=True, exist_ok=True)
            source = archive.extractfile(member)
            assert source is not None
            out.write_bytes(source.read())
    project = target / "pyproject.toml"
    text, count = re.subn(r'(?m)^version = ".*"$', 'version = "0.0.0"', project.read_text())
    assert count == 1, f"{sdist.name}: no single version line in pyproject.toml"
    project.write_text(text)
    # The SDK's uv workspace names codegen/ as a member; the engine ships it, PyPI not.
    codegen = target / "codegen" / "pyproject.toml"
    if not codegen.exists():
        codegen.parent.mkdir(parents=True)
        codegen.write_text('[project]\nname = "codegen"\nversion = "0.0.0"\n')


def module_source(target: Path) -> None:
    """This checkout's files as a git ref holds them (tracked or new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split("\0")
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, target / name)
    for lock in ("uv.lock", "requirements.lock"):
        if (target / lock).exists():
            pytest.fail(
                f"the module has a {lock}: the runtime then installs with other commands "
                "(uv lock + uv sync, or pip compile); reproduce those here first"
            )


@pytest.fixture(scope="module")
def runtime(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Runtime:
    cache = pytestconfig.cache.mkdir("canvos-doca-runtime") if pytestconfig.cache else None
    cache = cache or tmp_path_factory.mktemp("cache")
    source = tmp_path_factory.mktemp("runtime") / "module"
    module_source(source)
    bundled_sdk(fetch_sdist(cache), source / "sdk")
    return Runtime(source=source, uv=runtime_uv(), cache=cache / "uv")


@pytest.fixture(scope="module")
def venv(runtime: Runtime, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The module installed by the runtime's commands; fails with uv's output."""
    venv = tmp_path_factory.mktemp("venv") / "runtime"
    results = runtime.install(venv)
    failed = [r for r in results if r.returncode != 0]
    assert not failed, "\n".join(f"$ {' '.join(r.args)}\n{r.stdout}{r.stderr}" for r in failed)
    return venv


def python(venv: Path) -> Path:
    return venv / "bin" / "python"


def run_python(
    interpreter: Path, script: str, cwd: Path, env: dict[str, str], tmp_path: Path
) -> dict[str, object]:
    """Run ``script`` from a file (so sys.path[0] is not the module source, as
    with the runtime's /runtime entrypoint) and decode the JSON it prints."""
    path = tmp_path / "child.py"
    path.write_text(script)
    result = subprocess.run(
        [str(interpreter), str(path)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    decoded = json.loads(result.stdout.splitlines()[-1])
    assert isinstance(decoded, dict)
    return decoded


def main_object_name(module_name: str) -> str:
    """dagger.json ``name`` -> main object name (the runtime's strcase.ToCamel,
    for kebab/snake names)."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_\s]+", module_name))


def runtime_env(runtime: Runtime, venv: Path) -> dict[str, str]:
    """The variables ``WithSource`` sets for the runtime entrypoint."""
    name = DAGGER_JSON["name"]
    return {
        **runtime.env(venv),
        "DAGGER_MODULE": name,
        "DAGGER_DEFAULT_PYTHON_PACKAGE": name.replace("-", "_"),
        "DAGGER_MAIN_OBJECT": main_object_name(name),
    }


LOAD = """
import importlib.metadata, json, sys
from dagger.mod.cli import get_entry_point, load_module

entry_point = get_entry_point()
module = load_module()
main = module.get_object(module._main_name)  # what registration looks up
print(json.dumps({
    "entry_point": [entry_point.group, entry_point.name, entry_point.value],
    "main_object": module._main_name,
    "class": f"{main.cls.__module__}.{main.cls.__qualname__}",
    "functions": sorted(main.functions),
    "pipeline": sys.modules["pipeline"].__file__,
    "dagger": sys.modules["dagger"].__file__,
    "dagger_io": importlib.metadata.version("dagger-io"),
}))
"""


def test_the_runtime_install_uses_the_bundled_sdk(runtime: Runtime, venv: Path) -> None:
    listed = runtime.uv_run(["uv", "pip", "list", "--format", "json"], venv)
    versions = {p["name"]: p for p in json.loads(listed.stdout)}
    assert versions["dagger-io"]["version"] == "0.0.0"
    assert versions["dagger-io"]["editable_project_location"] == str(runtime.source / "sdk")
    assert versions["canvos-doca"]["editable_project_location"] == str(runtime.source)


def test_the_main_object_loads_from_its_entry_point(
    runtime: Runtime, venv: Path, tmp_path: Path
) -> None:
    loaded = run_python(python(venv), LOAD, runtime.source, runtime_env(runtime, venv), tmp_path)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    declared = pyproject["project"]["entry-points"]["dagger.mod"]["main_object"]
    assert loaded["entry_point"] == ["dagger.mod", "main_object", declared]
    assert loaded["main_object"] == registration.MAIN_OBJECT
    assert loaded["class"] == "pipeline.main.CanvosDoca"
    registered = set(registration.registration()) - {registration.CONSTRUCTOR}
    functions = loaded["functions"]
    assert isinstance(functions, list)
    assert {registration.kebab(f) for f in functions} == registered
    # Imported from the installed module source and the bundled SDK, nothing else.
    assert Path(str(loaded["pipeline"])).is_relative_to(runtime.source / "pipeline")
    assert Path(str(loaded["dagger"])).is_relative_to(runtime.source / "sdk" / "src")
    assert loaded["dagger_io"] == "0.0.0"


def test_a_pinned_sdk_dependency_cannot_install(runtime: Runtime, tmp_path: Path) -> None:
    # The pin this project had: the runtime's install fails before anything loads.
    pinned = tmp_path / "module"
    shutil.copytree(runtime.source, pinned, ignore=shutil.ignore_patterns("__pycache__"))
    project = pinned / "pyproject.toml"
    text = project.read_text()
    assert text.count("dependencies = [\n") == 1
    project.write_text(
        text.replace("dependencies = [\n", f'dependencies = [\n    "dagger-io=={SDK_VERSION}",\n')
    )
    results = Runtime(pinned, runtime.uv, runtime.cache).install(tmp_path / "venv")
    assert [r.args[1:3] for r in results] == [INSTALL[1:3]]  # stopped at the install
    failure = results[0]
    output = failure.stdout + failure.stderr
    print(f"$ {' '.join(INSTALL)}  (with dagger-io=={SDK_VERSION})\n{output}")
    assert failure.returncode != 0
    assert f"dagger-io=={SDK_VERSION}" in output and "unsatisfiable" in output


@pytest.mark.parametrize("where", ["development", "runtime"])
def test_the_manifest_records_the_engine_version_the_engine_reports(
    where: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    # tool_versions against an engine API on 127.0.0.1, reached the way the
    # runtime connects (DAGGER_SESSION_PORT/TOKEN). In the runtime's install
    # dagger-io says 0.0.0; the manifest must carry the engine's answer.
    script = """
import importlib.metadata, json
import anyio, dagger
from pipeline import earthly, runner

async def main():
    try:
        return await runner.tool_versions(earthly.Tools())
    finally:
        await dagger.close()

print(json.dumps({"tools": anyio.run(main), "dagger_io": importlib.metadata.version("dagger-io")}))
"""
    if where == "runtime":
        runtime: Runtime = request.getfixturevalue("runtime")
        venv: Path = request.getfixturevalue("venv")
        interpreter, cwd, env = python(venv), runtime.source, runtime_env(runtime, venv)
    else:
        base = {k: v for k, v in os.environ.items() if not k.startswith("DAGGER_")}
        interpreter, cwd, env = Path(sys.executable), ROOT, {**base, "PYTHONPATH": str(ROOT)}
    with fake_engine.serving("v0.21.11-reported-by-the-engine") as engine:
        out = run_python(interpreter, script, cwd, {**env, **engine.env()}, tmp_path)
    tools = out["tools"]
    assert isinstance(tools, dict)
    assert tools["dagger_engine"] == "v0.21.11-reported-by-the-engine"
    assert engine.queries == ["{ version }"]
    assert out["dagger_io"] not in tools.values()
    assert out["dagger_io"] == ("0.0.0" if where == "runtime" else SDK_VERSION)


PRESETS = """
import json
from dagger.mod.cli import load_module
load_module()
from pipeline import presets
print(json.dumps({"directory": str(presets.directory()), "names": list(presets.names()),
                  "layer": sorted(presets.layer(presets.names()[0]))}))
"""


def test_the_installed_module_finds_the_shipped_presets(
    runtime: Runtime, venv: Path, tmp_path: Path
) -> None:
    # The module is installed editable from its source: --preset reads the
    # source's presets/ (no wheel package data there).
    found = run_python(python(venv), PRESETS, runtime.source, runtime_env(runtime, venv), tmp_path)
    assert Path(str(found["directory"])) == runtime.source / "presets"
    assert found["names"] == sorted(p.stem for p in (ROOT / "presets").glob("*.yaml"))
    assert found["layer"]
