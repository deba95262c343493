"""The overlay scripts keep no copy of an upstream fact, and their shared
helpers read what real kernels and facts files contain (no Docker needed)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from . import harness

LIB = harness.OVERLAYS / "doca" / "install" / "lib.sh"


def _facts() -> dict[str, str]:
    text = harness.shell_facts()
    return dict(line.split("=", 1) for line in text.splitlines() if not line.startswith("#"))


def fact_values() -> dict[str, str]:
    """Every fact value a script could copy (value -> facts.env key)."""
    env = _facts()
    values: dict[str, str] = {}
    for key, value in env.items():
        words = value.split() if key in ("DOCA_PROFILES", "DOCA_SUPPORTED_OS") else [value]
        for word in words:
            values.setdefault(word, key)
    # Test-only: the harness adds the stand-in OS for the Debian builds.
    values.pop("debian12", None)
    return values


def copies(text: str, values: dict[str, str]) -> list[str]:
    """Fact values that appear literally (as a whole word) in text."""
    found = []
    for value, key in values.items():
        if re.search(rf"(?<![\w.-]){re.escape(value)}(?![\w-])", text):
            found.append(f"{value} ({key})")
    return found


def overlay_files() -> list[Path]:
    """What runs in or ships with the image: scripts, the Dockerfile fragment,
    the user-data template (README files are documentation)."""
    return sorted(
        p
        for p in harness.OVERLAYS.rglob("*")
        if p.is_file() and p.name not in ("README.md", ".keep") and "__pycache__" not in p.parts
    )


def test_no_fact_is_copied_into_the_overlays() -> None:
    values = fact_values()
    assert {"doca-ofed", "https://linux.mellanox.com/public/repo/doca"} <= set(values)
    found = {
        str(p.relative_to(harness.OVERLAYS)): hits
        for p in overlay_files()
        if (hits := copies(p.read_text(encoding="utf-8"), values))
    }
    assert found == {}, (
        f"facts copied into overlays/ (read them with `fact KEY` from facts.env instead): {found}"
    )


def test_the_copy_check_catches_a_copy() -> None:
    values = fact_values()
    assert copies('case "$p" in doca-all) ;; esac', values) == ["doca-all (DOCA_PROFILES)"]
    assert copies("url=https://linux.mellanox.com/public/repo/doca/x", values)
    assert copies("doca-all-userspace-extra doca-allx", values) == []


def bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f". {LIB}\n{script}"], capture_output=True, text=True, check=False
    )


@pytest.mark.parametrize(
    ("text", "major"),
    [
        ("x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0", "12"),
        ("x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0", "13"),
        ("gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0", "12"),
        ("gcc (GCC) 11.5.0 20240719 (Red Hat 11.5.0-5)", "11"),
        ("Ubuntu clang version 18.1.3 (1ubuntu1)", ""),
        ("", ""),
    ],
)
def test_gcc_major_reads_kernel_compiler_lines(text: str, major: str) -> None:
    proc = bash(f"gcc_major {text!r}")
    assert (proc.stdout.strip(), proc.returncode == 0) == (major, bool(major))


def test_kv_value_reads_one_key_without_sourcing(tmp_path: Path) -> None:
    env = tmp_path / "facts.env"
    env.write_text(
        "# comment\nDOCA_PROFILES_X=no\nDOCA_PROFILES=a b\nURL=http://h/x?a=b\n"
        "EMPTY=\nCMD=$(touch pwned)\nLAST=no-newline"
    )
    proc = bash(
        f'for k in DOCA_PROFILES URL EMPTY CMD LAST; do echo "$k=[$(kv_value {env} $k)]"; done;'
        f" kv_value {env} MISSING; echo missing=$?"
    )
    assert proc.stdout.splitlines() == [
        "DOCA_PROFILES=[a b]",
        "URL=[http://h/x?a=b]",
        "EMPTY=[]",
        "CMD=[$(touch pwned)]",
        "LAST=[no-newline]",
        "missing=1",
    ]
    assert not (tmp_path / "pwned").exists()


def test_a_missing_fact_names_the_key(tmp_path: Path) -> None:
    proc = bash(
        f"CANVOS_DOCA_FACTS={tmp_path}/facts.env; touch $CANVOS_DOCA_FACTS; fact DOCA_PROFILES"
    )
    assert proc.returncode == 1
    assert proc.stderr.startswith("canvos-doca: ERROR: fact DOCA_PROFILES is missing from ")
