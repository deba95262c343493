"""canvos-doca-detect's command line and the hostprep README's example, run for real.

The script runs with bash on this machine, which has no DOCA: a manifest
written here stands for an image's, so the answers are "not installed" (no
manifest) or "mismatch" (a manifest whose packages dpkg does not know).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DETECT = ROOT / "overlays" / "hostprep" / "canvos-doca-detect"
README = ROOT / "overlays" / "hostprep" / "README.md"
FLAGS = ("--json", "--kernel", "--expect-version", "--expect-profile", "--manifest", "--facts")


def detect(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(DETECT), *args], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture
def manifest(tmp_path: Path) -> Path:
    """An image manifest naming a profile package that dpkg here does not have."""
    path = tmp_path / "manifest.env"
    path.write_text(
        "DOCA_VERSION=3.2.2\nDOCA_PROFILE=canvos-doca-test-no-such-profile\n"
        "DOCA_PROFILE_VERSION=3.2.2-1\n"
    )
    return path


def test_help_lists_every_flag_on_stdout() -> None:
    result = detect("--help")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    for flag in FLAGS:
        assert flag in result.stdout
    assert "Exit codes" in result.stdout


@pytest.mark.parametrize("flag", FLAGS[1:])
def test_every_documented_flag_with_a_value_is_accepted(
    flag: str, manifest: Path, tmp_path: Path
) -> None:
    value = {"--manifest": str(manifest), "--facts": str(tmp_path / "facts.env")}.get(flag, "x")
    for args in ([flag, value], [f"{flag}={value}"]):
        result = detect("--json", *args)
        assert result.returncode in (0, 1, 2), result.stderr
        assert json.loads(result.stdout)["exit_code"] == result.returncode


def test_the_readme_usage_names_only_flags_the_script_takes() -> None:
    usage = README.read_text().split("```", 2)[1]
    named = set(re.findall(r"--[a-z-]+", usage))
    assert named == {*FLAGS, "--help"}


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--bogus"], "unknown argument: --bogus"),
        (["--facts"], "--facts needs a value"),
        (["--kernel", ""], "--kernel needs a value"),
    ],
)
def test_usage_errors_are_one_line_and_exit_64(args: list[str], problem: str) -> None:
    result = detect(*args)
    assert result.returncode == 64
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"canvos-doca-detect: {problem} (see canvos-doca-detect --help)"
    ]


def test_version_comes_from_the_manifest_without_expect_version(manifest: Path) -> None:
    result = detect("--json", "--manifest", str(manifest))
    report = json.loads(result.stdout)
    assert result.returncode == 2
    assert report["status"] == "mismatch"
    assert report["doca_version"] == "3.2.2"
    assert "canvos-doca-test-no-such-profile is not installed" in report["problems"][0]


def test_no_manifest_and_no_profile_package_is_not_installed(tmp_path: Path) -> None:
    facts = tmp_path / "facts.env"
    facts.write_text("DOCA_PROFILES=canvos-doca-test-no-such-profile\n")
    result = detect("--json", "--manifest", str(tmp_path / "absent.env"), "--facts", str(facts))
    assert result.returncode == 1, result.stdout
    assert json.loads(result.stdout)["status"] == "not-installed"


def _readme_example() -> str:
    section = README.read_text().split("## In a hostprep script", 1)[1]
    return section.split("```bash\n", 1)[1].split("```", 1)[0]


def _run_example(tmp_path: Path, manifest: Path | None) -> subprocess.CompletedProcess[str]:
    """The README's example under set -euo pipefail, with canvos-doca-detect on PATH
    (reading ``manifest``, or none)."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    wrapper = bindir / "canvos-doca-detect"
    where = str(manifest) if manifest else str(tmp_path / "absent.env")
    wrapper.write_text(f'#!/bin/bash\nexec bash {DETECT} --manifest {where} "$@"\n')
    wrapper.chmod(0o755)
    script = f"set -euo pipefail\n{_readme_example()}\necho skip_doca=$skip_doca\n"
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    return subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def test_readme_example_runs_without_variables_of_its_own(tmp_path: Path) -> None:
    result = _run_example(tmp_path, None)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "skip_doca=0"


def test_readme_example_stops_on_a_mismatch(tmp_path: Path, manifest: Path) -> None:
    result = _run_example(tmp_path, manifest)
    assert result.returncode == 1
    assert "rebuild the image" in result.stderr
    assert "skip_doca" not in result.stdout
