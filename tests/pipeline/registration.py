"""The module's registration (what `dagger functions` / `dagger call` see), built offline.

The pinned SDK registers a module by building lazy ``dag.module().with_object(...)``
calls in ``Module._typedefs`` and awaiting only ``mod.id()`` at the end. Here that
final ``id`` returns the lazy Module query itself, and the recorded selections
(the type definitions the engine would receive) are read back. Nothing is stubbed
between our code and those typedefs.

Reusable: other tests (e.g. the workflow checks) import ``registered_functions``
to check that ``dagger call`` lines use only registered functions and arguments.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from typing import Any
from unittest import mock

import anyio
import dagger

from pipeline.main import CanvosDoca
from pipeline.spec import FIELD_NAMES

CONSTRUCTOR = ""  # key of the constructor's arguments in registered_functions()
MAIN_OBJECT = "CanvosDoca"
BEGIN = "<!-- dagger-functions:begin -->"
END = "<!-- dagger-functions:end -->"

_KINDS = {
    "STRING_KIND": "String",
    "BOOLEAN_KIND": "Boolean",
    "INTEGER_KIND": "Integer",
    "FLOAT_KIND": "Float",
    "VOID_KIND": "Void",
}


@dataclass(frozen=True)
class Arg:
    """One argument as registered (names in CLI kebab-case)."""

    name: str
    type: str
    optional: bool
    default: Any  # the JSON-decoded default value, None when not set
    doc: str
    default_path: str | None = None
    ignore: tuple[str, ...] = ()  # patterns left out of a Directory's upload


@dataclass(frozen=True)
class Function:
    name: str
    returns: str
    doc: str
    cache_policy: str
    args: dict[str, Arg]


def kebab(name: str) -> str:
    return name.replace("_", "-")


def _steps(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(field.name, field.args) for field in obj._ctx.selections]


def _type(type_def: Any) -> tuple[str, bool]:
    name, optional = "?", False
    for step, args in _steps(type_def):
        if step == "withKind":
            name = _KINDS.get(str(getattr(args["kind"], "value", args["kind"])), str(args["kind"]))
        elif step == "withObject":
            name = args["name"]
        elif step == "withListOf":
            name = f"[{_type(args['elementType'])[0]}]"
        elif step == "withOptional":
            optional = bool(args["optional"])
        elif step == "withEnum":
            name = args["name"]
    return name, optional


def _function(function: Any) -> Function:
    name, returns, doc, policy = "", "", "", "Default"
    args: dict[str, Arg] = {}
    for step, values in _steps(function):
        if step == "function":
            name, returns = values["name"], _type(values["returnType"])[0]
        elif step == "withDescription":
            doc = values["description"]
        elif step == "withCachePolicy":
            policy = str(getattr(values["policy"], "value", values["policy"]))
        elif step == "withArg":
            kind, optional = _type(values["typeDef"])
            raw = values.get("defaultValue")
            args[kebab(values["name"])] = Arg(
                name=kebab(values["name"]),
                type=kind,
                optional=optional,
                default=json.loads(str(raw)) if raw is not None else None,
                doc=values.get("description") or "",
                default_path=values.get("defaultPath"),
                ignore=tuple(values.get("ignore") or ()),
            )
    return Function(kebab(name), returns, doc, policy, args)


def _module_query() -> Any:
    module = CanvosDoca.__dagger_module__  # type: ignore[attr-defined]
    # What the runtime does when DAGGER_MAIN_OBJECT is set at import time.
    module._main_name = MAIN_OBJECT
    module._main = module._objects[MAIN_OBJECT]

    async def lazy_id(self: dagger.Module) -> dagger.Module:
        return self

    with mock.patch.object(dagger.Module, "id", lazy_id):
        return anyio.run(module._typedefs)


@cache
def registration() -> dict[str, Function]:
    """Every registered function of the main object by kebab name; the
    constructor under CONSTRUCTOR."""
    found: dict[str, Function] = {}
    for step, values in _steps(_module_query()):
        if step != "withObject":
            continue
        type_steps = _steps(values["object"])
        names = [args["name"] for s, args in type_steps if s == "withObject"]
        if names != [MAIN_OBJECT]:
            continue
        for s, args in type_steps:
            if s == "withFunction":
                function = _function(args["function"])
                found[function.name] = function
            elif s == "withConstructor":
                found[CONSTRUCTOR] = _function(args["function"])
    return found


def registered_functions() -> dict[str, dict[str, Arg]]:
    """Function kebab name -> its arguments; constructor arguments under ``""``."""
    return {name: dict(function.args) for name, function in registration().items()}


def functions_text() -> str:
    """A `dagger functions`-style reference: functions, their arguments, and the
    constructor options that are not build knobs (those have their own table)."""
    functions = {n: f for n, f in sorted(registration().items()) if n != CONSTRUCTOR}
    width = max(len(n) for n in functions) + 3
    lines = ["```text", f"{'Name':<{width}}Description"]
    lines += [f"{n:<{width}}{f.doc.splitlines()[0]}" for n, f in functions.items()]
    lines.append("```")
    lines.append("")
    for name, function in functions.items():
        if function.args:
            lines.append(f"`{name}` arguments:")
            lines.append("")
            lines += [_arg_line(arg) for arg in function.args.values()]
            lines.append("")
    knobs = {kebab(n) for n in FIELD_NAMES}
    options = {n: a for n, a in registration()[CONSTRUCTOR].args.items() if n not in knobs}
    lines.append("Constructor options besides the build knobs (put them before the function name):")
    lines.append("")
    lines += [_arg_line(arg) for _, arg in sorted(options.items())]
    return "\n".join(lines) + "\n"


def _arg_line(arg: Arg) -> str:
    default = ""
    if arg.default_path:
        default = f" (default: the module's `{arg.default_path}`)"
    elif arg.default not in (None, ""):
        default = f" (default: `{arg.default}`)"
    return f"- `--{arg.name}` {arg.type}: {arg.doc}{default}"


def marked_block(text: str) -> str | None:
    """The text between the dagger-functions markers, or None without markers."""
    if BEGIN not in text:
        return None
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return text[start:end].strip("\n") + "\n"


def replace_block(text: str) -> str:
    """``text`` with the marked block regenerated."""
    start = text.index(BEGIN) + len(BEGIN)
    end = text.index(END, start)
    return f"{text[:start]}\n{functions_text()}{text[end:]}"


if __name__ == "__main__":
    # Regenerate the block in place: python tests/pipeline/registration.py docs/building.md
    import sys
    from pathlib import Path

    for name in sys.argv[1:]:
        path = Path(name)
        path.write_text(replace_block(path.read_text()))
