"""The serial protocol: blocks found in a noisy console stream, damage detected, typed."""

from __future__ import annotations

import pytest

from pipeline.boottest.protocol import (
    PROTOCOL,
    TAG,
    Block,
    Expectation,
    GuestCommands,
    SerialParser,
    block_text,
    guest_config,
    parse_report,
)

FIELDS = (
    ("boot", "1"),
    ("kernel", "6.8.0-60-generic"),
    ("cmdline", "BOOT_IMAGE=/vmlinuz console=ttyS0 iommu=pt"),
    ("detect_exit", "0"),
    ("detect", '{"status": "installed", "exit_code": 0, "message": "DOCA 3.2.2 ok"}'),
    ("persistent", "/usr/local 253:4 /"),
    ("mount", "/opt 253:4 /.state/opt.bind"),
    ("mount", "/var/lib/openvswitch - -"),
    ("marker", "/opt/.canvos-doca-boot-test"),
    ("marker_written", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"),
    ("error", "first problem"),
    ("error", "second = problem"),
)
GUEST = GuestCommands(
    console="/dev/ttyS0",
    run_dir="/run/x",
    require="/run/cos/active_mode",
    wait="systemctl is-system-running --wait",
    wait_timeout_s=600,
    detect="canvos-doca-detect",
    reboot="systemctl reboot",
    poweroff="systemctl poweroff",
)


def expectation(**changes: object) -> Expectation:
    values: dict[str, object] = {
        "paths": ("/var/lib/openvswitch", "/opt"),
        "marker_dir": "/var/lib/openvswitch",
        "persistent": "/usr/local",
        "state_dir": "/usr/local/.state",
        "kernel_args": ("iommu=pt",),
    }
    values.update(changes)
    return Expectation(**values)  # type: ignore[arg-type]


def console_with(block: str) -> bytes:
    """The block on a console that also carries kernel messages, CRLF line
    ends and a login prompt glued in front of one tagged line."""
    lines = block.splitlines()
    noisy = ["[   12.345678] systemd[1]: Started Getty.", *lines[:3]]
    noisy.append("[   13.000001] mlx5_core: loaded")
    noisy.append("localhost login: " + lines[3])
    noisy += lines[4:]
    noisy.append("[   14.0] reboot: Restarting system")
    return ("\r\n".join(noisy) + "\r\n").encode()


@pytest.mark.parametrize("chunk", [1, 7, 4096])
def test_a_block_is_found_in_a_noisy_stream_fed_in_any_chunks(chunk: int) -> None:
    data = console_with(block_text(FIELDS))
    parser = SerialParser()
    found = []
    for start in range(0, len(data), chunk):
        found += parser.feed(data[start : start + chunk])
    found += parser.finish()
    assert found == [Block(FIELDS)]


def test_two_boots_give_two_blocks_in_order() -> None:
    second = (("boot", "2"), ("marker_found", "x"))
    parser = SerialParser()
    found = parser.feed((block_text(FIELDS) + "reboot\n" + block_text(second)).encode())
    assert [b.fields for b in found] == [FIELDS, second]


def test_a_lost_line_is_detected() -> None:
    lines = block_text(FIELDS).splitlines(keepends=True)
    del lines[4]
    [block] = SerialParser().feed("".join(lines).encode())
    assert "lines=12" in block.problem and "11 arrived" in block.problem


def test_a_garbled_value_is_detected() -> None:
    text = block_text(FIELDS).replace("253:4 /.state/opt.bind", "253:4 /.state/opt.b[ 9.1] ind")
    [block] = SerialParser().feed(text.encode())
    assert "sha256" in block.problem


def test_a_block_cut_short_is_reported_at_the_end_of_the_stream() -> None:
    text = "".join(block_text(FIELDS).splitlines(keepends=True)[:-1])
    parser = SerialParser()
    assert parser.feed(text.encode()) == []
    [block] = parser.finish()
    assert "without its END line" in block.problem


def test_a_new_block_closes_an_unfinished_one_as_truncated() -> None:
    head = "".join(block_text(FIELDS).splitlines(keepends=True)[:3])
    found = SerialParser().feed((head + block_text((("boot", "2"),))).encode())
    assert [bool(b.problem) for b in found] == [True, False]
    assert "began before" in found[0].problem


def test_another_protocol_version_is_refused() -> None:
    text = block_text(FIELDS).replace(f"BEGIN {PROTOCOL}", "BEGIN v9")
    [block] = SerialParser().feed(text.encode())
    assert "'v9'" in block.problem


def test_lines_without_the_tag_or_outside_a_block_are_ignored() -> None:
    stray = f"{TAG} boot=7\nCANVOS-DOCA-BOOT-TESTX BEGIN v1\nboot=1\n"
    parser = SerialParser()
    assert parser.feed(stray.encode()) == [] and parser.finish() == []


def test_a_report_is_typed_from_its_block() -> None:
    report = parse_report(Block(FIELDS))
    assert report.boot == 1 and report.detect_exit == 0
    assert report.detect["status"] == "installed"
    assert report.persistent is not None and report.persistent.root == "/"
    assert [(m.path, m.mounted, m.root) for m in report.mounts] == [
        ("/opt", True, "/.state/opt.bind"),
        ("/var/lib/openvswitch", False, "-"),
    ]
    assert report.errors == ("first problem", "second = problem")
    assert report.marker_written.startswith("1b4e28ba")


def test_a_report_with_broken_values_keeps_what_it_can() -> None:
    report = parse_report(Block((("boot", "x"), ("detect", "not json"), ("future_key", "1"))))
    assert report.boot is None and report.detect == {}
    assert report.errors == ("canvos-doca-detect --json printed no valid JSON object",)
    damaged = parse_report(Block((), "garbled"))
    assert damaged.problem == "garbled"


@pytest.mark.parametrize(
    ("path", "root"),
    [
        ("/opt", "/.state/opt.bind"),
        ("/var/lib/openvswitch", "/.state/var-lib-openvswitch.bind"),
        ("/etc/init.d", "/.state/etc-init.d.bind"),
        ("/usr/local", "/"),
    ],
)
def test_the_state_root_follows_immucores_naming(path: str, root: str) -> None:
    assert expectation().state_root(path) == root


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"paths": ()}, "at least one"),
        ({"marker_dir": "/srv"}, "not one of the paths"),
        ({"paths": ("opt",), "marker_dir": "opt"}, "not an absolute path"),
        ({"state_dir": "/var/.state"}, "not under /usr/local"),
        ({"kernel_args": ("iommu=pt pci=realloc",)}, "single words"),
    ],
)
def test_an_impossible_expectation_is_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        expectation(**changes)


def test_the_guest_config_carries_the_expectation_and_the_protocol() -> None:
    config = dict(line.split("=", 1) for line in guest_config(expectation(), GUEST).splitlines())
    assert config["TAG"] == TAG and config["PROTOCOL"] == PROTOCOL
    assert config["PATHS"] == "/var/lib/openvswitch /opt"
    assert config["MARKER"] == "/var/lib/openvswitch/.canvos-doca-boot-test"
    assert config["STATE_DIR"] == "/usr/local/.canvos-doca-boot-test"
    assert config["KERNEL_ARGS"] == "iommu=pt" and config["REBOOT"] == "systemctl reboot"
    assert config["BOOTS"] == "2" and config["RUN_DIR"] == "/run/x"


def test_the_guest_config_refuses_multi_line_values() -> None:
    with pytest.raises(ValueError, match="WAIT"):
        guest_config(expectation(), GuestCommands(**{**vars(GUEST), "wait": "a\nb"}))
