"""Every filesystem and decoding failure: exit 2, one ``canvos-doca:`` line with the path
and a fix, no traceback, nothing left behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline import cli
from tests.unit.conftest import git_commit_all

# Bytes that are not UTF-8 (Latin-1 é, a UTF-16 byte-order mark) and a NUL.
LATIN1 = b"#cloud-config\n# caf\xe9\n"
BINARY = b"\xff\xfe\x00\x01PK\x03\x04"

Case = Callable[[Path, Path], tuple[list[str], str]]
"""(canvos tree, scratch dir) -> (extra argv, a path the message must name)."""


def _config_latin1(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "build.yaml").write_bytes(b"doca_profile: doca-ofed # r\xe9seau\n")
    return ["--config", str(tmp / "build.yaml")], str(tmp / "build.yaml")


def _config_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "build.yaml").write_bytes(BINARY)
    return ["--config", str(tmp / "build.yaml")], str(tmp / "build.yaml")


def _config_missing(tree: Path, tmp: Path) -> tuple[list[str], str]:
    return ["--config", str(tmp / "nope.yaml")], str(tmp / "nope.yaml")


def _user_data_latin1(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "ud.yaml").write_bytes(LATIN1)
    return ["--user-data", str(tmp / "ud.yaml")], str(tmp / "ud.yaml")


def _user_data_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "ud.yaml").write_bytes(BINARY)
    return ["--user-data", str(tmp / "ud.yaml")], str(tmp / "ud.yaml")


def _user_data_directory(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "ud").mkdir()
    return ["--user-data", str(tmp / "ud")], str(tmp / "ud")


def _dockerfile_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "Dockerfile").write_bytes(b"ARG BASE\nFROM $BASE\n" + BINARY)
    return [], str(tree / "Dockerfile")


def _dockerfile_latin1(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "Dockerfile").write_bytes(b"ARG BASE\nFROM $BASE\n# \xe9\n")
    return [], str(tree / "Dockerfile")


def _dockerfile_fifo(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "Dockerfile").unlink()
    os.mkfifo(tree / "Dockerfile")
    return [], str(tree / "Dockerfile")


def _earthfile_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "Earthfile").write_bytes(BINARY)
    return [], str(tree / "Earthfile")


def _k8s_versions_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "k8s_version.json").write_bytes(b'{"k3s": ["1.34.6"' + BINARY)
    return [], str(tree / "k8s_version.json")


def _git_head_binary(tree: Path, tmp: Path) -> tuple[list[str], str]:
    git_commit_all(tree)
    (tree / ".git" / "HEAD").write_bytes(BINARY)
    return [], str(tree / ".git")


def _out_parent_is_a_file(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "file").write_text("not a directory\n")
    return ["--out", str(tmp / "file" / "out")], str(tmp / "file")


def _out_is_a_file(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "out.txt").write_text("x\n")
    return ["--out", str(tmp / "out.txt"), "--force"], str(tmp / "out.txt")


def _fifo_in_the_tree(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tree / "overlay").mkdir()
    os.mkfifo(tree / "overlay" / "pipe")
    return [], str(tree / "overlay" / "pipe")


def _fifo_in_the_tree_out_in_new_directories(tree: Path, tmp: Path) -> tuple[list[str], str]:
    # render creates --out's missing parents, and removes them again on failure.
    extra, named = _fifo_in_the_tree(tree, tmp)
    return [*extra, "--out", str(tmp / "new" / "deeper" / "out")], named


def _fifo_in_the_airgap_source(tree: Path, tmp: Path) -> tuple[list[str], str]:
    mirror = tmp / "mirror"
    mirror.mkdir()
    (mirror / "Packages").write_text("")
    (mirror / "Release").write_text("")
    os.mkfifo(mirror / "pipe")
    return ["--doca-airgap", str(mirror)], str(mirror / "pipe")


def _not_a_directory(tree: Path, tmp: Path) -> tuple[list[str], str]:
    (tmp / "CanvOS.tar").write_bytes(b"tar")
    return ["--canvos", str(tmp / "CanvOS.tar")], str(tmp / "CanvOS.tar")


CASES: dict[str, Case] = {
    "config not UTF-8": _config_latin1,
    "config binary": _config_binary,
    "config missing": _config_missing,
    "user-data not UTF-8": _user_data_latin1,
    "user-data binary": _user_data_binary,
    "user-data a directory": _user_data_directory,
    "Dockerfile binary": _dockerfile_binary,
    "Dockerfile not UTF-8": _dockerfile_latin1,
    "Dockerfile a FIFO": _dockerfile_fifo,
    "Earthfile binary": _earthfile_binary,
    "k8s_version.json binary": _k8s_versions_binary,
    ".git/HEAD binary": _git_head_binary,
    "out parent a regular file": _out_parent_is_a_file,
    "out a regular file": _out_is_a_file,
    "FIFO in the tree": _fifo_in_the_tree,
    "FIFO in the tree, out in new directories": _fifo_in_the_tree_out_in_new_directories,
    "FIFO in the air-gapped source": _fifo_in_the_airgap_source,
    "canvos not a directory": _not_a_directory,
}


def _snapshot(root: Path) -> set[str]:
    return {
        str(Path(d, name).relative_to(root))
        for d, dirs, files in os.walk(root)
        for name in dirs + files
    }


@pytest.mark.usefixtures("alarm")
@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
def test_failure_is_one_line_with_path_and_fix(
    case: str, canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scratch = tmp_path / "inputs"
    scratch.mkdir()
    extra, named = CASES[case](canvos_tree, scratch)
    argv = ["render", "--canvos", str(canvos_tree), "--out", str(tmp_path / "out"), *extra]
    before = _snapshot(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("canvos-doca: ") and "Traceback" not in err
    assert named in lines[0] and "Fix: " in lines[0]
    assert _snapshot(tmp_path) == before  # no output, no staging directory, no parent


def test_an_out_whose_parent_is_read_only(canvos_tree: Path, tmp_path: Path) -> None:
    """Run as a separate process: as root, without the capability that ignores file modes."""
    parent = tmp_path / "read-only"
    parent.mkdir()
    parent.chmod(0o555)
    command = [sys.executable, "-m", "pipeline.cli", "render", "--canvos", str(canvos_tree),
               "--out", str(parent / "out")]  # fmt: skip
    if os.geteuid() == 0:
        drop = "-dac_override,-dac_read_search"
        command = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--", *command]
    root = Path(__file__).resolve().parents[2]
    try:
        done = subprocess.run(command, capture_output=True, text=True, cwd=root, timeout=120)
        assert done.returncode == 2, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
        assert str(parent / "out") in lines[0] and "Permission denied" in lines[0]
        assert "Fix: " in lines[0]
        assert os.listdir(parent) == []
    finally:
        parent.chmod(0o755)
