"""Quick engine tests (every pull request): the module loads in the real Python
runtime, registers what the offline registration says, and resolves and
prepares the default CanvOS ref. Minutes and a few GB; no image is built.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from pipeline import canvos, spec
from tests.engine.dagger_cli import K8S, REMOTE_MODULE, dagger, dagger_call, needs_engine
from tests.pipeline import registration

pytestmark = needs_engine
COMMIT = re.compile(r"[0-9a-f]{40}")


def advertised_commit(url: str, ref: str) -> str:
    """The commit ``ref`` names on the remote, as git itself resolves it
    (a tag peeled to its commit, else a branch); ``ref`` if it is a commit."""
    if COMMIT.fullmatch(ref):
        return ref
    listed = subprocess.run(
        ["git", "ls-remote", url, f"{ref}*"], capture_output=True, text=True, check=True
    ).stdout
    refs = {name: sha for sha, name in (line.split("\t", 1) for line in listed.splitlines())}
    for name in (f"refs/tags/{ref}^{{}}", f"refs/tags/{ref}", f"refs/heads/{ref}"):
        if name in refs:
            return refs[name]
    raise AssertionError(f"{url} does not advertise {ref!r}")


@pytest.fixture(scope="module")
def plan() -> str:
    return dagger_call("--k8s-version", K8S, "plan")


def test_dagger_functions_lists_what_the_module_registers() -> None:
    # The engine's Python runtime installed the module and registered it.
    lines = dagger("functions").splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:2] == ["Name", "Description"])
    listed = {line.split()[0] for line in lines[header + 1 :] if line.strip()}
    assert listed == set(registration.registration()) - {registration.CONSTRUCTOR}


def test_plan_resolves_the_default_canvos_ref_to_its_commit(plan: str) -> None:
    url, ref = spec.default("canvos_url"), spec.default("canvos_ref")
    assert plan.startswith("canvos-doca build plan\n")
    found = re.search(r"CanvOS\s+(\S+) @ (\S+) \(commit ([0-9a-f]{40})\)", plan)
    assert found, plan
    assert found.groups() == (url, ref, advertised_commit(url, ref))
    assert re.search(rf"provider image \S+:{spec.default('k8s_distribution')}-{K8S}-", plan), plan


def test_prepare_writes_the_build_context(tmp_path: Path) -> None:
    out = tmp_path / "context"
    dagger_call("--k8s-version", K8S, "prepare", "export", "--path", str(out))
    assert {".arg", "Dockerfile", "Earthfile", "user-data", canvos.CONTEXT_DIR} <= {
        p.name for p in out.iterdir()
    }
    assert f"K8S_VERSION='{K8S}'" in (out / ".arg").read_text().splitlines()
    assert canvos.BLOCK_BEGIN in (out / "Dockerfile").read_text()
    description = json.loads((out / canvos.DESCRIPTION_FILE).read_text())
    url, ref = spec.default("canvos_url"), spec.default("canvos_ref")
    assert description["canvos"]["commit"] == advertised_commit(url, ref)
    assert (out / canvos.CONTEXT_DIR / canvos.FRAGMENT).is_file()


def test_the_module_called_remotely_plans_the_same_build(plan: str, tmp_path: Path) -> None:
    # `dagger -m github.com/OWNER/canvos-doca@REF call ...` from a directory
    # that has nothing of this project: code and overlays come from the ref.
    remote = os.environ.get(REMOTE_MODULE)
    if not remote:
        pytest.skip(f"{REMOTE_MODULE} is not set (e.g. github.com/OWNER/canvos-doca@COMMIT)")
    remote_plan = dagger("-m", remote, "call", "--k8s-version", K8S, "plan", cwd=tmp_path)
    assert remote_plan == plan
