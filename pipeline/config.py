"""The ``--config`` file: a YAML mapping of knob names to values, one layer
of ``spec.resolve``.

Read with ``pipeline.safeyaml`` (alias bombs refused), then checked before
any value is used: a Kairos cloud-config passed here by mistake is named as
such, a key defined twice or unknown is an error (with a suggestion), and
where YAML turned what the user typed into another type (``doca_version:
3.10`` is the number 3.1, ``custom_tag: yes`` the boolean true) the user is
told to quote it. A value is taken as the text the user wrote when YAML's
reading of it says the same (``os_version: 22.04``).

No message quotes a value of this file that could be a secret: unknown keys
and values of another shape than expected are named, never shown, and
cloud-configs (which hold the edge host token) are recognised before any
key is looked at.
"""

from __future__ import annotations

import difflib
from collections.abc import Collection, Mapping

from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from pipeline import safeyaml, spec, userdata
from pipeline.errors import HIDDEN, InvalidInput, Problem, kind_of

FIELD = "config"
# YAML 1.1 tags PyYAML's SafeLoader resolves plain scalars to.
_NUMBER_TAGS = {"tag:yaml.org,2002:int": "number", "tag:yaml.org,2002:float": "number"}
_BOOL_TAG = "tag:yaml.org,2002:bool"


def parse_config(
    text: str,
    source: str = FIELD,
    elsewhere: Mapping[str, str] | None = None,
    extra: Collection[str] = (),
    field: str = FIELD,
) -> dict[str, object]:
    """The raw knob values of a config file's text (``source`` names it).

    ``elsewhere`` maps keys that are not knobs but are given another way
    (e.g. file inputs) to the fix shown for them; ``extra`` are keys besides
    the knobs that the caller reads (a preset's description), returned as
    YAML read them; ``field`` names the input in messages. Raises
    ``InvalidInput`` with every problem of the file.
    """
    root = safeyaml.compose(text, field, source)
    data = safeyaml.construct(root)
    if data is None:
        return {}
    if userdata.looks_like_cloud_config(text, data):
        raise InvalidInput(
            [
                Problem(
                    field,
                    source,
                    "is a Kairos cloud-config (user-data: it starts with "
                    f"{userdata.HEADER} or has {', '.join(userdata.CLOUD_CONFIG_KEYS)} keys), "
                    "not a file of knobs.",
                    f"pass it as --user-data {source}; --config takes knob: value lines "
                    "(canvos-doca knobs lists them).",
                )
            ]
        )
    if not isinstance(data, dict) or not isinstance(root, MappingNode):
        raise InvalidInput(
            [
                Problem(
                    field,
                    source,
                    f"is {kind_of(data)}; it must be a mapping of knob: value lines.",
                    "see canvos-doca knobs.",
                )
            ]
        )
    problems = [
        Problem(f"{source}: {path.split('.', 1)[1]}", HIDDEN, f"is defined twice (line {line}).",
                "keep one of the two entries.")
        for path, line in safeyaml.duplicate_keys(root, FIELD)
    ]  # fmt: skip
    values: dict[str, object] = {}
    unknown: set[str] = set()
    for key_node, value_node in root.value:
        key = key_node.value if isinstance(key_node, ScalarNode) else None
        if key is not None and key in extra:
            values[key] = data[key]
            continue
        if key is None or key not in spec.FIELD_NAMES:
            if key is None or key not in unknown:
                problems.append(_unknown(key_node, source, elsewhere or {}))
            unknown.add(str(key))
            continue
        value, found = _as_written(key, value_node, data[key], source)
        problems += found
        values[key] = value
    if problems:
        raise InvalidInput(problems)
    return values


def _unknown(key_node: Node, source: str, elsewhere: Mapping[str, str]) -> Problem:
    """An unknown key: named (with a suggestion), its value never shown."""
    if not isinstance(key_node, ScalarNode):
        return Problem(
            f"{source}: line {key_node.start_mark.line + 1}",
            HIDDEN,
            "has a key that is not text.",
            "use knob names as keys.",
        )
    key = key_node.value
    close = difflib.get_close_matches(key, spec.FIELD_NAMES, n=1)
    hint = f"did you mean {close[0]}?" if close else "see canvos-doca knobs for the knob names."
    return Problem(f"{source}: {key}", HIDDEN, "is not a known key.", elsewhere.get(key, hint))


def _as_written(name: str, node: Node, value: object, source: str) -> tuple[object, list[Problem]]:
    """The value of text or list knob ``name`` as the user wrote it, or the
    problem where YAML read it as a number or boolean that says otherwise."""
    if name in spec.BOOL_FIELDS:
        return value, []
    if name in spec.FILES_FIELDS:
        return _files_as_written(node, value), []
    if isinstance(node, ScalarNode):
        return _scalar(name, name, node, value, source)
    if isinstance(node, SequenceNode) and isinstance(value, list) and name in spec.LIST_FIELDS:
        items: list[object] = []
        problems: list[Problem] = []
        for index, (item_node, item) in enumerate(zip(node.value, value, strict=True)):
            if isinstance(item_node, ScalarNode):
                item, found = _scalar(name, f"{name}[{index}]", item_node, item, source)
                problems += found
            items.append(item)
        return items, problems
    return value, []


def _files_as_written(node: Node, value: object) -> object:
    """A ``host_files`` mapping with each ``mode`` as the text written: YAML
    1.1 reads an unquoted 0644 as the number 420 and 644 as six hundred and
    forty-four, so the number is never used. ``spec`` checks the rest."""
    if not isinstance(node, MappingNode) or not isinstance(value, dict):
        return value
    out = dict(value)
    for key_node, entry_node in node.value:
        entry = value.get(key_node.value) if isinstance(key_node, ScalarNode) else None
        if isinstance(entry_node, MappingNode) and isinstance(entry, dict):
            entry = dict(entry)
            for field_node, mode_node in entry_node.value:
                if field_node.value == "mode" and isinstance(mode_node, ScalarNode):
                    entry["mode"] = mode_node.value
            out[key_node.value] = entry
    return out


def _scalar(
    name: str, where: str, node: ScalarNode, value: object, source: str
) -> tuple[object, list[Problem]]:
    read_as = "boolean" if node.tag == _BOOL_TAG else _NUMBER_TAGS.get(node.tag)
    if read_as is None or (read_as == "number" and str(value) == node.value):
        return (node.value if read_as else value), []
    secret = name in spec.RULES and spec.RULES[name].secret
    written = "" if secret else f" {node.value}"
    result = "" if secret else f" {str(value).lower() if read_as == 'boolean' else value}"
    return value, [
        Problem(
            f"{source}: {where}",
            HIDDEN,
            f"was read by YAML as the {read_as}{result}, not as the text{written} "
            f"(line {node.start_mark.line + 1}).",
            "quote the value." if secret else f'quote it: "{node.value}".',
        )
    ]
