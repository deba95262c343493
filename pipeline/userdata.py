"""user-data checks: a user-data file is parsed once into a ``UserData``.

user-data is a Kairos cloud-config (``#cloud-config`` first, then YAML) with
Kairos ``install:`` keys, ``stages:`` and Palette's ``stylus:`` block. The
checks here are the ones Kairos would fail on later, found before a build:
the header, YAML syntax, duplicate keys (Kairos's parser rejects them), a
top-level mapping, ``install.reboot`` with ``install.poweroff``, and the
bind-mount paths (``pipeline.persistence``).

YAML is read with ``pipeline.safeyaml`` (alias bombs refused before they
expand); problems name the file when the caller passes its ``source``.

Secrets: user-data carries the edge host token and registry passwords. No
problem reported here quotes user-data content; problems name keys, line
numbers, types and bind-mount paths only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from yaml.nodes import MappingNode, Node

from pipeline import facts, safeyaml, spec
from pipeline.errors import HIDDEN, InvalidInput, Problem, kind_of, raise_if
from pipeline.persistence import check_bind_mount_path

HEADER = facts.KAIROS_CLOUD_CONFIG_HEADER
FIELD = "user_data"
# Top-level keys of a cloud-config that no knob file has: Kairos install and
# stages, Palette's stylus block, cloud-init style users.
CLOUD_CONFIG_KEYS = ("install", "stylus", "stages", "users")
walk = safeyaml.walk


def looks_like_cloud_config(text: str, data: object) -> bool:
    """Whether a file is a cloud-config: its header line, or top-level keys
    only a cloud-config has (``CLOUD_CONFIG_KEYS``)."""
    if text.split("\n", 1)[0].rstrip() == HEADER:
        return True
    return isinstance(data, Mapping) and any(key in data for key in CLOUD_CONFIG_KEYS)


def looks_like_knobs(data: object) -> bool:
    """Whether parsed YAML is a knobs file (``--config``) rather than
    user-data: a mapping without cloud-config keys, most of whose top-level
    keys are knob names (``spec.FIELD_NAMES``)."""
    if not isinstance(data, Mapping) or not data or looks_like_cloud_config("", data):
        return False
    knobs = sum(1 for key in data if key in spec.FIELD_NAMES)
    return knobs * 2 > len(data)


@dataclass(frozen=True)
class UserData:
    """A user-data file that passed every check.

    ``text`` is the file as given, ``root`` its YAML node tree (with the
    positions the minimal-diff editor needs) and ``data`` its content.
    """

    text: str
    root: MappingNode
    data: dict[str, Any]

    @property
    def install(self) -> dict[str, Any]:
        """The ``install:`` mapping (empty when absent or null)."""
        install = self.data.get("install")
        return install if isinstance(install, dict) else {}

    @property
    def bind_mounts(self) -> tuple[str, ...]:
        """The user's own ``install.bind_mounts``; they must exist in the image too."""
        return tuple(self.install.get("bind_mounts") or ())


def parse(text: str, source: str = "user-data") -> UserData:
    """The checked user-data; ``InvalidInput`` lists every problem."""
    found, problems = read(text, source)
    raise_if(problems)
    assert found is not None  # no problems means it parsed into a mapping
    return found


def problems(text: str, source: str = "user-data") -> list[Problem]:
    """Every problem of a user-data file (empty when canvos-doca can use it)."""
    return read(text, source)[1]


def read(text: str, source: str = "user-data") -> tuple[UserData | None, list[Problem]]:
    """One parse: the value when the file is usable, and every problem found.

    ``source`` (the file's path, or how it was given) names the file in a
    YAML syntax error or a refused alias bomb.
    """
    found: list[Problem] = []
    headless = text.split("\n", 1)[0].rstrip() != HEADER
    if headless:
        found.append(
            Problem(
                FIELD,
                source,
                f"does not start with the line {HEADER}; Kairos ignores a config without it.",
                f"make '{HEADER}' the first line of the file.",
            )
        )
    try:
        root, data = _compose(text, source)
    except InvalidInput as exc:
        return None, [*found, *exc.problems]
    if headless and looks_like_knobs(data):
        return None, [
            Problem(
                FIELD,
                source,
                "looks like a knobs file (most top-level keys are knob names), not user-data.",
                "pass it with --config; --user-data takes a Kairos cloud-config "
                f"starting with {HEADER}.",
            )
        ]
    if root is not None:
        found += _duplicate_keys(root)
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        found.append(
            Problem(
                FIELD,
                source,
                f"is {kind_of(data)}; it must be a YAML mapping (key: value lines) at the "
                "top level.",
                "start from overlays/user-data/user-data.yaml and keep keys such as install: "
                "and stylus: at the top level.",
            )
        )
        return None, found
    found += _install_problems(data.get("install"))
    return (None if found else UserData(text, root, data)), found


def _compose(text: str, source: str) -> tuple[Node | None, object]:
    """The checked node tree and its data (``InvalidInput`` when not usable YAML)."""
    root = safeyaml.compose(text, FIELD, source)
    return root, safeyaml.construct(root)


def _install_problems(install: object) -> list[Problem]:
    if install is None:
        return []
    if not isinstance(install, dict):
        return [
            Problem(
                f"{FIELD}.install",
                HIDDEN,
                f"is {kind_of(install)}; it must be a mapping of Kairos install options.",
                "write it as 'install:' followed by indented 'key: value' lines.",
            )
        ]
    found: list[Problem] = []
    if install.get("reboot") is True and install.get("poweroff") is True:
        found.append(
            Problem(
                f"{FIELD}.install",
                "reboot: true, poweroff: true",
                "sets both reboot and poweroff; Kairos allows at most one of them.",
                "keep poweroff: true (power off after install) or reboot: true, not both.",
            )
        )
    found += _path_list(f"{FIELD}.install.bind_mounts", install.get("bind_mounts"), full=True)
    found += _path_list(
        f"{FIELD}.install.ephemeral_mounts", install.get("ephemeral_mounts"), full=False
    )
    return found


def _path_list(field: str, value: object, full: bool) -> list[Problem]:
    """A list of absolute paths; ``full`` applies every bind-mount rule to each."""
    if value is None:
        return []
    if not isinstance(value, list):
        return [
            Problem(
                field,
                HIDDEN,
                f"is {kind_of(value)}; it must be a list of absolute paths.",
                f"write it as a YAML list, e.g. {field.rsplit('.', 1)[-1]}: [/var/lib/example].",
            )
        ]
    found: list[Problem] = []
    for index, item in enumerate(value):
        name = f"{field}[{index}]"
        if not isinstance(item, str):
            found.append(
                Problem(
                    name,
                    HIDDEN,
                    f"is {kind_of(item)}; it must be an absolute path.",
                    "write the path as plain text, e.g. /var/lib/example.",
                )
            )
        elif full:
            found += check_bind_mount_path(name, item)
        elif not item.startswith("/") or any(ch.isspace() for ch in item):
            found.append(
                Problem(
                    name,
                    item,
                    "must be an absolute path without whitespace.",
                    "write the full path, e.g. /var/lib/example.",
                )
            )
    return found


def _duplicate_keys(root: Node) -> list[Problem]:
    return [
        Problem(
            path,
            f"line {line}",
            "is defined twice in the same mapping; Kairos's YAML parser rejects duplicate keys.",
            "keep one of the two entries.",
        )
        for path, line in safeyaml.duplicate_keys(root, FIELD)
    ]
