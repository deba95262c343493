"""What the boot test checks, and the user-data of its ISO variant. Pure.

The test ISO differs from the real one only in its user-data: the user's
user-data plus one Kairos cloud-config stage that runs the guest report script
(``overlays/boottest/canvos-doca-boot-report``) at every boot. The image layers
never see user-data, so building the variant re-runs only the ISO assembly;
the real ISO is never changed.

**DOCA persistent paths** (what must be a mount from the persistent state):
the bind mounts the build added to ``install.bind_mounts`` (DOCA's state such
as the OVS database, plus the user's), then the Kairos persistent paths that
hold DOCA files: the stable links (``/opt/mellanox``, ``/etc/init.d/openibd``)
and the upgrade hazards of the image's DOCA manifest
(``/usr/share/canvos-doca/manifest.json``, ``persistence``). The marker goes
under the first of them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from pipeline import facts, userdata
from pipeline.boottest.protocol import Expectation, GuestCommands, guest_config
from pipeline.errors import InvalidInput, Problem
from pipeline.spec import BuildSpec

STAGE = "boot"
STEP_NAME = "canvos-doca boot test: report to the serial console (boot-test ISO only)"
GUEST_DIR = "/run/canvos-doca-boot-test"
GUEST_SCRIPT = f"{GUEST_DIR}/canvos-doca-boot-report"
GUEST_CONFIG = f"{GUEST_DIR}/config.env"
# The script in the project's overlays (the Dagger module reads it from there).
REPORT_SCRIPT = "boottest/canvos-doca-boot-report"
UNIT = "canvos-doca-boot-test"

# How the script acts on a Kairos host (systemd; serial console ttyS0 as in
# CanvOS's installer grub.cfg, console=ttyS0,115200n8).
KAIROS_GUEST = GuestCommands(
    console="/dev/ttyS0",
    run_dir=GUEST_DIR,
    require=facts.KAIROS_ACTIVE_SENTINEL,
    wait="systemctl is-system-running --wait",
    # Well inside a boot's share of the default limit (7.5 of 30 minutes).
    wait_timeout_s=300,
    detect="canvos-doca-detect",
    reboot="systemctl reboot",
    poweroff="systemctl poweroff",
)


def check_spec(spec: BuildSpec) -> list[Problem]:
    """Why this build cannot be boot-tested (empty when it can)."""
    problems = []
    if spec.arch not in facts.BOOT_TEST_ARCHES:
        allowed = ", ".join(facts.BOOT_TEST_ARCHES)
        problems.append(
            Problem(
                "arch",
                spec.arch,
                f"boot-test runs {allowed} builds only (x86_64 VMs; arm64 needs "
                "qemu-system-aarch64 and AAVMF).",
                f"boot-test a build with arch {allowed}.",
            )
        )
    if spec.force_interactive_install:
        problems.append(
            Problem(
                "force_interactive_install",
                True,
                "the installer would wait at its interactive menu; nobody answers it in the VM.",
                "boot-test the build without --force-interactive-install.",
            )
        )
    return problems


def _depth_then_name(path: str) -> tuple[int, str]:
    # immucore's SortedBindMounts order: less depth first, then alphabetical.
    return (path.count("/"), path)


def _root_of(path: str, roots: Sequence[str]) -> str | None:
    """The longest of ``roots`` that ``path`` is, or lies under."""
    under = [r for r in roots if path == r or path.startswith(r.rstrip("/") + "/")]
    return max(under, key=len) if under else None


def doca_persistent_paths(manifest: Mapping[str, Any]) -> tuple[str, ...]:
    """The DOCA persistent paths of an image, from its DOCA manifest.

    Raises ``ValueError`` naming the missing key when the manifest lacks the
    persistence report (an image built before it existed).
    """
    try:
        persistence = manifest["persistence"]
        roots = list(persistence["persistent_paths"])
        holders = [link["path"] for link in persistence["stable_links"]]
        holders += [hazard["path"] for hazard in persistence["upgrade_hazards"]]
        bind_mounts = list(manifest["bind_mounts"])
    except (KeyError, TypeError) as exc:
        raise ValueError(
            f"the image's DOCA manifest has no {exc} entry: rebuild the image with this "
            "canvos-doca version"
        ) from None
    found = {r for r in (_root_of(p, roots) for p in holders) if r is not None}
    ordered = list(dict.fromkeys(bind_mounts))
    ordered += sorted(found - set(ordered), key=_depth_then_name)
    return tuple(ordered)


def expectation(manifest: Mapping[str, Any], kernel_args: Sequence[str]) -> Expectation:
    """What the booted host must show for this image and these kernel args."""
    paths = doca_persistent_paths(manifest)
    if not paths:
        raise ValueError(
            "the image keeps no DOCA file or state under a persistent path: "
            "nothing for the boot test to check"
        )
    return Expectation(
        paths=paths,
        marker_dir=paths[0],
        persistent=facts.KAIROS_PERSISTENT_PARTITION,
        state_dir=facts.KAIROS_STATE_DIR,
        kernel_args=tuple(kernel_args),
    )


class _Dumper(yaml.SafeDumper):
    """Multi-line strings as literal blocks, so the script stays readable."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def report_step(script: str, expect: Expectation) -> dict[str, Any]:
    """The cloud-config stage step: write the script and its config to /run,
    start the script as a transient unit (it waits for the boot to settle)."""
    config = guest_config(expect, KAIROS_GUEST)
    for name, text in (("report script", script), ("guest config", config)):
        # yip renders file contents as Go templates (plugins/common.go templateSysData).
        if "{{" in text:
            raise ValueError(f"the {name} must not contain '{{{{' (yip would template it)")
    return {
        "name": STEP_NAME,
        "files": [
            {"path": GUEST_SCRIPT, "permissions": 0o755, "content": script},
            {"path": GUEST_CONFIG, "permissions": 0o644, "content": config},
        ],
        "commands": [
            f"systemd-run --unit={UNIT} --collect --no-block /bin/sh {GUEST_SCRIPT} {GUEST_CONFIG}"
        ],
    }


def variant_user_data(user_data: str, script: str, expect: Expectation) -> str:
    """The user's user-data with the test stage appended to ``stages.boot``.

    Also makes the install end by itself: when neither ``install.poweroff``
    nor ``install.reboot`` is true, ``install.poweroff: true`` is set (the
    harness waits for the installer to stop the VM). Nothing else changes.
    Comments are not kept (the file only goes into the test ISO).
    Raises ``InvalidInput`` for user-data canvos-doca cannot use at all.
    """
    data = dict(userdata.parse(user_data).data)  # raises InvalidInput
    install = data.get("install") or {}
    if install.get("poweroff") is not True and install.get("reboot") is not True:
        install["poweroff"] = True
    data["install"] = install
    stages = data.get("stages") or {}
    if not isinstance(stages, dict) or not isinstance(stages.get(STAGE) or [], list):
        raise InvalidInput(
            [
                Problem(
                    "user_data.stages",
                    type(stages).__name__,
                    "must be a mapping of stage names to lists of steps (Kairos cloud-config).",
                    "write it as 'stages:' with e.g. 'boot:' followed by a list of steps.",
                )
            ]
        )
    stages[STAGE] = [*(stages.get(STAGE) or []), report_step(script, expect)]
    data["stages"] = stages
    body = yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)
    return f"{facts.KAIROS_CLOUD_CONFIG_HEADER}\n{body}"
