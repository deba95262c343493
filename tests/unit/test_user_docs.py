"""The pages a user reads: no project-internal references, one build-time figure.

User docs are README.md, docs/*.md and overlays/*/README.md. The first-build
estimate lives in facts.toml [build_time]; ``plan`` prints it and every page
that states a first or cold build's duration must state that figure.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import cli, facts

ROOT = Path(__file__).resolve().parents[2]
USER_DOCS = sorted(
    [ROOT / "README.md", *(ROOT / "docs").glob("*.md"), *(ROOT / "overlays").glob("*/README.md")]
)

# "issue 5", "Issue #12", "PR 3", "turn 2", "#14": tracker and session references.
INTERNAL = re.compile(r"\b(?:issues?|pull request|PR|turn)\s*#?\d+\b|(?<![\w&/])#\d+\b", re.I)
# A duration in minutes: "45-75 min" (hyphen or en dash), "15+ minutes", "20 minutes".
MINUTES = r"(\d+)\s*(?:[-\u2013]\s*(\d+)|\+)?\s*min(?:utes)?\b"
# A first or cold build, then within the same sentence (no period, no blank
# line; Markdown wraps lines) a duration.
BUILD_FIGURE = re.compile(r"\b(?:first|cold)\b(?:(?!\n\s*\n)[^.]){0,40}?" + MINUTES, re.I)


def _rel(path: Path) -> str:
    return str(path.relative_to(ROOT))


def test_the_user_docs_are_found() -> None:
    names = {_rel(p) for p in USER_DOCS}
    assert {"README.md", "docs/after-the-build.md", "overlays/hostprep/README.md"} <= names


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_no_internal_references(path: Path) -> None:
    hits = [
        f"{_rel(path)}:{n}: {m.group(0)}"
        for n, line in enumerate(path.read_text().splitlines(), 1)
        for m in INTERNAL.finditer(line)
    ]
    assert hits == []


def test_internal_reference_pattern_catches_the_forms_seen() -> None:
    for text in ("see issue 5", "(Issue #12)", "fixed in turn 2", "as PR 31 did", "item #14"):
        assert INTERNAL.search(text), text
    for text in ("`#cloud-config`", "# 1. Build the ISO", "README.md#hostprep-detection", "&#160;"):
        assert not INTERNAL.search(text), text


def _figures(text: str) -> list[str]:
    return [m.group(0) for m in BUILD_FIGURE.finditer(text)]


@pytest.mark.parametrize("path", USER_DOCS, ids=_rel)
def test_every_first_build_figure_is_the_one_estimate(path: Path) -> None:
    low, high = facts.FIRST_BUILD_MINUTES
    wrong = [
        f"{_rel(path)}: {m.group(0)!r}"
        for m in BUILD_FIGURE.finditer(path.read_text())
        if (m.group(1), m.group(2)) != (str(low), str(high))
    ]
    assert wrong == [], f"the first-build estimate is {facts.first_build_estimate()}"


def test_the_figure_check_catches_other_figures() -> None:
    assert _figures("A first build\n  takes 15+ minutes.") == ["first build\n  takes 15+ minutes"]
    assert _figures("| first build (cold engine) | 30-60 min |")
    assert not _figures("first run builds the base image (a few minutes), 20 min later.")


def test_readme_and_building_guide_state_the_estimate() -> None:
    figure = facts.first_build_estimate()
    for name in ("README.md", "docs/building.md"):
        assert figure in (ROOT / name).read_text(), name


def test_plan_prints_the_estimate(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["plan", "--k8s-version", "1.34.6"]) == 0
    out = capsys.readouterr().out
    assert f"a first build (cold cache): about {facts.first_build_estimate()}" in out
    assert facts.BUILD_TIME_HOST in out


def _section(text: str, heading: str) -> str:
    return text.split(heading, 1)[1].split("\n## ", 1)[0]


def test_the_development_section_names_every_package_ci_installs() -> None:
    installed = set(re.findall(r"need\+=\(([\w.+-]+)\)", (ROOT / ".ci" / "run").read_text()))
    assert {"docker.io", "debootstrap", "qemu-system-x86"} <= installed
    development = _section((ROOT / "README.md").read_text(), "## Development\n")
    missing = sorted(p for p in installed if f"`{p}`" not in development)
    assert missing == []


def test_the_quick_start_runs_no_tests() -> None:
    quick_start = _section((ROOT / "README.md").read_text(), "## Quick start\n")
    assert "scripts/test" not in quick_start
    assert "after-the-build.md" in quick_start
