"""The disk estimate ``plan`` prints, from the sizes in facts.toml."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import disk, facts, failures

GB = facts.DISK_GB


def needs(versions: int, secrets: bool = False) -> dict[str, int]:
    return {n.what: n.gb for n in disk.estimate(versions, secrets)}


def test_each_extra_k8s_version_adds_its_tarball_and_earthly_layers() -> None:
    one, three = needs(1), needs(3)
    assert three["provider tarballs"] - one["provider tarballs"] == 2 * GB["provider_image"]
    assert three["Earthly state"] - one["Earthly state"] == 2 * GB["earthly_per_k8s_version"]
    # docker holds one image at a time, however many versions are built.
    assert three["docker state"] == one["docker state"] == GB["provider_image"]
    assert disk.total_gb(3, False) - disk.total_gb(1, False) == 2 * (
        GB["provider_image"] + GB["earthly_per_k8s_version"]
    )


def test_user_data_secrets_cost_one_more_iso() -> None:
    assert needs(1, True)["ISO"] - needs(1, False)["ISO"] == GB["iso"]


@pytest.mark.parametrize(("versions", "secrets", "airgap"), [(1, False, False), (2, True, True)])
def test_plan_lines_add_up(versions: int, secrets: bool, airgap: bool) -> None:
    lines = disk.plan_lines(versions, secrets, airgap)
    assert lines[0].strip().startswith("Disk on the engine host")
    items = [n.gb for n in disk.estimate(versions, secrets)]
    shown = [int(m.group(1)) for m in (re.search(r"  (\d+)  ", line) for line in lines[1:]) if m]
    assert shown == items
    total = next(line for line in lines if line.strip().startswith("total"))
    assert int(total.split()[1]) == sum(items) == disk.total_gb(versions, secrets)
    assert ("--doca-airgap" in total) is airgap


def test_the_disk_failure_message_quotes_the_same_estimate() -> None:
    assert f"about {disk.total_gb(1, False)} GB" in failures.DISK_HELP


def test_the_docs_show_what_plan_prints() -> None:
    text = (Path(__file__).parents[2] / "docs" / "building.md").read_text()
    assert "\n".join(disk.plan_lines(1, user_data_secrets=False)) in text
