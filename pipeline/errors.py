"""Errors a user can act on.

Every user-facing failure is an ``InvalidInput`` carrying one ``Problem`` per
mistake, so a user sees every problem at once instead of fixing them one
re-run at a time. Each problem names the field, the value, what is allowed
and how to fix it. Entry points turn these into exit code 2 (CLI) or a
readable error (Dagger) and never print a traceback for them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

EXIT_INVALID_INPUT = 2


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


class InvalidInput(Exception):
    """The input cannot be built; ``problems`` lists every reason."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__(self.render())

    def render(self) -> str:
        if len(self.problems) == 1:
            return f"invalid input: {self.problems[0]}"
        lines = [f"invalid input ({len(self.problems)} problems):"]
        lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def raise_if(problems: Iterable[Problem]) -> None:
    """Raise ``InvalidInput`` when ``problems`` is not empty."""
    found = tuple(problems)
    if found:
        raise InvalidInput(found)
