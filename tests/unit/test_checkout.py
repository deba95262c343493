"""Reading a CanvOS checkout and the user's files: only inside the tree, bounded, clear errors."""

from __future__ import annotations

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest

from pipeline import checkout, cli, textfile
from pipeline.errors import InvalidInput
from tests.unit.conftest import git_commit_all, make_canvos_tree, one_error_line, render

REPO = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- the commit


def test_head_pointing_outside_the_repository_is_never_read(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example: .git/HEAD of "ref: ../../x" made render read x into canvos-doca.json.
    git_commit_all(canvos_tree)
    sentinel = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7"  # looks like a commit id
    (tmp_path / "x").write_text(sentinel + "\n")
    (canvos_tree / ".git" / "HEAD").write_text("ref: ../../x\n")
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 2
    captured = capsys.readouterr()
    assert sentinel not in captured.out + captured.err
    assert "does not resolve to a commit" in captured.err
    assert not out.exists()
    assert cli.main(["plan", "--canvos", str(canvos_tree)]) == 2
    captured = capsys.readouterr()
    assert sentinel not in captured.out + captured.err


def test_packed_refs_give_the_commit(canvos_tree: Path, tmp_path: Path) -> None:
    head = git_commit_all(canvos_tree)
    subprocess.run(["git", "-C", str(canvos_tree), "pack-refs", "--all"], check=True)
    assert not (canvos_tree / ".git" / "refs" / "heads" / "main").exists()  # only packed now
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    assert json.loads((out / "canvos-doca.json").read_text())["canvos"]["commit"] == head


def test_a_tree_without_git_inside_another_repository_records_no_commit(
    tmp_path: Path,
) -> None:
    outer = tmp_path / "outer"
    outer.mkdir()
    (outer / "README").write_text("not CanvOS\n")
    git_commit_all(outer)
    tree = make_canvos_tree(outer / "CanvOS")
    assert checkout.commit(checkout.open_checkout(tree)) == ""


# ------------------------------------------------------ what CanvOS looks like


def test_a_directory_that_is_not_canvos_says_what_one_looks_like(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "photos"
    plain.mkdir()
    (plain / "README.md").write_text("holiday\n")
    assert render(plain, tmp_path / "out") == 2
    line = one_error_line(capsys)
    assert "does not look like a CanvOS checkout" in line
    assert "no Earthfile, Dockerfile, earthly.sh at its top" in line
    assert "git clone --branch v" in line and "spectrocloud/CanvOS" in line


def test_this_repository_is_recognised_as_not_canvos(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(REPO, tmp_path / "out") == 2
    assert "is a canvos-doca checkout, not a CanvOS one" in one_error_line(capsys)


# ------------------------------------------------------------- size limits


@pytest.mark.parametrize(
    ("flag", "limit"),
    [("--user-data", textfile.USER_DATA_LIMIT), ("--config", textfile.CONFIG_LIMIT)],
)
def test_a_50_mb_file_is_refused_before_it_is_read(
    canvos_tree: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flag: str,
    limit: int,
) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:  # sparse: 50 MB on paper, nothing on disk
        handle.write(b"#cloud-config\n")
        handle.truncate(50 * 1024 * 1024)
    started = time.monotonic()
    assert render(canvos_tree, tmp_path / "out", flag, str(big)) == 2
    assert time.monotonic() - started < 5
    line = one_error_line(capsys)
    assert f"is larger than {textfile.size_text(limit)}" in line and str(big) in line


def test_an_endless_stream_as_user_data_stops_at_the_limit(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # /dev/zero never ends: only the bounded read keeps this from hanging or filling memory.
    assert render(canvos_tree, tmp_path / "out", "--user-data", "/dev/zero") == 2
    assert "is larger than 256 KiB" in one_error_line(capsys)


def test_the_limits_are_documented_in_the_readme() -> None:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("Without an engine") : readme.index("## How it works")]
    for limit in (
        textfile.USER_DATA_LIMIT,
        textfile.CONFIG_LIMIT,
        textfile.CHECKOUT_FILE_LIMIT,
    ):
        assert textfile.size_text(limit) in section


def test_decoding_errors_give_the_offset_never_the_content(tmp_path: Path) -> None:
    secret = tmp_path / "user-data"
    secret.write_bytes(b"#cloud-config\nstylus:\n  site:\n    edgeHostToken: t0ken\xff\n")
    with pytest.raises(InvalidInput) as caught:
        textfile.read_user_file(secret, "user_data", textfile.USER_DATA_LIMIT, "a file")
    text = str(caught.value)
    assert re.search(r"invalid byte at offset \d+", text) and "t0ken" not in text


def test_checkout_files_are_read_only_inside_the_tree(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    outside = tmp_path / "elsewhere.json"
    outside.write_text(json.dumps({"k3s": ["1.34.6"]}))
    os.remove(canvos_tree / "k8s_version.json")
    os.symlink(outside, canvos_tree / "k8s_version.json")
    assert render(canvos_tree, tmp_path / "out") == 2
    line = one_error_line(capsys)
    assert "outside the checkout" in line and "k8s_version.json" in line
    # A link that stays inside the tree is read like the file.
    os.remove(canvos_tree / "k8s_version.json")
    (canvos_tree / "versions").mkdir()
    (canvos_tree / "versions" / "k8s.json").write_text(json.dumps({"k3s": ["1.34.6"]}))
    os.symlink("versions/k8s.json", canvos_tree / "k8s_version.json")
    assert render(canvos_tree, tmp_path / "out") == 0
