"""The boot test in Dagger: the test-variant ISO, booted by the harness in the
pinned QEMU container.

Lazy chains (``qemu_container``, ``vm_run``) plus one edge coroutine,
``boot_test``, that awaits them in order:

1. read the image's DOCA manifest from the installer image (the same chain the
   ISO build verifies: a cache hit) and derive the ``Expectation``;
2. build the test-variant ISO: the prepared context with the test user-data
   (``bootstage.variant_user_data``) and without the edge host token, so the
   image targets are cache hits and only ``+iso`` runs again;
3. run ``python3 -m boottest run`` (``pipeline/boottest/``, copied into the
   container) with the ISO and a blank disk, in a privileged exec: Dagger's
   insecure-root mode provides ``/dev/kvm``, and the harness falls back to
   software emulation with a warning when the device does not work.
"""

from __future__ import annotations

import dataclasses
import json
import uuid
from dataclasses import dataclass
from importlib import resources

from dagger import CacheSharingMode, Container, Directory, File, ReturnType, dag

from pipeline import bootstage, canvos, earthly, facts, failures, runner, verify
from pipeline.boottest.harness import REPORT_FILE, SERIAL_LOG, RunConfig
from pipeline.boottest.protocol import Expectation
from pipeline.boottest.qemu import Machine, Media
from pipeline.boottest.verdict import summary
from pipeline.errors import BuildFailed, raise_if

HARNESS_DIR = "/opt/canvos-doca"
WORK = "/var/tmp/canvos-doca-boot-test"
ISO = f"{WORK}/installer.iso"
CONFIG = f"{WORK}/config.json"
# The VM's disk (and UEFI variables) live on a cache volume, not in the exec's
# result: a multi-GB installed disk per run would otherwise fill the engine's
# layer cache. The harness recreates the disk blank at every run.
DISK_DIR = "/var/lib/canvos-doca-boot-test"
DISK = f"{DISK_DIR}/disk.raw"
DISK_CACHE = "canvos-doca-boot-test-disk"
OUT = "/out"

DEFAULT_TIMEOUT_MINUTES = 30
DEFAULT_MEMORY_MIB = 8192
DEFAULT_CPUS = 4
DISK_GIB = 100

# Installs the boot-test packages when the image lacks a tool (an image that
# has them all, e.g. a mirror's, skips apt). Env: PACKAGES, QEMU, PYTHON, OVMF_CODE.
INSTALL_TOOLS = """\
set -eu
if ! command -v "$QEMU" >/dev/null 2>&1 || [ ! -f "$OVMF_CODE" ] ||
  ! command -v "$PYTHON" >/dev/null 2>&1; then
  apt-get update -q
  # shellcheck disable=SC2086  # PACKAGES is a list
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PACKAGES
  rm -rf /var/lib/apt/lists/*
fi
"$QEMU" --version | head -n 1
"""


@dataclass(frozen=True)
class Settings:
    """The ``boot-test`` arguments."""

    timeout_minutes: int = DEFAULT_TIMEOUT_MINUTES
    memory_mib: int = DEFAULT_MEMORY_MIB
    cpus: int = DEFAULT_CPUS
    qemu_image: str = facts.QEMU_IMAGE


def harness_files() -> dict[str, str]:
    """The harness package's sources by path under ``HARNESS_DIR``."""
    package = resources.files("pipeline").joinpath("boottest")
    return {
        f"boottest/{entry.name}": entry.read_text(encoding="utf-8")
        for entry in sorted(package.iterdir(), key=lambda e: e.name)
        if entry.name.endswith(".py")
    }


def qemu_container(image: str) -> Container:
    """The pinned image with QEMU, OVMF and Python 3, and the harness at HARNESS_DIR."""
    ctr = (
        dag.container()
        .from_(image)
        .with_env_variable("OVMF_CODE", facts.OVMF_CODE)
        .with_env_variable("QEMU", facts.QEMU_PROGRAM)
        .with_env_variable("PYTHON", facts.PYTHON_PROGRAM)
        .with_env_variable("PACKAGES", " ".join(facts.BOOT_TEST_PACKAGES))
        .with_exec(["sh", "-c", INSTALL_TOOLS])
    )
    for path, text in harness_files().items():
        ctr = ctr.with_new_file(f"{HARNESS_DIR}/{path}", text)
    return ctr.with_workdir(HARNESS_DIR)


def run_config(settings: Settings, expect: Expectation) -> RunConfig:
    """The harness's config: install from the ISO at ISO onto a blank disk at
    DISK, then boot the disk alone (the ISO removed, as after a real install)."""
    return RunConfig(
        machine=Machine(
            memory_mib=settings.memory_mib,
            cpus=settings.cpus,
            disk=DISK,
            disk_gib=DISK_GIB,
            firmware_code=facts.OVMF_CODE,
            firmware_vars=facts.OVMF_VARS,
            qemu=facts.QEMU_PROGRAM,
        ),
        install=Media(iso=ISO),
        boot=Media(),
        expectation=expect,
        timeout_minutes=settings.timeout_minutes,
        tcg_factor=facts.TCG_SLOWDOWN,
        tools={"qemu_image": settings.qemu_image},
        packages=facts.BOOT_TEST_PACKAGES,
    )


def vm_run(iso: File, config: RunConfig, image: str, nonce: str) -> Container:
    """The harness run (lazy). ``nonce``: a new value per call, so a boot test
    always runs instead of being served from the cache. The exit code is kept
    (0 passed, 1 failed, 2 harness error), not raised, so the report survives."""
    return (
        qemu_container(image)
        .with_mounted_cache(
            DISK_DIR, dag.cache_volume(DISK_CACHE), sharing=CacheSharingMode.PRIVATE
        )
        .with_mounted_file(ISO, iso)
        .with_new_file(CONFIG, config.to_json())
        .with_env_variable("CANVOS_DOCA_BOOT_TEST_RUN", nonce)
        .with_exec(
            [facts.PYTHON_PROGRAM, "-m", "boottest", "run", "--config", CONFIG, "--out", OUT],
            insecure_root_capabilities=True,
            expect=ReturnType.ANY,
        )
    )


def variant_iso(run: runner.Run, user_data: str) -> File:
    """The test-variant ISO (lazy): ``+iso`` on the prepared context with
    ``user_data``, without the edge host token (a test VM must not register
    with Palette). The image targets never read user-data, so inside Earthly
    only the ISO assembly runs again."""
    build = dataclasses.replace(
        run.build,
        context=run.build.context.with_new_file("user-data", user_data),
        credentials=dataclasses.replace(run.build.credentials, user_data=None),
    )
    iso_name, _ = canvos.iso_files(run.spec)
    return build.iso().directory(earthly.OUTPUT_DIR).file(iso_name)


async def boot_test(
    run: runner.Run, script: str, settings: Settings, *, report_only: bool = False
) -> Directory:
    """Build the test ISO, install and boot it twice; ``report.json`` and
    ``serial.log``. Raises ``BuildFailed`` when a check fails (unless
    ``report_only``) or the harness cannot run; ``InvalidInput`` for builds
    it cannot test."""
    raise_if(bootstage.check_spec(run.spec))
    # The installer rootfs, verified: the same chain build-iso runs (a cache hit).
    installer = await runner.verified_installer(run)
    manifest = await runner.guard(
        f"read {verify.DOCA_MANIFEST} from {installer.ref}",
        installer.doca_manifest.contents(),
    )
    try:
        expect = bootstage.expectation(json.loads(manifest), run.spec.kernel_args)
    except ValueError as exc:
        raise BuildFailed(f"boot-test cannot check {installer.ref}: {exc}.") from None
    user_data = bootstage.variant_user_data(run.prepared.files["user-data"], script, expect)
    iso = variant_iso(run, user_data)
    await runner.guard(f"Earthly {facts.CANVOS_TARGET_ISO} (boot-test variant)", iso.size())
    ran = vm_run(iso, run_config(settings, expect), settings.qemu_image, uuid.uuid4().hex)
    code = await runner.guard("boot test", ran.exit_code())
    if code not in (0, 1):
        stderr = await runner.guard("boot test", ran.stderr())
        raise BuildFailed(
            f"The boot test harness could not run (exit code {code}):\n{stderr[-3000:]}"
        )
    out = ran.directory(OUT)
    report = json.loads(await runner.guard("read report.json", out.file(REPORT_FILE).contents()))
    if not report["passed"] and not report_only:
        serial = await runner.guard("read serial.log", out.file(SERIAL_LOG).contents())
        raise BuildFailed(
            summary(report)
            + "Last lines of the serial console:\n"
            + "".join(f"  {line}\n" for line in failures.tail(serial))
            + "Add --report-only to get report.json and serial.log (report.json's "
            "passed says the verdict)."
        )
    return out
