"""Full runs against a real Dagger engine through the `dagger` CLI.

Run when a `dagger` CLI is on PATH and an engine is configured:
``CANVOS_DOCA_ENGINE_TESTS=1`` (the CLI starts its own engine in Docker), or
``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` / a surrounding Dagger session. Otherwise
every test here is skipped with the reason; these are the only tests allowed
to skip in CI. A full build needs ~70 GB of engine disk and up to ~75 minutes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FLAG = "CANVOS_DOCA_ENGINE_TESTS"
K8S = os.environ.get("CANVOS_DOCA_ENGINE_K8S_VERSION", "1.34.6")
BUILD_TIMEOUT = int(os.environ.get("CANVOS_DOCA_ENGINE_TIMEOUT", str(3 * 3600)))


def skip_reason() -> str | None:
    if shutil.which("dagger") is None:
        return "no `dagger` CLI on PATH (install Dagger v0.21.11 to run the engine tests)"
    configured = (
        os.environ.get(FLAG) == "1"
        or os.environ.get("_EXPERIMENTAL_DAGGER_RUNNER_HOST")
        or os.environ.get("DAGGER_SESSION_PORT")
    )
    if not configured:
        return (
            f"no Dagger engine configured: set {FLAG}=1 to let the dagger CLI start one "
            "(needs Docker and ~70 GB disk), or _EXPERIMENTAL_DAGGER_RUNNER_HOST"
        )
    return None


pytestmark = [
    pytest.mark.engine,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
]


def dagger_call(*args: str, timeout: int = 1800) -> str:
    """``dagger call`` from the module root; the log tail on failure."""
    command = ["dagger", "call", "--progress=plain", *args]
    result = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-60:])
        pytest.fail(f"{' '.join(command)} failed ({result.returncode}):\n{tail}")
    return result.stdout


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_prepare_writes_the_build_context() -> None:
    entries = {
        e.rstrip("/") for e in dagger_call("--k8s-version", K8S, "prepare", "entries").split()
    }
    assert {".arg", "Dockerfile", "Earthfile", "user-data", "canvos-doca"} <= entries
    arg = dagger_call("--k8s-version", K8S, "prepare", "file", "--path", ".arg", "contents")
    assert f"K8S_VERSION={K8S}" in arg


def test_doca_image_passes_its_own_verify() -> None:
    report = dagger_call(
        "doca-image", "with-exec", "--args", "/usr/bin/canvos-doca-verify", "stdout"
    )
    assert "ok    manifest present" in report and "FAIL" not in report


def test_full_build_exports_verified_artifacts(tmp_path: Path) -> None:
    out = tmp_path / "build"
    dagger_call("--k8s-version", K8S, "build", "export", "--path", str(out), timeout=BUILD_TIMEOUT)
    manifest = json.loads((out / "manifest.json").read_text())
    iso = manifest["outputs"]["iso"]
    assert sha256(out / iso["file"]) == iso["sha256"]
    assert (out / f"{iso['file']}.sha256").read_text().split()[0] == iso["sha256"]
    (image,) = manifest["outputs"]["provider_images"]
    assert image["k8s_version"] == K8S and image["doca"] and image["verify"] == "passed"
    tarball = out / image["tarball"]["file"]
    assert sha256(tarball) == image["tarball"]["sha256"]
    assert len(manifest["inputs"]["canvos"]["commit"]) == 40
