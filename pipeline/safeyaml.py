"""Every YAML document canvos-doca reads goes through here (``compose`` or ``load``).

PyYAML's ``SafeLoader`` builds no arbitrary objects, but it trusts aliases:
a 500-byte document of nested anchors and aliases ("billion laughs")
composes into a small graph that stands for billions of nodes, and anything
that walks the constructed data (a merge key, printing, dumping) expands it
until memory runs out. So the composed node graph is measured before
anything is constructed: counting every node as many times as aliases reach
it costs one pass over the graph, and a document that expands to more than
``EXPANSION_RATIO`` times its own nodes (plus ``EXPANSION_ALLOWANCE``) is
refused, as is a recursive alias and nesting deeper than ``MAX_DEPTH``.
Ordinary anchors (a shared ``<<: *defaults`` block) stay far below that.

Errors name the file (``source``) and a line, never its content: user-data
holds the edge host token.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline.errors import InvalidInput, Problem

# A document may stand for at most this many times its own nodes...
EXPANSION_RATIO: Final = 10
# ...plus this many (small documents with a few shared blocks).
EXPANSION_ALLOWANCE: Final = 10_000
# Nesting deeper than this is refused (PyYAML composes recursively).
MAX_DEPTH: Final = 200

_QUOTED = re.compile(r"'[^']{4,}'|\"[^\"]{4,}\"")
_FIX = "fix the YAML at that position (a YAML linter shows the details)."


def compose(text: str, field: str, source: str) -> Node | None:
    """The checked node graph of a one-document YAML text (None when empty).

    ``field`` and ``source`` (the file's name or path) go into the
    ``InvalidInput`` raised for a syntax error, a second document, an alias
    bomb, a recursive alias or too deep nesting.
    """
    loader = yaml.SafeLoader(text)
    try:
        root = loader.get_single_node()
    except yaml.YAMLError as exc:
        raise _syntax(exc, field, source) from None
    except RecursionError:
        raise _refused(field, source, f"nests deeper than {MAX_DEPTH} levels.") from None
    finally:
        loader.dispose()
    if root is not None:
        _check_graph(root, field, source)
    return root


def construct(root: Node | None) -> object:
    """The Python data of a node graph ``compose`` returned."""
    if root is None:
        return None
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_document(root)
    finally:
        loader.dispose()


def load(text: str, field: str, source: str) -> object:
    """``compose`` then ``construct``: the data of a checked YAML text."""
    return construct(compose(text, field, source))


def walk(node: Node, path: str) -> Iterator[tuple[str, Node]]:
    """Every node once, with its dotted path (``a.b[0].c``); an aliased node
    is visited at its first path only."""
    seen: set[int] = set()
    stack = [(path, node)]
    while stack:
        here, current = stack.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield here, current
        children: list[tuple[str, Node]] = []
        if isinstance(current, MappingNode):
            for key, value in current.value:
                name = key.value if isinstance(key, ScalarNode) else "?"
                children.append((f"{here}.{name}", value))
        elif isinstance(current, SequenceNode):
            children = [(f"{here}[{i}]", item) for i, item in enumerate(current.value)]
        stack.extend(reversed(children))


def duplicate_keys(root: Node, path: str) -> list[tuple[str, int]]:
    """``(dotted path of the key, 1-based line)`` of every key defined twice
    in one mapping (merge keys ``<<`` aside)."""
    found: list[tuple[str, int]] = []
    for here, node in walk(root, path):
        if not isinstance(node, MappingNode):
            continue
        seen: set[str] = set()
        for key, _ in node.value:
            if not isinstance(key, ScalarNode) or key.value == "<<":
                continue
            if key.value in seen:
                found.append((f"{here}.{key.value}", key.start_mark.line + 1))
            seen.add(key.value)
    return found


def _check_graph(root: Node, field: str, source: str) -> None:
    """Refuse recursive aliases, deep nesting and out-of-proportion expansion.

    One depth-first pass: ``expanded[id]`` is the number of nodes a node
    stands for once every alias is replaced by a copy of its anchor.
    """
    expanded: dict[int, int] = {}
    on_path: dict[int, list[Node]] = {}  # node id -> its children, while below it
    stack: list[tuple[Node, int]] = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        key = id(node)
        if depth < 0:  # every child is counted: count this node
            expanded[key] = 1 + sum(expanded[id(child)] for child in on_path.pop(key))
            continue
        if key in expanded:
            continue
        if key in on_path:
            raise _refused(field, source, "has an alias that refers to itself (a recursive alias).")
        if depth > MAX_DEPTH:
            raise _refused(field, source, f"nests deeper than {MAX_DEPTH} levels.")
        children = on_path[key] = _children(node)
        stack.append((node, -1))
        stack.extend((child, depth + 1) for child in children if id(child) not in expanded)
    real = len(expanded)
    budget = EXPANSION_RATIO * real + EXPANSION_ALLOWANCE
    if expanded[id(root)] > budget:
        raise _refused(
            field,
            source,
            f"uses aliases that expand {real} YAML nodes to {expanded[id(root)]} "
            f"(more than {budget}), like a 'billion laughs' attack; it is refused unread.",
        )


def _children(node: Node) -> list[Node]:
    if isinstance(node, MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, SequenceNode):
        return list(node.value)
    return []


def _refused(field: str, source: str, message: str) -> InvalidInput:
    return InvalidInput(
        [Problem(field, source, message, "remove the aliases (*name) or write the values out.")]
    )


def _syntax(exc: yaml.YAMLError, field: str, source: str) -> InvalidInput:
    """Where and what, without quoting the file (PyYAML's str() shows a snippet)."""
    where, what = "", ""
    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        if exc.problem:
            what = ": " + _QUOTED.sub("'…'", exc.problem)
    return InvalidInput([Problem(field, source, f"is not valid YAML{where}{what}.", _FIX)])
