"""The verdict: every check a boot test's reports must pass. Pure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .protocol import BOOTS, BootReport, Expectation, MountFact


@dataclass(frozen=True)
class Phase:
    """How a VM run ended (``harness.supervise``): ``powered-off`` (install
    run), ``reported`` (boot run: every report arrived), ``exited`` (before
    all reports), ``timeout``, ``crashed`` (kernel panic) or ``silent`` (no
    console output at all; all three stopped), or ``error`` (QEMU failed)."""

    status: str
    seconds: float
    detail: str = ""
    exit_code: int | None = None


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _check_boot(n: int, report: BootReport, expect: Expectation) -> list[Check]:
    where = f"boot {n}"
    if report.problem:
        return [Check(f"{where}: report block intact", False, report.problem)]
    checks = [
        Check(
            f"{where}: boot counter",
            report.boot == n,
            f"the guest counted boot {report.boot} (state on {expect.persistent})"
            + ("" if report.boot == n or n == 1 else ": the persistent partition lost it"),
        )
    ]
    status = str(report.detect.get("status", "")) or "no JSON"
    message = str(report.detect.get("message", ""))
    checks.append(
        Check(
            f"{where}: canvos-doca-detect --json is installed",
            report.detect_exit == 0 and status == "installed",
            f"exit {report.detect_exit}, status {status}: {message}".rstrip(": ")
            + f" (kernel {report.kernel or '?'})",
        )
    )
    persistent = report.persistent
    checks.append(
        Check(
            f"{where}: {expect.persistent} is the persistent partition",
            persistent is not None and persistent.mounted and persistent.root == "/",
            f"mountinfo: device {persistent.device}, root {persistent.root}"
            if persistent is not None
            else "not reported",
        )
    )
    by_path = {m.path: m for m in report.mounts}
    for path in expect.paths:
        fact = by_path.get(path, MountFact(path))
        wanted = expect.state_root(path)
        same_device = persistent is not None and fact.device == persistent.device
        checks.append(
            Check(
                f"{where}: {path} is a mount from the persistent state",
                fact.mounted and fact.root == wanted and same_device,
                (
                    f"mountinfo: device {fact.device}, root {fact.root}; expected root {wanted} "
                    f"on the device of {expect.persistent}"
                    if fact.mounted
                    else "not a mount point: what is written there is lost at reboot"
                ),
            )
        )
    words = report.cmdline.split()
    missing = [arg for arg in expect.kernel_args if arg not in words]
    checks.append(
        Check(
            f"{where}: kernel arguments",
            not missing,
            f"missing {' '.join(missing)} in: {report.cmdline}"
            if missing
            else f"present: {' '.join(expect.kernel_args) or '(none configured)'}",
        )
    )
    checks.append(
        Check(
            f"{where}: no errors in the guest",
            not report.errors,
            "; ".join(report.errors) or "none",
        )
    )
    return checks


def judge(
    install: Phase, boot_run: Phase | None, reports: Sequence[BootReport], expect: Expectation
) -> list[Check]:
    """Every check, in order; the test passed when all passed."""
    checks = [
        Check(
            "install: the installer finished and stopped the VM",
            install.status == "powered-off",
            f"{install.status} after {install.seconds:.0f} s" + _detail(install),
        )
    ]
    if install.status != "powered-off":
        return checks
    for n in range(1, BOOTS + 1):
        if len(reports) < n:
            ended = boot_run or Phase("error", 0.0, "the boot run did not start")
            checks.append(
                Check(
                    f"boot {n}: report received",
                    False,
                    f"boot run {ended.status} after {ended.seconds:.0f} s" + _detail(ended),
                )
            )
            break
        checks += _check_boot(n, reports[n - 1], expect)
    if len(reports) >= 1 and not reports[0].problem:
        first = reports[0]
        checks.append(
            Check(
                "boot 1: marker written",
                bool(first.marker_written),
                f"{first.marker or '?'} = {first.marker_written or '(not written)'}",
            )
        )
    if len(reports) >= BOOTS and not reports[0].problem and not reports[1].problem:
        first, second = reports[0], reports[1]
        survived = bool(first.marker_written) and second.marker_found == first.marker_written
        checks.append(
            Check(
                "boot 2: marker survived the reboot",
                survived,
                f"{second.marker or '?'}: wrote {first.marker_written or '-'}, "
                f"found {second.marker_found or '(nothing)'}",
            )
        )
    return checks


def _detail(phase: Phase) -> str:
    return f": {phase.detail}" if phase.detail else ""


def summary(report: Mapping[str, Any]) -> str:
    """The verdict and every check, one line each (for logs and errors)."""
    verdict = "PASSED" if report["passed"] else "FAILED"
    lines = [f"canvos-doca boot test {verdict} ({report['accelerator']})"]
    lines += [f"WARNING: {w}" for w in report.get("warnings", [])]
    for check in report["checks"]:
        mark = "ok  " if check["passed"] else "FAIL"
        lines.append(f"  {mark} {check['name']}: {check['detail']}")
    return "\n".join(lines) + "\n"
