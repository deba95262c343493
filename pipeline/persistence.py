"""The Kairos persistence model: which paths survive a reboot, and which bind
mounts a DOCA build adds.

On a Kairos host ``/`` and ``/usr`` are read-only, ``/usr/local`` is the
persistent partition (COS_PERSISTENT), ``RW_PATHS`` are tmpfs overlays that
reset at every boot, and ``PERSISTENT_STATE_PATHS`` are bind-mounted from
``/usr/local/.state``. Anything else a host must keep across reboots has to be
listed in user-data ``install.bind_mounts`` (kairos-agent writes it to
``/oem/10_user_custom_mounts.yaml`` as ``CUSTOM_BIND_MOUNTS``, joined with
spaces; immucore bind-mounts it at boot), and every such path must exist in
the image. The path lists and their kairos-init source are facts
(``pipeline/resources/facts.toml`` [kairos]); this module reasons over them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from pipeline import doca, facts
from pipeline.errors import InvalidInput, Problem, raise_if

DEFAULT_OS = facts.CANVOS_DEFAULTS["os_distribution"]


@dataclass(frozen=True)
class BindMount:
    """A path to add to ``install.bind_mounts`` (or one left out), and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class Mechanism:
    """A way a persistent path reaches Kairos: its name, where it lives, when it applies."""

    name: str
    where: str
    applied: str


# The image's own Kairos cloud-config (written by the DOCA stage, which reads
# this path as fact IMAGE_OEM_CONFIG of facts.env): adds the build's paths at
# every boot.
IMAGE_OEM_CONFIG = "/system/oem/50_canvos-doca.yaml"
# The DOCA stage's own directories (lib.sh CANVOS_DOCA_SHARE: manifest, state,
# facts.env, BFB store; CANVOS_DOCA_LIBDIR: lib.sh, relocated trees, boot
# tools). The host tools find lib.sh and facts.env through these, so they are
# the shell's bootstrap paths rather than facts.env entries.
IMAGE_SHARE_DIR = "/usr/share/canvos-doca"
IMAGE_LIB_DIR = "/usr/lib/canvos-doca"
# The tools customize.sh installs on the PATH.
IMAGE_TOOLS = ("/usr/bin/canvos-doca-verify", "/usr/bin/canvos-doca-detect")
USER_DATA_MOUNTS = Mechanism(
    "install.bind_mounts",
    "the ISO's user-data (kairos-agent writes /oem/10_user_custom_mounts.yaml)",
    "once, when the ISO installs the host",
)
IMAGE_MOUNTS = Mechanism(
    IMAGE_OEM_CONFIG,
    "the image itself (provider image and ISO rootfs), Kairos rootfs.after stage",
    "at every boot of the image",
)
# Which mechanism covers which host: install.bind_mounts is applied only by
# the ISO's installer; reset and upgrades never re-run it.
COVERAGE: tuple[tuple[str, tuple[Mechanism, ...]], ...] = (
    ("fresh install from this ISO", (USER_DATA_MOUNTS, IMAGE_MOUNTS)),
    ("host installed from another ISO", (IMAGE_MOUNTS,)),
    ("provider-image upgrade", (IMAGE_MOUNTS,)),
)
MECHANISMS = (USER_DATA_MOUNTS, IMAGE_MOUNTS)


@dataclass(frozen=True)
class BindMountPlan:
    """The bind mounts to add, and the requested paths left out with the reason."""

    kept: tuple[BindMount, ...]
    dropped: tuple[BindMount, ...]


# Debian/Ubuntu openvswitch-switch keeps the database in /var/lib/openvswitch
# and links /etc/openvswitch/conf.db to it (postinst, checked on Debian
# bookworm 3.1.0-2+deb12u1); system-id.conf stays in /etc/openvswitch, the
# default OVS_DBDIR upstream. Persisting both covers either packaging. The
# userspace profiles drop only kernel modules (ovsdb-server is userspace), so
# every profile with ovs_state gets them: an unused bind mount costs one empty
# directory; a missing one silently loses bridges and ports at reboot.
OVS_STATE: tuple[BindMount, ...] = (
    BindMount(
        "/etc/openvswitch",
        "OVS-DOCA: Open vSwitch system-id.conf and the conf.db (database) entry; without it "
        "bridges and ports configured at runtime are lost at reboot",
    ),
    BindMount(
        "/var/lib/openvswitch",
        "OVS-DOCA: Debian/Ubuntu openvswitch-switch stores the OVS database conf.db here",
    ),
)

# Only when an on-host InfiniBand subnet manager runs (opensm=True).
OPENSM_STATE: tuple[BindMount, ...] = (
    BindMount(
        "/etc/opensm",
        "opensm: subnet manager configuration edited on the host (opensm.conf, partitions.conf)",
    ),
    BindMount(
        "/var/cache/opensm",
        "opensm: GUID-to-LID and related caches that keep LIDs stable across restarts",
    ),
)

USER_REASON = "requested in bind_mounts"

# Characters allowed in a bind-mount path. CUSTOM_BIND_MOUNTS is joined with
# spaces and sourced by a shell at boot, so whitespace, quotes, '$' and the like
# would split the path or break the layout file.
# A trailing ':' is refused too: YAML reads "- /path:" as a mapping.
_PATH_CHARS = re.compile(r"^[A-Za-z0-9/._+@:-]*[A-Za-z0-9/._+@-]$")
_ALLOWED_PATH = (
    "an absolute directory path in normal form such as /var/lib/example, "
    "made of letters, digits and / . _ - + @ :"
)


def is_under(path: str, parent: str) -> bool:
    """``path`` equals ``parent`` or lies below it (component-wise)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def normal(path: str) -> str:
    """``path`` without empty and ``.`` components (``..`` is left as is)."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def _os_paths(os_distribution: str) -> tuple[str, ...]:
    if os_distribution not in facts.KAIROS_EXTRA_BINDS:
        known = ", ".join(facts.KAIROS_EXTRA_BINDS)
        raise InvalidInput(
            [
                Problem(
                    "os_distribution",
                    os_distribution,
                    f"is not one of {known}.",
                    "pick one of the listed distributions.",
                )
            ]
        )
    return facts.KAIROS_EXTRA_BINDS[os_distribution]


def persistent_paths(
    os_distribution: str = DEFAULT_OS, extra: Sequence[str] = ()
) -> tuple[str, ...]:
    """Every path whose content survives a reboot on a Kairos host of this OS.

    Kairos's ``PERSISTENT_STATE_PATHS``, the distribution's extra binds, the
    persistent partition ``/usr/local``, then ``extra`` (bind mounts added by
    user-data), without duplicates. This is what the in-image hazard
    analysis compares installed files against.
    """
    found: list[str] = []
    defaults = (
        *facts.KAIROS_PERSISTENT_STATE_PATHS,
        *_os_paths(os_distribution),
        facts.KAIROS_PERSISTENT_PARTITION,
    )
    for path in (*defaults, *(normal(p) for p in extra)):
        if path not in found:
            found.append(path)
    return tuple(found)


def is_persistent(path: str, os_distribution: str = DEFAULT_OS, extra: Sequence[str] = ()) -> bool:
    """Whether ``path`` is, or lies under, a path Kairos keeps across reboots."""
    if not path.startswith("/"):
        raise ValueError(f"is_persistent needs an absolute path, got {path!r}")
    norm = normal(path)
    return any(is_under(norm, p) for p in persistent_paths(os_distribution, extra))


def _default_cover(path: str, os_distribution: str) -> str | None:
    """The Kairos default (or /usr/local) that already persists ``path``."""
    return next((p for p in persistent_paths(os_distribution) if is_under(path, p)), None)


def profile_state_paths(profile: str, opensm: bool = False) -> tuple[BindMount, ...]:
    """Runtime state the DOCA ``profile`` (and opensm, when asked) keeps on the host."""
    if profile not in doca.PROFILES:
        raise InvalidInput(
            [
                Problem(
                    "doca_profile",
                    profile,
                    f"is not one of {', '.join(doca.PROFILES)}.",
                    "pick one of the listed DOCA profiles.",
                )
            ]
        )
    mounts: list[BindMount] = []
    if profile in doca.OVS_PROFILES:
        mounts += OVS_STATE
    if opensm:
        mounts += OPENSM_STATE
    return tuple(mounts)


def explain_bind_mounts(
    profile: str,
    extra: Sequence[str],
    os_distribution: str = DEFAULT_OS,
    opensm: bool = False,
    field: str = "bind_mounts",
) -> BindMountPlan:
    """The bind mounts a build adds, and the requested paths it leaves out.

    Profile paths first, then the user's ``extra`` paths, in order and
    without duplicates. A path Kairos already persists (a default, a path
    under one, or under ``/usr/local``) is dropped with the reason. Invalid
    ``extra`` paths raise ``InvalidInput`` naming ``field``.
    """
    raise_if(p for path in extra for p in check_bind_mount_path(field, path))
    candidates = [*profile_state_paths(profile, opensm)]
    candidates += [BindMount(path, USER_REASON) for path in extra]
    kept: list[BindMount] = []
    dropped: list[BindMount] = []
    seen: set[str] = set()
    for mount in candidates:
        if mount.path in seen:
            continue
        seen.add(mount.path)
        cover = _default_cover(mount.path, os_distribution)
        parent = next((k.path for k in kept if is_under(mount.path, k.path)), None)
        if cover == mount.path:
            dropped.append(BindMount(mount.path, "already persistent: a Kairos default path"))
        elif cover is not None:
            dropped.append(
                BindMount(mount.path, f"already persistent: under {cover}, which Kairos persists")
            )
        elif parent is not None:
            dropped.append(
                BindMount(mount.path, f"already persistent: under {parent}, added above")
            )
        else:
            kept.append(mount)
    return BindMountPlan(kept=tuple(kept), dropped=tuple(dropped))


def _form_problems(field: str, path: str) -> list[Problem]:
    """Problems with how ``path`` is written (relative, unsafe characters, not normal)."""
    problems: list[Problem] = []
    if not path.startswith("/"):
        problems.append(
            Problem(
                field,
                path,
                f"is a relative path; Kairos needs {_ALLOWED_PATH}.",
                "write the full path, starting with '/', e.g. /var/lib/<name>.",
            )
        )
    if any(ch.isspace() for ch in path):
        problems.append(
            Problem(
                field,
                path,
                "contains whitespace; Kairos joins bind mounts with spaces "
                "(CUSTOM_BIND_MOUNTS), so the path would split in two.",
                "use a directory whose path has no spaces.",
            )
        )
    elif not _PATH_CHARS.match(path):
        problems.append(
            Problem(
                field,
                path,
                "contains characters that are unsafe in the shell-sourced Kairos layout file; "
                f"expected {_ALLOWED_PATH}.",
                "use a path made of the listed characters only.",
            )
        )
    if ".." in path.split("/"):
        problems.append(
            Problem(
                field,
                path,
                f"contains '..'; expected {_ALLOWED_PATH}.",
                "write the resolved path without '..'.",
            )
        )
    elif path.startswith("/") and normal(path) != path:
        problems.append(
            Problem(
                field,
                path,
                f"is not in normal form; expected {_ALLOWED_PATH}.",
                f"write {normal(path)}.",
            )
        )
    return problems


def _place_problems(field: str, path: str) -> list[Problem]:
    """Problems with where a well-formed ``path`` is (root, /usr/local, an overlay)."""
    partition, rw_paths = facts.KAIROS_PERSISTENT_PARTITION, facts.KAIROS_RW_PATHS
    if path == "/":
        message = "is the root filesystem, which is the read-only image and cannot be bind-mounted."
        fix = "name the directory that must persist, e.g. /var/lib/example."
    elif is_under(path, partition):
        message = (
            f"is on the persistent partition {partition} already; a bind mount there is pointless."
        )
        fix = f"remove the entry (files under {partition} already survive reboots)."
    elif path in rw_paths:
        message = (
            f"is one of the Kairos overlay mount points ({' '.join(rw_paths)}); "
            "an existing mount point cannot be a bind mount."
        )
        fix = f"name the directory below it that must persist, e.g. {path}/lib/example."
    else:
        return []
    return [Problem(field, path, message, fix)]


def check_bind_mount_path(field: str, path: str) -> list[Problem]:
    """Problems with one bind-mount path (empty when it is usable)."""
    if not path:
        return [Problem(field, path, f"is empty; expected {_ALLOWED_PATH}.", "remove the entry.")]
    return _form_problems(field, path) or _place_problems(field, path)


# Where a file that Kairos would hide under persistent state belongs instead
# (by the persistent directory's last component).
_IMAGE_HOMES = {
    "modprobe.d": f"use modprobe_options (written to {facts.SYSTEMD_MODPROBE_DIR}).",
    "systemd": f"place unit files under {facts.SYSTEMD_UNIT_DIR} and list them in enable_units.",
}
_MAX_IMAGE_PATH = 4096


def own_image_paths() -> tuple[str, ...]:
    """The files and directories the DOCA stage writes after ``host_files``
    are placed (customize.sh): a user file at or under one would be replaced
    or discarded without a word."""
    return (
        IMAGE_SHARE_DIR,
        IMAGE_LIB_DIR,
        IMAGE_OEM_CONFIG,
        *IMAGE_TOOLS,
        facts.HOST_MODPROBE_FILE,
        facts.HOST_MODULES_LOAD_FILE,
        facts.NODEPREP_BFB_DIR,
    )


def _own_path_problems(field: str, path: str) -> list[Problem]:
    owner = next((p for p in own_image_paths() if is_under(path, p)), None)
    if owner is None:
        return []
    where = "is a path" if path == owner else f"is under {owner}, which"
    return [
        Problem(
            field,
            path,
            f"{where} canvos-doca's DOCA stage writes itself after the host files are "
            "placed: your file would be replaced or discarded.",
            "choose a path of your own, e.g. /etc/<name>/ or /usr/lib/<name>/ (modprobe "
            "options and modules to load: the modprobe_options and modules_load knobs; "
            "a BFB: --bfb).",
        )
    ]


def check_image_file_path(
    field: str, path: str, os_distribution: str = DEFAULT_OS, extra: Sequence[str] = ()
) -> list[Problem]:
    """Problems with ``path`` as the destination of a file baked into the image.

    It must be absolute and normal (the bind-mount path rules), not a
    directory the system mounts over at boot, and not under a path Kairos
    keeps in persistent state (``extra``: the build's own bind mounts): there
    the host reads the state directory, which immucore's boot-time sync
    (``rsync -u``, docs/persistence.md) updates only where the image's file
    is newer and never prunes.
    """
    if not path or path.endswith("/"):
        return [Problem(field, path, "is not a file path.", "write the file's absolute path.")]
    if len(path) > _MAX_IMAGE_PATH:
        return [Problem(field, path[:64] + "...", "is too long.", "use a shorter path.")]
    found = _form_problems(field, path) or _own_path_problems(field, path)
    if found:
        return found
    mounted = next((p for p in facts.KAIROS_BOOT_MOUNTS if is_under(path, p)), None)
    if path == "/" or mounted:
        return [
            Problem(
                field,
                path,
                f"is under {mounted}, which is mounted over at every boot."
                if mounted
                else "is the root directory.",
                "choose a path in the image, e.g. under /etc or /usr/lib.",
            )
        ]
    cover = next((p for p in persistent_paths(os_distribution, extra) if is_under(path, p)), None)
    if cover is None:
        return []
    fix = _IMAGE_HOMES.get(
        cover.rsplit("/", 1)[-1],
        "place it outside the persistent paths (e.g. under /etc/<name> or /usr/lib/<name>), "
        "or write it at boot from a user-data stage.",
    )
    return [
        Problem(
            field,
            path,
            f"is under {cover}, which Kairos keeps in persistent state: the image's file is "
            "copied in at boot only where it is newer than the host's copy, and no later "
            "image can remove it.",
            fix,
        )
    ]
