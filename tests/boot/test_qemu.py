"""The VM: QEMU command lines, KVM detection, the timeout budget, and the
production (UEFI) command line started for real under software emulation."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import bootvm, facts
from pipeline.boottest.qemu import (
    Machine,
    Media,
    choose_accelerator,
    kvm_problem,
    qemu_command,
    timeouts,
)
from tests.boot.tinyvm import EXPECT, in_ci

QEMU = facts.QEMU_PROGRAM
UEFI = Machine(
    memory_mib=8192,
    cpus=4,
    disk="/w/disk.raw",
    qemu=QEMU,
    firmware_code="/fw/CODE.fd",
    firmware_vars="/fw/VARS.fd",
)


def machine_with(**changes: object) -> Machine:
    values: dict[str, object] = {"memory_mib": 512, "cpus": 1, "disk": "/d", "qemu": QEMU}
    return Machine(**{**values, **changes})  # type: ignore[arg-type]


def pairs(argv: list[str], flag: str) -> list[str]:
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == flag]


def test_the_install_run_boots_the_iso_with_uefi_and_ends_on_reboot() -> None:
    iso = Media(iso="/w/installer.iso")
    argv = qemu_command(UEFI, iso, "kvm", vars_file="/w/vars.fd", no_reboot=True)
    assert argv[0] == facts.QEMU_PROGRAM
    assert pairs(argv, "-accel") == ["kvm"] and pairs(argv, "-cpu") == ["host"]
    assert pairs(argv, "-m") == ["8192"] and pairs(argv, "-smp") == ["4"]
    assert pairs(argv, "-serial") == ["stdio"] and pairs(argv, "-display") == ["none"]
    assert pairs(argv, "-drive") == [
        "if=pflash,format=raw,unit=0,readonly=on,file=/fw/CODE.fd",
        "if=pflash,format=raw,unit=1,file=/w/vars.fd",
        "file=/w/disk.raw,format=raw,if=virtio",
        "file=/w/installer.iso,format=raw,media=cdrom,readonly=on",
    ]
    assert "-no-reboot" in argv and "-kernel" not in argv
    assert pairs(argv, "-device") == ["virtio-net-pci,netdev=net0,romfile="]


def test_the_boot_run_boots_the_disk_alone_and_may_reboot() -> None:
    argv = qemu_command(UEFI, Media(), "tcg", vars_file="/w/vars.fd")
    assert pairs(argv, "-accel") == ["tcg"] and pairs(argv, "-cpu") == ["max"]
    assert not any("media=cdrom" in d for d in pairs(argv, "-drive"))
    assert "-no-reboot" not in argv


def test_direct_kernel_boot_on_nvme_without_network() -> None:
    machine = machine_with(memory_mib=256, disk="/d.raw", disk_bus="nvme", network=False)
    media = Media(kernel="/k", initrd="/i", append="console=ttyS0 x=1")
    argv = qemu_command(machine, media, "tcg")
    assert pairs(argv, "-kernel") == ["/k"] and pairs(argv, "-initrd") == ["/i"]
    assert pairs(argv, "-append") == ["console=ttyS0 x=1"]
    assert pairs(argv, "-device") == ["nvme,drive=disk0,serial=canvos-doca-boot-test"]
    assert pairs(argv, "-nic") == ["none"] and not any("pflash" in a for a in argv)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: Media(iso="/a.iso", kernel="/k"), "not both"),
        (lambda: Media(append="x"), "go with kernel"),
        (lambda: machine_with(memory_mib=128), "too small"),
        (lambda: machine_with(cpus=0), "at least 1"),
        (lambda: machine_with(disk_bus="ide"), "virtio or nvme"),
        (lambda: machine_with(firmware_code="/c"), "together"),
        (lambda: qemu_command(UEFI, Media(), "kvm"), "vars_file"),
        (lambda: qemu_command(UEFI, Media(), "hvf", vars_file="/v"), "kvm or tcg"),
    ],
)
def test_impossible_machines_are_refused(build: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build()  # type: ignore[operator]


# ------------------------------------------------------------------ KVM


def test_a_missing_device_means_software_emulation_with_a_warning(tmp_path: Path) -> None:
    missing = str(tmp_path / "kvm")
    assert "cannot open" in kvm_problem(missing)
    accelerator, warning = choose_accelerator("auto", missing)
    assert accelerator == "tcg"
    assert "software emulation (TCG)" in warning and missing in warning


def test_a_device_node_that_is_not_kvm_is_not_trusted(tmp_path: Path) -> None:
    # Dagger's privileged execs create /dev/kvm even where KVM does not work:
    # the harness asks the device, it does not just look for it.
    fake = tmp_path / "kvm"
    fake.write_bytes(b"")
    assert "KVM_GET_API_VERSION" in kvm_problem(str(fake))
    assert choose_accelerator("auto", str(fake))[0] == "tcg"


def test_required_kvm_fails_and_forced_tcg_does_not_look(tmp_path: Path) -> None:
    missing = str(tmp_path / "kvm")
    with pytest.raises(RuntimeError, match="KVM was required"):
        choose_accelerator("kvm", missing)
    assert choose_accelerator("tcg", "/dev/kvm") == ("tcg", "")


def test_a_working_kvm_is_used_when_this_machine_has_one() -> None:
    # Not every machine has KVM; where the device answers, auto must pick it.
    if kvm_problem():
        assert choose_accelerator("auto")[0] == "tcg"
    else:
        assert choose_accelerator("auto") == ("kvm", "")


# ------------------------------------------------------------------ timeouts


def test_the_budget_is_split_between_install_and_boots() -> None:
    kvm = timeouts(30, "kvm", facts.TCG_SLOWDOWN, 120)
    assert (kvm.install_s, kvm.boot_s, kvm.shutdown_s) == (900, 450, 120)
    assert kvm.total_s == 30 * 60


def test_software_emulation_scales_every_limit() -> None:
    tcg = timeouts(30, "tcg", 6, 120)
    kvm = timeouts(30, "kvm", 6, 120)
    assert tcg.total_s == 6 * kvm.total_s == 3 * 3600
    assert tcg.shutdown_s == 6 * kvm.shutdown_s


# ------------------------------------------------------------------ real QEMU


def test_qemu_accepts_the_production_command_line_and_uefi_starts(tmp_path: Path) -> None:
    """The exact argv the Dagger run uses (UEFI firmware, CD, virtio disk,
    user network), only under TCG: OVMF must come up and print its boot
    manager's lines on the serial console that the harness reads."""
    qemu = shutil.which("qemu-system-x86_64")
    firmware = [Path(facts.OVMF_CODE), Path(facts.OVMF_VARS)]
    if qemu is None or not all(p.is_file() for p in firmware):
        reason = f"needs qemu-system-x86_64 and OVMF at {facts.OVMF_CODE} (.ci/run installs them)"
        (pytest.fail if in_ci() else pytest.skip)(reason)
    config = bootvm.run_config(bootvm.Settings(memory_mib=512, cpus=1), EXPECT)
    machine = Machine(**{**vars(config.machine), "disk": str(tmp_path / "disk.raw"), "disk_gib": 1})
    iso = tmp_path / "installer.iso"
    iso.write_bytes(b"\0" * 2048 * 16)
    Path(machine.disk).write_bytes(b"")
    os.truncate(machine.disk, 1024**3)
    vars_file = tmp_path / "vars.fd"
    shutil.copyfile(facts.OVMF_VARS, vars_file)
    argv = qemu_command(
        machine, Media(iso=str(iso)), "tcg", vars_file=str(vars_file), no_reboot=True
    )
    proc = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    assert proc.stdout is not None
    seen, started = b"", time.monotonic()
    try:
        while b"DVD-ROM" not in seen and time.monotonic() - started < 120:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    finally:
        proc.terminate()
        _, stderr = proc.communicate(timeout=30)
    assert b"BdsDxe" in seen, stderr.decode(errors="replace")
    assert b"UEFI QEMU DVD-ROM" in seen  # the ISO is offered as a boot option
