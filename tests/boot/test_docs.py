"""docs/boot-test.md states the registered arguments and the pinned facts."""

from __future__ import annotations

import re
from pathlib import Path

from pipeline import bootvm, facts
from tests.pipeline.registration import registration

DOC = (Path(__file__).parents[2] / "docs" / "boot-test.md").read_text()


def test_the_argument_table_matches_the_registration() -> None:
    rows = dict(re.findall(r"^\| `--([a-z-]+)` \| ([^|]+) \|", DOC, re.M))
    args = registration()["boot-test"].args
    assert set(rows) == set(args)
    for name, arg in args.items():
        shown = rows[name].strip()
        if isinstance(arg.default, bool):
            assert shown == ("on" if arg.default else "off"), name
        else:
            assert shown == f"`{arg.default}`", name


def test_the_numbers_in_the_text_are_the_pinned_ones() -> None:
    assert f"multiplied by {facts.TCG_SLOWDOWN}" in DOC
    assert f"becomes {bootvm.DEFAULT_TIMEOUT_MINUTES * facts.TCG_SLOWDOWN} minutes" in DOC
    assert f"a {bootvm.DISK_GIB} GiB sparse raw disk" in DOC
    assert f"(so {bootvm.DEFAULT_TIMEOUT_MINUTES * facts.TCG_SLOWDOWN} by default)" in DOC
    assert facts.OVMF_CODE.rsplit("/", 1)[-1] in DOC
