"""The host-item knobs (host_files, enable_units, modprobe_options,
modules_load): their checks, and the build-context layout render writes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pipeline import facts, hostitems, inputs, persistence, spec
from pipeline.errors import InvalidInput, Problem
from tests.unit.conftest import run

SECRET = "s3cr3t-token-ABCDEF0123456789"


def problems(config: str) -> list[Problem]:
    with pytest.raises(InvalidInput) as raised:
        inputs.load_spec(config, "config.yaml")
    return raised.value.problems


def one(config: str) -> Problem:
    (problem,) = problems(config)
    return problem


def files_config(path: str, content: str = "x\n", mode: str = '"0644"') -> str:
    return f"host_files:\n  {path}:\n    mode: {mode}\n    content: {content!r}\n"


# ------------------------------------------------------------ host_files


def test_a_file_with_mode_and_content_is_read_as_written() -> None:
    built = inputs.load_spec(
        "host_files:\n  /etc/app/app.conf:\n    mode: 0600\n    content: |\n      a = 1\n"
        '  /usr/lib/app/run.sh: "#!/bin/sh\\n"\n',
        "config.yaml",
    )
    first, second = built.host_files
    # an unquoted 0600 is YAML 1.1's number 384: the text written is used
    assert (first.path, first.mode, first.content) == ("/etc/app/app.conf", 0o600, "a = 1\n")
    assert (second.path, second.mode) == ("/usr/lib/app/run.sh", spec.DEFAULT_FILE_MODE)


@pytest.mark.parametrize(
    "path",
    ["etc/app.conf", "/etc/../root/.ssh/authorized_keys", "/etc//app.conf", "/etc/./a",
     "/etc/app dir/x", "/etc/app/", "/etc/$(reboot)", "/"],
)  # fmt: skip
def test_a_destination_must_be_absolute_normal_and_plain(path: str) -> None:
    problem = one(files_config(path))
    assert problem.field.startswith("host_files[")


@pytest.mark.parametrize("persistent", (*facts.KAIROS_PERSISTENT_STATE_PATHS[:6], "/usr/local"))
def test_a_destination_under_a_persistent_path_is_refused(persistent: str) -> None:
    problem = one(files_config(f"{persistent}/canvos-doca-test.conf"))
    assert "persistent" in problem.message
    assert problem.value == f"{persistent}/canvos-doca-test.conf"


def test_the_fix_names_the_knob_for_modprobe_and_systemd_files() -> None:
    modprobe = next(p for p in facts.KAIROS_PERSISTENT_STATE_PATHS if p.endswith("modprobe.d"))
    assert "modprobe_options" in one(files_config(f"{modprobe}/x.conf")).fix
    systemd = next(p for p in facts.KAIROS_PERSISTENT_STATE_PATHS if p.endswith("/systemd"))
    fix = one(files_config(f"{systemd}/system/x.service")).fix
    assert "enable_units" in fix and facts.SYSTEMD_UNIT_DIR in fix


def test_a_path_the_build_makes_persistent_is_refused_too() -> None:
    config = "bind_mounts: [/var/lib/app]\n" + files_config("/var/lib/app/state.json")
    assert "persistent" in one(config).message


@pytest.mark.parametrize("mount", facts.KAIROS_BOOT_MOUNTS)
def test_a_destination_under_a_boot_mount_is_refused(mount: str) -> None:
    assert "mounted over at every boot" in one(files_config(f"{mount}/x")).message


OVERLAYS = Path(__file__).resolve().parents[2] / "overlays"
# Targets the DOCA stage writes after placing the host files (customize.sh).
OWN_TARGETS = [
    f"{persistence.IMAGE_SHARE_DIR}/manifest.env",
    f"{persistence.IMAGE_SHARE_DIR}/state/host-files",
    f"{persistence.IMAGE_LIB_DIR}/lib.sh",
    persistence.IMAGE_LIB_DIR,
    persistence.IMAGE_OEM_CONFIG,
    facts.HOST_MODPROBE_FILE,
    facts.HOST_MODULES_LOAD_FILE,
    *persistence.IMAGE_TOOLS,
]


@pytest.mark.parametrize("path", OWN_TARGETS)
def test_a_destination_the_doca_stage_writes_itself_is_refused(path: str) -> None:
    """A later step would replace the user's file without a word."""
    problem = one(files_config(path))
    assert problem.field == f"host_files[{path}]" and problem.value == path
    assert "writes itself" in problem.message and "replaced or discarded" in problem.message
    assert "modprobe_options" in problem.fix


def test_the_bfb_directory_is_refused_as_the_stage_s_own() -> None:
    path = f"{facts.NODEPREP_BFB_DIR}/bf-bundle.bfb"
    # under /opt (persistent) too: the stage's own path is the reason given
    assert "writes itself" in one(files_config(path)).message


@pytest.mark.parametrize(
    "path",
    [f"{facts.SYSTEMD_MODPROBE_DIR}/site.conf", f"{persistence.IMAGE_SHARE_DIR}x/a.conf"],
)
def test_neighbours_of_the_stage_s_paths_are_allowed(path: str) -> None:
    assert inputs.load_spec(files_config(path), "c").host_files[0].path == path


def test_the_stage_s_own_paths_are_the_scripts_paths() -> None:
    """lib.sh and customize.sh write where the refusal looks."""
    lib = (OVERLAYS / "doca" / "install" / "lib.sh").read_text()
    customize = (OVERLAYS / "doca" / "tools" / "customize.sh").read_text()
    assert f"\nCANVOS_DOCA_SHARE={persistence.IMAGE_SHARE_DIR}\n" in lib
    assert f"\nCANVOS_DOCA_LIBDIR={persistence.IMAGE_LIB_DIR}\n" in lib
    for tool in persistence.IMAGE_TOOLS:
        assert f" {tool}\n" in customize, tool


def test_a_misspelt_key_of_a_file_entry_is_named() -> None:
    problem = one("host_files:\n  /etc/app.conf:\n    contents: |\n      x\n")
    assert problem.field == "host_files[/etc/app.conf].contents"
    assert "content, source, mode" in problem.message
    assert "did you mean content?" in problem.fix


@pytest.mark.parametrize("mode", ['"4755"', '"0888"', '"rwx"', "[1]", '"7555"'])
def test_a_mode_must_be_plain_octal_permission_bits(mode: str) -> None:
    problem = one(files_config("/etc/app.conf", mode=mode))
    if problem.field.endswith(".mode") and "octal" in problem.message:
        assert "0644" in problem.fix
    else:
        assert "set-id" in problem.message


def test_a_trailing_space_in_a_quoted_mode_is_tolerated() -> None:
    # The quoted "755 " is stripped before it is read: 0o755.
    built = inputs.load_spec(files_config("/etc/a", mode='"755 "'), "c")
    assert built.host_files[0].mode == 0o755


def test_content_is_never_shown_in_messages(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    huge = f"token: {SECRET}\n" + "x" * spec.HOST_FILE_LIMIT
    bad = [
        files_config("/etc/app.conf", content=huge),
        files_config("/etc/app.conf", content=SECRET, mode=f'"{SECRET}"'),
        f"host_files:\n  /etc/app.conf:\n    content: {SECRET}\n    owner: {SECRET}\n",
        f"host_files:\n  /etc/app.conf:\n    content: [{SECRET}]\n",
        f"host_files: [{SECRET}]\n",
        f'host_files:\n  /etc/app.conf:\n    content: "{SECRET}\\0"\n',
    ]
    for index, config in enumerate(bad):
        path = tmp_path / f"bad{index}.yaml"
        path.write_text(config)
        code, out, err = run("plan", "--config", str(path))
        assert code == 2, config[:80]
        assert SECRET not in err + out
        assert "host_files" in err


def test_huge_content_is_refused_by_size() -> None:
    problem = one(files_config("/etc/big", content="y" * (spec.HOST_FILE_LIMIT + 1)))
    assert problem.field == "host_files[/etc/big].content"
    assert str(spec.HOST_FILE_LIMIT) in problem.message


def test_too_many_files_are_refused() -> None:
    many = tuple(spec.PlacedFile(f"/etc/app/{i}.conf", "") for i in range(spec.MAX_HOST_FILES + 1))
    with pytest.raises(InvalidInput, match="more than"):
        spec.validate(spec.BuildSpec(host_files=many))


def test_host_files_is_no_cli_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        run("plan", "--host-files", "/etc/x=y")


# ------------------------------------------------- units, modules, options


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--enable-units", "lldpd"),
        ("--enable-units", "../../etc/passwd.service"),
        ("--enable-units", "a b.service"),
        ("--enable-units", "x.service;reboot"),
        ("--modules-load", "rpc rdma"),
        ("--modules-load", "../rpcrdma"),
        ("--modules-load", "m" * 64),
        ("--modprobe-options", "ib_core"),
        ("--modprobe-options", "ib_core netns_mode=0 `reboot`"),
        ("--modprobe-options", "install ib_core /bin/sh"),
        ("--modprobe-options", "ib_core  netns_mode=0"),
    ],
)
def test_hostile_item_values_are_refused_naming_the_knob(flag: str, value: str) -> None:
    code, _, err = run("plan", flag, value)
    assert code == 2
    assert f"{flag[2:].replace('-', '_')}=" in err and "Fix:" in err


def test_item_values_in_their_usual_forms_pass() -> None:
    code, out, err = run(
        "plan", "--enable-units", "lldpd.service,getty@ttyS0.service,rshim.service",
        "--modules-load", "rpcrdma,xprtrdma", "--modprobe-options",
        "ib_core netns_mode=0;mlx5_core prof_sel=2 debug_mask=0x1,0x2",
    )  # fmt: skip
    assert code == 0, err
    assert "modprobe_options = ib_core netns_mode=0; mlx5_core prof_sel=2 debug_mask=0x1,0x2" in out


# ------------------------------------------------------- the context layout


def test_render_writes_the_host_layout_from_the_preset(canvos_tree: Path, tmp_path: Path) -> None:
    config = tmp_path / "knobs.yaml"
    config.write_text(
        "preset: ai-ra-infra\n"
        "host_files:\n  /etc/lldpd.d/rcp-lldpd.conf:\n    mode: '0644'\n    content: |\n"
        "      configure system hostname .\n      configure lldp portidsubtype iframe\n"
        "  /usr/lib/app/hook.sh:\n    mode: '0755'\n    content: \"#!/bin/sh\\n\"\n"
    )
    out = tmp_path / "out"
    code, _, err = run("render", "--canvos", str(canvos_tree), "--out", str(out),
                       "--config", str(config))  # fmt: skip
    assert code == 0, err
    host = out / hostitems.HOST_DIR

    def items(name: str) -> list[str]:
        text = (host / name).read_text()
        return [line for line in text.splitlines() if line and not line.startswith("#")]

    entries = [line.split(" ", 2) for line in items("files.list")]
    assert [(mode, dest) for mode, _, dest in entries] == [
        ("0644", "/etc/lldpd.d/rcp-lldpd.conf"),
        ("0755", "/usr/lib/app/hook.sh"),
    ]
    for _, digest, _ in entries:
        data = (host / "files" / digest).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest
    lldpd = (host / "files" / entries[0][1]).read_text().splitlines()
    assert lldpd == ["configure system hostname .", "configure lldp portidsubtype iframe"]
    assert items("units.list") == ["lldpd.service", "rshim.service"]
    assert items("modprobe.list") == ["ib_core netns_mode=0"]
    assert items("modules-load.list") == ["rpcrdma", "xprtrdma", "svcrdma"]
    assert (out / hostitems.BFB_DIR).is_dir()


def test_without_host_items_the_layout_is_there_and_empty(
    canvos_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, err = run("render", "--canvos", str(canvos_tree), "--out", str(out))
    assert code == 0, err
    host = out / hostitems.HOST_DIR
    for name in ("files.list", "units.list", "modprobe.list", "modules-load.list"):
        assert all(line.startswith("#") for line in (host / name).read_text().splitlines())
    assert not (host / "files").exists()


def test_host_items_leave_the_doca_block_alone() -> None:
    # Host items are context files only: the rendered Dockerfile (its DOCA
    # install step, and so its cache key) is the same with or without them.
    from pipeline.context import prepare
    from tests.unit.conftest import overlays, tree

    plain = prepare(inputs.load_spec(None, "c", {"doca_profile": "doca-all"}), tree(), overlays())
    items = prepare(
        inputs.load_spec(None, "c", {"preset": "ai-ra-infra", "doca_packages": [],
                                     "extra_packages": [], "kernel_args": []}),
        tree(),
        overlays(),
    )  # fmt: skip
    dockerfile = facts.CANVOS_DOCKERFILE
    assert plain.files[dockerfile] == items.files[dockerfile]
    listed = f"{hostitems.HOST_DIR}/files.list"
    assert plain.files[listed] != items.files[listed]
