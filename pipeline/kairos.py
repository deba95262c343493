"""What canvos-doca knows about Kairos persistence, and the user-data edits it makes.

On a Kairos host ``/`` and ``/usr`` are read-only, ``/usr/local`` is the
persistent partition (COS_PERSISTENT), ``RW_PATHS`` are tmpfs overlays that
reset at every boot, and ``PERSISTENT_STATE_PATHS`` are bind-mounted from
``/usr/local/.state``. Anything else a host must keep across reboots has to be
listed in user-data ``install.bind_mounts`` (kairos-agent writes it to
``/oem/10_user_custom_mounts.yaml`` as ``CUSTOM_BIND_MOUNTS``, joined with
spaces; immucore bind-mounts it at boot), and every such path must exist in
the image.

This module holds that model (data defined once, with its source version),
computes the bind mounts a DOCA profile needs, checks user-data, and adds the
bind mounts to the user's user-data without losing their comments or order.

Secrets: user-data carries the edge host token and registry passwords. No
error raised here quotes user-data content; problems name keys, line numbers,
types and bind-mount paths only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline import doca, facts
from pipeline.errors import InvalidInput, Problem, raise_if

# ----------------------------------------------------------------- the model
#
# Sources and versions: pipeline/resources/facts.toml [kairos].
KAIROS_INIT_VERSION = facts.KAIROS_INIT_VERSION
PERSISTENT_PARTITION = facts.KAIROS_PERSISTENT_PARTITION
RW_PATHS = facts.KAIROS_RW_PATHS
PERSISTENT_STATE_PATHS = facts.KAIROS_PERSISTENT_STATE_PATHS
# CanvOS OS_DISTRIBUTION -> the distribution-specific extra binds.
EXTRA_BINDS = facts.KAIROS_EXTRA_BINDS
UBUNTU_EXTRA_BINDS = EXTRA_BINDS["ubuntu"]
RPM_EXTRA_BINDS = EXTRA_BINDS["rhel"]


@dataclass(frozen=True)
class BindMount:
    """A path to add to ``install.bind_mounts`` (or one left out), and why."""

    path: str
    reason: str


@dataclass(frozen=True)
class BindMountPlan:
    """The bind mounts to add, and the requested paths left out with the reason."""

    kept: tuple[BindMount, ...]
    dropped: tuple[BindMount, ...]


# Profiles that ship OVS-DOCA (facts.toml ovs_state). The userspace variants
# drop only kernel modules; ovsdb-server and ovs-vswitchd are userspace, so the
# same state applies. An unused bind mount costs one empty directory; a missing
# one silently loses bridges and ports at reboot.
OVS_PROFILES: frozenset[str] = frozenset(p.name for p in facts.DOCA_PROFILES if p.ovs_state)

# Debian/Ubuntu openvswitch-switch keeps the database in /var/lib/openvswitch
# and links /etc/openvswitch/conf.db to it (postinst, checked on Debian
# bookworm 3.1.0-2+deb12u1); system-id.conf stays in /etc/openvswitch, the
# default OVS_DBDIR upstream. Persisting both covers either packaging.
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
_PATH_CHARS = re.compile(r"^[A-Za-z0-9/._+@:-]+$")
_ALLOWED_PATH = (
    "an absolute directory path in normal form such as /var/lib/example, "
    "made of letters, digits and / . _ - + @ :"
)


def _os_paths(os_distribution: str) -> tuple[str, ...]:
    if os_distribution not in EXTRA_BINDS:
        raise InvalidInput(
            [
                Problem(
                    "os_distribution",
                    os_distribution,
                    f"is not one of {', '.join(EXTRA_BINDS)}.",
                    "pick one of the listed distributions.",
                )
            ]
        )
    return EXTRA_BINDS[os_distribution]


def _is_under(path: str, parent: str) -> bool:
    """``path`` equals ``parent`` or lies below it (component-wise)."""
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _normal(path: str) -> str:
    """``path`` without empty and ``.`` components (``..`` is left as is)."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    return "/" + "/".join(parts)


def persistent_paths(os_distribution: str, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Every path whose content survives a reboot on a Kairos host of this OS.

    Kairos's ``PERSISTENT_STATE_PATHS``, the distribution's extra binds, the
    persistent partition ``/usr/local``, then ``extra`` (bind mounts added by
    user-data), without duplicates. This is what the in-image hazard
    analysis compares installed files against.
    """
    found: list[str] = []
    for path in (*PERSISTENT_STATE_PATHS, *_os_paths(os_distribution), PERSISTENT_PARTITION):
        if path not in found:
            found.append(path)
    for path in extra:
        norm = _normal(path)
        if norm not in found:
            found.append(norm)
    return tuple(found)


def is_persistent(path: str, os_distribution: str = "ubuntu", extra: Sequence[str] = ()) -> bool:
    """Whether ``path`` is, or lies under, a path Kairos keeps across reboots."""
    if not path.startswith("/"):
        raise ValueError(f"is_persistent needs an absolute path, got {path!r}")
    norm = _normal(path)
    return any(_is_under(norm, p) for p in persistent_paths(os_distribution, extra))


def _default_cover(path: str, os_distribution: str) -> str | None:
    """The Kairos default (or /usr/local) that already persists ``path``."""
    for parent in persistent_paths(os_distribution):
        if _is_under(path, parent):
            return parent
    return None


def _check_profile(profile: str) -> None:
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


def profile_state_paths(profile: str, opensm: bool = False) -> tuple[BindMount, ...]:
    """Runtime state the DOCA ``profile`` (and opensm, when asked) keeps on the host."""
    _check_profile(profile)
    mounts: list[BindMount] = []
    if profile in OVS_PROFILES:
        mounts += OVS_STATE
    if opensm:
        mounts += OPENSM_STATE
    return tuple(mounts)


def explain_bind_mounts(
    profile: str,
    extra: Sequence[str],
    os_distribution: str = "ubuntu",
    opensm: bool = False,
    field: str = "bind_mounts",
) -> BindMountPlan:
    """The bind mounts a build adds, and the requested paths it leaves out.

    Profile paths first, then the user's ``extra`` paths, in order and
    without duplicates. A path Kairos already persists (a default, a path
    under one, or under ``/usr/local``) is dropped with the reason. Invalid
    ``extra`` paths raise ``InvalidInput`` naming ``field``.
    """
    problems = [p for path in extra for p in check_bind_mount_path(field, path)]
    raise_if(problems)
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
        parent = next((k.path for k in kept if _is_under(mount.path, k.path)), None)
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


def required_bind_mounts(
    profile: str,
    extra: Sequence[str],
    os_distribution: str = "ubuntu",
    opensm: bool = False,
) -> tuple[BindMount, ...]:
    """The bind mounts to add to user-data (see ``explain_bind_mounts``)."""
    return explain_bind_mounts(profile, extra, os_distribution, opensm).kept


# ------------------------------------------------------------------- checks


def check_bind_mount_path(field: str, path: str) -> list[Problem]:
    """Problems with one bind-mount path (empty when it is usable)."""
    if not path:
        return [Problem(field, path, f"is empty; expected {_ALLOWED_PATH}.", "remove the entry.")]
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
    elif path.startswith("/") and _normal(path) != path:
        problems.append(
            Problem(
                field,
                path,
                f"is not in normal form; expected {_ALLOWED_PATH}.",
                f"write {_normal(path)}.",
            )
        )
    if problems:
        return problems
    if path == "/":
        problems.append(
            Problem(
                field,
                path,
                "is the root filesystem, which is the read-only image and cannot be bind-mounted.",
                "name the directory that must persist, e.g. /var/lib/example.",
            )
        )
    elif _is_under(path, PERSISTENT_PARTITION):
        problems.append(
            Problem(
                field,
                path,
                f"is on the persistent partition {PERSISTENT_PARTITION} already; "
                "a bind mount there is pointless.",
                "remove the entry (files under /usr/local already survive reboots).",
            )
        )
    elif path in RW_PATHS:
        problems.append(
            Problem(
                field,
                path,
                f"is one of the Kairos overlay mount points ({' '.join(RW_PATHS)}); "
                "an existing mount point cannot be a bind mount.",
                f"name the directory below it that must persist, e.g. {path}/lib/example.",
            )
        )
    return problems


def _parse(text: str) -> tuple[Node | None, object]:
    """The composed node tree and the constructed data (raises yaml.YAMLError)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


_QUOTED = re.compile(r"'[^']{4,}'|\"[^\"]{4,}\"")


def _yaml_error_problem(exc: yaml.YAMLError) -> Problem:
    """Where and what, without quoting the file (PyYAML's str() shows a snippet)."""
    where = "user-data"
    what = ""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            where = f"line {mark.line + 1}, column {mark.column + 1}"
        if exc.problem:
            what = ": " + _QUOTED.sub("'…'", exc.problem)
    return Problem(
        "user_data",
        where,
        f"is not valid YAML{what}.",
        "fix the YAML at that position (a YAML linter shows the details).",
    )


def _walk(node: Node, path: str, seen: set[int] | None = None) -> Iterator[tuple[str, Node]]:
    """Every node with its dotted path; an aliased node is visited once."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    yield path, node
    if isinstance(node, MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else "?"
            yield from _walk(value, f"{path}.{name}", seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from _walk(item, f"{path}[{index}]", seen)


def _duplicate_keys(root: Node) -> list[Problem]:
    problems: list[Problem] = []
    for path, node in _walk(root, "user_data"):
        if not isinstance(node, MappingNode):
            continue
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.value == "<<":
                continue
            if key.value in seen:
                problems.append(
                    Problem(
                        f"{path}.{key.value}",
                        f"line {key.start_mark.line + 1}",
                        "is defined twice in the same mapping; Kairos's YAML parser rejects "
                        "duplicate keys.",
                        "keep one of the two entries.",
                    )
                )
            seen.add(key.value)
    return problems


def _check_path_list(field: str, value: object, full: bool) -> list[Problem]:
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            Problem(
                field,
                type(value).__name__,
                "must be a list of absolute paths.",
                f"write it as a YAML list, e.g. {field.rsplit('.', 1)[-1]}: [/var/lib/example].",
            )
        ]
    problems: list[Problem] = []
    for index, item in enumerate(value):
        name = f"{field}[{index}]"
        if not isinstance(item, str):
            problems.append(
                Problem(
                    name,
                    type(item).__name__,
                    "must be an absolute path string.",
                    "write the path as plain text, e.g. /var/lib/example.",
                )
            )
        elif full:
            problems += check_bind_mount_path(name, item)
        elif not item.startswith("/") or any(ch.isspace() for ch in item):
            problems.append(
                Problem(
                    name,
                    item,
                    "must be an absolute path without whitespace.",
                    "write the full path, e.g. /var/lib/example.",
                )
            )
    return problems


def check_user_data(text: str) -> list[Problem]:
    """Problems with a user-data file (empty when canvos-doca can use it)."""
    problems: list[Problem] = []
    first = text.split("\n", 1)[0].rstrip()
    if first != "#cloud-config":
        problems.append(
            Problem(
                "user_data",
                "line 1",
                "does not start with the line #cloud-config; Kairos ignores a config without it.",
                "make '#cloud-config' the first line of the file.",
            )
        )
    try:
        root, data = _parse(text)
    except yaml.YAMLError as exc:
        problems.append(_yaml_error_problem(exc))
        return problems
    if root is not None:
        problems += _duplicate_keys(root)
    if not isinstance(data, dict):
        found = "nothing" if data is None else f"a {type(data).__name__}"
        problems.append(
            Problem(
                "user_data",
                found,
                "must be a YAML mapping (key: value lines) at the top level.",
                "start from overlays/user-data/user-data.yaml and keep keys such as install: "
                "and stylus: at the top level.",
            )
        )
        return problems
    install = data.get("install")
    if install is None:
        return problems
    if not isinstance(install, dict):
        problems.append(
            Problem(
                "user_data.install",
                type(install).__name__,
                "must be a mapping of Kairos install options.",
                "write it as 'install:' followed by indented 'key: value' lines.",
            )
        )
        return problems
    if install.get("reboot") is True and install.get("poweroff") is True:
        problems.append(
            Problem(
                "user_data.install",
                {"reboot": True, "poweroff": True},
                "sets both reboot and poweroff; Kairos allows at most one of them.",
                "keep poweroff: true (power off after install) or reboot: true, not both.",
            )
        )
    problems += _check_path_list(
        "user_data.install.bind_mounts", install.get("bind_mounts"), full=True
    )
    problems += _check_path_list(
        "user_data.install.ephemeral_mounts", install.get("ephemeral_mounts"), full=False
    )
    return problems


def user_data_bind_mounts(text: str) -> tuple[str, ...]:
    """The ``install.bind_mounts`` entries of a user-data that passes ``check_user_data``.

    They must exist in the image just like the computed ones.
    """
    raise_if(check_user_data(text))
    _, data = _parse(text)
    assert isinstance(data, dict)
    install = data.get("install") or {}
    return tuple(install.get("bind_mounts") or ())


# -------------------------------------------------------------------- merge


class UserDataEditError(InvalidInput):
    """The user-data is valid but laid out in a way canvos-doca will not edit."""


def _unsafe(where: str, why: str, paths: Sequence[str]) -> UserDataEditError:
    return UserDataEditError(
        [
            Problem(
                "user_data.install.bind_mounts",
                where,
                f"cannot be edited safely ({why}).",
                "add these paths to install.bind_mounts yourself, then build again: "
                + ", ".join(paths)
                + ".",
            )
        ]
    )


class _Text:
    """The user-data as lines, with offsets matching PyYAML's line numbers."""

    def __init__(self, text: str) -> None:
        if re.search(r"\r(?!\n)|[\x85\u2028\u2029]", text):
            raise ValueError("line breaks other than LF and CRLF")
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.starts = [0]
        for index, char in enumerate(text):
            if char == "\n":
                self.starts.append(index + 1)

    def line(self, number: int) -> str:
        end = self.starts[number + 1] if number + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[number] : end].rstrip("\r\n")

    def after_line(self, number: int) -> tuple[int, str]:
        """Offset where a new line after line ``number`` goes, and a prefix to write."""
        if number + 1 < len(self.starts):
            return self.starts[number + 1], ""
        return len(self.text), "" if self.text.endswith("\n") else self.newline


def _key(mapping: MappingNode, name: str) -> tuple[ScalarNode, Node] | None:
    for key, value in mapping.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _indent_unit(root: MappingNode) -> int:
    """The user's indentation step, from the first nested block mapping (default 2)."""
    for _, node in _walk(root, ""):
        if isinstance(node, MappingNode) and not node.flow_style:
            for key, value in node.value:
                if isinstance(value, MappingNode) and not value.flow_style and value.value:
                    step = int(value.value[0][0].start_mark.column - key.start_mark.column)
                    if step > 0:
                        return step
    return 2


def _dash_offset(root: MappingNode, text: _Text, unit: int) -> int:
    """Columns from a key to the '-' of its block list items in the user's style."""
    for _, node in _walk(root, ""):
        if not isinstance(node, MappingNode):
            continue
        for key, value in node.value:
            if isinstance(value, SequenceNode) and not value.flow_style and value.value:
                dash = _dash_column(text, value.value[0])
                if dash is not None and dash >= key.start_mark.column:
                    return dash - int(key.start_mark.column)
    return unit


def _dash_column(text: _Text, item: Node) -> int | None:
    before = text.line(item.start_mark.line)[: item.start_mark.column].rstrip()
    return len(before) - 1 if before.endswith("-") else None


def _items(dash_col: int, gap: int, paths: Sequence[str], newline: str) -> str:
    return "".join(f"{' ' * dash_col}-{' ' * gap}{path}{newline}" for path in paths)


def _insert(text: str, at: int, new: str) -> str:
    return text[:at] + new + text[at:]


def _remove_null(text: str, node: Node, key: ScalarNode) -> str:
    """Drop an explicit null (``~``/``null``) written on the key's line."""
    start, end = node.start_mark.index, node.end_mark.index
    if start == end:
        return text
    if node.start_mark.line != key.start_mark.line:
        raise ValueError("null value on its own line")
    return text[:start] + text[end:]


def _edit(text: str, add: Sequence[str]) -> str:
    lines = _Text(text)
    nl = lines.newline
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, MappingNode) or root.flow_style:
        raise ValueError("the top level is not a block mapping")
    unit = _indent_unit(root)
    dash = _dash_offset(root, lines, unit)
    found = _key(root, "install")
    if found is None:
        if any(lines.line(n).startswith("...") for n in range(len(lines.starts))):
            raise ValueError("an explicit document end marker")
        at, prefix = lines.after_line(len(lines.starts) - 1)
        block = f"install:{nl}{' ' * unit}bind_mounts:{nl}" + _items(unit + dash, 1, add, nl)
        return _insert(text, at, prefix + block)
    ikey, install = found
    if _is_null(install):
        text = _remove_null(text, install, ikey)
        lines = _Text(text)
        col = ikey.start_mark.column + unit
        at, prefix = lines.after_line(ikey.start_mark.line)
        block = f"{' ' * col}bind_mounts:{nl}" + _items(col + dash, 1, add, nl)
        return _insert(text, at, prefix + block)
    if not isinstance(install, MappingNode):
        raise ValueError("install is not a mapping")
    flow_list = "[" + ", ".join(add) + "]"
    found = _key(install, "bind_mounts")
    if found is None:
        if install.flow_style:
            if install.value:
                at = install.value[-1][1].end_mark.index
                return _insert(text, at, f", bind_mounts: {flow_list}")
            at = install.end_mark.index - 1
            if text[at] != "}":
                raise ValueError("unexpected flow mapping layout")
            return _insert(text, at, f"bind_mounts: {flow_list}")
        col = install.value[0][0].start_mark.column
        at, prefix = lines.after_line(ikey.start_mark.line)
        if install.value[0][0].start_mark.line == ikey.start_mark.line:
            raise ValueError("install's first key is on the install: line")
        block = f"{' ' * col}bind_mounts:{nl}" + _items(col + dash, 1, add, nl)
        return _insert(text, at, prefix + block)
    bkey, mounts = found
    if _is_null(mounts):
        if install.flow_style:
            start, end = mounts.start_mark.index, mounts.end_mark.index
            return text[:start] + ("" if start < end else " ") + flow_list + text[end:]
        text = _remove_null(text, mounts, bkey)
        lines = _Text(text)
        at, prefix = lines.after_line(bkey.start_mark.line)
        return _insert(text, at, prefix + _items(bkey.start_mark.column + dash, 1, add, nl))
    if not isinstance(mounts, SequenceNode):
        raise ValueError("bind_mounts is not a list")
    if mounts.flow_style:
        if mounts.value:
            return _insert(text, mounts.value[-1].end_mark.index, ", " + ", ".join(add))
        at = mounts.end_mark.index - 1
        if text[at] != "]":
            raise ValueError("unexpected flow list layout")
        return _insert(text, at, ", ".join(add))
    first, last = mounts.value[0], mounts.value[-1]
    dash_col = _dash_column(lines, first)
    if dash_col is None:
        raise ValueError("unexpected block list layout")
    gap = first.start_mark.column - dash_col - 1
    at, prefix = lines.after_line(last.end_mark.line)
    return _insert(text, at, prefix + _items(dash_col, gap, add, nl))


def _unshared(value: Any) -> Any:
    """A copy in which YAML aliases no longer share objects, so that editing
    ``install`` in the expected structure cannot change another key."""
    if isinstance(value, dict):
        return {key: _unshared(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unshared(item) for item in value]
    return value


def _where_install(text: str) -> str:
    for number, line in enumerate(text.split("\n")):
        if line.startswith("install:"):
            return f"line {number + 1}"
    return "end of file"


def merge_user_data(text: str, bind_mounts: Sequence[str], os_distribution: str = "ubuntu") -> str:
    """``text`` with ``bind_mounts`` added to ``install.bind_mounts``.

    Keeps the user's entries, their order, every other key and all comments:
    the change is a text insertion guided by the YAML parse. Paths already
    listed (or under a listed one), repeated, or persisted by Kairos anyway
    (a default, under one, or under /usr/local) are not added, so merging twice gives the same text.
    The result is re-parsed and compared with the expected structure;
    ``UserDataEditError`` is raised when the layout is too unusual to edit.
    Errors name keys and line numbers, never user-data content.
    """
    raise_if(check_user_data(text))
    raise_if(p for path in bind_mounts for p in check_bind_mount_path("bind_mounts", path))
    _, data = _parse(text)
    assert isinstance(data, dict)
    install = data.get("install") or {}
    present = [_normal(p) for p in install.get("bind_mounts") or ()]
    add: list[str] = []
    for path in bind_mounts:
        # Not repeated, not under an entry already listed, not persistent anyway.
        if not is_persistent(path, os_distribution, extra=[*present, *add]):
            add.append(path)
    if not add:
        return text
    where = _where_install(text)
    try:
        merged = _edit(text, add)
    except ValueError as exc:  # our own messages: no user-data content
        raise _unsafe(where, str(exc), add) from None
    except (IndexError, yaml.YAMLError):
        raise _unsafe(where, "unexpected layout", add) from None
    try:
        expected = _unshared(data)
        expected_install = expected.get("install") or {}
        expected["install"] = expected_install
        expected_install["bind_mounts"] = [*(expected_install.get("bind_mounts") or ()), *add]
        _, got = _parse(merged)
        same = got == expected
    except yaml.YAMLError:
        raise _unsafe(where, "the edited file did not parse", add) from None
    except RecursionError:
        raise _unsafe(where, "recursive anchors", add) from None
    if not same or check_user_data(merged):
        raise _unsafe(where, "the edited file did not match the expected structure", add)
    return merged
