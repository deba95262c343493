"""Renders killed at random moments, and renders racing for the same --out.

Renders run in forked children (the pipeline is already imported, so a child
starts rendering at once and a kill lands inside the render, not in Python's
start-up).
"""

from __future__ import annotations

import os
import random
import signal
import stat
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from pipeline import canvos, cli, output
from tests.unit.conftest import make_canvos_tree

TOKEN = "edge-host-t0ken-KILLED"
FILES = 800  # enough that copying the tree is most of a render


@pytest.fixture(scope="module")
def big_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CanvOS tree with many files, shared (read-only) by the tests here."""
    tree = make_canvos_tree(tmp_path_factory.mktemp("big") / "CanvOS")
    files = tree / "overlay" / "files" / "opt" / "vendor"
    for index in range(FILES):
        directory = files / f"d{index // 100}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{index}").write_bytes(os.urandom(2048))
    return tree


@pytest.fixture
def secrets(tmp_path: Path) -> list[str]:
    inputs = tmp_path / "inputs"
    inputs.mkdir(mode=0o700)
    user_data = inputs / "user-data"
    user_data.write_text(f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}\n")
    user_data.chmod(0o600)
    return ["--user-data", str(user_data)]


def start(argv: Sequence[str], stderr: Path | None = None, gate: int | None = None) -> int:
    """Fork a child that runs ``canvos-doca`` with ``argv``; its pid."""
    pid = os.fork()
    if pid:
        return pid
    code = 99
    try:
        null = os.open(os.devnull, os.O_WRONLY)
        err = os.open(stderr, os.O_WRONLY | os.O_CREAT, 0o600) if stderr else null
        # pytest captures sys.stdout/stderr in objects of its own: replace them too.
        sys.stdout = open(null, "w", closefd=False)  # noqa: SIM115
        sys.stderr = open(err, "w", buffering=1, closefd=False)  # noqa: SIM115
        os.umask(0o022)  # the usual umask: modes must not depend on it
        if gate is not None:
            os.read(gate, 1)  # start together with the other child
        code = cli.main(list(argv))
        sys.stderr.flush()
    finally:
        os._exit(code)


def exit_code(pid: int) -> int:
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def render_argv(tree: Path, out: Path, *args: str) -> list[str]:
    return ["render", "--canvos", str(tree), "--out", str(out), *args]


def staging_dirs(parent: Path, out: Path) -> list[str]:
    pattern = output.staging_pattern(out.name)
    return [name for name in os.listdir(parent) if pattern.fullmatch(name)]


def world_readable_secrets(root: Path) -> list[str]:
    """Files under ``root`` holding a secret that others could read."""
    found = []
    for directory, _, files in os.walk(root):
        for name in files:
            path = Path(directory, name)
            if path.is_symlink() or not path.is_file():
                continue
            data = path.read_bytes()
            if TOKEN.encode() in data and (stat.S_IMODE(path.stat().st_mode) & 0o077):
                found.append(str(path))
    return found


def is_complete(out: Path) -> bool:
    return (out / canvos.DESCRIPTION_FILE).is_file() and canvos.BLOCK_BEGIN in (
        out / "Dockerfile"
    ).read_text()


def test_killed_renders_leave_no_secrets_behind(
    big_tree: Path, tmp_path: Path, secrets: list[str]
) -> None:
    parent = tmp_path / "outs"
    parent.mkdir()
    out = parent / "out"
    started = time.monotonic()
    assert exit_code(start(render_argv(big_tree, out, *secrets))) == 0
    duration = time.monotonic() - started
    rng = random.Random(20261130)
    killed_mid_render = 0
    for attempt in range(12):
        # Half replace the earlier output (--force), half write a new one.
        target = out if attempt % 2 else parent / f"new{attempt}"
        pid = start(render_argv(big_tree, target, *secrets, "--force"))
        time.sleep(rng.uniform(0, duration))
        os.kill(pid, signal.SIGKILL)
        exit_code(pid)
        killed_mid_render += bool(staging_dirs(parent, target))
        if target != out:
            # A new output is complete or absent, never half-written.
            assert not target.exists() or is_complete(target)
    # The kills must have hit renders in flight, or this test proves nothing.
    assert killed_mid_render > 0
    assert exit_code(start(render_argv(big_tree, out, *secrets, "--force"))) == 0
    assert staging_dirs(parent, out) == []
    assert is_complete(out)
    assert world_readable_secrets(parent) == []


def test_two_renders_to_one_new_out_exactly_one_succeeds(big_tree: Path, tmp_path: Path) -> None:
    for attempt in range(3):
        out = tmp_path / f"out{attempt}"
        gate_read, gate_write = os.pipe()
        errors = [tmp_path / f"err{attempt}-{n}" for n in range(2)]
        pids = [start(render_argv(big_tree, out), err, gate_read) for err in errors]
        os.write(gate_write, b"go")
        codes = sorted(exit_code(pid) for pid in pids)
        os.close(gate_read)
        os.close(gate_write)
        assert codes == [0, 2], [e.read_text() for e in errors]
        refused = next(e.read_text() for e in errors if e.read_text())
        assert "already exists" in refused and len(refused.splitlines()) == 1
        assert is_complete(out)
        assert staging_dirs(tmp_path, out) == []


def test_two_forced_renders_to_one_out_both_succeed(big_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert cli.main(render_argv(big_tree, out)) == 0
    for attempt in range(3):
        gate_read, gate_write = os.pipe()
        errors = [tmp_path / f"err{attempt}-{n}" for n in range(2)]
        versions = ["3.2.2", "2.9.3"]
        pids = [
            start(render_argv(big_tree, out, "--force", "--doca-version", version), err, gate_read)
            for version, err in zip(versions, errors, strict=True)
        ]
        os.write(gate_write, b"go")
        codes = [exit_code(pid) for pid in pids]
        os.close(gate_read)
        os.close(gate_write)
        assert codes == [0, 0], [e.read_text() for e in errors]  # no "Directory not empty"
        block = (out / "Dockerfile").read_text()
        assert sum(f"ARG DOCA_VERSION={v}" in block for v in versions) == 1  # one whole render
        assert is_complete(out)
        assert staging_dirs(tmp_path, out) == []
