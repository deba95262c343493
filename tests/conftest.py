"""Shared fixtures: the Docker engine the real container builds need.

Tests that need Docker use the ``docker_engine`` fixture. On a user's machine
without a working engine they skip with the reason; under ``CI=true`` (what
``.ci/run`` sets) a missing engine is a failure, never a skip.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def _engine_problem() -> str | None:
    if not Path(DOCKER).exists():
        return f"{DOCKER} not found (install Debian's docker.io; its client has BuildKit built in)"
    try:
        proc = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            env={**os.environ, "DOCKER_BUILDKIT": "1"},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"`docker info` failed: {exc}"
    if proc.returncode != 0:
        return f"no Docker engine answers ({proc.stderr.strip()[:200]}); start dockerd"
    return None


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The Docker client path, once an engine answers (skip, or fail under CI=true)."""
    problem = _engine_problem()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"CI=true and the container tests cannot run: {problem}")
        pytest.skip(f"needs a Docker engine: {problem}")
    return DOCKER
