"""The workflow tests' stand-in `dagger` CLI, plus ``boot-test ... export``.

Everything goes through tests/workflows/fake_dagger.py first (logging, the
registration check, build/publish). A ``boot-test`` chain ending in ``export
--path DIR`` then writes what the real function returns: ``report.json``, made
by the harness's own ``make_report`` from parsed report blocks, and
``serial.log``. ``FAKE_BOOT_TEST=fail`` makes the second boot lose the marker.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipeline import bootvm
from pipeline.boottest.harness import REPORT_FILE, SERIAL_LOG, make_report
from pipeline.boottest.protocol import SerialParser, block_text, parse_report
from pipeline.boottest.qemu import Media, qemu_command, timeouts
from pipeline.boottest.verdict import Phase
from tests.boot.tinyvm import EXPECT
from tests.pipeline import registration
from tests.workflows import dagger_calls, fake_dagger

TOKEN = "6a0e4d2c-0000-4000-8000-000000000001"


def serial(lose_marker: bool) -> str:
    common = {
        "kernel": "6.8.0-60-generic",
        "cmdline": "BOOT_IMAGE=/vmlinuz console=ttyS0 canvos.boot-test=on",
        "detect_exit": "0",
        "detect": '{"status": "installed", "exit_code": 0, "message": "DOCA ok"}',
        "persistent": "/usr/local 253:4 /",
    }
    mounts = [("mount", f"{p} 253:4 {EXPECT.state_root(p)}") for p in EXPECT.paths]
    first = [("boot", "1"), *common.items(), *mounts, ("marker_written", TOKEN)]
    found = "" if lose_marker else TOKEN
    second = [("boot", "2"), *common.items(), *mounts, ("marker_found", found)]
    return block_text(first) + "[  3.1] reboot: Restarting system\n" + block_text(second)


def write_report(out: Path, lose_marker: bool) -> None:
    text = serial(lose_marker)
    config = bootvm.run_config(bootvm.Settings(), EXPECT)
    out.mkdir(parents=True, exist_ok=True)
    report = make_report(
        accelerator="kvm",
        warnings=[],
        limits=timeouts(config.timeout_minutes, "kvm", config.tcg_factor, 120),
        machine=config.machine,
        expectation=EXPECT,
        install=Phase("powered-off", 301.5),
        boot=Phase("reported", 122.0, "then powered off"),
        reports=[parse_report(b) for b in SerialParser().feed(text.encode())],
        tools={"qemu_image": bootvm.Settings().qemu_image},
        commands={"boot": qemu_command(config.machine, Media(), "kvm", vars_file="/v")},
    )
    (out / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    (out / SERIAL_LOG).write_text(text)


def main(argv: list[str]) -> int:
    code = fake_dagger.main(argv)
    if code:
        return code
    constructor, schema = dagger_calls.schema_for(registration.registration())
    call = dagger_calls.check_command(["dagger", *argv], constructor, schema)
    if call.steps and call.functions[:1] == ["boot-test"] and call.functions[-1] == "export":
        out = Path(call.steps[-1][1]["path"])
        write_report(out, lose_marker=os.environ.get("FAKE_BOOT_TEST") == "fail")
        print(str(out.resolve()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
