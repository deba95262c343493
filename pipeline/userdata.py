"""user-data checks: a user-data file is parsed once into a ``UserData``.

user-data is a Kairos cloud-config (``#cloud-config`` first, then YAML) with
Kairos ``install:`` keys, ``stages:`` and Palette's ``stylus:`` block. The
checks here are the ones Kairos would fail on later, found before a build:
the header, YAML syntax, duplicate keys (Kairos's parser rejects them), a
top-level mapping, ``install.reboot`` with ``install.poweroff``, and the
bind-mount paths (``pipeline.persistence``).

Secrets: user-data carries the edge host token and registry passwords. No
problem reported here quotes user-data content; problems name keys, line
numbers, types and bind-mount paths only.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline import facts
from pipeline.errors import Problem, raise_if
from pipeline.persistence import check_bind_mount_path

HEADER = facts.KAIROS_CLOUD_CONFIG_HEADER
FIELD = "user_data"


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


def parse(text: str) -> UserData:
    """The checked user-data; ``InvalidInput`` lists every problem."""
    found, problems = read(text)
    raise_if(problems)
    assert found is not None  # no problems means it parsed into a mapping
    return found


def problems(text: str) -> list[Problem]:
    """Every problem of a user-data file (empty when canvos-doca can use it)."""
    return read(text)[1]


def read(text: str) -> tuple[UserData | None, list[Problem]]:
    """One parse: the value when the file is usable, and every problem found."""
    found: list[Problem] = []
    if text.split("\n", 1)[0].rstrip() != HEADER:
        found.append(
            Problem(
                FIELD,
                "line 1",
                f"does not start with the line {HEADER}; Kairos ignores a config without it.",
                f"make '{HEADER}' the first line of the file.",
            )
        )
    try:
        root, data = _compose(text)
    except yaml.YAMLError as exc:
        return None, [*found, _yaml_error_problem(exc)]
    if root is not None:
        found += _duplicate_keys(root)
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        shown = "nothing" if data is None else f"a {type(data).__name__}"
        found.append(
            Problem(
                FIELD,
                shown,
                "must be a YAML mapping (key: value lines) at the top level.",
                "start from overlays/user-data/user-data.yaml and keep keys such as install: "
                "and stylus: at the top level.",
            )
        )
        return None, found
    found += _install_problems(data.get("install"))
    return (None if found else UserData(text, root, data)), found


def _compose(text: str) -> tuple[Node | None, object]:
    """The node tree and the constructed data (raises yaml.YAMLError)."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    finally:
        loader.dispose()
    return node, data


def _install_problems(install: object) -> list[Problem]:
    if install is None:
        return []
    if not isinstance(install, dict):
        return [
            Problem(
                f"{FIELD}.install",
                type(install).__name__,
                "must be a mapping of Kairos install options.",
                "write it as 'install:' followed by indented 'key: value' lines.",
            )
        ]
    found: list[Problem] = []
    if install.get("reboot") is True and install.get("poweroff") is True:
        found.append(
            Problem(
                f"{FIELD}.install",
                {"reboot": True, "poweroff": True},
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
                type(value).__name__,
                "must be a list of absolute paths.",
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
                    type(item).__name__,
                    "must be an absolute path string.",
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
        FIELD,
        where,
        f"is not valid YAML{what}.",
        "fix the YAML at that position (a YAML linter shows the details).",
    )


def walk(node: Node, path: str, seen: set[int] | None = None) -> Iterator[tuple[str, Node]]:
    """Every node with its dotted path; an aliased node is visited once."""
    seen = set() if seen is None else seen
    if id(node) in seen:
        return
    seen.add(id(node))
    yield path, node
    if isinstance(node, MappingNode):
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else "?"
            yield from walk(value, f"{path}.{name}", seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from walk(item, f"{path}[{index}]", seen)


def _duplicate_keys(root: Node) -> list[Problem]:
    found: list[Problem] = []
    for path, node in walk(root, FIELD):
        if not isinstance(node, MappingNode):
            continue
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.value == "<<":
                continue
            if key.value in seen:
                found.append(
                    Problem(
                        f"{path}.{key.value}",
                        f"line {key.start_mark.line + 1}",
                        "is defined twice in the same mapping; Kairos's YAML parser rejects "
                        "duplicate keys.",
                        "keep one of the two entries.",
                    )
                )
            seen.add(key.value)
    return found
