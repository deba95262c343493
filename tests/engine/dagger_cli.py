"""The `dagger` CLI against a real engine, for the tests in tests/engine/.

They run when a `dagger` CLI is on PATH and an engine is configured:
``CANVOS_DOCA_ENGINE_TESTS=1`` (the CLI starts its own engine in Docker), or
``_EXPERIMENTAL_DAGGER_RUNNER_HOST`` / a surrounding Dagger session. Otherwise
every test there skips with the reason: these are the only tests allowed to
skip in CI. Quick tests (functions, plan, prepare) take minutes and a few GB;
tests marked ``heavy`` build the DOCA stage and the images (an hour or more,
~70 GB of engine disk). CI's engine jobs run them (docs/github-actions.md).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
FLAG = "CANVOS_DOCA_ENGINE_TESTS"
# A git reference of this module (github.com/OWNER/REPO@COMMIT) for the remote-call test.
REMOTE_MODULE = "CANVOS_DOCA_ENGINE_REMOTE_MODULE"
ENGINE_VERSION = json.loads((ROOT / "dagger.json").read_text())["engineVersion"]
K8S = os.environ.get("CANVOS_DOCA_ENGINE_K8S_VERSION", "1.34.6")
BUILD_TIMEOUT = int(os.environ.get("CANVOS_DOCA_ENGINE_TIMEOUT", str(3 * 3600)))


def skip_reason() -> str | None:
    if shutil.which("dagger") is None:
        return f"no `dagger` CLI on PATH (install Dagger {ENGINE_VERSION} to run the engine tests)"
    configured = (
        os.environ.get(FLAG) == "1"
        or os.environ.get("_EXPERIMENTAL_DAGGER_RUNNER_HOST")
        or os.environ.get("DAGGER_SESSION_PORT")
    )
    if not configured:
        return (
            f"no Dagger engine configured: set {FLAG}=1 to let the dagger CLI start one "
            "(needs Docker; ~70 GB disk for the heavy tests), or _EXPERIMENTAL_DAGGER_RUNNER_HOST"
        )
    return None


needs_engine = [
    pytest.mark.engine,
    pytest.mark.skipif(skip_reason() is not None, reason=skip_reason() or ""),
]


def dagger(*args: str, cwd: Path = ROOT, timeout: int = 1800) -> str:
    """``dagger --progress=plain ARGS`` in ``cwd``: its stdout, or a test
    failure with the end of its log."""
    command = ["dagger", "--progress=plain", *args]
    result = subprocess.run(
        command, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        tail = "\n".join(result.stderr.splitlines()[-60:])
        pytest.fail(f"{' '.join(command)} (in {cwd}) failed ({result.returncode}):\n{tail}")
    return result.stdout


def dagger_call(*args: str, timeout: int = 1800) -> str:
    """``dagger call ARGS`` on the module of this checkout."""
    return dagger("call", *args, timeout=timeout)
