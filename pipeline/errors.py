"""Errors a user can act on, each owning the exit code the CLI returns for it.

Every failure canvos-doca explains itself is a ``CanvosDocaError``: entry
points print ``render()`` (never a traceback) and, on the command line, exit
with the class's ``exit_code``:

    2  InvalidInput (and UserDataEditError): nothing was built or written
    3  BuildFailed: a build step failed; the message names it and its log tail

Input problems are collected, not raised one by one: an ``InvalidInput``
carries one ``Problem`` per mistake (field, value, what is allowed, the fix),
so a user fixes them all in one go.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import ClassVar


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
        text = f"{self.field}={self.value!r}: {self.message}"
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
        lines += [f"  - {p}" for p in self.problems]
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
