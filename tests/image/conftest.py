# ruff: noqa: E501  (embedded shell scripts read better unwrapped)
"""Session fixtures for the real DOCA-stage builds (shared between the tests)."""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import canvos, context, hostitems, presets, spec

from . import harness

# jq: a plain package; acpi-call-dkms: a Debian DKMS package, which installs
# "successfully" without headers and must still end up built for the kernel.
DEFAULT_EXTRA = "jq acpi-call-dkms"
DEFAULT_KERNEL_ARGS = "iommu=pt pci=realloc"
DEFAULT_BIND_MOUNTS = "/var/lib/openvswitch /var/lib/canvos-doca-test"


@dataclass(frozen=True)
class SigningKey:
    """A module-signing key pair made for the tests (openssl), PEM files."""

    key: Path
    cert: Path
    serial: str  # upper-case hex, no colons or leading zeros (modinfo sig_key)
    subject_cn: str
    sha256: str  # openssl's colon-separated fingerprint


@dataclass
class Stage:
    """A built DOCA stage: its image, build log, context and build secrets."""

    image: str
    result: harness.BuildResult
    ctx: Path
    values: dict[str, str]
    secrets: dict[str, Path]


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
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> SigningKey:
    """A fresh RSA key pair and self-signed certificate, like a user's MOK."""
    d = tmp_path_factory.mktemp("signing")
    key, cert = d / "module-signing.key", d / "module-signing.crt"
    cn = "canvos-doca test module signing"
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-x509",
            "-nodes",
            "-days",
            "30",
            "-subj",
            f"/CN={cn}",
            "-newkey",
            "rsa:2048",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )

    def x509(*args: str) -> str:
        out = subprocess.run(
            ["openssl", "x509", "-in", str(cert), "-noout", *args],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return out.strip().split("=", 1)[1]

    serial = x509("-serial").replace(":", "").lstrip("0").upper()
    return SigningKey(key, cert, serial, cn, x509("-fingerprint", "-sha256"))


@pytest.fixture(scope="session")
def stage(
    base_image: str,
    repos: harness.RepoServer,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> Stage:
    """The default build: doca-ofed 3.2.1 online, extra packages (one of them a
    DKMS package), kernel args, bind mounts, modules signed with a test key."""
    values = harness.block_values(
        repo_url=repos.url(),
        extra_packages=DEFAULT_EXTRA,
        kernel_args=DEFAULT_KERNEL_ARGS,
        bind_mounts=DEFAULT_BIND_MOUNTS,
        signing=True,
    )
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-default"), values, signing_cert=signing_key.cert
    )
    secrets = {harness.SIGNING_SECRET_ID: signing_key.key}
    result = harness.build(ctx, harness.stage_tag("default"), base_image, secrets=secrets)
    require_success(result, "the default DOCA stage build")
    return Stage(image=result.tag, result=result, ctx=ctx, values=values, secrets=secrets)


@pytest.fixture(scope="session")
def stage_330(stage: Stage, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Stage:
    """The default build at DOCA 3.3.0, without a signing key."""
    values = {
        **stage.values,
        "DOCA_VERSION": "3.3.0",
        "EXTRA_PACKAGES": "jq",
        "MODULE_SIGNING_MOUNT": "",
    }
    ctx = harness.make_context(tmp_path_factory.mktemp("ctx-330"), values)
    result = harness.build(ctx, harness.stage_tag("330"), base_image)
    require_success(result, "the DOCA 3.3.0 build")
    return Stage(image=result.tag, result=result, ctx=ctx, values=values, secrets={})


@pytest.fixture(scope="session")
def odd_bases(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Variants of the base: an unsupported OS, and a newest kernel without headers."""
    tags = {}
    for name, run in (
        (
            "fedora",
            "sed -i 's/^ID=.*/ID=fedora/; s/^VERSION_ID=.*/VERSION_ID=\"40\"/' /etc/os-release",
        ),
        (
            "noheaders",
            "mkdir -p /lib/modules/9.9.9-nohdr-amd64/kernel && touch /lib/modules/9.9.9-nohdr-amd64/modules.order",
        ),
        (
            "gcc99",
            'k="$(ls /lib/modules | sort -V | tail -n 1)" && sed -i \'s/^CONFIG_CC_VERSION_TEXT=.*/CONFIG_CC_VERSION_TEXT="x86_64-linux-gnu-gcc-99 (Debian 99.1.0-1) 99.1.0"/\' "/boot/config-$k"',
        ),
    ):
        d = tmp_path_factory.mktemp(f"base-{name}")
        (d / "Dockerfile").write_text(
            f'FROM {base_image}\nRUN cp --remove-destination "$(readlink -f /etc/os-release)" /etc/os-release && {run}\n'
        )
        tag = f"{harness.PREFIX}/base-{name}:latest"
        harness.docker("build", "-t", tag, str(d))
        tags[name] = tag
    return tags


# ------------------------------------------------------------- AI-RA-Infra

AI_RA_PRESET = "ai-ra-infra"
# What only the stand-in world needs on top of the preset: the stand-in's DOCA
# release and repository (a config layer, as a user's --config would be).
STANDIN_DOCA_VERSION = "3.2.1"


@dataclass
class AiRaStage(Stage):
    """The ai-ra-infra build: its spec (defaults <- preset <- test config), the
    BFB it carries and the Kairos-looking base it was built on."""

    spec: spec.BuildSpec | None = None
    bfb: Path | None = None
    base: str = ""


def ai_ra_spec(repo_url: str) -> spec.BuildSpec:
    """The build spec exactly as the CLI resolves it for --preset ai-ra-infra
    with a config that points at the stand-in repository."""
    return spec.resolve(
        [
            presets.layer(AI_RA_PRESET),
            {
                "preset": AI_RA_PRESET,
                "doca_version": STANDIN_DOCA_VERSION,
                "doca_repo_url": repo_url,
            },
        ]
    )


def ai_ra_context(
    ctx: Path, resolved: spec.BuildSpec, bfb: Path, host: hostitems.HostItems | None = None
) -> tuple[Path, dict[str, str]]:
    """A build context rendered from the spec by the project's own block values."""
    mounts = tuple(m.path for m in context.bind_mount_plan(resolved).kept)
    values = canvos.block_values(resolved, mounts, "online", False)
    harness.make_context(ctx, values, host=host or hostitems.from_spec(resolved), bfb=bfb)
    return ctx, values


def write_bfb(directory: Path, name: str, seed: bytes) -> Path:
    """A 1 MiB stand-in BFB (its bytes depend on seed)."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    block = hashlib.sha256(seed).digest() * (1024 * 1024 // 32)
    path.write_bytes(block)
    return path


@pytest.fixture(scope="session")
def kairos_base(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The base image with /etc/kairos, which the nodeprep takes for an
    immutable (Kairos) root."""
    d = tmp_path_factory.mktemp("base-kairos")
    (d / "Dockerfile").write_text(
        f"FROM {base_image}\nRUN mkdir -p /etc/kairos && echo 'KAIROS_FLAVOR=debian' > /etc/kairos-release\n"
    )
    tag = f"{harness.PREFIX}/base-kairos:latest"
    harness.docker("build", "-t", tag, str(d))
    return tag


@pytest.fixture(scope="session")
def ai_ra_stage(
    kairos_base: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> AiRaStage:
    """The fixture tree built with the ai-ra-infra preset and a test BFB."""
    resolved = ai_ra_spec(repos.url())
    bfb = write_bfb(tmp_path_factory.mktemp("bfb"), "bf-bundle-3.2.1-standin_prod.bfb", b"one")
    ctx, values = ai_ra_context(tmp_path_factory.mktemp("ctx-ai-ra"), resolved, bfb)
    result = harness.build(ctx, harness.stage_tag("ai-ra-infra"), kairos_base)
    require_success(result, "the ai-ra-infra build")
    return AiRaStage(
        image=result.tag,
        result=result,
        ctx=ctx,
        values=values,
        secrets={},
        spec=resolved,
        bfb=bfb,
        base=kairos_base,
    )
