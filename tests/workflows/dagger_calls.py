"""Check `dagger call` command lines against what the module and the SDK register.

A `dagger call` line is a chain: constructor flags, then a function of the main
object with its flags, then functions of whatever that returns (core types such
as Directory or Container), and so on. The module's side comes from the offline
registration (tests/pipeline/registration.py); the core types' side comes from
the pinned SDK's generated client (``dagger.Directory``, ``dagger.Container``,
...), whose methods mirror the engine API of the same version. A renamed
function or argument therefore fails here instead of in a nightly build.
"""

from __future__ import annotations

import inspect
import re
import shlex
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cache

import dagger

from tests.pipeline import registration

# `dagger [global flags] VERB ...`: the verbs workflows may use.
VERBS = ("call", "version", "functions")
# Global flags (before the verb) the workflows and docs use: name -> takes a value
# (-m/--mod: the module to load, e.g. github.com/OWNER/canvos-doca@TAG).
GLOBAL_FLAGS = {
    "--progress": True,
    "-s": False,
    "--silent": False,
    "-q": False,
    "-m": True,
    "--mod": True,
}
# Flags of `dagger call` valid anywhere after the verb: name -> takes a value.
CALL_FLAGS = {"-o": True, "--output": True, "-j": False, "--json": False}
# Secret arguments are references the CLI resolves, never values.
SECRET_SCHEMES = ("env:", "file:", "cmd:", "op:", "vault:", "libsecret:")
SHELL_KEYWORDS = {"do", "then", "else", "elif", "fi", "done", "if", "while", "until", "!"}


@dataclass(frozen=True)
class Param:
    name: str  # CLI spelling (kebab-case)
    type: str  # String, Boolean, Secret, File, Directory, Container, [String], ...
    required: bool


@dataclass(frozen=True)
class Fn:
    name: str
    returns: str
    params: Mapping[str, Param]


@dataclass
class Call:
    """One parsed `dagger call` line: the chain of (function, {flag: value})."""

    line: str
    steps: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    @property
    def functions(self) -> list[str]:
        return [name for name, _ in self.steps[1:]]

    @property
    def constructor_args(self) -> dict[str, str]:
        return self.steps[0][1] if self.steps else {}


# ------------------------------------------------------------------ schemas

Schema = Callable[[str], Mapping[str, Fn] | None]
"""Type name -> its functions by CLI name (None: not a chainable type)."""


def module_functions(
    registered: Mapping[str, registration.Function],
) -> tuple[Fn, dict[str, Fn]]:
    """The constructor and the main object's functions, from a registration."""

    def convert(function: registration.Function) -> Fn:
        params = {
            name: Param(
                name,
                arg.type,
                required=not arg.optional and arg.default is None and arg.default_path is None,
            )
            for name, arg in function.args.items()
        }
        return Fn(function.name, function.returns, params)

    constructor = convert(registered[registration.CONSTRUCTOR])
    functions = {
        name: convert(function)
        for name, function in registered.items()
        if name != registration.CONSTRUCTOR
    }
    return constructor, functions


def _type_name(hint: object, owner: str) -> str:
    """An SDK annotation as an API type name (``list[str]`` -> ``[String]``)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        members = [a for a in typing.get_args(hint) if a is not type(None)]
        return _type_name(members[0], owner) if members else "Void"
    if typing.get_origin(hint) is list:
        return f"[{_type_name(typing.get_args(hint)[0], owner)}]"
    scalars: dict[object, str] = {str: "String", bool: "Boolean", int: "Integer", float: "Float"}
    if hint in scalars:
        return scalars[hint]
    if hint is typing_self():
        return owner
    if hint is None or hint is type(None):
        return "Void"
    return getattr(hint, "__name__", str(hint))


def typing_self() -> object:
    import typing_extensions

    return typing_extensions.Self


@cache
def core_functions(type_name: str) -> dict[str, Fn] | None:
    """Functions of a core type, read from the pinned SDK's generated client."""
    cls = getattr(dagger, type_name, None)
    if not (inspect.isclass(cls) and issubclass(cls, dagger.client.base.Type)):
        return None
    found: dict[str, Fn] = {}
    for attr, method in inspect.getmembers(cls, inspect.isfunction):
        if attr.startswith("_") or attr in ("id", "sync"):
            continue
        try:
            hints = typing.get_type_hints(method)
        except (NameError, TypeError):  # pragma: no cover - SDK internals
            continue
        params = {}
        for pname, p in inspect.signature(method).parameters.items():
            if pname == "self":
                continue
            cli = pname.rstrip("_").replace("_", "-")
            required = p.default is inspect.Parameter.empty
            params[cli] = Param(cli, _type_name(hints.get(pname, str), type_name), required)
        name = attr.rstrip("_").replace("_", "-")
        found[name] = Fn(name, _type_name(hints.get("return"), type_name), params)
    return found


def schema_for(registered: Mapping[str, registration.Function]) -> tuple[Fn, Schema]:
    constructor, functions = module_functions(registered)
    main = constructor.returns

    def lookup(type_name: str) -> Mapping[str, Fn] | None:
        return functions if type_name == main else core_functions(type_name)

    return constructor, lookup


# ------------------------------------------------------------------ parsing

_EXPRESSION = re.compile(r"\$\{\{.*?\}\}", re.S)


def command_lines(script: str) -> list[str]:
    """Logical shell lines: backslash-newline continuations joined."""
    return re.sub(r"\\\n\s*", " ", script).splitlines()


def _tokens(line: str) -> list[str]:
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError as exc:  # unbalanced quotes
        return [f"<unparsable: {exc}>"]


def dagger_commands(script: str) -> list[tuple[str, list[str]]]:
    """Every `dagger ...` command of a shell script: (line, its tokens)."""
    found = []
    for line in command_lines(script):
        tokens = _tokens(line)
        for start, token in enumerate(tokens):
            if token != "dagger":
                continue
            if (
                start
                and tokens[start - 1] not in SHELL_KEYWORDS
                and not _is_punct(tokens[start - 1])
            ):
                continue  # an argument named dagger, not the command
            end = start + 1
            while end < len(tokens) and not _is_punct(tokens[end]):
                end += 1
            found.append((line.strip(), tokens[start:end]))
    return found


def _is_punct(token: str) -> bool:
    return bool(token) and all(c in "();<>|&" for c in token)


def check_command(tokens: list[str], constructor: Fn, schema: Schema, line: str = "") -> Call:
    """Parse and check one `dagger ...` command (tokens start with ``dagger``)."""
    call = Call(line or " ".join(tokens))
    i = 1
    while i < len(tokens) and tokens[i].startswith("-"):
        name = tokens[i].split("=", 1)[0]
        if name not in GLOBAL_FLAGS:
            call.problems.append(f"unknown global flag {name}")
        elif GLOBAL_FLAGS[name] and "=" not in tokens[i]:
            i += 1
        i += 1
    verb = tokens[i] if i < len(tokens) else ""
    if verb not in VERBS:
        call.problems.append(f"unknown dagger verb {verb!r} (allowed: {', '.join(VERBS)})")
        return call
    if verb != "call":
        return call
    fn: Fn = constructor
    given: dict[str, str] = {}
    call.steps.append(("", given))
    i += 1
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("-"):
            name, has_value, value = token.partition("=")
            if name in CALL_FLAGS:
                i += 1 if CALL_FLAGS[name] and not has_value else 0
            else:
                i = _flag(
                    call, fn, given, tokens, i, name.lstrip("-"), value if has_value else None
                )
            i += 1
            continue
        _check_required(call, fn, given)
        functions = schema(fn.returns)
        owner = fn.returns
        if functions is None:
            call.problems.append(f"{_shown(fn)} returns {owner}: nothing can follow, got {token!r}")
            return call
        if token not in functions:
            close = ", ".join(sorted(functions)) if len(functions) < 40 else "see dagger functions"
            call.problems.append(f"{owner} has no function {token!r} (known: {close})")
            return call
        fn, given = functions[token], {}
        call.steps.append((token, given))
        i += 1
    _check_required(call, fn, given)
    return call


def _flag(
    call: Call,
    fn: Fn,
    given: dict[str, str],
    tokens: list[str],
    i: int,
    name: str,
    value: str | None,
) -> int:
    param = fn.params.get(name)
    if param is None:
        known = ", ".join(f"--{p}" for p in sorted(fn.params))
        call.problems.append(f"{_shown(fn)} has no argument --{name} (known: {known})")
        return i + 1 if value is None and i + 1 < len(tokens) else i
    if value is None:
        if param.type == "Boolean":
            value = "true"
        elif i + 1 < len(tokens) and not tokens[i + 1].startswith("--"):
            i += 1
            value = tokens[i]
        else:
            call.problems.append(f"--{name} of {_shown(fn)} needs a value")
            return i
    if param.type == "Secret" and not value.startswith(SECRET_SCHEMES):
        call.problems.append(
            f"--{name} of {_shown(fn)} is a secret: pass a reference such as env:NAME, "
            f"not a value ({value!r})"
        )
    if name in given and not param.type.startswith("["):
        call.problems.append(f"--{name} of {_shown(fn)} given twice")
    given[name] = f"{given[name]},{value}" if name in given else value
    return i


def _check_required(call: Call, fn: Fn, given: Mapping[str, str]) -> None:
    missing = [f"--{p.name}" for p in fn.params.values() if p.required and p.name not in given]
    if missing:
        call.problems.append(f"{_shown(fn)} misses required {', '.join(missing)}")


def _shown(fn: Fn) -> str:
    return f"function {fn.name!r}" if fn.name else "the constructor"


def check_script(script: str, constructor: Fn, schema: Schema) -> list[Call]:
    return [
        check_command(tokens, constructor, schema, line) for line, tokens in dagger_commands(script)
    ]
