"""Add bind mounts to a user's user-data with the smallest possible change.

The edit is a text insertion guided by the YAML node positions of the parse
``pipeline.userdata`` already made: every byte outside the inserted lines
stays as the user wrote it (comments, order, quoting, indentation, CRLF).
A YAML round-trip library would be simpler to call but does not keep the
file: ruamel.yaml 0.19 (round-trip mode) re-indents block lists, drops the
``#cloud-config`` line when a ``---`` follows it, rewrites ``~`` and
multi-line flow lists, and writes LF into CRLF files.

The edited text is parsed again and compared with the expected content;
anything unexpected raises ``UserDataEditError`` naming the paths to add by
hand. Errors name keys and line numbers, never user-data content.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline import userdata
from pipeline.errors import Problem, UserDataEditError, raise_if
from pipeline.persistence import DEFAULT_OS, check_bind_mount_path, is_persistent, normal
from pipeline.userdata import UserData

FIELD = "user_data.install.bind_mounts"
# The comment on every block line the editor inserts (list items, and the
# install:/bind_mounts: keys it creates): a later render (in place, or of a
# file copied from render's output) finds its own lines, and only those, and
# replaces them with the current build's paths. Flow collections ([a, b])
# cannot carry a comment per item: what is added there stays as written.
MARK = "# added by canvos-doca"
_MARKED = re.compile(
    rf"^[ \t]*(?:-[ \t]+[^\s#]+|install:|bind_mounts:)[ \t]+{re.escape(MARK)}[ \t]*(?:\r?\n|\Z)",
    re.M,
)


def without_own_mounts(text: str) -> str:
    """``text`` without the bind-mount items an earlier render inserted (the
    block-list lines ending in ``MARK``); every other byte as it was."""
    return _MARKED.sub("", text)


def add_bind_mounts(
    user_data: UserData, bind_mounts: Sequence[str], os_distribution: str = DEFAULT_OS
) -> str:
    """The user-data text with ``bind_mounts`` added to ``install.bind_mounts``.

    Keeps the user's entries, their order, every other key and all comments.
    Paths already listed (or under a listed one), repeated, or persisted by
    Kairos anyway (a default, under one, or under /usr/local) are not added,
    so adding twice gives the same text. Items an earlier render inserted
    (``MARK``) are dropped first: the paths of this build replace them.
    Invalid paths raise ``InvalidInput``
    naming ``bind_mounts``; a layout too unusual to edit raises
    ``UserDataEditError``.
    """
    raise_if(p for path in bind_mounts for p in check_bind_mount_path("bind_mounts", path))
    user_data = _without_own(user_data)
    present = [normal(p) for p in user_data.bind_mounts]
    add: list[str] = []
    for path in bind_mounts:
        # Not repeated, not under an entry already listed, not persistent anyway.
        if not is_persistent(path, os_distribution, extra=[*present, *add]):
            add.append(path)
    if not add:
        return user_data.text
    where = _where_install(user_data.text)
    try:
        edited = _Editor(user_data).add(add)
    except ValueError as exc:  # our own messages: no user-data content
        raise _unsafe(where, str(exc), add) from None
    except (IndexError, yaml.YAMLError):
        raise _unsafe(where, "unexpected layout", add) from None
    _check_result(user_data, edited, add, where)
    return edited


def _without_own(user_data: UserData) -> UserData:
    """``user_data`` without the items an earlier render inserted (re-read)."""
    text = without_own_mounts(user_data.text)
    if text == user_data.text:
        return user_data
    reread, problems = userdata.read(text)
    if reread is None or problems:  # e.g. an anchor on a marked line: keep the file
        return user_data
    return reread


def _check_result(user_data: UserData, edited: str, add: Sequence[str], where: str) -> None:
    """Parse the edited text and compare it with the content it must have."""
    try:
        expected = _unshared(user_data.data)
        install = expected.get("install") or {}
        expected["install"] = install
        install["bind_mounts"] = [*(install.get("bind_mounts") or ()), *add]
        got, problems = userdata.read(edited)
        same = got is not None and got.data == expected
    except RecursionError:
        raise _unsafe(where, "recursive anchors", add) from None
    if problems or not same:
        raise _unsafe(where, "the edited file did not match the expected structure", add)


def _unsafe(where: str, why: str, paths: Sequence[str]) -> UserDataEditError:
    return UserDataEditError(
        [
            Problem(
                FIELD,
                where,
                f"cannot be edited safely ({why}).",
                "add these paths to install.bind_mounts yourself, then build again: "
                + ", ".join(paths)
                + ".",
            )
        ]
    )


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


class _Lines:
    """The text as lines, with offsets matching PyYAML's line numbers."""

    def __init__(self, text: str) -> None:
        if re.search(r"\r(?!\n)|[\x85\u2028\u2029]", text):
            raise ValueError("line breaks other than LF and CRLF")
        self.text = text
        self.newline = "\r\n" if "\r\n" in text else "\n"
        self.starts = [0] + [index + 1 for index, char in enumerate(text) if char == "\n"]

    def line(self, number: int) -> str:
        end = self.starts[number + 1] if number + 1 < len(self.starts) else len(self.text)
        return self.text[self.starts[number] : end].rstrip("\r\n")

    def after_line(self, number: int) -> tuple[int, str]:
        """Offset where a new line after line ``number`` goes, and a prefix to write."""
        if number + 1 < len(self.starts):
            return self.starts[number + 1], ""
        return len(self.text), "" if self.text.endswith("\n") else self.newline

    def dash_column(self, item: Node) -> int | None:
        """The column of the ``-`` in front of a block list item."""
        before = self.line(item.start_mark.line)[: item.start_mark.column].rstrip()
        return len(before) - 1 if before.endswith("-") else None


class _Editor:
    """Inserts list items in the user's own style (indent step, dash offset, newline)."""

    def __init__(self, user_data: UserData) -> None:
        self.text = user_data.text
        self.root = user_data.root
        if self.root.flow_style:
            raise ValueError("the top level is not a block mapping")
        self.lines = _Lines(self.text)
        self.nl = self.lines.newline
        self.unit = _indent_unit(self.root)
        self.dash = _dash_offset(self.root, self.lines, self.unit)

    def add(self, paths: Sequence[str]) -> str:
        found = _key(self.root, "install")
        if found is None:
            return self._new_install(paths)
        key, install = found
        if _is_null(install):
            return self._fill_null_install(key, install, paths)
        if not isinstance(install, MappingNode):
            raise ValueError("install is not a mapping")
        found = _key(install, "bind_mounts")
        if found is None:
            return self._new_bind_mounts(key, install, paths)
        mounts_key, mounts = found
        if _is_null(mounts):
            return self._fill_null_list(install, mounts_key, mounts, paths)
        if not isinstance(mounts, SequenceNode):
            raise ValueError("bind_mounts is not a list")
        return self._extend_list(mounts, paths)

    def _items(self, column: int, paths: Sequence[str], gap: int = 1) -> str:
        return "".join(f"{' ' * column}-{' ' * gap}{path}  {MARK}{self.nl}" for path in paths)

    def _insert_after(self, line: int, new: str, text: str | None = None) -> str:
        text = self.text if text is None else text
        at, prefix = _Lines(text).after_line(line)
        return text[:at] + prefix + new + text[at:]

    def _new_install(self, paths: Sequence[str]) -> str:
        lines = self.lines
        if any(lines.line(n).startswith("...") for n in range(len(lines.starts))):
            raise ValueError("an explicit document end marker")
        block = f"install:  {MARK}{self.nl}{' ' * self.unit}bind_mounts:  {MARK}{self.nl}"
        return self._insert_after(
            len(lines.starts) - 1, block + self._items(self.unit + self.dash, paths)
        )

    def _fill_null_install(self, key: ScalarNode, install: Node, paths: Sequence[str]) -> str:
        text = _remove_null(self.text, install, key)
        column = key.start_mark.column + self.unit
        block = f"{' ' * column}bind_mounts:  {MARK}{self.nl}"
        block += self._items(column + self.dash, paths)
        return self._insert_after(key.start_mark.line, block, text)

    def _new_bind_mounts(self, key: ScalarNode, install: MappingNode, paths: Sequence[str]) -> str:
        flow_list = "[" + ", ".join(paths) + "]"
        if install.flow_style:
            if install.value:
                at = install.value[-1][1].end_mark.index
                return _insert(self.text, at, f", bind_mounts: {flow_list}")
            at = install.end_mark.index - 1
            if self.text[at] != "}":
                raise ValueError("unexpected flow mapping layout")
            return _insert(self.text, at, f"bind_mounts: {flow_list}")
        first_key = install.value[0][0]
        if first_key.start_mark.line == key.start_mark.line:
            raise ValueError("install's first key is on the install: line")
        column = first_key.start_mark.column
        block = f"{' ' * column}bind_mounts:  {MARK}{self.nl}"
        block += self._items(column + self.dash, paths)
        return self._insert_after(key.start_mark.line, block)

    def _fill_null_list(
        self, install: MappingNode, key: ScalarNode, mounts: Node, paths: Sequence[str]
    ) -> str:
        if install.flow_style:
            start, end = mounts.start_mark.index, mounts.end_mark.index
            flow_list = "[" + ", ".join(paths) + "]"
            return self.text[:start] + ("" if start < end else " ") + flow_list + self.text[end:]
        text = _remove_null(self.text, mounts, key)
        items = self._items(key.start_mark.column + self.dash, paths)
        return self._insert_after(key.start_mark.line, items, text)

    def _extend_list(self, mounts: SequenceNode, paths: Sequence[str]) -> str:
        if mounts.flow_style:
            if mounts.value:
                return _insert(self.text, mounts.value[-1].end_mark.index, ", " + ", ".join(paths))
            at = mounts.end_mark.index - 1
            if self.text[at] != "]":
                raise ValueError("unexpected flow list layout")
            return _insert(self.text, at, ", ".join(paths))
        first, last = mounts.value[0], mounts.value[-1]
        dash = self.lines.dash_column(first)
        if dash is None:
            raise ValueError("unexpected block list layout")
        gap = first.start_mark.column - dash - 1
        return self._insert_after(last.end_mark.line, self._items(dash, paths, gap))


def _key(mapping: MappingNode, name: str) -> tuple[ScalarNode, Node] | None:
    for key, value in mapping.value:
        if isinstance(key, ScalarNode) and key.value == name:
            return key, value
    return None


def _is_null(node: Node) -> bool:
    return isinstance(node, ScalarNode) and node.tag == "tag:yaml.org,2002:null"


def _indent_unit(root: MappingNode) -> int:
    """The user's indentation step, from the first nested block mapping (default 2)."""
    for _, node in userdata.walk(root, ""):
        if isinstance(node, MappingNode) and not node.flow_style:
            for key, value in node.value:
                if isinstance(value, MappingNode) and not value.flow_style and value.value:
                    step = int(value.value[0][0].start_mark.column - key.start_mark.column)
                    if step > 0:
                        return step
    return 2


def _dash_offset(root: MappingNode, lines: _Lines, unit: int) -> int:
    """Columns from a key to the '-' of its block list items in the user's style."""
    for _, node in userdata.walk(root, ""):
        if not isinstance(node, MappingNode):
            continue
        for key, value in node.value:
            if isinstance(value, SequenceNode) and not value.flow_style and value.value:
                dash = lines.dash_column(value.value[0])
                if dash is not None and dash >= key.start_mark.column:
                    return dash - int(key.start_mark.column)
    return unit


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
