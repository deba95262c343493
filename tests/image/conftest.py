"""Session fixtures for the real DOCA-stage builds (shared between the tests)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from . import harness

DEFAULT_EXTRA = "jq"
DEFAULT_KERNEL_ARGS = "iommu=pt pci=realloc"
DEFAULT_BIND_MOUNTS = "/var/lib/openvswitch /var/lib/canvos-doca-test"


@dataclass
class Stage:
    """A built DOCA stage: its image, build log and context."""

    image: str
    result: harness.BuildResult
    ctx: Path
    values: dict[str, str]


def require_success(result: harness.BuildResult, what: str) -> None:
    if result.returncode != 0:
        pytest.fail(f"{what} failed ({result.returncode}); build log tail:\n{result.log[-6000:]}")


@pytest.fixture(scope="session")
def base_image(docker_engine: str) -> str:
    return harness.base_image()


@pytest.fixture(scope="session")
def host_kernel() -> str:
    import platform

    return platform.release()


@pytest.fixture(scope="session")
def image_kernels(base_image: str) -> list[str]:
    _, out = harness.run_in(base_image, "ls /lib/modules | sort -V", check=True)
    kernels = out.split()
    assert len(kernels) == 2, f"the base image must carry two kernels, has {kernels}"
    return kernels


@pytest.fixture(scope="session")
def repos(
    tmp_path_factory: pytest.TempPathFactory, docker_engine: str
) -> Iterator[harness.RepoServer]:
    server = harness.build_repos(tmp_path_factory.mktemp("repos"))
    with harness.serve(server) as running:
        yield running


@pytest.fixture(scope="session")
def stage(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> Stage:
    """The default build: doca-ofed 3.2.1 online, extra package, kernel args, bind mounts."""
    values = harness.block_values(
        repo_url=repos.url(),
        extra_packages=DEFAULT_EXTRA,
        kernel_args=DEFAULT_KERNEL_ARGS,
        bind_mounts=DEFAULT_BIND_MOUNTS,
    )
    ctx = harness.make_context(tmp_path_factory.mktemp("ctx-default"), values)
    result = harness.build(ctx, harness.stage_tag("default"), base_image)
    require_success(result, "the default DOCA stage build")
    return Stage(image=result.tag, result=result, ctx=ctx, values=values)
