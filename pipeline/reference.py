"""The knob reference table (README and ``canvos-doca knobs``), from the spec."""

from __future__ import annotations

from pipeline.spec import BOOL_FIELDS, FIELDS, LIST_FIELDS, kebab

_KIND = {True: "list", False: "text"}


def _default(value: object) -> str:
    if isinstance(value, tuple):
        return "`" + ",".join(value) + "`" if value else "none"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`" if value else "empty"


def knob_table() -> str:
    """A Markdown table: config key, flag, kind, default, meaning."""
    rows = [
        "| config key | flag / Dagger argument | kind | default | meaning |",
        "| --- | --- | --- | --- | --- |",
    ]
    for field in FIELDS:
        kind = "flag" if field.name in BOOL_FIELDS else _KIND[field.name in LIST_FIELDS]
        meaning = str(field.metadata["doc"]).replace("|", "\\|")
        rows.append(
            f"| `{field.name}` | `--{kebab(field.name)}` | {kind} | {_default(field.default)} "
            f"| {meaning} |"
        )
    return "\n".join(rows) + "\n"
