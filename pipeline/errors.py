"""Errors a user can act on, each owning the exit code the CLI returns for it.

Every failure canvos-doca explains itself is a ``CanvosDocaError``: entry
points print ``render()`` (never a traceback) and, on the command line, exit
with the class's ``exit_code``:

    2  InvalidInput (and UserDataEditError): nothing was built or written
    3  BuildFailed: a build step failed; the message names it and its log tail

Input problems are collected, not raised one by one: an ``InvalidInput``
carries one ``Problem`` per mistake (field, value, what is allowed, the fix),
so a user fixes them all in one go. Beyond ``SHOWN_PROBLEMS`` the rest are
summarised by field, so a list of 10,000 bad values prints a screenful.

Values are shown the way a user writes them (``true``, ``'3.1'``, ``a, b``),
never as Python reprs, with control characters escaped and long values cut.
A value that may hold a secret is never given to a ``Problem`` as is: the
caller passes ``HIDDEN`` or a redacted form (``pipeline.kinds``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import ClassVar, Final

# Problems listed one by one; the rest are counted per field.
SHOWN_PROBLEMS: Final = 30
# A shown value is cut after this many characters.
SHOWN_CHARS: Final = 200


class _Hidden:
    """The value of a ``Problem`` that must not be shown (it may be a secret)."""

    def __repr__(self) -> str:
        return "HIDDEN"


HIDDEN: Final = _Hidden()


def _escaped(text: str) -> str:
    """``text`` with quotes, backslashes and unprintable characters escaped."""
    out = []
    for char in text:
        if char in "'\\":
            out.append("\\" + char)
        elif char.isprintable():
            out.append(char)
        elif ord(char) < 0x100:
            out.append(f"\\x{ord(char):02x}")
        else:
            out.append(f"\\u{ord(char):04x}")
    return "".join(out)


def show(value: object) -> str:
    """A value as a user would write it in YAML: ``'text'``, ``true``, ``3.1``,
    ``[a, b]``, ``{key: value}``; control characters escaped, long text cut."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, (list, tuple)):
        return "[" + _first(show(item) for item in value[: _SHOWN_ITEMS + 1]) + "]"
    if isinstance(value, Mapping):
        pairs = list(value.items())[: _SHOWN_ITEMS + 1]
        return "{" + _first(f"{_plain(k)}: {show(v)}" for k, v in pairs) + "}"
    text = str(value)
    if len(text) > SHOWN_CHARS:
        return f"'{_escaped(text[:SHOWN_CHARS])}'... ({len(text)} characters)"
    return f"'{_escaped(text)}'"


_SHOWN_ITEMS = 10


def _first(items: Iterable[str]) -> str:
    """Up to ``_SHOWN_ITEMS`` items joined, then ``...``."""
    shown = list(items)
    more = len(shown) > _SHOWN_ITEMS
    return ", ".join(shown[:_SHOWN_ITEMS]) + (", ..." if more else "")


def kind_of(value: object) -> str:
    """What a parsed value is, in YAML words (for messages that must not show it)."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return "a text value"


def _plain(key: object) -> str:
    return show(key) if not isinstance(key, str) else _escaped(key)


class CanvosDocaError(Exception):
    """A failure with a message meant for the user."""

    exit_code: ClassVar[int] = 1

    def render(self) -> str:
        return str(self)


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the input."""

    field: str
    value: object
    message: str
    fix: str = ""

    def __str__(self) -> str:
        shown = "" if self.value is HIDDEN else f"={show(self.value)}"
        text = f"{self.field}{shown}: {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


class InvalidInput(CanvosDocaError):
    """The input cannot be built; ``problems`` lists every reason."""

    exit_code = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid input: {self.problems[0]}"
        lines = [f"invalid input ({len(self.problems)} problems):"]
        lines += [f"  - {p}" for p in self.problems[:SHOWN_PROBLEMS]]
        rest = self.problems[SHOWN_PROBLEMS:]
        if rest:
            fields = Counter(p.field.split("[", 1)[0] for p in rest)
            counted = ", ".join(f"{n} for {field}" for field, n in fields.most_common())
            lines.append(f"  ... and {len(rest)} more problems ({counted}).")
        return "\n".join(lines)


class UserDataEditError(InvalidInput):
    """The user-data is valid but laid out in a way canvos-doca will not edit."""


class BuildFailed(CanvosDocaError):
    """A build step failed; the message says which one, why and what to do."""

    exit_code = 3


def raise_if(problems: Iterable[Problem]) -> None:
    """Raise ``InvalidInput`` when ``problems`` is not empty."""
    found = tuple(problems)
    if found:
        raise InvalidInput(found)
