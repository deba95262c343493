"""Presets: named sets of knob values shipped with canvos-doca.

A preset is a YAML file ``presets/<name>.yaml`` (package data
``pipeline/presets`` in a wheel). It is a config file (``pipeline.config``:
same safe loader, same checks) with two keys of its own:

* ``description``: one line, shown by ``canvos-doca presets``;
* ``bfb: expected``: the host's nodeprep flashes a BlueField bootstream
  (BFB), so ``plan`` warns when no ``--bfb`` is given.

Its knob values form one layer of ``spec.resolve``: defaults < preset <
config < explicit flags. A layer replaces a knob's value as a whole (a list
in the config replaces the preset's list).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import hostsources, output, spec, textfile
from pipeline.config import parse_config
from pipeline.errors import InvalidInput, Problem

FIELD = "preset"
SUFFIX = ".yaml"
BFB_EXPECTED = "expected"
_META = ("description", "bfb")


@dataclass(frozen=True)
class Preset:
    """One shipped preset: its knob values (raw, as a config layer) and properties."""

    name: str
    description: str
    knobs: Mapping[str, object] = field(default_factory=dict)
    # The host's nodeprep flashes a BFB: warn when none is given.
    bfb_expected: bool = False


def directory() -> Path:
    """The shipped ``presets/`` directory (``output.package_data``)."""
    return output.package_data("presets")


def names() -> tuple[str, ...]:
    """The known preset names, sorted."""
    return tuple(sorted(p.name.removesuffix(SUFFIX) for p in directory().glob(f"*{SUFFIX}")))


def _unknown(name: str) -> InvalidInput:
    known = ", ".join(names()) or "(none)"
    rule = spec.RULES[FIELD]
    shown = name if rule.check(name) is None else name[:64]
    return InvalidInput(
        [
            Problem(
                FIELD,
                shown,
                f"is not a known preset. Known presets: {known}.",
                f"use one of: {known} (canvos-doca presets describes them).",
            )
        ]
    )


@functools.cache
def load(name: str) -> Preset:
    """The preset ``name``, read and checked like a config file.

    The name is looked up among ``names()`` before any path is built from
    it. Raises ``InvalidInput`` for an unknown name (listing the known ones)
    and for a preset file with a problem (a bug of the package).
    """
    if name not in names():
        raise _unknown(name)
    path = directory() / f"{name}{SUFFIX}"
    source = f"preset {name}"
    text = textfile.read_user_file(path, FIELD, textfile.CONFIG_LIMIT, "a preset file")
    values = parse_config(text, source, extra=_META, field=FIELD)
    description = values.pop("description", None)
    bfb = values.pop("bfb", None)
    problems = []
    if not isinstance(description, str) or not description.strip() or "\n" in description:
        problems.append(
            Problem(f"{source}: description", "", "must be one line of text.", "add one.")
        )
    if bfb not in (None, BFB_EXPECTED):
        problems.append(
            Problem(f"{source}: bfb", str(bfb), "is not a known value.", f"write {BFB_EXPECTED}.")
        )
    if FIELD in values:
        problems.append(
            Problem(f"{source}: {FIELD}", "", "names a preset; presets do not nest.", "remove it.")
        )
    if problems:
        raise InvalidInput(problems)
    # host_files sources of a preset live in the presets directory.
    values = hostsources.load_local(values, directory(), "the presets directory")[0]
    spec.resolve([values])  # checked like a config file's values
    return Preset(name, str(description).strip(), values, bfb == BFB_EXPECTED)


def layer(name: str | None) -> Mapping[str, object]:
    """The knob values of preset ``name`` as a ``spec.resolve`` layer
    (empty for no preset)."""
    return load(name).knobs if name else {}


def chosen(config: Mapping[str, object], overrides: Mapping[str, object]) -> str | None:
    """The preset a build asks for: the explicit value wins over the config
    file's (``None``: not given; ``""``: explicitly none)."""
    for values in (overrides, config):
        value = values.get(FIELD)
        if value is not None:
            return str(value).strip()
    return None


def sources(resolved: spec.BuildSpec) -> dict[str, str]:
    """Knob -> ``"preset"`` (its value is the preset's) or ``"overrides
    preset"`` (the preset sets it, the config or a flag changed it), for
    every knob the build's preset sets."""
    if not resolved.preset:
        return {}
    preset = load(resolved.preset)
    alone = spec.resolve([preset.knobs])
    return {
        name: "preset" if getattr(alone, name) == getattr(resolved, name) else "overrides preset"
        for name in preset.knobs
    }


def listing() -> str:
    """``canvos-doca presets``: one ``name  description`` line per preset."""
    found = [load(name) for name in names()]
    width = max((len(p.name) for p in found), default=0)
    return "".join(f"{p.name.ljust(width)}  {p.description}\n" for p in found)


def dropped(resolved: spec.BuildSpec) -> dict[str, tuple[str, ...]]:
    """List knobs (and ``host_files``) whose value replaced the preset's,
    with the preset's items the new value no longer has (paths for files)."""
    if not resolved.preset:
        return {}
    alone = spec.resolve([load(resolved.preset).knobs])
    out: dict[str, tuple[str, ...]] = {}
    for name, origin in sources(resolved).items():
        if origin != "overrides preset" or name not in spec.LIST_FIELDS + spec.FILES_FIELDS:
            continue
        before, after = _items(getattr(alone, name)), set(_items(getattr(resolved, name)))
        gone = tuple(item for item in before if item not in after)
        if gone:
            out[name] = gone
    return out


def _items(value: tuple[object, ...]) -> tuple[str, ...]:
    return tuple(item.path if isinstance(item, spec.PlacedFile) else str(item) for item in value)
