"""Heavy engine tests (main, nightly, on demand): the DOCA stage on the real
Kairos base image with the real DOCA repository, its own verify, then a full
build whose every image is verified. An hour or more and ~70 GB of engine disk
on a cold engine (estimates in docs/github-actions.md).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from pipeline import verify
from tests.engine.dagger_cli import BUILD_TIMEOUT, ENGINE_VERSION, K8S, dagger_call, needs_engine

pytestmark = [*needs_engine, pytest.mark.heavy]


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def test_doca_image_passes_its_own_verify() -> None:
    # with-exec fails the call when the verify script exits non-zero.
    report = dagger_call(
        "--k8s-version",
        K8S,
        "doca-image",
        "with-exec",
        "--args",
        verify.VERIFY_COMMAND,
        "stdout",
        timeout=BUILD_TIMEOUT,
    )
    assert "ok    manifest present" in report and "FAIL" not in report


def test_full_build_exports_verified_artifacts(tmp_path: Path) -> None:
    # The ISO, checksums and manifest only: the ~4-5 GB provider tarball stays
    # in the engine, as in the build workflow (the runner keeps ~10 GB free).
    out = tmp_path / "build"
    dagger_call(
        "--k8s-version",
        K8S,
        "build",
        "filter",
        "--include",
        "*.iso",
        "--include",
        "*.sha256",
        "--include",
        "manifest.json",
        "export",
        "--path",
        str(out),
        timeout=BUILD_TIMEOUT,
    )
    manifest = json.loads((out / "manifest.json").read_text())
    iso = manifest["outputs"]["iso"]
    assert sha256(out / iso["file"]) == iso["sha256"]
    assert (out / f"{iso['file']}.sha256").read_text().split()[0] == iso["sha256"]
    (image,) = manifest["outputs"]["provider_images"]
    assert image["k8s_version"] == K8S and image["doca"] and image["verify"] == "passed"
    tarball_sum = out / f"{image['tarball']['file']}.sha256"
    assert tarball_sum.read_text().split()[0] == image["tarball"]["sha256"]
    assert len(manifest["inputs"]["canvos"]["commit"]) == 40
    # What really ran: the engine's own version, as the API reports it.
    assert manifest["tools"]["dagger_engine"] == ENGINE_VERSION
