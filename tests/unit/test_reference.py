"""The README documents every knob exactly as the spec defines it."""

from __future__ import annotations

from pathlib import Path

from pipeline.inputs import FILE_INPUT_NAMES
from pipeline.reference import input_table, knob_table
from pipeline.spec import FIELD_NAMES, kebab

README = Path(__file__).resolve().parents[2] / "README.md"


def between(text: str, name: str) -> str:
    begin, end = f"<!-- {name}:begin -->\n", f"<!-- {name}:end -->"
    return text[text.index(begin) + len(begin) : text.index(end)]


def test_readme_knob_table_matches_the_spec() -> None:
    # Regenerate with: canvos-doca knobs
    assert between(README.read_text(), "knobs") == knob_table()


def test_table_has_a_row_per_knob() -> None:
    rows = [line for line in knob_table().splitlines() if line.startswith("| `")]
    assert [row.split("`")[1] for row in rows] == list(FIELD_NAMES)


def test_readme_input_table_matches_the_inputs() -> None:
    # Regenerate with: canvos-doca knobs (the second table)
    text = between(README.read_text(), "file-inputs")
    assert text == input_table()
    flags = [line.split("`")[1] for line in text.splitlines() if line.startswith("| `")]
    assert flags == [f"--{kebab(name)}" for name in FILE_INPUT_NAMES]
