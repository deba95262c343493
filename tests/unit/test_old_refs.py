"""Old CanvOS tags: .arg holds only keys the Earthfile declares, and what an old
ref differs in (Kairos generation, a tag whose PE_VERSION is another) is said."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeline import canvos, context, earthfile, facts
from pipeline.spec import BuildSpec
from tests import earthfiles
from tests.unit.conftest import git_commit_all, old_tree, overlays, render_run, run, sourced, tree


@pytest.mark.parametrize("text", [earthfiles.V4_6, earthfiles.V4_9, earthfiles.MAIN])
def test_arg_keys_are_those_the_earthfile_declares(text: str) -> None:
    spec = BuildSpec(custom_tag="doca", http_proxy="http://proxy.example.com:3128")
    prepared = context.prepare(spec, tree(text), overlays())
    keys = [
        line.split("=", 1)[0]
        for line in prepared.files[".arg"].splitlines()
        if not line.startswith("#")
    ]
    declared = earthfile.read(text).declared
    assert keys and set(keys) <= declared
    assert ("FORCE_INTERACTIVE_INSTALL" in keys) == ("FORCE_INTERACTIVE_INSTALL" in declared)


def test_v4_6_gets_no_force_interactive_install_key(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    code, _, err = render_run(old_tree(canvos_tree), out)
    assert code == 0, err
    values = sourced(out / ".arg")
    assert "FORCE_INTERACTIVE_INSTALL" not in values
    assert values["CUSTOM_TAG"] == "" and values["OS_VERSION"] == "22.04"


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--force-interactive-install"], "force_interactive_install"),
        (["--nvidia-driver-branch", "580"], "nvidia_driver_branch"),
        (["--install-nvidia-gpu-drivers"], "install_nvidia_gpu_drivers"),
    ],
)
def test_a_setting_the_old_earthfile_would_ignore_is_refused(
    canvos_tree: Path, tmp_path: Path, args: list[str], field: str
) -> None:
    code, _, err = render_run(old_tree(canvos_tree), tmp_path / "out", *args)
    assert code == 2
    assert f"{field}: cannot be set for the CanvOS checkout" in err and "does not declare" in err


def test_kairos_v3_bases_are_warned_about() -> None:
    prepared = context.prepare(BuildSpec(), tree(earthfiles.V4_6), overlays())
    (warning,) = [w for w in prepared.warnings if "Kairos v3" in w]
    assert earthfiles.V4_6_KAIROS in warning
    assert f"Kairos v{facts.KAIROS_PATH_LIST_MAJOR}" in warning
    for text in (earthfiles.V4_9, earthfiles.MAIN):
        current = context.prepare(BuildSpec(), tree(text), overlays())
        assert not any("persistent-path list" in w for w in current.warnings)


def test_a_tag_whose_earthfile_pins_another_pe_version_is_warned_about() -> None:
    spec = BuildSpec(canvos_ref="v4.10.0")
    prepared = context.prepare(spec, tree(earthfiles.V4_10_0), overlays())
    assert any(
        f"CanvOS tag v4.10.0 pins PE_VERSION {earthfiles.V4_10_0_PE_VERSION}" in w
        for w in prepared.warnings
    )
    matching = context.prepare(BuildSpec(canvos_ref="v4.9.38"), tree(), overlays())
    assert not any("pins PE_VERSION" in w for w in matching.warnings)


def test_the_tag_of_a_local_checkout_is_compared_too(canvos_tree: Path) -> None:
    old_tree(canvos_tree, earthfiles.V4_10_0)
    git_commit_all(canvos_tree)
    subprocess.run(["git", "-C", str(canvos_tree), "tag", "v4.10.0"], check=True)
    code, stdout, err = run("plan", "--canvos", str(canvos_tree))
    assert code == 0, err
    assert f"CanvOS tag v4.10.0 pins PE_VERSION {earthfiles.V4_10_0_PE_VERSION}" in stdout


def test_refusals_name_the_ref_they_come_from() -> None:
    problems = canvos.check_tree(
        BuildSpec(force_interactive_install=True),
        earthfile.read(earthfiles.V4_6),
        None,
        label="CanvOS v4.6.24",
    )
    assert [p.field for p in problems] == ["force_interactive_install"]
    assert "cannot be set for CanvOS v4.6.24" in problems[0].message
