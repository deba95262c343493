"""The harness: runs the VM, watches its serial console, writes the report.

``run`` does the whole test:

1. **install run**: the installer ISO and a blank disk; QEMU runs with
   ``-no-reboot``, so the installer's power-off (or reboot) ends it.
2. **boot run**: the installed disk alone; the guest reports once per boot,
   reboots after the first report and powers off after the second.
3. **verdict** (``verdict.judge``); ``report.json`` and ``serial.log`` go to
   the output directory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import selectors
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from .protocol import BOOTS, Block, BootReport, Expectation, SerialParser, parse_report
from .qemu import (
    ACCELERATORS,
    KVM_DEVICE,
    Machine,
    Media,
    Timeouts,
    choose_accelerator,
    kvm_problem,
    qemu_command,
    timeouts,
)
from .verdict import Phase, judge, summary

REPORT_SCHEMA = 1
REPORT_FILE = "report.json"
SERIAL_LOG = "serial.log"
HEARTBEAT_S = 60.0
# Under KVM, firmware and kernels write to the console within seconds: a VM
# silent this long means KVM does not work here (the run starts over on TCG).
KVM_SILENCE_S = 120.0
# What the kernel prints on the console when it panics.
PANIC = b"Kernel panic - not syncing"

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    print(f"boot-test: {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class RunConfig:
    """Everything one boot test needs; JSON round-trips (``to_json``/``from_json``)."""

    machine: Machine
    install: Media
    boot: Media
    expectation: Expectation
    # Minutes the whole test may take with KVM; under software emulation
    # (TCG) they are multiplied by tcg_factor.
    timeout_minutes: float
    tcg_factor: float
    accelerator: str = "auto"
    # After the last report: how long the guest may take to power off.
    shutdown_grace_s: float = 120.0
    # Recorded in the report (e.g. the container image that ran QEMU).
    tools: Mapping[str, str] = field(default_factory=dict)
    # Packages whose installed versions go into the report (dpkg-query).
    packages: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.accelerator not in ACCELERATORS:
            raise ValueError(f"accelerator {self.accelerator!r} not in {ACCELERATORS}")
        if self.timeout_minutes <= 0 or self.tcg_factor < 1:
            raise ValueError("timeout_minutes must be > 0 and tcg_factor >= 1")

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> RunConfig:
        data = json.loads(text)
        expectation = data["expectation"]
        return cls(
            machine=Machine(**data["machine"]),
            install=Media(**data["install"]),
            boot=Media(**data["boot"]),
            expectation=Expectation(
                **{
                    **expectation,
                    "paths": tuple(expectation["paths"]),
                    "kernel_args": tuple(expectation["kernel_args"]),
                }
            ),
            timeout_minutes=float(data["timeout_minutes"]),
            accelerator=data["accelerator"],
            tcg_factor=float(data["tcg_factor"]),
            shutdown_grace_s=float(data["shutdown_grace_s"]),
            tools=dict(data.get("tools", {})),
            packages=tuple(data.get("packages", ())),
        )


# ------------------------------------------------------------------ VM supervisor


@dataclass
class _VmRun:
    phase: Phase
    blocks: list[Block]
    serial_bytes: int = 0


class _Console:
    """The serial stream of one VM: copied to the log, searched for blocks and panics."""

    def __init__(self, serial: IO[bytes]) -> None:
        self.serial = serial
        self.parser = SerialParser()
        self.blocks: list[Block] = []
        self.received = 0
        self._tail = b""
        self.panic = ""

    def feed(self, chunk: bytes) -> list[Block]:
        self.received += len(chunk)
        self.serial.write(chunk)
        self.serial.flush()
        self._tail = (self._tail + chunk)[-8192:]
        at = self._tail.find(PANIC)
        if at >= 0 and not self.panic:
            line = self._tail[at:].split(b"\n", 1)[0]
            self.panic = line.decode("utf-8", "replace").strip()
        found = self.parser.feed(chunk)
        self.blocks += found
        return found


def supervise(
    argv: Sequence[str],
    serial: IO[bytes],
    *,
    deadline_s: float,
    expect_blocks: int = 0,
    shutdown_s: float = 0.0,
    silence_s: float = 0.0,
    log: Log = stderr_log,
    name: str = "vm",
) -> _VmRun:
    """Run QEMU, copy its serial output to ``serial``, collect report blocks.

    ``expect_blocks == 0`` (install run): QEMU must exit within ``deadline_s``
    (status ``powered-off``). Otherwise each block must arrive within
    ``deadline_s`` of the start or of the previous block (status ``reported``
    once all arrived); QEMU then gets ``shutdown_s`` to exit. A VM that misses
    a deadline is killed (``timeout``), one whose kernel panics is stopped at
    once (``crashed``), one that exits early is ``exited``; QEMU failing is
    ``error``. ``silence_s`` > 0: a VM that prints nothing on its console for
    that long after starting is stopped (``silent``).
    """
    started = time.monotonic()
    console = _Console(serial)
    try:
        proc = subprocess.Popen(
            list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
    except OSError as exc:
        return _VmRun(Phase("error", 0.0, f"cannot start {argv[0]}: {exc}"), [])
    streams = {proc.stdout: "serial", proc.stderr: "stderr"}
    selector = selectors.DefaultSelector()
    for stream, kind in streams.items():
        selector.register(stream, selectors.EVENT_READ, kind)  # type: ignore[arg-type]
    stderr = bytearray()
    deadline = started + deadline_s
    next_beat = started + HEARTBEAT_S
    timed_out = silent = False
    try:
        while selector.get_map() and not console.panic:
            now = time.monotonic()
            if silence_s and not console.received and now - started >= silence_s:
                silent = True
                break
            if now >= deadline:
                timed_out = True
                break
            if now >= next_beat:
                log(f"{name}: {now - started:.0f} s, {console.received} bytes of serial output")
                next_beat = now + HEARTBEAT_S
            for key, _ in selector.select(timeout=min(1.0, deadline - now)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.data == "stderr":
                    stderr += chunk
                else:
                    found = console.feed(chunk)
                    total = len(console.blocks)
                    for n in range(total - len(found) + 1, total + 1):
                        log(f"{name}: report block {n} after {time.monotonic() - started:.0f} s")
                    if found and expect_blocks:
                        wait = shutdown_s if total >= expect_blocks else deadline_s
                        deadline = time.monotonic() + wait
        console.blocks += console.parser.finish()
        if not (timed_out or silent or console.panic):
            try:  # both streams closed: QEMU is exiting
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        selector.close()
        if proc.poll() is None:
            _kill(proc)
            log(f"{name}: stopped the VM after {time.monotonic() - started:.0f} s")
    seconds = time.monotonic() - started
    if silent:
        detail = f"no console output in {silence_s:.0f} s; VM stopped"
        return _VmRun(Phase("silent", seconds, detail), console.blocks)
    return _VmRun(
        _ended(
            proc,
            console,
            bytes(stderr),
            timed_out,
            seconds,
            expect_blocks,
            deadline_s,
            shutdown_s,
        ),
        console.blocks,
        console.received,
    )


def _ended(
    proc: subprocess.Popen[bytes],
    console: _Console,
    stderr: bytes,
    timed_out: bool,
    seconds: float,
    expect_blocks: int,
    deadline_s: float,
    shutdown_s: float,
) -> Phase:
    """How a supervised run ended (see ``supervise``)."""
    blocks = len(console.blocks)
    code = proc.returncode
    if expect_blocks and blocks >= expect_blocks:
        if timed_out or console.panic:
            detail = f"did not power off within {shutdown_s:.0f} s of the last report; stopped"
            return Phase("reported", seconds, console.panic or detail, code)
        return Phase("reported", seconds, "then powered off", code)
    if console.panic:
        return Phase("crashed", seconds, f"{console.panic} (see the serial log); VM stopped")
    if timed_out:
        waited = f"report block {blocks + 1}" if expect_blocks else "the VM to power off"
        return Phase("timeout", seconds, f"waited {deadline_s:.0f} s for {waited}; VM killed")
    if code != 0:
        qemu_error = stderr.decode("utf-8", "replace").strip()[-2000:]
        return Phase("error", seconds, qemu_error or f"QEMU exit code {code}", code)
    if expect_blocks:
        detail = f"the VM powered off after {blocks} of {expect_blocks} report(s)"
        return Phase("exited", seconds, detail, code)
    return Phase("powered-off", seconds, "", code)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


# ------------------------------------------------------------------ run


def _versions(config: RunConfig) -> dict[str, str]:
    found = dict(config.tools)
    try:
        out = subprocess.run(
            [config.machine.qemu, "--version"], capture_output=True, text=True, check=False
        ).stdout
        found["qemu"] = out.splitlines()[0] if out else ""
    except OSError as exc:
        found["qemu"] = f"not runnable: {exc}"
    if config.packages and shutil.which("dpkg-query"):
        out = subprocess.run(
            ["dpkg-query", "-W", "-f", "${Package}=${Version}\\n", *config.packages],
            capture_output=True,
            text=True,
            check=False,
        ).stdout
        for line in out.splitlines():
            package, _, version = line.partition("=")
            found[package] = version
    return found


def blank_disk(machine: Machine) -> None:
    """(Re)create the virtual disk: sparse, all zeros, ``disk_gib`` GiB."""
    disk = Path(machine.disk)
    disk.parent.mkdir(parents=True, exist_ok=True)
    with disk.open("wb") as handle:
        handle.truncate(machine.disk_gib * 1024**3)


def run(
    config: RunConfig,
    out_dir: Path,
    *,
    kvm_device: str = KVM_DEVICE,
    kvm_check: Callable[[str], str] = kvm_problem,
    log: Log = stderr_log,
) -> dict[str, Any]:
    """Install, boot twice, judge. Writes ``report.json`` and ``serial.log`` to
    ``out_dir`` and returns the report (``report["passed"]``).

    With ``accelerator="auto"``, a KVM device that answers but with which QEMU
    fails or stays silent (seen on nested hosts: ``failed to set MSR``) makes
    the install run start over under TCG, with a warning.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    accelerator, warning = choose_accelerator(config.accelerator, kvm_device, kvm_check)
    warnings = [warning] if warning else []
    if warning:
        log(f"WARNING: {warning}")
    reports: list[BootReport] = []
    boot_phase: Phase | None = None
    with (out_dir / SERIAL_LOG).open("wb") as serial:
        installed = _install(config, accelerator, serial, log)
        if accelerator == "kvm" and config.accelerator == "auto" and _kvm_broke(installed):
            accelerator = "tcg"
            warning = (
                f"QEMU did not run with KVM ({installed.phase.detail.splitlines()[-1]}): "
                "started over under software emulation (TCG), several times slower; "
                "the timeout is scaled accordingly"
            )
            warnings.append(warning)
            log(f"WARNING: {warning}")
            installed = _install(config, accelerator, serial, log)
        install_phase = installed.phase
        limits, install_argv, boot_argv = _plan(config, accelerator)
        if install_phase.status == "powered-off":
            log("boot run: booting the installed disk")
            serial.write(b"\n### canvos-doca boot-test: boot run\n")
            booted = supervise(
                boot_argv,
                serial,
                deadline_s=limits.boot_s,
                expect_blocks=BOOTS,
                shutdown_s=limits.shutdown_s,
                log=log,
                name="boot run",
            )
            boot_phase = booted.phase
            reports = [parse_report(block) for block in booted.blocks[:BOOTS]]
            log(f"boot run: {boot_phase.status} after {boot_phase.seconds:.0f} s")
    # The guest script reports only on an installed system; a block from the
    # installer would mean its gate failed: it is kept out of the verdict.
    if installed.blocks:
        warnings.append(
            f"{len(installed.blocks)} report block(s) came from the installer boot and were ignored"
        )
    report = make_report(
        accelerator=accelerator,
        warnings=warnings,
        limits=limits,
        machine=config.machine,
        expectation=config.expectation,
        install=install_phase,
        boot=boot_phase,
        reports=reports,
        tools=_versions(config),
        commands={"install": install_argv, "boot": boot_argv},
    )
    partial = out_dir / f".{REPORT_FILE}.tmp"
    partial.write_text(json.dumps(report, indent=2) + "\n")
    partial.replace(out_dir / REPORT_FILE)
    for line in summary(report).splitlines():
        log(line)
    return report


def _vars_file(machine: Machine) -> str:
    return str(Path(machine.disk).with_name("uefi-vars.fd")) if machine.firmware_vars else ""


def _plan(config: RunConfig, accelerator: str) -> tuple[Timeouts, list[str], list[str]]:
    """The limits and both QEMU command lines for ``accelerator``."""
    machine, vars_file = config.machine, _vars_file(config.machine)
    limits = timeouts(
        config.timeout_minutes, accelerator, config.tcg_factor, config.shutdown_grace_s
    )
    install = qemu_command(
        machine, config.install, accelerator, vars_file=vars_file, no_reboot=True
    )
    boot = qemu_command(machine, config.boot, accelerator, vars_file=vars_file)
    return limits, install, boot


def _install(config: RunConfig, accelerator: str, serial: IO[bytes], log: Log) -> _VmRun:
    """The install run on a blank disk and a fresh UEFI variable store."""
    machine = config.machine
    limits, argv, _ = _plan(config, accelerator)
    blank_disk(machine)
    if machine.firmware_vars:
        shutil.copyfile(machine.firmware_vars, _vars_file(machine))
    log(
        f"install run ({accelerator.upper()}, {machine.cpus} CPUs, {machine.memory_mib} MiB); "
        f"limits: install {_duration(limits.install_s)}, each boot {_duration(limits.boot_s)}"
    )
    serial.write(f"\n### canvos-doca boot-test: install run ({accelerator})\n".encode())
    installed = supervise(
        argv,
        serial,
        deadline_s=limits.install_s,
        silence_s=KVM_SILENCE_S if accelerator == "kvm" else 0.0,
        log=log,
        name="install run",
    )
    log(f"install run: {installed.phase.status} after {installed.phase.seconds:.0f} s")
    return installed


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.0f} min" if seconds >= 120 else f"{seconds:.0f} s"


def _kvm_broke(installed: _VmRun) -> bool:
    """QEMU failed or printed nothing at all: KVM, not the guest, is the problem."""
    return installed.phase.status in ("error", "silent") and installed.serial_bytes == 0


def make_report(
    *,
    accelerator: str,
    warnings: Sequence[str],
    limits: Timeouts,
    machine: Machine,
    expectation: Expectation,
    install: Phase,
    boot: Phase | None,
    reports: Sequence[BootReport],
    tools: Mapping[str, str],
    commands: Mapping[str, Sequence[str]],
) -> dict[str, Any]:
    """``report.json``: the verdict (``passed``), every check, what each boot
    reported, how each run ended, and what ran (tools, QEMU command lines)."""
    checks = judge(install, boot, reports, expectation)
    report = {
        "schema": REPORT_SCHEMA,
        "passed": all(c.passed for c in checks),
        "accelerator": accelerator,
        "warnings": list(warnings),
        "timeouts_s": dataclasses.asdict(limits),
        "machine": {"memory_mib": machine.memory_mib, "cpus": machine.cpus},
        "expectation": dataclasses.asdict(expectation),
        "phases": {
            "install": dataclasses.asdict(install),
            "boot": dataclasses.asdict(boot) if boot else None,
        },
        "boots": [dataclasses.asdict(r) for r in reports],
        "checks": [dataclasses.asdict(c) for c in checks],
        "tools": dict(tools),
        "commands": {name: list(argv) for name, argv in commands.items()},
        "serial_log": SERIAL_LOG,
    }
    # Exactly what report.json holds (tuples as lists).
    loaded: dict[str, Any] = json.loads(json.dumps(report))
    return loaded
