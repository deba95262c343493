"""What the boot test checks for an image, and the user-data of the test ISO."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import bootstage, facts, userdata, userdata_edit
from pipeline.boottest.protocol import MARKER_NAME
from pipeline.errors import InvalidInput
from pipeline.spec import BuildSpec
from tests.boot.samples import MANIFEST
from tests.boot.tinyvm import REPORT_SCRIPT

ROOT = Path(__file__).parents[2]
SCRIPT = REPORT_SCRIPT.read_text()


def without_bind_mounts() -> dict[str, Any]:
    manifest = copy.deepcopy(MANIFEST)
    manifest["bind_mounts"] = []
    return manifest


def test_doca_paths_are_its_bind_mounts_then_the_kairos_paths_holding_doca_files() -> None:
    assert bootstage.doca_persistent_paths(MANIFEST) == (
        "/var/lib/openvswitch",
        "/var/lib/canvos-doca-test",
        "/opt",
        "/etc/init.d",
        "/usr/libexec",
    )


def test_the_marker_goes_under_a_doca_bind_mount_first_else_under_opt() -> None:
    assert bootstage.expectation(MANIFEST, ()).marker_dir == "/var/lib/openvswitch"
    plain = bootstage.expectation(without_bind_mounts(), ("iommu=pt",))
    assert plain.marker_dir == "/opt" and plain.kernel_args == ("iommu=pt",)
    assert plain.persistent == facts.KAIROS_PERSISTENT_PARTITION
    assert plain.state_dir == facts.KAIROS_STATE_DIR


def test_an_old_manifest_without_persistence_is_refused_with_the_missing_key() -> None:
    manifest = {k: v for k, v in MANIFEST.items() if k != "persistence"}
    with pytest.raises(ValueError, match=r"'persistence'.*rebuild the image"):
        bootstage.expectation(manifest, ())


def test_an_image_with_nothing_persistent_has_nothing_to_test() -> None:
    manifest = without_bind_mounts()
    manifest["persistence"].update(stable_links=[], upgrade_hazards=[])
    with pytest.raises(ValueError, match="nothing for the boot test to check"):
        bootstage.expectation(manifest, ())


# ------------------------------------------------------------------ user-data


def default_user_data() -> str:
    return (ROOT / "overlays" / "user-data" / "user-data.yaml").read_text()


def stage_steps(text: str) -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = yaml.safe_load(text)["stages"][bootstage.STAGE]
    return steps


def test_the_default_user_data_gets_the_stage_and_nothing_else() -> None:
    expect = bootstage.expectation(MANIFEST, ("iommu=pt",))
    parsed = userdata.parse(default_user_data())
    user = userdata_edit.add_bind_mounts(parsed, ["/var/lib/openvswitch"])
    text = bootstage.variant_user_data(user, SCRIPT, expect)
    assert text.startswith("#cloud-config\n")
    assert userdata.problems(text) == []
    got, mine = yaml.safe_load(text), yaml.safe_load(user)
    assert got.pop("stages") == {bootstage.STAGE: [bootstage.report_step(SCRIPT, expect)]}
    assert got == mine  # install (device, poweroff, bind mounts) as the user wrote it
    [step] = stage_steps(text)
    script, config = step["files"]
    assert script["content"] == SCRIPT and script["permissions"] == 0o755
    assert "\nMARKER=/var/lib/openvswitch/" + MARKER_NAME + "\n" in config["content"]
    assert f"REQUIRE={facts.KAIROS_ACTIVE_SENTINEL}\n" in config["content"]
    assert step["commands"] == [
        f"systemd-run --unit={bootstage.UNIT} --collect --no-block /bin/sh "
        f"{script['path']} {config['path']}"
    ]


def test_the_users_own_boot_steps_run_first() -> None:
    user = "#cloud-config\ninstall:\n  reboot: true\nstages:\n  boot:\n    - name: mine\n"
    expect = bootstage.expectation(MANIFEST, ())
    text = bootstage.variant_user_data(user, SCRIPT, expect)
    assert [s["name"] for s in stage_steps(text)] == ["mine", bootstage.STEP_NAME]
    # reboot: true also ends the install (the harness runs QEMU with -no-reboot).
    assert yaml.safe_load(text)["install"] == {"reboot": True}


@pytest.mark.parametrize(
    "user",
    [
        "#cloud-config\nstylus:\n  site: {}\n",
        "#cloud-config\ninstall:\n  device: auto\n",
        "#cloud-config\ninstall:\n  poweroff: false\n  reboot: false\n",
    ],
)
def test_an_install_that_would_wait_is_made_to_power_off(user: str) -> None:
    text = bootstage.variant_user_data(user, SCRIPT, bootstage.expectation(MANIFEST, ()))
    install = yaml.safe_load(text)["install"]
    assert install["poweroff"] is True
    assert {k: v for k, v in install.items() if k not in ("poweroff",)} == {
        k: v for k, v in (yaml.safe_load(user).get("install") or {}).items() if k != "poweroff"
    }


def test_unusable_stages_are_refused_with_the_field() -> None:
    user = "#cloud-config\nstages: [boot]\n"
    with pytest.raises(InvalidInput, match=r"user_data\.stages"):
        bootstage.variant_user_data(user, SCRIPT, bootstage.expectation(MANIFEST, ()))


def test_invalid_user_data_is_refused_before_anything_is_built() -> None:
    with pytest.raises(InvalidInput, match="#cloud-config"):
        bootstage.variant_user_data("install: {}\n", SCRIPT, bootstage.expectation(MANIFEST, ()))


def test_a_template_marker_in_the_script_is_refused() -> None:
    # yip renders file contents as Go templates: {{ would be replaced on the host.
    with pytest.raises(ValueError, match="yip would template it"):
        bootstage.report_step(SCRIPT + "echo {{ .Values }}\n", bootstage.expectation(MANIFEST, ()))


@pytest.mark.parametrize(
    ("knobs", "field"),
    [
        ({"arch": "arm64"}, "arch"),
        ({"force_interactive_install": True}, "force_interactive_install"),
    ],
)
def test_builds_the_vm_cannot_test_are_refused(knobs: dict[str, Any], field: str) -> None:
    [problem] = bootstage.check_spec(BuildSpec(**knobs))
    assert problem.field == field and problem.fix
    assert bootstage.check_spec(BuildSpec()) == []
