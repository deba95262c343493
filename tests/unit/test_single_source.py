"""Every upstream fact is written once, in pipeline/resources/facts.toml.

The Python half of the check: no module of pipeline/ keeps a literal copy of a
fact (a DOCA profile name, the default repository URL, a Kairos path, a pinned
image, the CanvOS marker line, ...). Code reads ``pipeline.facts`` instead.
The scripts under overlays/ get their facts from the rendered ``facts.env``
and are checked on their own.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PIPELINE = ROOT / "pipeline"
FACTS_TOML = PIPELINE / "resources" / "facts.toml"
# The loader is where facts enter the code.
LOADER = PIPELINE / "facts.py"
# Tables whose keys are facts themselves (profile names, series, arches, OSes).
KEYED_TABLES = ("profiles", "series_ofed", "repo_arch", "supported_os", "extra_binds")
# Notes on where a fact comes from, not facts to use.
NOTES = ("source",)
# A literal that merely contains a fact is a copy only when the fact is this long
# (URLs, image references, the marker line); short ones (a version, "k3s") also
# appear inside prose and examples.
CONTAINED = 12


def fact_strings(data: Any = None, key: str = "") -> Iterator[str]:
    """Every string in facts.toml: values, list items and the keys of KEYED_TABLES."""
    data = tomllib.loads(FACTS_TOML.read_text()) if data is None else data
    if isinstance(data, dict):
        for name, value in data.items():
            if key in KEYED_TABLES:
                yield name
            if name not in NOTES:
                yield from fact_strings(value, name)
    elif isinstance(data, list):
        for item in data:
            yield from fact_strings(item, key)
    elif isinstance(data, str):
        yield data


def _docstrings(tree: ast.Module) -> set[int]:
    """ids of the docstring constants (prose about the code, not values it uses)."""
    found: set[int] = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            first = body[0] if body else None
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                found.add(id(first.value))
    return found


def copies(source: str, facts: set[str]) -> list[tuple[int, str]]:
    """(line, fact) for every string literal of ``source`` that copies a fact."""
    tree = ast.parse(source)
    skip = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Constant) or not isinstance(node.value, str):
            continue
        if id(node) in skip:
            continue
        for fact in facts:
            if node.value == fact or (len(fact) >= CONTAINED and fact in node.value):
                found.append((node.lineno, fact))
    return found


FACTS = set(fact_strings())


def test_the_scan_sees_the_facts_it_guards() -> None:
    for fact in ("doca-ofed", "doca-all-userspace", "/var/lib/kubelet", "/usr/local", "3.2"):
        assert fact in FACTS, fact
    assert "https://linux.mellanox.com/public/repo/doca" in FACTS
    assert not any("checked 2026" in fact for fact in FACTS)  # notes are not facts


def test_the_scan_finds_a_planted_copy() -> None:
    planted = '''"""Docstrings may name doca-ofed."""
PROFILES = ("doca-ofed", "doca-roce")
URL = f"{base}https://linux.mellanox.com/public/repo/doca/x"
EXAMPLE = "e.g. 3.2.2 or k3s"
'''
    lines = sorted({line for line, _ in copies(planted, FACTS)})
    assert lines == [2, 3]


@pytest.mark.parametrize(
    "module", sorted(p.name for p in PIPELINE.glob("*.py") if p != LOADER), ids=str
)
def test_no_module_keeps_a_copy_of_a_fact(module: str) -> None:
    found = copies((PIPELINE / module).read_text(), FACTS)
    assert not found, (
        f"pipeline/{module} repeats facts from {FACTS_TOML.relative_to(ROOT)} "
        f"(read them from pipeline.facts): {found}"
    )
