"""Presets: defaults < preset < config < explicit flags, and what plan and
``canvos-doca presets`` say about them."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from pipeline import hostitems, inputs, presets, spec
from pipeline.context import describe_ref
from pipeline.description import BfbRecord
from pipeline.errors import InvalidInput
from pipeline.plan import plan_text
from tests.unit.conftest import run

REPO = Path(__file__).resolve().parents[2]
PRESET = "ai-ra-infra"
# The preset file itself, read as plain YAML: the expectations below come
# from the shipped file, not from the code under test.
RAW = yaml.safe_load((REPO / "presets" / f"{PRESET}.yaml").read_text())


def load(config: str | None = None, **flags: object) -> spec.BuildSpec:
    return inputs.load_spec(config, "config.yaml", flags)


# ------------------------------------------------------------ precedence


def test_the_preset_sets_values_over_the_defaults() -> None:
    built = load(preset=PRESET)
    assert spec.default("doca_profile") != RAW["doca_profile"]
    assert built.doca_profile == RAW["doca_profile"]
    assert list(built.extra_packages) == RAW["extra_packages"]
    assert list(built.doca_packages) == RAW["doca_packages"]
    assert list(built.kernel_args) == RAW["kernel_args"]


def test_the_config_file_overrides_the_preset() -> None:
    built = load(f"preset: {PRESET}\ndoca_profile: doca-ofed\nkernel_args: [iommu=pt]\n")
    assert built.doca_profile == "doca-ofed"
    assert built.kernel_args == ("iommu=pt",)
    # what the config does not set still comes from the preset
    assert list(built.modules_load) == RAW["modules_load"]


def test_an_explicit_flag_overrides_the_config_and_the_preset() -> None:
    config = f"preset: {PRESET}\ndoca_profile: doca-ofed\n"
    assert load(config, doca_profile="doca-roce").doca_profile == "doca-roce"
    assert load(None, preset=PRESET, doca_profile="doca-roce").doca_profile == "doca-roce"


def test_an_omitted_flag_does_not_hide_the_preset() -> None:
    # The CLI and Dagger hand every knob in; None means "not given".
    flags = {name: None for name in spec.FLAG_FIELD_NAMES}
    built = inputs.load_spec(None, "config", {**flags, "preset": PRESET})
    assert built.doca_profile == RAW["doca_profile"]
    assert list(built.enable_units) == RAW["enable_units"]


def test_the_preset_flag_wins_over_the_config_preset_and_empty_means_none() -> None:
    assert load(f"preset: {PRESET}\n").preset == PRESET
    cleared = load(f"preset: {PRESET}\n", preset="")
    assert cleared.preset == "" and cleared.doca_profile == spec.default("doca_profile")


def test_the_cli_applies_the_same_layers(tmp_path: Path) -> None:
    config = tmp_path / "knobs.yaml"
    config.write_text(f"preset: {PRESET}\ndoca_profile: doca-ofed\n")
    code, out, err = run("plan", "--config", str(config), "--doca-profile", "doca-roce")
    assert code == 0, err
    assert "profile doca-roce" in out
    assert "    doca_profile = doca-roce  (overrides preset ai-ra-infra)" in out
    assert f"    modules_load = {', '.join(RAW['modules_load'])}  (preset ai-ra-infra)" in out


# --------------------------------------------------------- unknown names


@pytest.mark.parametrize(
    "name", ["nope", "../presets/ai-ra-infra", "AI-RA-INFRA", "ai-ra-infra.yaml"]
)
def test_an_unknown_preset_lists_the_known_ones(name: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        load(preset=name)
    (problem,) = raised.value.problems
    assert problem.field == "preset"
    assert f"Known presets: {PRESET}." in problem.message


def test_the_cli_names_the_unknown_preset_on_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run("plan", "--preset", "ai-ra-infar")
    assert code == 2
    assert err.startswith(
        "canvos-doca: invalid input: preset='ai-ra-infar': is not a known preset."
    )
    assert PRESET in err and len(err.splitlines()) == 1


def test_presets_do_not_nest_and_are_checked_like_config_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(presets, "directory", lambda: tmp_path)
    presets.load.cache_clear()
    try:
        (tmp_path / "nested.yaml").write_text(f"description: x\npreset: {PRESET}\n")
        (tmp_path / "typo.yaml").write_text("description: x\ndoca_profle: doca-all\n")
        with pytest.raises(InvalidInput, match="presets do not nest"):
            presets.load("nested")
        with pytest.raises(InvalidInput, match="did you mean doca_profile"):
            presets.load("typo")
    finally:
        presets.load.cache_clear()


# ------------------------------------------------------------ the listing


def test_the_presets_command_lists_each_preset_with_its_description() -> None:
    code, out, _ = run("presets")
    assert code == 0
    shipped = sorted(p.stem for p in (REPO / "presets").glob("*.yaml"))
    lines = out.splitlines()
    assert [line.split()[0] for line in lines] == shipped
    assert lines[shipped.index(PRESET)].split(None, 1)[1] == RAW["description"]


# -------------------------------------------------------- plan and the BFB


def test_plan_marks_the_values_that_came_from_the_preset() -> None:
    code, out, err = run("plan", "--preset", PRESET)
    assert code == 0, err
    settings = out.split("Settings that differ from the defaults\n", 1)[1]
    marked = [line.split(" = ")[0].strip() for line in settings.splitlines() if "(preset " in line]
    knobs = set(RAW) - {"description", "bfb"}
    assert set(marked) == knobs
    # a file's content is not shown, only path, mode and size
    assert "configure lldp" not in out
    assert "/etc/lldpd.d/rcp-lldpd.conf (mode 0644" in out


def test_plan_warns_without_a_bfb_when_the_preset_expects_one() -> None:
    assert RAW["bfb"] == "expected"
    _, out, _ = run("plan", "--preset", PRESET)
    assert "no --bfb is given" in out and "skips flashing" in out
    _, plain, _ = run("plan")
    assert "--bfb" not in plain


def test_plan_shows_the_bfb_name_size_and_checksum(tmp_path: Path) -> None:
    bfb = tmp_path / "bf-bundle-2.9.1-40_24.11_ubuntu-22.04_prod.bfb"
    data = bytes(range(256)) * 5000
    bfb.write_bytes(data)
    code, out, err = run("plan", "--preset", PRESET, "--bfb", str(bfb))
    assert code == 0, err
    line = next(line for line in out.splitlines() if line.startswith("  BFB"))
    assert bfb.name in line and f"{len(data)} bytes" in line and "1.3 MB" in line
    assert hashlib.sha256(data).hexdigest() in line
    assert "no --bfb is given" not in out


@pytest.mark.parametrize(
    "name", ["bundle.tar", "-rf.bfb", "a b.bfb", "x;reboot.bfb", ".bfb", "é.bfb"]
)
def test_a_bfb_with_a_bad_name_is_refused(tmp_path: Path, name: str) -> None:
    bfb = tmp_path / name
    bfb.write_bytes(b"x")
    code, _, err = run("plan", "--bfb", str(bfb))
    assert code == 2 and "bfb=" in err and "is not a .bfb file name" in err


def test_an_empty_or_missing_bfb_is_refused(tmp_path: Path) -> None:
    empty = tmp_path / "empty.bfb"
    empty.write_bytes(b"")
    assert "is empty" in run("plan", "--bfb", str(empty))[2]
    assert "bfb=" in run("plan", "--bfb", str(tmp_path / "gone.bfb"))[2]
    (tmp_path / "dir.bfb").mkdir()
    assert "is a directory" in run("plan", "--bfb", str(tmp_path / "dir.bfb"))[2]


def test_render_records_the_bfb_and_copies_it_under_the_host_layout(
    canvos_tree: Path, tmp_path: Path
) -> None:
    bfb = tmp_path / "bf-bundle-test.bfb"
    bfb.write_bytes(b"\x00BFB" * 4096)
    out = tmp_path / "out"
    code, _, err = run(
        "render", "--canvos", str(canvos_tree), "--out", str(out), "--preset", PRESET,
        "--bfb", str(bfb),
    )  # fmt: skip
    assert code == 0, err
    copied = out / hostitems.BFB_DIR / bfb.name
    assert copied.read_bytes() == bfb.read_bytes()
    record = json.loads((out / "canvos-doca.json").read_text())
    assert record["bfb"] == {
        "name": bfb.name,
        "size": bfb.stat().st_size,
        "sha256": hashlib.sha256(bfb.read_bytes()).hexdigest(),
    }
    assert record["spec"]["preset"] == PRESET


def test_the_ai_ra_infra_preset_covers_the_nodeprep_contract() -> None:
    # What the nodeprep checks on an immutable root (../shared DOMAIN section 7).
    built = load(preset=PRESET)
    assert built.doca_profile == "doca-all"
    assert {
        "lldpd", "netplan.io", "pv", "psmisc", "pciutils", "nfs-common", "gcc-12", "libgcc-12-dev",
    } <= set(built.extra_packages)  # fmt: skip
    # Only in the DOCA repository: installed by the DOCA step, which alone has it.
    assert built.doca_packages == ("mlnx-nfsrdma-dkms",)
    assert "mlnx-nfsrdma-dkms" not in built.extra_packages
    (lldpd,) = built.host_files
    assert lldpd.path == "/etc/lldpd.d/rcp-lldpd.conf" and lldpd.mode == 0o644
    assert lldpd.content == "configure system hostname .\nconfigure lldp portidsubtype iframe\n"
    assert set(built.enable_units) == {"lldpd.service", "rshim.service"}
    assert built.modprobe_options == ("ib_core netns_mode=0",)
    assert set(built.modules_load) == {"rpcrdma", "xprtrdma", "svcrdma"}
    # One default right on Intel and AMD: amd_iommu has no "on" value.
    assert set(built.kernel_args) == {"intel_iommu=on", "iommu=pt"}
    assert presets.load(PRESET).bfb_expected


def test_a_dagger_plan_shows_the_bfb_without_a_checksum() -> None:
    # The module asks the engine only for name and size; the image build
    # records the checksum.
    description = replace(
        describe_ref(load(preset=PRESET)), bfb=BfbRecord("bf-bundle.bfb", 734_003_200)
    )
    text = plan_text(description)
    line = next(line for line in text.splitlines() if line.startswith("  BFB "))
    assert line.split(None, 1)[1] == (
        "bf-bundle.bfb (734.0 MB, 734003200 bytes, sha256 recorded by the image build)"
    )
