"""Kairos persistence model, user-data checks and the user-data merge."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import doca, facts, kairos
from pipeline.errors import InvalidInput, Problem

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "overlays" / "user-data" / "user-data.yaml"
OVS = ("/etc/openvswitch", "/var/lib/openvswitch")
OPENSM = ("/etc/opensm", "/var/cache/opensm")
TOKEN = "tok-3f9a8c7e-SECRET-d41d8cd98f00b204"
PASSWORD = "pw-S3cr3t-registry-pass"


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def parse(text: str) -> object:
    return yaml.safe_load(text)


# ------------------------------------------------------------------- model


def test_data_source_is_recorded() -> None:
    assert kairos.KAIROS_INIT_VERSION == "v0.17.1"
    assert "v0.17.1" in facts.KAIROS_SOURCE
    assert "00_rootfs.yaml" in facts.KAIROS_SOURCE


def test_path_lists_are_clean() -> None:
    for paths in (
        kairos.PERSISTENT_STATE_PATHS,
        kairos.UBUNTU_EXTRA_BINDS,
        kairos.RPM_EXTRA_BINDS,
        kairos.RW_PATHS,
    ):
        assert len(set(paths)) == len(paths)
        for path in paths:
            assert path.startswith("/") and not path.endswith("/")
    assert len(kairos.PERSISTENT_STATE_PATHS) == 37
    assert kairos.RW_PATHS == ("/var", "/etc", "/srv")
    assert kairos.UBUNTU_EXTRA_BINDS == ("/snap", "/var/snap", "/var/lib/snapd")
    assert kairos.PERSISTENT_PARTITION == "/usr/local"


@pytest.mark.parametrize(
    ("path", "os_distribution", "expected"),
    [
        ("/etc/ssh", "ubuntu", True),
        ("/etc/ssh/sshd_config.d/10.conf", "ubuntu", True),
        ("/etc/modprobe.d/mlnx.conf", "ubuntu", True),
        ("/etc/systemd/system/openibd.service", "ubuntu", True),
        ("/etc/init.d/openibd", "ubuntu", True),
        ("/opt/mellanox/doca", "ubuntu", True),
        ("/var/log/openvswitch", "ubuntu", True),
        ("/usr/local", "ubuntu", True),
        ("/usr/local/bin/tool", "ubuntu", True),
        ("/usr/libexec/x", "ubuntu", True),
        ("/snap/bin", "ubuntu", True),
        ("/snap/bin", "rhel", False),
        ("/usr/share/pki/trust/anchors/ca.pem", "sles", True),
        ("/usr/share/pki/trust/anchors/ca.pem", "ubuntu", False),
        ("/etc/openvswitch", "ubuntu", False),
        ("/etc/infiniband/openib.conf", "ubuntu", False),
        ("/etc", "ubuntu", False),
        ("/var/lib", "ubuntu", False),
        ("/usr/lib/modprobe.d/mlnx.conf", "ubuntu", False),
        ("/usr/localfoo", "ubuntu", False),  # a prefix, not a parent
        ("/etc/sshd", "ubuntu", False),
        ("/etc/ssh/", "ubuntu", True),
        ("/etc//ssh", "ubuntu", True),
    ],
)
def test_is_persistent(path: str, os_distribution: str, expected: bool) -> None:
    assert kairos.is_persistent(path, os_distribution) is expected


def test_is_persistent_with_added_bind_mounts() -> None:
    assert not kairos.is_persistent("/etc/openvswitch/conf.db")
    assert kairos.is_persistent("/etc/openvswitch/conf.db", extra=OVS)


def test_is_persistent_refuses_relative_paths() -> None:
    with pytest.raises(ValueError, match="absolute"):
        kairos.is_persistent("etc/ssh")


def test_persistent_paths() -> None:
    ubuntu = kairos.persistent_paths("ubuntu")
    assert ubuntu[: len(kairos.PERSISTENT_STATE_PATHS)] == kairos.PERSISTENT_STATE_PATHS
    assert set(kairos.UBUNTU_EXTRA_BINDS) <= set(ubuntu)
    assert "/usr/local" in ubuntu
    assert not set(kairos.RPM_EXTRA_BINDS) & set(ubuntu)
    assert set(kairos.RPM_EXTRA_BINDS) <= set(kairos.persistent_paths("opensuse-leap"))
    extended = kairos.persistent_paths("ubuntu", extra=[*OVS, "/etc/ssh"])
    assert extended == (*ubuntu, *OVS)


def test_unknown_os_distribution_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        kairos.persistent_paths("arch")
    assert fields(list(info.value.problems)) == ["os_distribution"]
    assert "ubuntu" in str(info.value)


@pytest.mark.parametrize(
    ("profile", "opensm", "expected"),
    [
        ("doca-ofed", False, ()),
        ("doca-roce", False, ()),
        ("doca-ofed-userspace", False, ()),
        ("doca-networking", False, OVS),
        ("doca-all", False, OVS),
        ("doca-networking-userspace", False, OVS),
        ("doca-all-userspace", False, OVS),
        ("doca-ofed", True, OPENSM),
        ("doca-all", True, OVS + OPENSM),
    ],
)
def test_profile_state_paths(profile: str, opensm: bool, expected: tuple[str, ...]) -> None:
    mounts = kairos.profile_state_paths(profile, opensm=opensm)
    assert tuple(m.path for m in mounts) == expected
    assert all(m.reason for m in mounts)


def test_every_profile_has_a_state_answer() -> None:
    for profile in doca.PROFILES:
        for mount in kairos.profile_state_paths(profile):
            assert not kairos.is_persistent(mount.path)
    assert set(doca.PROFILES) >= kairos.OVS_PROFILES


def test_unknown_profile_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        kairos.profile_state_paths("doca-everything")
    assert fields(list(info.value.problems)) == ["doca_profile"]


@pytest.mark.parametrize(
    ("profile", "extra", "opensm", "kept", "dropped"),
    [
        ("doca-ofed", [], False, (), ()),
        ("doca-networking", [], False, OVS, ()),
        # user paths after profile paths, order kept, duplicates merged
        (
            "doca-networking",
            ["/var/lib/wpa", "/etc/openvswitch", "/var/lib/ceph", "/var/lib/wpa"],
            False,
            (*OVS, "/var/lib/wpa", "/var/lib/ceph"),
            (),
        ),
        # a user path under a path added for the profile is already covered
        (
            "doca-all",
            ["/etc/openvswitch/pki", "/var/lib/openvswitchx"],
            False,
            (*OVS, "/var/lib/openvswitchx"),
            ("/etc/openvswitch/pki",),
        ),
        # Kairos defaults and paths under them or /usr/local are dropped
        (
            "doca-ofed",
            ["/etc/ssh", "/var/lib/kubelet/plugins", "/var/lib/wpa", "/snap/x"],
            True,
            (*OPENSM, "/var/lib/wpa"),
            ("/etc/ssh", "/var/lib/kubelet/plugins", "/snap/x"),
        ),
    ],
)
def test_explain_bind_mounts(
    profile: str,
    extra: list[str],
    opensm: bool,
    kept: tuple[str, ...],
    dropped: tuple[str, ...],
) -> None:
    plan = kairos.explain_bind_mounts(profile, extra, "ubuntu", opensm=opensm)
    assert tuple(m.path for m in plan.kept) == kept
    assert tuple(m.path for m in plan.dropped) == dropped
    assert kairos.required_bind_mounts(profile, extra, "ubuntu", opensm=opensm) == plan.kept
    for mount in plan.dropped:
        assert mount.reason.startswith("already persistent")
    assert {m.path for m in plan.kept}.isdisjoint(m.path for m in plan.dropped)


def test_explain_bind_mounts_reasons() -> None:
    plan = kairos.explain_bind_mounts("doca-networking", ["/var/lib/wpa", "/etc/ssh/keys"])
    reasons = {m.path: m.reason for m in plan.kept + plan.dropped}
    assert "OVS" in reasons["/etc/openvswitch"]
    assert reasons["/var/lib/wpa"] == kairos.USER_REASON
    assert reasons["/etc/ssh/keys"] == "already persistent: under /etc/ssh, which Kairos persists"


def test_snap_paths_are_dropped_only_on_ubuntu() -> None:
    assert kairos.required_bind_mounts("doca-ofed", ["/var/snap/x"], "ubuntu") == ()
    kept = kairos.required_bind_mounts("doca-ofed", ["/var/snap/x"], "rhel")
    assert tuple(m.path for m in kept) == ("/var/snap/x",)


def test_required_bind_mounts_refuses_bad_extra_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        kairos.required_bind_mounts("doca-ofed", ["var/lib/x", "/usr/local/x"])
    assert fields(list(info.value.problems)) == ["bind_mounts", "bind_mounts"]


# ------------------------------------------------------------------ checks


@pytest.mark.parametrize(
    "path",
    [
        "/var/lib/openvswitch",
        "/etc/opensm",
        "/var/lib/wpa",
        "/srv/data",
        "/usr/lib/foo",
        "/a+b@c:d",
    ],
)
def test_check_bind_mount_path_accepts(path: str) -> None:
    assert kairos.check_bind_mount_path("bind_mounts", path) == []


@pytest.mark.parametrize(
    ("path", "words"),
    [
        ("", "empty"),
        ("var/lib/x", "relative"),
        ("./x", "relative"),
        ("/var/lib/../x", "'..'"),
        ("/var/lib/my dir", "whitespace"),
        ("/var/lib/x\t", "whitespace"),
        ("/var/lib/$HOME", "unsafe"),
        ('/var/lib/"x"', "unsafe"),
        ("/var/lib/x;rm", "unsafe"),
        ("/", "root filesystem"),
        ("/usr/local", "persistent partition"),
        ("/usr/local/data", "persistent partition"),
        ("/var/lib/x/", "normal form"),
        ("//var/lib/x", "normal form"),
        ("/var/./lib", "normal form"),
        ("/etc", "overlay mount points"),
        ("/var", "overlay mount points"),
    ],
)
def test_check_bind_mount_path_refuses(path: str, words: str) -> None:
    problems = kairos.check_bind_mount_path("spec.bind_mounts", path)
    assert problems, path
    assert any(words in p.message for p in problems), [p.message for p in problems]
    for problem in problems:
        assert problem.field == "spec.bind_mounts"
        assert problem.value == path
        assert problem.fix


def test_check_bind_mount_path_fix_names_the_normal_form() -> None:
    (problem,) = kairos.check_bind_mount_path("f", "/var//lib/x/")
    assert problem.fix == "write /var/lib/x."


def test_template_is_valid() -> None:
    text = TEMPLATE.read_text()
    assert kairos.check_user_data(text) == []
    data = parse(text)
    assert isinstance(data, dict)
    assert data["install"] == {"device": "auto", "poweroff": True}
    # Registration values are the user's: the template only shows them commented out.
    assert "stylus" not in data
    assert "# stylus:" in text and "edgeHostToken" in text


GOOD = f"""#cloud-config
install:
  device: auto
  poweroff: true
  bind_mounts:
    - /var/lib/wpa
stylus:
  site:
    edgeHostToken: {TOKEN}
  registryCredentials:
    password: {PASSWORD}
"""


@pytest.mark.parametrize(
    ("text", "expected_fields", "words"),
    [
        ("install:\n  device: auto\n", ["user_data"], "#cloud-config"),
        ("# cloud-config\ninstall: {}\n", ["user_data"], "#cloud-config"),
        ("#cloud-config\n", ["user_data"], "mapping"),
        ("#cloud-config\n- a\n- b\n", ["user_data"], "mapping"),
        ("#cloud-config\njust text\n", ["user_data"], "mapping"),
        ("#cloud-config\ninstall: [a]\n", ["user_data.install"], "mapping"),
        ("#cloud-config\ninstall:\n  device: auto\n   bad: [\n", ["user_data"], "YAML"),
        ("#cloud-config\na: 1\n---\nb: 2\n", ["user_data"], "YAML"),
        (
            "#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\n",
            ["user_data.install"],
            "both reboot and poweroff",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts: /var/lib/x\n",
            ["user_data.install.bind_mounts"],
            "list of absolute paths",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts:\n    - var/lib/x\n    - /ok\n    - 3\n",
            ["user_data.install.bind_mounts[0]", "user_data.install.bind_mounts[2]"],
            "",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts: [/usr/local/x, '/a b']\n",
            ["user_data.install.bind_mounts[0]", "user_data.install.bind_mounts[1]"],
            "",
        ),
        (
            "#cloud-config\ninstall:\n  ephemeral_mounts: [tmp]\n",
            ["user_data.install.ephemeral_mounts[0]"],
            "absolute",
        ),
        (
            "#cloud-config\ninstall:\n  device: auto\ninstall:\n  poweroff: true\n",
            ["user_data.install"],
            "twice",
        ),
        (
            "#cloud-config\nstylus:\n  site:\n    name: a\n    name: b\n",
            ["user_data.stylus.site.name"],
            "twice",
        ),
        # several problems at once
        (
            "install:\n  reboot: true\n  poweroff: true\n  bind_mounts: x\n",
            ["user_data", "user_data.install", "user_data.install.bind_mounts"],
            "",
        ),
    ],
)
def test_check_user_data_refuses(text: str, expected_fields: list[str], words: str) -> None:
    problems = kairos.check_user_data(text)
    assert fields(problems) == expected_fields
    assert words in " ".join(p.message for p in problems)
    assert all(p.fix for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "#cloud-config\ninstall:\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n",
        "#cloud-config  \nstylus: {}\n",
        "#cloud-config\ninstall:\n  reboot: true\n  poweroff: false\n",
        "#cloud-config\r\ninstall:\r\n  device: auto\r\n",
    ],
)
def test_check_user_data_accepts(text: str) -> None:
    assert kairos.check_user_data(text) == []


def test_check_user_data_never_quotes_content() -> None:
    broken = [
        f"edgeHostToken: {TOKEN}\n",  # header missing: first line is the secret
        f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: '{TOKEN}\n",  # bad YAML
        f"#cloud-config\nstylus:\n  t: {TOKEN}\n   x: [\n",
        f"#cloud-config\n{TOKEN}\n",  # a scalar, not a mapping
        f"#cloud-config\n- {TOKEN}\n",
        f"#cloud-config\ninstall: {TOKEN}\n",
        f"#cloud-config\ninstall:\n  bind_mounts: {TOKEN}\n",
        f"#cloud-config\ninstall:\n  bind_mounts:\n    - {{token: {TOKEN}}}\n",
        f"#cloud-config\nstylus:\n  tok: {TOKEN}\n  tok: {TOKEN}\n",
    ]
    for text in broken:
        problems = kairos.check_user_data(text)
        assert problems, text
        rendered = str(InvalidInput(problems))
        assert TOKEN not in rendered
        assert TOKEN[:12] not in rendered


def test_yaml_error_names_the_line() -> None:
    problems = kairos.check_user_data("#cloud-config\na: 1\nb: [\n")
    assert len(problems) == 1
    assert str(problems[0].value).startswith("line ")


def test_user_data_bind_mounts() -> None:
    assert kairos.user_data_bind_mounts(GOOD) == ("/var/lib/wpa",)
    assert kairos.user_data_bind_mounts("#cloud-config\ninstall:\n") == ()
    with pytest.raises(InvalidInput):
        kairos.user_data_bind_mounts("no header: true\n")


# ------------------------------------------------------------------- merge


def merged_mounts(text: str) -> list[str]:
    data = parse(text)
    assert isinstance(data, dict)
    mounts = data["install"]["bind_mounts"]
    assert isinstance(mounts, list)
    return mounts


MERGE_CASES = {
    "no install key": (
        "#cloud-config\n# site settings\nstylus:\n  site:\n    name: edge-1  # the name\n",
        "#cloud-config\n# site settings\nstylus:\n  site:\n    name: edge-1  # the name\n"
        "install:\n  bind_mounts:\n    - /etc/openvswitch\n    - /var/lib/openvswitch\n",
    ),
    "install without bind_mounts": (
        "#cloud-config\ninstall:  # how to install\n  # which disk\n  device: auto\n"
        "  poweroff: true\nstylus: {}\n",
        "#cloud-config\ninstall:  # how to install\n  bind_mounts:\n    - /etc/openvswitch\n"
        "    - /var/lib/openvswitch\n  # which disk\n  device: auto\n  poweroff: true\n"
        "stylus: {}\n",
    ),
    "block list, zero-indented dashes": (
        "#cloud-config\ninstall:\n  bind_mounts:\n  - /var/lib/wpa  # wifi\n  - /var/lib/ceph\n"
        "  # end of list\n  device: auto\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n  - /var/lib/wpa  # wifi\n  - /var/lib/ceph\n"
        "  - /etc/openvswitch\n  - /var/lib/openvswitch\n  # end of list\n  device: auto\n",
    ),
    "block list, four spaces": (
        "#cloud-config\ninstall:\n    bind_mounts:\n        -   /var/lib/wpa\n",
        "#cloud-config\ninstall:\n    bind_mounts:\n        -   /var/lib/wpa\n"
        "        -   /etc/openvswitch\n        -   /var/lib/openvswitch\n",
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
        "#cloud-config\ninstall:\n    bind_mounts:\n        - /etc/openvswitch\n"
        "        - /var/lib/openvswitch\nstylus:\n    a: 1\n",
    ),
    "install: ~": (
        "#cloud-config\ninstall: ~  # nothing yet\n",
        "#cloud-config\ninstall:   # nothing yet\n  bind_mounts:\n    - /etc/openvswitch\n"
        "    - /var/lib/openvswitch\n",
    ),
    "empty bind_mounts": (
        "#cloud-config\ninstall:\n  bind_mounts:\n  device: auto\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /etc/openvswitch\n"
        "    - /var/lib/openvswitch\n  device: auto\n",
    ),
    "flow install mapping": (
        "#cloud-config\ninstall: {device: auto}\n",
        "#cloud-config\ninstall: {device: auto, bind_mounts: [/etc/openvswitch, "
        "/var/lib/openvswitch]}\n",
    ),
    "no final newline": (
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa",
        "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa\n    - /etc/openvswitch\n"
        "    - /var/lib/openvswitch\n",
    ),
    "document start marker": (
        "#cloud-config\n---\ninstall:\n  device: auto\n",
        "#cloud-config\n---\ninstall:\n  bind_mounts:\n    - /etc/openvswitch\n"
        "    - /var/lib/openvswitch\n  device: auto\n",
    ),
    "CRLF": (
        "#cloud-config\r\ninstall:\r\n  device: auto\r\n",
        "#cloud-config\r\ninstall:\r\n  bind_mounts:\r\n    - /etc/openvswitch\r\n"
        "    - /var/lib/openvswitch\r\n  device: auto\r\n",
    ),
}


@pytest.mark.parametrize("name", list(MERGE_CASES))
def test_merge_user_data(name: str) -> None:
    before, after = MERGE_CASES[name]
    result = kairos.merge_user_data(before, OVS)
    assert result == after
    assert kairos.check_user_data(result) == []
    # idempotent: merging again changes nothing
    assert kairos.merge_user_data(result, OVS) == result
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
    result = kairos.merge_user_data(before, OVS)
    old_lines = before.splitlines()
    new_lines = result.splitlines()
    # the result is the original plus inserted lines, in order
    it = iter(new_lines)
    assert all(line in it for line in old_lines)
    assert len(new_lines) == len(old_lines) + 2


def test_merge_skips_kairos_defaults_and_duplicates() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts:\n    - /var/lib/wpa\n"
    result = kairos.merge_user_data(
        text,
        ["/etc/ssh", "/var/lib/kubelet/pods", "/var/lib/wpa", "/srv/a", "/srv/a", "/snap/x"],
    )
    assert merged_mounts(result) == ["/var/lib/wpa", "/srv/a"]


def test_merge_skips_paths_under_the_users_entries() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts: [/var/lib/ovs-data]\n"
    result = kairos.merge_user_data(text, ["/var/lib/ovs-data/db", "/var/lib/ovs-database"])
    assert merged_mounts(result) == ["/var/lib/ovs-data", "/var/lib/ovs-database"]


def test_merge_keeps_users_own_entries_even_when_redundant() -> None:
    text = "#cloud-config\ninstall:\n  bind_mounts:\n    - /etc/ssh\n    - /var/lib/wpa\n"
    assert merged_mounts(kairos.merge_user_data(text, ["/srv/a"])) == [
        "/etc/ssh",
        "/var/lib/wpa",
        "/srv/a",
    ]


def test_merge_with_nothing_to_add_returns_the_text_unchanged() -> None:
    text = "#cloud-config\n# odd   spacing kept\ninstall:   {}\n"
    assert kairos.merge_user_data(text, []) == text
    assert kairos.merge_user_data(text, ["/etc/systemd/network"]) == text


def test_merge_rpm_distribution_keeps_snap_paths() -> None:
    text = "#cloud-config\ninstall:\n  device: auto\n"
    assert merged_mounts(kairos.merge_user_data(text, ["/snap/x"], "sles")) == ["/snap/x"]
    assert kairos.merge_user_data(text, ["/snap/x"], "ubuntu") == text


def test_merge_template_for_doca_networking() -> None:
    text = TEMPLATE.read_text()
    paths = [m.path for m in kairos.required_bind_mounts("doca-networking", [])]
    result = kairos.merge_user_data(text, paths)
    assert merged_mounts(result) == list(OVS)
    assert result.startswith("#cloud-config\n")
    for line in text.splitlines():
        assert line in result.splitlines()
    assert kairos.merge_user_data(text, []) == text


def test_merge_keeps_secrets_and_other_keys() -> None:
    result = kairos.merge_user_data(GOOD, OVS)
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
        # a recursive anchor
        f"#cloud-config\nloop: &a [*a]\ninstall:\n  device: auto\nt: {TOKEN}\n",
        # bind_mounts anchored and reused
        f"#cloud-config\ninstall:\n  bind_mounts: &m [/var/lib/wpa]\n  ephemeral_mounts: *m\n"
        f"t: {TOKEN}\n",
    ],
)
def test_merge_refuses_unusual_layouts_without_leaking(text: str) -> None:
    with pytest.raises(kairos.UserDataEditError) as info:
        kairos.merge_user_data(text, OVS)
    message = str(info.value)
    assert TOKEN not in message
    assert "/etc/openvswitch" in message  # the fix names the paths to add by hand
    assert info.value.problems[0].field == "user_data.install.bind_mounts"


def test_merge_refuses_invalid_user_data_without_leaking() -> None:
    text = f"#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\ntoken: {TOKEN}\n"
    with pytest.raises(InvalidInput) as info:
        kairos.merge_user_data(text, OVS)
    assert fields(list(info.value.problems)) == ["user_data.install"]
    assert TOKEN not in str(info.value)


def test_merge_refuses_invalid_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        kairos.merge_user_data("#cloud-config\ninstall: {}\n", ["relative/path"])
    assert fields(list(info.value.problems)) == ["bind_mounts"]
