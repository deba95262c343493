"""One real boot under QEMU software emulation (TCG), judged by the production harness.

The image is tests/boot/tinyvm.py's: Debian's cloud kernel and a busybox
initramfs whose init lays out Kairos's persistent state (an NVMe "persistent
partition" at /usr/local, bind mounts from /usr/local/.state/<path>.bind) and
runs the project's real guest report script. The harness runs exactly as in
the QEMU container: the files ``bootvm.harness_files()`` ships, started with
``python3 -S -E -m boottest run`` (no site-packages: standard library only).

Three runs of the same image: a passing host (install, two boots, marker
kept), a failing one (detection mismatch, a path not mounted so its marker is
lost at reboot, a kernel argument missing), and one that never reports and
must be killed at its deadline.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from pipeline import bootvm
from pipeline.boottest.harness import RunConfig
from pipeline.boottest.protocol import guest_config
from pipeline.boottest.qemu import Machine, Media
from tests.boot import tinyvm
from tests.boot.tinyvm import EXPECT, FIXTURE_GUEST, KERNEL_ARG, PATHS, STANDALONE, in_ci


@pytest.fixture(scope="session")
def qemu() -> str:
    found = shutil.which("qemu-system-x86_64")
    if found is None:
        reason = "qemu-system-x86_64 not installed (.ci/run installs qemu-system-x86)"
        if in_ci():
            pytest.fail(f"CI=true and the boot test cannot run: {reason}")
        pytest.skip(reason)
    return found


@pytest.fixture(scope="session")
def parts(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> tinyvm.Parts:
    return tinyvm.parts(tmp_path_factory.mktemp("tinyvm"))


@dataclass
class Result:
    code: int
    report: dict[str, Any]
    serial: str
    stderr: str
    seconds: float
    disk: Path

    def failed(self) -> set[str]:
        return {c["name"] for c in self.report["checks"] if not c["passed"]}

    def passed(self) -> set[str]:
        return {c["name"] for c in self.report["checks"] if c["passed"]}


def boot(tmp: Path, parts: tinyvm.Parts, qemu: str, fixture: str, minutes: float) -> Result:
    """The production harness, standalone, on the tiny image with one fixture mode."""
    initrd = tinyvm.initramfs(parts, tmp / "initrd.img", guest_config(EXPECT, FIXTURE_GUEST))
    append = f"console=ttyS0 panic=-1 cdbt.fixture={fixture}"
    if fixture != "fail":
        append += f" {KERNEL_ARG}"
    kernel = Media(kernel=str(parts.kernel), initrd=str(initrd), append=append)
    config = RunConfig(
        machine=Machine(
            memory_mib=256,
            cpus=1,
            disk=str(tmp / "disk.raw"),
            disk_gib=1,
            disk_bus="nvme",
            network=False,
            qemu=qemu,
        ),
        install=Media(
            kernel=kernel.kernel, initrd=kernel.initrd, append=f"{append} cdbt.phase=install"
        ),
        boot=kernel,
        expectation=EXPECT,
        timeout_minutes=minutes,
        tcg_factor=1.0,
        accelerator="tcg",
        shutdown_grace_s=30.0,
        tools={"fixture": parts.versions.strip().replace("\n", ", ")},
    )
    harness = tmp / "harness"
    for name, text in bootvm.harness_files().items():
        (harness / name).parent.mkdir(parents=True, exist_ok=True)
        (harness / name).write_text(text)
    (tmp / "config.json").write_text(config.to_json())
    out = tmp / "out"
    started = time.monotonic()
    proc = subprocess.run(
        [*STANDALONE, "--config", str(tmp / "config.json"), "--out", str(out)],
        cwd=harness,
        capture_output=True,
        text=True,
        timeout=minutes * 60 + 120,
        check=False,
    )
    seconds = time.monotonic() - started
    print(f"\n{fixture}: harness exit {proc.returncode} after {seconds:.1f} s\n{proc.stderr}")
    report = json.loads((out / "report.json").read_text())
    serial = (out / "serial.log").read_text(errors="replace")
    return Result(proc.returncode, report, serial, proc.stderr, seconds, tmp / "disk.raw")


def qemu_processes_using(path: Path) -> list[int]:
    """PIDs whose command line names ``path`` (the VM's unique disk)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if str(path).encode() in cmdline:
            found.append(int(entry.name))
    return found


def test_a_healthy_host_passes_every_check(tmp_path: Path, parts: tinyvm.Parts, qemu: str) -> None:
    result = boot(tmp_path, parts, qemu, "pass", minutes=4)
    assert result.code == 0, result.stderr
    report = result.report
    assert report["passed"] is True and result.failed() == set()
    assert report["accelerator"] == "tcg"
    # The console was captured: the kernel's own lines, from both boots and the install.
    assert result.serial.count("Linux version") == 3
    first, second = report["boots"]
    assert (first["boot"], second["boot"]) == (1, 2)
    assert first["kernel"].endswith("-cloud-amd64") and KERNEL_ARG in first["cmdline"].split()
    assert first["next"] == "reboot" and second["next"] == "poweroff"
    assert first["marker_written"] and second["marker_found"] == first["marker_written"]
    assert {m["path"] for m in first["mounts"]} == set(PATHS)
    assert report["phases"]["boot"]["status"] == "reported"
    assert report["phases"]["boot"]["detail"] == "then powered off"
    assert {
        "install: the installer finished and stopped the VM",
        "boot 2: marker survived the reboot",
        "boot 2: /opt is a mount from the persistent state",
    } <= result.passed()


def test_a_broken_host_fails_exactly_the_broken_checks(
    tmp_path: Path, parts: tinyvm.Parts, qemu: str
) -> None:
    result = boot(tmp_path, parts, qemu, "fail", minutes=4)
    assert result.code == 1, result.stderr
    assert result.report["passed"] is False
    broken = PATHS[0]
    assert result.failed() == {
        f"boot {n}: {check}"
        for n in (1, 2)
        for check in (
            "canvos-doca-detect --json is installed",
            f"{broken} is a mount from the persistent state",
            "kernel arguments",
        )
    } | {"boot 2: marker survived the reboot"}
    # What still works is judged as working: the other path, the counter, the partition.
    assert {
        "boot 2: boot counter",
        "boot 2: /opt is a mount from the persistent state",
        "boot 1: marker written",
    } <= result.passed()
    first = result.report["boots"][0]
    assert first["detect"]["status"] == "mismatch" and first["detect_exit"] == 2
    # The verdict names the reason, e.g. the lost marker and the missing argument.
    details = {c["name"]: c["detail"] for c in result.report["checks"]}
    assert "found (nothing)" in details["boot 2: marker survived the reboot"]
    assert f"missing {KERNEL_ARG}" in details["boot 1: kernel arguments"]


def test_a_vm_that_never_reports_is_killed_at_its_deadline(
    tmp_path: Path, parts: tinyvm.Parts, qemu: str
) -> None:
    minutes = 2.0  # install 60 s, each boot 30 s
    result = boot(tmp_path, parts, qemu, "hang", minutes=minutes)
    assert result.code == 1
    boot_phase = result.report["phases"]["boot"]
    assert boot_phase["status"] == "timeout" and "VM killed" in boot_phase["detail"]
    assert result.failed() == {"boot 1: report received"}
    limit = result.report["timeouts_s"]["boot_s"]
    assert limit <= boot_phase["seconds"] < limit + 15
    assert "fixture: staying silent" in result.serial
    assert qemu_processes_using(result.disk) == []
