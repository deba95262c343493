"""The VM supervisor and the whole run, against stand-in QEMU processes (shell
scripts that print, sleep, fail or panic like a VM would): every way a run
can end, the KVM fallback, and report.json."""

from __future__ import annotations

import dataclasses
import io
import json
import os
import time
from pathlib import Path

import pytest

from pipeline import facts
from pipeline.boottest import harness
from pipeline.boottest.harness import RunConfig, supervise
from pipeline.boottest.protocol import block_text
from pipeline.boottest.qemu import Machine, Media
from tests.boot.tinyvm import EXPECT

GOOD = [
    ("kernel", "6.8.0-60-generic"),
    ("cmdline", "console=ttyS0 canvos.boot-test=on"),
    ("detect_exit", "0"),
    ("detect", '{"status": "installed"}'),
    ("persistent", "/usr/local 8:3 /"),
    *[("mount", f"{p} 8:3 {EXPECT.state_root(p)}") for p in EXPECT.paths],
]


def blocks_file(tmp_path: Path) -> Path:
    first = block_text([("boot", "1"), *GOOD, ("marker_written", "t1")])
    second = block_text([("boot", "2"), *GOOD, ("marker_found", "t1")])
    path = tmp_path / "console.txt"
    path.write_text(f"[ 0.1] Linux version x\n{first}[ 9.9] reboot: Restarting system\n{second}")
    return path


def fake_qemu(tmp_path: Path, body: str) -> str:
    script = tmp_path / "qemu-system-x86_64"
    script.write_text("#!/bin/sh\n" + body)
    script.chmod(0o755)
    return str(script)


def alive(pid_file: Path) -> bool:
    pid = int(pid_file.read_text())
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is gone for our purposes.
    return "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_two_reports_then_power_off(tmp_path: Path) -> None:
    qemu = fake_qemu(tmp_path, f"cat {blocks_file(tmp_path)}\nexit 0\n")
    serial = io.BytesIO()
    ran = supervise([qemu], serial, deadline_s=10, expect_blocks=2, shutdown_s=5, log=print)
    assert (ran.phase.status, ran.phase.detail) == ("reported", "then powered off")
    assert [b.problem for b in ran.blocks] == ["", ""]
    assert serial.getvalue() == blocks_file(tmp_path).read_bytes()


def test_a_vm_that_goes_quiet_is_killed_at_the_deadline(tmp_path: Path) -> None:
    first = block_text([("boot", "1")])
    body = f"echo $$ > {tmp_path}/pid\nprintf '%s' '{first}'\nexec sleep 60\n"
    started = time.monotonic()
    ran = supervise([fake_qemu(tmp_path, body)], io.BytesIO(), deadline_s=2, expect_blocks=2)
    assert ran.phase.status == "timeout" and "report block 2" in ran.phase.detail
    assert len(ran.blocks) == 1 and time.monotonic() - started < 15
    assert not alive(tmp_path / "pid")


def test_a_vm_that_reports_but_never_powers_off_is_stopped_without_failing(
    tmp_path: Path,
) -> None:
    body = f"cat {blocks_file(tmp_path)}\nexec sleep 60\n"
    ran = supervise(
        [fake_qemu(tmp_path, body)], io.BytesIO(), deadline_s=10, expect_blocks=2, shutdown_s=1
    )
    assert ran.phase.status == "reported"
    assert "did not power off within 1 s" in ran.phase.detail


def test_a_kernel_panic_stops_the_vm_at_once(tmp_path: Path) -> None:
    body = (
        f"echo $$ > {tmp_path}/pid\n"
        "echo '[ 2.5] Kernel panic - not syncing: VFS: Unable to mount root fs on sda'\n"
        "exec sleep 60\n"
    )
    started = time.monotonic()
    ran = supervise([fake_qemu(tmp_path, body)], io.BytesIO(), deadline_s=30, expect_blocks=2)
    assert ran.phase.status == "crashed" and "Unable to mount root fs" in ran.phase.detail
    assert time.monotonic() - started < 15 and not alive(tmp_path / "pid")


def test_a_silent_vm_is_stopped_after_the_silence_limit(tmp_path: Path) -> None:
    ran = supervise(
        [fake_qemu(tmp_path, "exec sleep 60\n")], io.BytesIO(), deadline_s=30, silence_s=1
    )
    assert ran.phase.status == "silent" and ran.serial_bytes == 0


def test_qemu_failing_is_an_error_with_its_message(tmp_path: Path) -> None:
    body = "echo 'qemu-system-x86_64: error: failed to set MSR 0x10a to 0x69' >&2\nexit 1\n"
    ran = supervise([fake_qemu(tmp_path, body)], io.BytesIO(), deadline_s=10)
    assert (ran.phase.status, ran.phase.exit_code) == ("error", 1)
    assert "failed to set MSR" in ran.phase.detail
    missing = supervise([str(tmp_path / "absent")], io.BytesIO(), deadline_s=10)
    assert missing.phase.status == "error" and "cannot start" in missing.phase.detail


def test_the_install_run_waits_for_the_power_off(tmp_path: Path) -> None:
    done = supervise([fake_qemu(tmp_path, "echo installing\nexit 0\n")], io.BytesIO(), deadline_s=5)
    assert done.phase.status == "powered-off"
    stuck = supervise([fake_qemu(tmp_path, "exec sleep 60\n")], io.BytesIO(), deadline_s=1)
    assert stuck.phase.status == "timeout" and "the VM to power off" in stuck.phase.detail


def test_a_vm_that_powers_off_before_its_reports_exited(tmp_path: Path) -> None:
    first = block_text([("boot", "1")])
    ran = supervise(
        [fake_qemu(tmp_path, f"printf '%s' '{first}'\nexit 0\n")],
        io.BytesIO(),
        deadline_s=5,
        expect_blocks=2,
    )
    assert ran.phase.status == "exited" and "after 1 of 2" in ran.phase.detail


# ------------------------------------------------------------------ run


def config(qemu: str, tmp_path: Path) -> RunConfig:
    kernel = Media(kernel="/k", initrd="/i", append="console=ttyS0")
    return RunConfig(
        machine=Machine(
            memory_mib=256,
            cpus=1,
            disk=str(tmp_path / "d.raw"),
            disk_gib=1,
            network=False,
            qemu=qemu,
        ),
        install=dataclasses.replace(kernel, append="console=ttyS0 phase=install"),
        boot=kernel,
        expectation=EXPECT,
        timeout_minutes=0.5,
        tcg_factor=2,
    )


def test_a_kvm_that_answers_but_does_not_run_falls_back_to_tcg(tmp_path: Path) -> None:
    # The device passes the probe, yet QEMU fails with it, as on nested hosts.
    body = (
        'case " $* " in *" kvm "*) echo "error: failed to set MSR 0x10a" >&2; exit 1;; esac\n'
        'case " $* " in *" -no-reboot "*) echo "[ 1.0] reboot: Power down"; exit 0;; esac\n'
        f"cat {blocks_file(tmp_path)}\n"
    )
    out = tmp_path / "out"
    report = harness.run(
        config(fake_qemu(tmp_path, body), tmp_path), out, kvm_check=lambda device: "", log=print
    )
    assert report["accelerator"] == "tcg"
    [warning] = report["warnings"]
    assert "failed to set MSR" in warning and "software emulation (TCG)" in warning
    assert report["passed"] is True, report["checks"]
    assert "kvm" not in report["commands"]["boot"] and "tcg" in report["commands"]["boot"]
    # TCG limits: the budget times tcg_factor.
    assert report["timeouts_s"]["install_s"] == 0.5 * 60 * 2 * 0.5
    assert json.loads((out / "report.json").read_text()) == report
    serial = (out / "serial.log").read_text()
    assert "install run (kvm)" in serial and "install run (tcg)" in serial


def test_a_required_kvm_does_not_fall_back(tmp_path: Path) -> None:
    body = 'case " $* " in *" kvm "*) echo "error: no KVM" >&2; exit 1;; esac\nexit 0\n'
    forced = dataclasses.replace(config(fake_qemu(tmp_path, body), tmp_path), accelerator="kvm")
    report = harness.run(forced, tmp_path / "out", kvm_check=lambda device: "", log=print)
    assert report["accelerator"] == "kvm" and report["passed"] is False
    assert report["phases"]["install"]["status"] == "error"


def test_the_disk_is_blank_and_sparse_at_every_install(tmp_path: Path) -> None:
    disk = tmp_path / "d.raw"
    disk.write_bytes(b"old install")
    machine = Machine(memory_mib=256, cpus=1, disk=str(disk), qemu=facts.QEMU_PROGRAM, disk_gib=2)
    harness.blank_disk(machine)
    assert disk.stat().st_size == 2 * 1024**3
    assert disk.stat().st_blocks * 512 < 1024**2
    with disk.open("rb") as handle:
        assert handle.read(4096) == b"\0" * 4096


@pytest.mark.parametrize("bad", ["{}", "not json", '{"machine": {}}'])
def test_the_cli_refuses_an_unusable_config(bad: str, tmp_path: Path) -> None:
    from pipeline.boottest.__main__ import main

    (tmp_path / "c.json").write_text(bad)
    assert main(["run", "--config", str(tmp_path / "c.json"), "--out", str(tmp_path)]) == 2
