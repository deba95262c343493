"""A tiny bootable image for the real QEMU boot test, built from Debian packages.

``parts()`` builds ``tests/boot/fixture/Dockerfile`` on the tests' debootstrapped
bookworm rootfs (tests/image/harness.py) and exports the Debian cloud kernel
(NVMe and ext4 built in) and a static busybox. ``initramfs()`` packs busybox,
the fixture's init, a stand-in canvos-doca-detect and the project's real guest
report script with its config into a newc cpio (busybox's own cpio), so the
guest side that runs on real hosts is the one that runs here.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from pipeline import bootstage, facts
from pipeline.boottest.protocol import Expectation, GuestCommands
from tests.image import harness

HERE = Path(__file__).parent
FIXTURE = HERE / "fixture"
REPORT_SCRIPT = harness.OVERLAYS / bootstage.REPORT_SCRIPT
# Where the init finds the report script and its config.
GUEST_DIR = "boottest"

KERNEL_ARG = "canvos.boot-test=on"
PATHS = ("/var/lib/canvos-doca-test", "/opt")
EXPECT = Expectation(
    paths=PATHS,
    marker_dir=PATHS[0],
    persistent=facts.KAIROS_PERSISTENT_PARTITION,
    state_dir=facts.KAIROS_STATE_DIR,
    kernel_args=(KERNEL_ARG,),
)
# The fixture's PID 1 is a shell: no systemd to wait for, busybox's forced
# reboot and power-off (the script syncs first).
FIXTURE_GUEST = GuestCommands(
    console="/dev/ttyS0",
    run_dir="/run/canvos-doca-boot-test",
    require="",
    wait="",
    wait_timeout_s=0,
    detect="canvos-doca-detect",
    reboot="reboot -f",
    poweroff="poweroff -f",
)


# The harness as the QEMU container runs it: no site-packages, no PYTHON* env.
STANDALONE = (sys.executable, "-S", "-E", "-m", "boottest", "run")


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


@dataclass(frozen=True)
class Parts:
    kernel: Path
    busybox: Path
    versions: str


def parts(dest: Path) -> Parts:
    """Build (or reuse from BuildKit's cache) and export the kernel and busybox."""
    base = harness.rootfs_image()
    build = subprocess.run(
        [
            harness.DOCKER,
            "build",
            "--network=host",
            "--progress=plain",
            "--build-arg",
            f"BASE={base}",
            "-o",
            f"type=local,dest={dest}",
            str(FIXTURE),
        ],
        capture_output=True,
        text=True,
        env=harness.docker_env(),
        check=False,
    )
    if build.returncode != 0:
        raise RuntimeError(f"fixture build failed:\n{build.stdout[-4000:]}{build.stderr[-2000:]}")
    return Parts(dest / "vmlinuz", dest / "busybox", (dest / "versions").read_text())


def initramfs(parts: Parts, dest: Path, guest_config: str) -> Path:
    """The fixture's initramfs (uncompressed newc cpio) with ``guest_config``."""
    tree = dest.with_suffix(".tree")
    if tree.exists():
        shutil.rmtree(tree)
    (tree / "bin").mkdir(parents=True)
    (tree / GUEST_DIR).mkdir()
    shutil.copy2(parts.busybox, tree / "bin" / "busybox")
    # The init's interpreter; busybox --install adds the other applets at boot.
    (tree / "bin" / "sh").symlink_to("busybox")
    shutil.copy2(FIXTURE / "init", tree / "init")
    shutil.copy2(FIXTURE / "canvos-doca-detect", tree / "bin" / "canvos-doca-detect")
    shutil.copy2(REPORT_SCRIPT, tree / GUEST_DIR / REPORT_SCRIPT.name)
    (tree / GUEST_DIR / "config.env").write_text(guest_config)
    names = []
    for root, dirs, files in os.walk(tree):
        rel = Path(root).relative_to(tree)
        names += [str(rel / name) for name in sorted(dirs) + sorted(files)]
    listing = ("\n".join(names) + "\n").encode()
    with dest.open("wb") as out:
        subprocess.run(
            [str(parts.busybox), "cpio", "-o", "-H", "newc"],
            input=listing,
            stdout=out,
            stderr=subprocess.DEVNULL,
            cwd=tree,
            check=True,
        )
    return dest
