"""The README's reference tables (``canvos-doca knobs``): knobs from the spec,
file inputs from ``pipeline.inputs``."""

from __future__ import annotations

from pipeline.inputs import FILE_INPUTS
from pipeline.spec import BOOL_FIELDS, CONFIG_ONLY, FIELDS, FILES_FIELDS, LIST_FIELDS, kebab

_KIND = {True: "list", False: "text"}


def _default(value: object) -> str:
    if isinstance(value, tuple):
        return "`" + ",".join(value) + "`" if value else "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value else "empty"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def knob_table() -> str:
    """A Markdown table: config key, flag, kind, default, meaning."""
    rows = [
        "| config key | flag / Dagger argument | kind | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field in FIELDS:
        kind = "flag" if field.name in BOOL_FIELDS else _KIND[field.name in LIST_FIELDS]
        kind = "mapping" if field.name in FILES_FIELDS else kind
        flag = "(config, preset)" if field.name in CONFIG_ONLY else f"`--{kebab(field.name)}`"
        rows.append(
            f"| `{field.name}` | {flag} | {kind} | {_default(field.default)} "
            f"| {_cell(str(field.metadata['doc']))} |"
        )
    return "\n".join(rows) + "\n"


def input_table() -> str:
    """A Markdown table of the file inputs: flag, what the CLI and Dagger take, meaning."""
    rows = [
        "| flag / Dagger argument | CLI takes | Dagger takes | meaning |",
        "| --- | --- | --- | --- |",
    ]
    rows += [
        f"| `--{kebab(i.name)}` | {i.cli} | {i.dagger} | {_cell(i.doc)} |" for i in FILE_INPUTS
    ]
    return "\n".join(rows) + "\n"
