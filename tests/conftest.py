"""Shared fixtures: the Docker engine the real container builds need.

Tests that need Docker use the ``docker_engine`` fixture. On a user's machine
without a working engine they skip with the reason; under ``CI=true`` (what
``.ci/run`` sets) a missing engine is a failure, never a skip.
"""

from __future__ import annotations

import os

import pytest

from tests.image.harness import DOCKER, engine_problem


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The Docker client path, once an engine answers (skip, or fail under CI=true)."""
    problem = engine_problem()
    if problem is not None:
        if _in_ci():
            pytest.fail(f"CI=true and the container tests cannot run: {problem}")
        pytest.skip(f"needs a Docker engine: {problem}")
    return DOCKER
