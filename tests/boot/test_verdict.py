"""The verdict over parsed reports: each way a host can be broken fails its own check."""

from __future__ import annotations

import pytest

from pipeline.boottest.protocol import (
    BootReport,
    Expectation,
    SerialParser,
    block_text,
    parse_report,
)
from pipeline.boottest.verdict import Phase, judge, summary

EXPECT = Expectation(
    paths=("/var/lib/openvswitch", "/opt"),
    marker_dir="/var/lib/openvswitch",
    persistent="/usr/local",
    state_dir="/usr/local/.state",
    kernel_args=("iommu=pt", "pci=realloc"),
)
TOKEN = "0f8e2f5c-3b1d-4a55-9a51-5b2b4fe7d0aa"
INSTALLED = '{"status": "installed", "exit_code": 0, "message": "DOCA 3.2.2 (doca-ofed) ok"}'
INSTALLED_OK = Phase("powered-off", 312.0)
REPORTED = Phase("reported", 140.0, "then powered off")


def fields(n: int, **changes: str) -> dict[str, str]:
    values = {
        "boot": str(n),
        "kernel": "6.8.0-60-generic",
        "cmdline": "BOOT_IMAGE=/boot/vmlinuz console=ttyS0 iommu=pt pci=realloc",
        "detect_exit": "0",
        "detect": INSTALLED,
        "persistent": "/usr/local 253:4 /",
        "mount /var/lib/openvswitch": "/var/lib/openvswitch 253:4 /.state/var-lib-openvswitch.bind",
        "mount /opt": "/opt 253:4 /.state/opt.bind",
        "marker": "/var/lib/openvswitch/.canvos-doca-boot-test",
    }
    if n == 1:
        values["marker_written"] = TOKEN
    else:
        values["marker_expected"] = TOKEN
        values["marker_found"] = TOKEN
    values.update(changes)
    return values


def report(values: dict[str, str]) -> BootReport:
    """Through the real wire format and parser, as the harness sees it."""
    pairs = [(key.split(" ", 1)[0], value) for key, value in values.items() if value != "DROP"]
    [block] = SerialParser().feed(block_text(pairs).encode())
    return parse_report(block)


def failed(checks: list[object]) -> dict[str, str]:
    return {c.name: c.detail for c in checks if not c.passed}  # type: ignore[attr-defined]


def test_a_healthy_host_passes_and_every_path_is_checked_on_both_boots() -> None:
    checks = judge(INSTALLED_OK, REPORTED, [report(fields(1)), report(fields(2))], EXPECT)
    assert failed(checks) == {}
    names = [c.name for c in checks]
    for n in (1, 2):
        for path in EXPECT.paths:
            assert f"boot {n}: {path} is a mount from the persistent state" in names
    assert names[-1] == "boot 2: marker survived the reboot"


@pytest.mark.parametrize(
    ("boot", "changes", "check", "detail"),
    [
        (
            1,
            {"detect_exit": "2", "detect": '{"status": "mismatch", "message": "no DKMS"}'},
            "boot 1: canvos-doca-detect --json is installed",
            "exit 2, status mismatch: no DKMS",
        ),
        (
            2,
            {"detect": '{"status": "installed"}', "detect_exit": "127"},
            "boot 2: canvos-doca-detect --json is installed",
            "exit 127",
        ),
        (
            1,
            {"mount /opt": "/opt - -"},
            "boot 1: /opt is a mount from the persistent state",
            "not a mount point",
        ),
        (
            1,
            # A bind mount, but from somewhere else than the persistent state.
            {"mount /opt": "/opt 0:27 /.state/opt.bind"},
            "boot 1: /opt is a mount from the persistent state",
            "device 0:27",
        ),
        (
            2,
            {"mount /opt": "/opt 253:4 /opt-copy"},
            "boot 2: /opt is a mount from the persistent state",
            "expected root /.state/opt.bind",
        ),
        (
            1,
            {"cmdline": "console=ttyS0 iommu=ptx pci=realloc"},
            "boot 1: kernel arguments",
            "missing iommu=pt",
        ),
        (2, {"boot": "1"}, "boot 2: boot counter", "the persistent partition lost it"),
        (
            2,
            {"marker_found": ""},
            "boot 2: marker survived the reboot",
            "found (nothing)",
        ),
        (2, {"error": "cannot write x"}, "boot 2: no errors in the guest", "cannot write x"),
    ],
)
def test_each_broken_fact_fails_exactly_its_check(
    boot: int, changes: dict[str, str], check: str, detail: str
) -> None:
    first = fields(1, **changes) if boot == 1 else fields(1)
    second = fields(2, **changes) if boot == 2 else fields(2)
    checks = judge(INSTALLED_OK, REPORTED, [report(first), report(second)], EXPECT)
    broken = failed(checks)
    assert list(broken) == [check], broken
    assert detail in broken[check]


def test_without_the_persistent_partition_no_path_counts_as_persistent() -> None:
    first = fields(1, persistent="/usr/local - -")
    checks = judge(INSTALLED_OK, REPORTED, [report(first), report(fields(2))], EXPECT)
    assert set(failed(checks)) == {
        "boot 1: /usr/local is the persistent partition",
        "boot 1: /var/lib/openvswitch is a mount from the persistent state",
        "boot 1: /opt is a mount from the persistent state",
    }


def test_a_marker_never_written_fails_both_marker_checks() -> None:
    first = fields(1, marker_written="DROP", error="cannot write the marker")
    checks = judge(INSTALLED_OK, REPORTED, [report(first), report(fields(2))], EXPECT)
    assert set(failed(checks)) == {
        "boot 1: no errors in the guest",
        "boot 1: marker written",
        "boot 2: marker survived the reboot",
    }


def test_an_install_that_never_ends_stops_the_verdict_there() -> None:
    install = Phase("timeout", 900.0, "waited 900 s for the VM to power off; VM killed")
    checks = judge(install, None, [], EXPECT)
    assert [(c.name, c.passed) for c in checks] == [
        ("install: the installer finished and stopped the VM", False)
    ]
    assert "VM killed" in checks[0].detail


def test_a_missing_second_report_names_how_the_boot_run_ended() -> None:
    crashed = Phase("crashed", 80.0, "Kernel panic - not syncing: VFS (see the serial log)")
    checks = judge(INSTALLED_OK, crashed, [report(fields(1))], EXPECT)
    assert failed(checks) == {
        "boot 2: report received": "boot run crashed after 80 s: Kernel panic - not syncing: "
        "VFS (see the serial log)"
    }


def test_a_garbled_block_is_never_trusted() -> None:
    damaged = BootReport(problem="the lines do not match the END line's sha256")
    checks = judge(INSTALLED_OK, REPORTED, [report(fields(1)), damaged], EXPECT)
    assert set(failed(checks)) == {"boot 2: report block intact"}
    assert "boot 2: marker survived the reboot" not in [c.name for c in checks]


def test_the_summary_lists_every_check_and_the_verdict() -> None:
    checks = judge(INSTALLED_OK, REPORTED, [report(fields(1)), report(fields(2, boot="1"))], EXPECT)
    text = summary(
        {
            "passed": False,
            "accelerator": "kvm",
            "warnings": ["w"],
            "checks": [vars(c) for c in checks],
        }
    )
    assert text.startswith("canvos-doca boot test FAILED (kvm)\nWARNING: w\n")
    assert "  FAIL boot 2: boot counter: " in text
    assert text.count("\n") == len(checks) + 2
