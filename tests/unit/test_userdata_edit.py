"""The minimal-diff user-data editor: bind mounts added, every other byte kept."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
import yaml

from pipeline import persistence, userdata, userdata_edit
from pipeline.errors import InvalidInput, Problem, UserDataEditError
from tests.unit.test_userdata import GOOD, PASSWORD, TOKEN

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "overlays" / "user-data" / "user-data.yaml"
OVS = ("/etc/openvswitch", "/var/lib/openvswitch")


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def parse(text: str) -> object:
    return yaml.safe_load(text)


def merge(text: str, paths: Sequence[str], os_distribution: str = "ubuntu") -> str:
    """Parse once, then add the paths (what prepare does)."""
    return userdata_edit.add_bind_mounts(userdata.parse(text), paths, os_distribution)


# ------------------------------------------------------------------- merge


def merged_mounts(text: str) -> list[str]:
    data = parse(text)
    assert isinstance(data, dict)
    mounts = data["install"]["bind_mounts"]
    assert isinstance(mounts, list)
    return mounts


# "<M>" in an expected text: the comment the editor puts on the lines it adds.
M = "  " + userdata_edit.MARK
MERGE_CASES = {
    "no install key": (
        "#cloud-config\n# site settings\nstylus:\n  site:\n    name: edge-1  # the name\n",
        "#cloud-config\n# site settings\nstylus:\n  site:\n    name: edge-1  # the name\n"
        "install:<M>\n  bind_mounts:<M>\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n",
    ),
    "install without bind_mounts": (
        "#cloud-config\ninstall:  # how to install\n  # which disk\n  device: auto\n"
        "  poweroff: true\nstylus: {}\n",
        "#cloud-config\ninstall:  # how to install\n  bind_mounts:<M>\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n  # which disk\n  device: auto\n  poweroff: true\n"
        "stylus: {}\n",
    ),
    "block list, zero-indented dashes": (
        "#cloud-config\ninstall:\n  bind_mounts:\n  - /var/lib/wpa  # wifi\n  - /var/lib/ceph\n"
        "  # end of list\n  device: auto\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n  - /var/lib/wpa  # wifi\n  - /var/lib/ceph\n"
        "  - /etc/openvswitch<M>\n  - /var/lib/openvswitch<M>\n  # end of list\n  device: auto\n",
    ),
    "block list, four spaces": (
        "#cloud-config\ninstall:\n    bind_mounts:\n        -   /var/lib/wpa\n",
        "#cloud-config\ninstall:\n    bind_mounts:\n        -   /var/lib/wpa\n"
        "        -   /etc/openvswitch<M>\n        -   /var/lib/openvswitch<M>\n",
    ),
    "flow list": (
        '#cloud-config\ninstall:\n  bind_mounts: [/var/lib/wpa, "/var/lib/ceph"]  # keep\n',
        '#cloud-config\ninstall:\n  bind_mounts: [/var/lib/wpa, "/var/lib/ceph", '
        "/etc/openvswitch, /var/lib/openvswitch]  # keep\n",
    ),
    "empty flow list": (
        "#cloud-config\ninstall:\n  bind_mounts: []\n",
        "#cloud-config\ninstall:\n  bind_mounts: [/etc/openvswitch, /var/lib/openvswitch]\n",
    ),
    "multi-line flow list": (
        "#cloud-config\ninstall:\n  bind_mounts: [\n    /var/lib/wpa,  # wifi\n  ]\n",
        "#cloud-config\ninstall:\n  bind_mounts: [\n    /var/lib/wpa, /etc/openvswitch, "
        "/var/lib/openvswitch,  # wifi\n  ]\n",
    ),
    "empty install": (
        "#cloud-config\ninstall:\nstylus:\n    a: 1\n",
        "#cloud-config\ninstall:\n    bind_mounts:<M>\n        - /etc/openvswitch<M>\n"
        "        - /var/lib/openvswitch<M>\nstylus:\n    a: 1\n",
    ),
    "install: ~": (
        "#cloud-config\ninstall: ~  # nothing yet\n",
        "#cloud-config\ninstall:   # nothing yet\n  bind_mounts:<M>\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n",
    ),
    "empty bind_mounts": (
        "#cloud-config\ninstall:\n  bind_mounts:\n  device: auto\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n  device: auto\n",
    ),
    "flow install mapping": (
        "#cloud-config\ninstall: {device: auto}\n",
        "#cloud-config\ninstall: {device: auto, bind_mounts: [/etc/openvswitch, "
        "/var/lib/openvswitch]}\n",
    ),
    "no final newline": (
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa",
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n",
    ),
    "document start marker": (
        "#cloud-config\n---\ninstall:\n  device: auto\n",
        "#cloud-config\n---\ninstall:\n  bind_mounts:<M>\n    - /etc/openvswitch<M>\n"
        "    - /var/lib/openvswitch<M>\n  device: auto\n",
    ),
    "CRLF": (
        "#cloud-config\r\ninstall:\r\n  device: auto\r\n",
        "#cloud-config\r\ninstall:\r\n  bind_mounts:<M>\r\n    - /etc/openvswitch<M>\r\n"
        "    - /var/lib/openvswitch<M>\r\n  device: auto\r\n",
    ),
}
MERGE_CASES = {
    name: (before, after.replace("<M>", M)) for name, (before, after) in MERGE_CASES.items()
}


@pytest.mark.parametrize("name", list(MERGE_CASES))
def test_merge_user_data(name: str) -> None:
    before, after = MERGE_CASES[name]
    result = merge(before, OVS)
    assert result == after
    assert userdata.problems(result) == []
    # idempotent: merging again changes nothing
    assert merge(result, OVS) == result
    # every other key unchanged
    old, new = parse(before), parse(result)
    assert isinstance(old, dict) and isinstance(new, dict)
    new_install = dict(new["install"])
    mounts = new_install.pop("bind_mounts")
    assert dict(old.get("install") or {}, bind_mounts=None) == dict(new_install, bind_mounts=None)
    assert {k: v for k, v in old.items() if k != "install"} == {
        k: v for k, v in new.items() if k != "install"
    }
    assert mounts[-2:] == list(OVS)


def test_merge_keeps_every_comment() -> None:
    before = MERGE_CASES["block list, zero-indented dashes"][0]
    result = merge(before, OVS)
    old_lines = before.splitlines()
    new_lines = result.splitlines()
    # the result is the original plus inserted lines, in order
    it = iter(new_lines)
    assert all(line in it for line in old_lines)
    assert len(new_lines) == len(old_lines) + 2


def test_merge_skips_kairos_defaults_and_duplicates() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa\n"
    result = merge(
        text,
        ["/etc/ssh", "/var/lib/kubelet/pods", "/var/lib/wpa", "/srv/a", "/srv/a", "/snap/x"],
    )
    assert merged_mounts(result) == ["/var/lib/wpa", "/srv/a"]


def test_merge_skips_paths_under_the_users_entries() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts: [/var/lib/ovs-data]\n"
    result = merge(text, ["/var/lib/ovs-data/db", "/var/lib/ovs-database"])
    assert merged_mounts(result) == ["/var/lib/ovs-data", "/var/lib/ovs-database"]


def test_merge_keeps_users_own_entries_even_when_redundant() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts:\n    - /etc/ssh\n    - /var/lib/wpa\n"
    assert merged_mounts(merge(text, ["/srv/a"])) == [
        "/etc/ssh",
        "/var/lib/wpa",
        "/srv/a",
    ]


def test_merge_with_nothing_to_add_returns_the_text_unchanged() -> None:
    text = "#cloud-config\n# odd   spacing kept\ninstall:   {}\n"
    assert merge(text, []) == text
    assert merge(text, ["/etc/systemd/network"]) == text


def test_merge_rpm_distribution_keeps_snap_paths() -> None:
    text = "#cloud-config\ninstall:\n  device: auto\n"
    assert merged_mounts(merge(text, ["/snap/x"], "sles")) == ["/snap/x"]
    assert merge(text, ["/snap/x"], "ubuntu") == text


def test_merge_template_for_doca_networking() -> None:
    text = TEMPLATE.read_text()
    paths = [m.path for m in persistence.explain_bind_mounts("doca-networking", []).kept]
    result = merge(text, paths)
    assert merged_mounts(result) == list(OVS)
    assert result.startswith("#cloud-config\n")
    for line in text.splitlines():
        assert line in result.splitlines()
    assert merge(text, []) == text


def test_merge_keeps_secrets_and_other_keys() -> None:
    result = merge(GOOD, OVS)
    data = parse(result)
    assert isinstance(data, dict)
    assert data["stylus"]["site"]["edgeHostToken"] == TOKEN
    assert data["stylus"]["registryCredentials"]["password"] == PASSWORD
    assert data["install"]["bind_mounts"] == ["/var/lib/wpa", *OVS]
    assert data["install"]["poweroff"] is True


@pytest.mark.parametrize(
    "text",
    [
        # an anchored install reused elsewhere: editing it would change both
        f"#cloud-config\ninstall: &inst\n  device: auto\ncopy: *inst\ntoken: {TOKEN}\n",
        # the whole document is a flow mapping
        f"#cloud-config\n{{install: {{device: auto}}, token: {TOKEN}}}\n",
        # indented top level
        f"#cloud-config\n  token: {TOKEN}\n  other: 1\n",
        # an explicit document end marker before which the install key would belong
        f"#cloud-config\ntoken: {TOKEN}\n...\n",
        # bind_mounts anchored and reused
        f"#cloud-config\ninstall:\n  bind_mounts: &m [/var/lib/wpa]\n  ephemeral_mounts: *m\n"
        f"t: {TOKEN}\n",
    ],
)
def test_merge_refuses_unusual_layouts_without_leaking(text: str) -> None:
    with pytest.raises(UserDataEditError) as info:
        merge(text, OVS)
    message = str(info.value)
    assert TOKEN not in message
    assert "/etc/openvswitch" in message  # the fix names the paths to add by hand
    assert info.value.problems[0].field == "user_data.install.bind_mounts"


def test_merge_refuses_invalid_user_data_without_leaking() -> None:
    text = f"#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\ntoken: {TOKEN}\n"
    with pytest.raises(InvalidInput) as info:
        merge(text, OVS)
    assert fields(list(info.value.problems)) == ["user_data.install"]
    assert TOKEN not in str(info.value)


def test_merge_refuses_invalid_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        merge("#cloud-config\ninstall: {}\n", ["relative/path"])
    assert fields(list(info.value.problems)) == ["bind_mounts"]


def test_lines_an_earlier_merge_added_are_replaced_and_the_user_s_kept() -> None:
    user = "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa  # mine\n"
    first = merge(user, OVS)
    assert first.count(userdata_edit.MARK) == 2
    assert userdata_edit.without_own_mounts(first) == user
    # a build without OVS state: the earlier lines go, the user's stays
    assert merge(first, ()) == user
    second = merge(first, ("/var/lib/example",))
    assert "openvswitch" not in second and "- /var/lib/wpa  # mine" in second
    # keys the editor created go with their items
    created = merge("#cloud-config\nstylus: {}\n", OVS)
    assert merge(created, ()) == "#cloud-config\nstylus: {}\n"
    # the user's own unmarked entry of the same path is never removed
    own = "#cloud-config\ninstall:\n  bind_mounts:\n    - /etc/openvswitch\n"
    assert merge(merge(own, OVS), ()) == own
