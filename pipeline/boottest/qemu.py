"""The virtual machine: its QEMU command line, KVM detection and timeouts. Pure
except ``kvm_problem``, which opens the KVM device."""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from dataclasses import dataclass

from .protocol import BOOTS

KVM_DEVICE = "/dev/kvm"
# <linux/kvm.h>: KVM_GET_API_VERSION = _IO(KVMIO=0xAE, 0x00); the stable API is 12.
KVM_GET_API_VERSION = 0xAE00
KVM_API_VERSION = 12
ACCELERATORS = ("auto", "kvm", "tcg")
# The budget is split: the install run gets half, each boot a quarter.
INSTALL_SHARE = 0.5
BOOT_SHARE = 0.25


@dataclass(frozen=True)
class Media:
    """What the VM boots besides its disk: an installer ISO (production), a
    kernel with initrd and command line (tests), or nothing (the disk)."""

    iso: str = ""
    kernel: str = ""
    initrd: str = ""
    append: str = ""

    def __post_init__(self) -> None:
        if self.iso and self.kernel:
            raise ValueError("Media takes iso= or kernel=, not both")
        if (self.initrd or self.append) and not self.kernel:
            raise ValueError("initrd= and append= go with kernel= (direct kernel boot)")


@dataclass(frozen=True)
class Machine:
    """The virtual machine (x86_64; q35 chipset).

    ``firmware_code``/``firmware_vars``: the OVMF (UEFI) code image and the
    variable-store template; empty means QEMU's default BIOS (direct kernel
    boot in the tests). ``disk``: the virtual disk, created blank (sparse) with
    ``disk_gib`` GiB when it does not exist. ``disk_bus``: ``virtio`` or ``nvme``.
    """

    memory_mib: int
    cpus: int
    disk: str
    # The QEMU program (pipeline.facts.QEMU_PROGRAM in production).
    qemu: str
    disk_gib: int = 100
    disk_bus: str = "virtio"
    firmware_code: str = ""
    firmware_vars: str = ""
    network: bool = True

    def __post_init__(self) -> None:
        if self.memory_mib < 256:
            raise ValueError(f"memory {self.memory_mib} MiB is too small (at least 256)")
        if self.cpus < 1:
            raise ValueError(f"cpus must be at least 1, got {self.cpus}")
        if self.disk_bus not in ("virtio", "nvme"):
            raise ValueError(f"disk_bus {self.disk_bus!r} is not virtio or nvme")
        if bool(self.firmware_code) != bool(self.firmware_vars):
            raise ValueError("firmware_code and firmware_vars go together")


# ------------------------------------------------------------------ accelerator


def kvm_problem(device: str = KVM_DEVICE) -> str:
    """Why KVM cannot be used here (empty when it can).

    The device node alone proves nothing: Dagger's privileged execs always
    create ``/dev/kvm`` (dagger ``internal/buildkit/util/entitlements/security``),
    even on a host without virtualization. So the device is opened and asked
    for its API version, as QEMU does.
    """
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"cannot open {device}: {exc.strerror or exc}"
    try:
        version = fcntl.ioctl(fd, KVM_GET_API_VERSION)
    except OSError as exc:
        return f"{device} does not answer KVM_GET_API_VERSION: {exc.strerror or exc}"
    finally:
        os.close(fd)
    if version != KVM_API_VERSION:
        return f"{device} reports KVM API version {version}, expected {KVM_API_VERSION}"
    return ""


def choose_accelerator(
    wanted: str, device: str = KVM_DEVICE, check: Callable[[str], str] = kvm_problem
) -> tuple[str, str]:
    """The accelerator to use and a warning (empty when none).

    ``auto``: KVM when usable, else TCG (software emulation) with a warning.
    ``kvm``: KVM or ``RuntimeError``. ``tcg``: always TCG, no warning.
    ``check``: the KVM probe (``kvm_problem``), replaceable in tests.
    """
    if wanted == "tcg":
        return "tcg", ""
    problem = check(device)
    if not problem:
        return "kvm", ""
    if wanted == "kvm":
        raise RuntimeError(f"KVM was required but {problem}")
    return "tcg", (
        f"no usable KVM ({problem}): running under software emulation (TCG), "
        "several times slower; the timeout is scaled accordingly"
    )


# ------------------------------------------------------------------ timeouts


@dataclass(frozen=True)
class Timeouts:
    """Seconds each phase may take before the VM is killed."""

    install_s: float
    boot_s: float
    shutdown_s: float

    @property
    def total_s(self) -> float:
        return self.install_s + BOOTS * self.boot_s


def timeouts(
    minutes: float, accelerator: str, tcg_factor: float, shutdown_grace_s: float
) -> Timeouts:
    """Split the budget: the install run gets ``INSTALL_SHARE``, each boot
    ``BOOT_SHARE`` (measured from the previous report, so it covers the
    reboot). Under TCG the budget and the shutdown grace grow by ``tcg_factor``."""
    scale = tcg_factor if accelerator == "tcg" else 1.0
    total = minutes * 60.0 * scale
    return Timeouts(
        install_s=total * INSTALL_SHARE,
        boot_s=total * BOOT_SHARE,
        shutdown_s=shutdown_grace_s * scale,
    )


# ------------------------------------------------------------------ command line


def qemu_command(
    machine: Machine,
    media: Media,
    accelerator: str,
    *,
    vars_file: str = "",
    no_reboot: bool = False,
) -> list[str]:
    """The QEMU argv for one run. ``vars_file``: the writable UEFI variable store
    (a copy of ``machine.firmware_vars``, kept between the runs like a real
    machine's NVRAM). ``no_reboot``: a guest reboot ends QEMU (install run)."""
    if accelerator not in ("kvm", "tcg"):
        raise ValueError(f"accelerator {accelerator!r} is not kvm or tcg")
    if machine.firmware_code and not vars_file:
        raise ValueError("UEFI firmware needs a writable vars_file")
    argv = [
        machine.qemu,
        "-name",
        "canvos-doca-boot-test",
        "-machine",
        "q35",
        "-accel",
        accelerator,
        "-cpu",
        "host" if accelerator == "kvm" else "max",
        "-m",
        str(machine.memory_mib),
        "-smp",
        str(machine.cpus),
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        "stdio",
    ]
    if machine.firmware_code:
        argv += [
            "-drive",
            f"if=pflash,format=raw,unit=0,readonly=on,file={machine.firmware_code}",
            "-drive",
            f"if=pflash,format=raw,unit=1,file={vars_file}",
        ]
    if machine.disk_bus == "virtio":
        argv += ["-drive", f"file={machine.disk},format=raw,if=virtio"]
    else:
        argv += [
            "-drive",
            f"file={machine.disk},format=raw,if=none,id=disk0",
            "-device",
            "nvme,drive=disk0,serial=canvos-doca-boot-test",
        ]
    if media.iso:
        argv += ["-drive", f"file={media.iso},format=raw,media=cdrom,readonly=on"]
    elif media.kernel:
        argv += ["-kernel", media.kernel]
        if media.initrd:
            argv += ["-initrd", media.initrd]
        if media.append:
            argv += ["-append", media.append]
    if machine.network:
        # User-mode NAT; romfile= skips the iPXE option ROM (not installed
        # with --no-install-recommends, and not needed to boot from disk).
        argv += ["-netdev", "user,id=net0", "-device", "virtio-net-pci,netdev=net0,romfile="]
    else:
        argv += ["-nic", "none"]
    if no_reboot:
        argv.append("-no-reboot")
    return argv
