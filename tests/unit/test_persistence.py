"""The Kairos persistence model: persistent paths, profile state, bind-mount paths."""

from __future__ import annotations

import pytest

from pipeline import doca, facts, persistence
from pipeline.errors import InvalidInput, Problem

OVS = ("/etc/openvswitch", "/var/lib/openvswitch")
OPENSM = ("/etc/opensm", "/var/cache/opensm")


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


# ------------------------------------------------------------------- model


def test_data_source_is_recorded() -> None:
    assert facts.KAIROS_INIT_VERSION == "v0.17.1"
    assert "v0.17.1" in facts.KAIROS_SOURCE
    assert "00_rootfs.yaml" in facts.KAIROS_SOURCE


def test_path_lists_are_clean() -> None:
    for paths in (
        facts.KAIROS_PERSISTENT_STATE_PATHS,
        facts.KAIROS_EXTRA_BINDS["ubuntu"],
        facts.KAIROS_EXTRA_BINDS["rhel"],
        facts.KAIROS_RW_PATHS,
    ):
        assert len(set(paths)) == len(paths)
        for path in paths:
            assert path.startswith("/") and not path.endswith("/")
    assert len(facts.KAIROS_PERSISTENT_STATE_PATHS) == 37
    assert facts.KAIROS_RW_PATHS == ("/var", "/etc", "/srv")
    assert facts.KAIROS_EXTRA_BINDS["ubuntu"] == ("/snap", "/var/snap", "/var/lib/snapd")
    assert facts.KAIROS_PERSISTENT_PARTITION == "/usr/local"


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
    assert persistence.is_persistent(path, os_distribution) is expected


def test_is_persistent_with_added_bind_mounts() -> None:
    assert not persistence.is_persistent("/etc/openvswitch/conf.db")
    assert persistence.is_persistent("/etc/openvswitch/conf.db", extra=OVS)


def test_is_persistent_refuses_relative_paths() -> None:
    with pytest.raises(ValueError, match="absolute"):
        persistence.is_persistent("etc/ssh")


def test_persistent_paths() -> None:
    ubuntu = persistence.persistent_paths("ubuntu")
    assert ubuntu[: len(facts.KAIROS_PERSISTENT_STATE_PATHS)] == facts.KAIROS_PERSISTENT_STATE_PATHS
    assert set(facts.KAIROS_EXTRA_BINDS["ubuntu"]) <= set(ubuntu)
    assert "/usr/local" in ubuntu
    assert not set(facts.KAIROS_EXTRA_BINDS["rhel"]) & set(ubuntu)
    rpm = facts.KAIROS_EXTRA_BINDS["rhel"]
    assert set(rpm) <= set(persistence.persistent_paths("opensuse-leap"))
    extended = persistence.persistent_paths("ubuntu", extra=[*OVS, "/etc/ssh"])
    assert extended == (*ubuntu, *OVS)


def test_unknown_os_distribution_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        persistence.persistent_paths("arch")
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
    mounts = persistence.profile_state_paths(profile, opensm=opensm)
    assert tuple(m.path for m in mounts) == expected
    assert all(m.reason for m in mounts)


def test_every_profile_has_a_state_answer() -> None:
    for profile in doca.PROFILES:
        for mount in persistence.profile_state_paths(profile):
            assert not persistence.is_persistent(mount.path)
    assert set(doca.PROFILES) >= set(doca.OVS_PROFILES)


def test_unknown_profile_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as info:
        persistence.profile_state_paths("doca-everything")
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
    plan = persistence.explain_bind_mounts(profile, extra, "ubuntu", opensm=opensm)
    assert tuple(m.path for m in plan.kept) == kept
    assert tuple(m.path for m in plan.dropped) == dropped
    for mount in plan.dropped:
        assert mount.reason.startswith("already persistent")
    assert {m.path for m in plan.kept}.isdisjoint(m.path for m in plan.dropped)


def test_explain_bind_mounts_reasons() -> None:
    plan = persistence.explain_bind_mounts("doca-networking", ["/var/lib/wpa", "/etc/ssh/keys"])
    reasons = {m.path: m.reason for m in plan.kept + plan.dropped}
    assert "OVS" in reasons["/etc/openvswitch"]
    assert reasons["/var/lib/wpa"] == persistence.USER_REASON
    assert reasons["/etc/ssh/keys"] == "already persistent: under /etc/ssh, which Kairos persists"


def test_snap_paths_are_dropped_only_on_ubuntu() -> None:
    assert persistence.explain_bind_mounts("doca-ofed", ["/var/snap/x"], "ubuntu").kept == ()
    kept = persistence.explain_bind_mounts("doca-ofed", ["/var/snap/x"], "rhel").kept
    assert tuple(m.path for m in kept) == ("/var/snap/x",)


def test_explain_bind_mounts_refuses_bad_extra_paths() -> None:
    with pytest.raises(InvalidInput) as info:
        persistence.explain_bind_mounts("doca-ofed", ["var/lib/x", "/usr/local/x"])
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
    assert persistence.check_bind_mount_path("bind_mounts", path) == []


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
    problems = persistence.check_bind_mount_path("spec.bind_mounts", path)
    assert problems, path
    assert any(words in p.message for p in problems), [p.message for p in problems]
    for problem in problems:
        assert problem.field == "spec.bind_mounts"
        assert problem.value == path
        assert problem.fix


def test_check_bind_mount_path_fix_names_the_normal_form() -> None:
    (problem,) = persistence.check_bind_mount_path("f", "/var//lib/x/")
    assert problem.fix == "write /var/lib/x."
