"""Read the query a lazy Dagger object would send, without an engine."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dagger


def steps(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    """The selections of one object, in order: (field name, args)."""
    return [(field.name, field.args) for field in obj._ctx.selections]


def is_object(value: Any) -> bool:
    return hasattr(value, "_ctx")


def walk(obj: Any, skip: tuple[type, ...] = ()) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every selection of ``obj`` and of every object passed as an argument,
    depth first; objects of a type in ``skip`` are not entered."""
    for name, args in steps(obj):
        yield name, args
        for value in args.values():
            values = value if isinstance(value, list) else [value]
            for item in values:
                if is_object(item) and not isinstance(item, skip):
                    yield from walk(item, skip)


def named(obj: Any, name: str, skip: tuple[type, ...] = ()) -> list[dict[str, Any]]:
    """Args of every selection called ``name`` in the whole tree."""
    return [args for step, args in walk(obj, skip) if step == name]


def own(obj: Any, name: str) -> list[dict[str, Any]]:
    """Args of the selections called ``name`` on this object only."""
    return [args for step, args in steps(obj) if step == name]


def env(obj: Any) -> dict[str, str]:
    """Plain env variables set on this container chain."""
    return {a["name"]: a["value"] for a in own(obj, "withEnvVariable")}


def plain_values(obj: Any) -> list[str]:
    """Every plain argument value in the tree, Secret objects not entered:
    what could show up in the query, traces and logs."""
    out: list[str] = []
    for _, args in walk(obj, skip=(dagger.Secret,)):
        for value in args.values():
            if not is_object(value):
                out.append(repr(value))
    return out
