"""The upstream facts file loads, and what the shell receives matches it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pipeline import canvos, cli, facts


def _env(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if not line.startswith("#")]
    return {key: value for key, value in pairs}


def test_shell_env_is_key_value_lines_with_every_profile() -> None:
    env = _env(facts.shell_env())
    for key, value in env.items():
        assert re.fullmatch(r"[A-Z][A-Z0-9_a-z]*", key), key
        assert value and "\n" not in value, key
    assert env["DOCA_PROFILES"].split() == [p.name for p in facts.DOCA_PROFILES]
    kernel = {p.name for p in facts.DOCA_PROFILES if p.kernel_modules}
    assert set(env["DOCA_KERNEL_PROFILES"].split()) == kernel
    assert env["DOCA_REPO_ARCH_amd64"] == facts.DOCA_REPO_ARCH["amd64"]


def test_version_pattern_takes_exact_ascii_versions_only() -> None:
    pattern = re.compile(facts.DOCA_VERSION_PATTERN)
    assert pattern.fullmatch(facts.DOCA_DEFAULT_VERSION)
    for bad in ("3.2", "latest-3.2-LTS", "3.2.2\n", "\uff13.2.2", "v3.2.2"):
        assert not pattern.fullmatch(bad), bad


def test_every_source_is_recorded() -> None:
    for source in (
        facts.DOCA_SOURCE,
        facts.KAIROS_SOURCE,
        facts.CANVOS_SOURCE,
        facts.NODEPREP_SOURCE,
        facts.HOST_ITEMS_SOURCE,
    ):
        assert re.search(r"20\d\d-\d\d|v\d+\.\d+", source), source


def test_rendered_context_carries_the_shell_facts(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(["render", "--canvos", str(canvos_tree), "--out", str(out)]) == 0
    assert (out / canvos.FACTS_FILE).read_text() == canvos.facts_env()


def test_extra_shell_values_never_replace_a_fact() -> None:
    assert "EXTRA_PATH=/x\n" in facts.shell_env({"EXTRA_PATH": "/x"})
    with pytest.raises(ValueError, match="DOCA_PROFILES"):
        facts.shell_env({"DOCA_PROFILES": "doca-ofed"})
