"""The guest report script, run by this machine's POSIX sh against real /proc
data: its block parses with the harness's parser, it counts boots, keeps the
marker, picks reboot then power-off, and stays silent where it must."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from pipeline.boottest.protocol import (
    BOOTS,
    MARKER_NAME,
    BootReport,
    Expectation,
    GuestCommands,
    SerialParser,
    guest_config,
    parse_report,
)
from tests.boot.tinyvm import REPORT_SCRIPT

DETECT = """#!/bin/sh
[ "$1" = --json ] || exit 64
echo '{"status": "installed", "exit_code": 0, "kernel": "k", "message": "ok", "problems": []}'
"""


class Host:
    """A stand-in host layout under tmp_path; "/proc" is a real mount point."""

    def __init__(self, tmp: Path, require: str = "") -> None:
        self.tmp = tmp
        self.console = tmp / "console"
        self.run_dir = tmp / "run"
        self.kept = tmp / "kept"  # not a mount point
        self.kept.mkdir()
        (tmp / "persistent").mkdir()
        detect = tmp / "canvos-doca-detect"
        detect.write_text(DETECT)
        detect.chmod(0o755)
        self.expect = Expectation(
            paths=(str(self.kept), "/proc"),
            marker_dir=str(self.kept),
            persistent=str(tmp / "persistent"),
            state_dir=str(tmp / "persistent" / ".state"),
            kernel_args=("quiet",),
        )
        commands = GuestCommands(
            console=str(self.console),
            run_dir=str(self.run_dir),
            require=require,
            wait="echo running",
            wait_timeout_s=10,
            detect=str(detect),
            reboot=f"touch {tmp / 'rebooted'}",
            poweroff=f"touch {tmp / 'powered-off'}",
        )
        self.config = tmp / "config.env"
        self.config.write_text(guest_config(self.expect, commands))

    def boot(self) -> subprocess.CompletedProcess[str]:
        """One boot: /run is fresh, the persistent directory is kept."""
        shutil.rmtree(self.run_dir, ignore_errors=True)
        return self.report()

    def report(self) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["sh", str(REPORT_SCRIPT), str(self.config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def reports(self) -> list[BootReport]:
        text = self.console.read_bytes() if self.console.exists() else b""
        parser = SerialParser()
        return [parse_report(block) for block in parser.feed(text) + parser.finish()]


def test_two_boots_report_counter_mounts_detection_and_the_kept_marker(tmp_path: Path) -> None:
    host = Host(tmp_path)
    assert host.boot().returncode == 0
    assert (tmp_path / "rebooted").exists() and not (tmp_path / "powered-off").exists()
    assert host.boot().returncode == 0
    assert (tmp_path / "powered-off").exists()
    first, second = host.reports()
    assert (first.problem, second.problem) == ("", "")
    assert (first.boot, second.boot) == (1, BOOTS)
    assert (first.next, second.next) == ("reboot", "poweroff")
    assert first.system_state == "running" and first.detect_exit == 0
    assert first.detect["status"] == "installed"
    assert first.cmdline == Path("/proc/cmdline").read_text().strip()
    mounts = {m.path: m for m in first.mounts}
    assert mounts["/proc"].mounted and mounts["/proc"].root == "/"
    assert not mounts[str(host.kept)].mounted
    marker = host.kept / MARKER_NAME
    assert first.marker == str(marker) and marker.read_text().strip() == first.marker_written
    assert second.marker_found == second.marker_expected == first.marker_written
    assert first.errors == () and second.errors == ()


def test_it_reports_once_per_boot(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.boot()
    host.report()  # the stage ran again in the same boot
    assert len(host.reports()) == 1


def test_it_stays_silent_where_the_required_file_is_missing(tmp_path: Path) -> None:
    host = Host(tmp_path, require=str(tmp_path / "active_mode"))
    result = host.boot()
    assert result.returncode == 0 and "nothing to report" in result.stdout
    assert host.reports() == [] and not (tmp_path / "rebooted").exists()


def test_an_unwritable_marker_is_reported_not_hidden(tmp_path: Path) -> None:
    host = Host(tmp_path)
    host.kept.rmdir()
    host.boot()
    [first] = host.reports()
    assert first.marker_written == ""
    assert first.errors == (f"cannot write the marker {host.kept / MARKER_NAME}",)


def test_a_missing_detection_tool_shows_as_its_exit_code(tmp_path: Path) -> None:
    host = Host(tmp_path)
    (tmp_path / "canvos-doca-detect").unlink()
    host.boot()
    [first] = host.reports()
    assert first.detect_exit == 127 and first.detect == {}
