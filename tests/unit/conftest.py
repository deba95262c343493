"""A CanvOS-shaped tree the rendering tests build themselves."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import canvos
from pipeline.context import CanvosTree, Overlays
from pipeline.facts import CANVOS_MARKER as MARKER
from tests.earthfiles import V4_6, V4_9, V4_9_PE_VERSION

OVERLAYS = Path(__file__).resolve().parents[2] / "overlays"

PE_VERSION = V4_9_PE_VERSION

DOCKERFILE = f"""ARG BASE
FROM $BASE

ARG OS_DISTRIBUTION
RUN mkdir -p /certs
COPY certs/ /certs/

{MARKER}

####  Examples  ####
# RUN apt-get update && apt-get install nginx -y

# user customization kept below the marker
RUN echo customized > /etc/user-customization
"""

EARTHFILE = V4_9

K8S_VERSIONS = {"k3s": ["1.33.10", "1.34.6"], "rke2": ["1.34.6"]}


@pytest.fixture
def canvos_tree(tmp_path: Path) -> Path:
    return make_canvos_tree(tmp_path / "CanvOS")


def make_canvos_tree(root: Path) -> Path:
    """The top of a CanvOS checkout, as much of it as rendering reads."""
    (root / "certs").mkdir(parents=True)
    (root / "Dockerfile").write_text(DOCKERFILE)
    (root / "Earthfile").write_text(EARTHFILE)
    (root / ".arg.template").write_text("CUSTOM_TAG=demo\nIMAGE_REGISTRY=ttl.sh\n")
    (root / "k8s_version.json").write_text(json.dumps(K8S_VERSIONS))
    (root / "earthly.sh").write_text("#!/bin/bash\necho earthly\n")
    return root


def git_commit_all(root: Path) -> str:
    """Make ``root`` a git repository with one commit of everything; its id."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@example.com",
        GIT_COMMITTER_NAME="t", GIT_COMMITTER_EMAIL="t@example.com",
        GIT_CONFIG_GLOBAL=os.devnull, GIT_CONFIG_NOSYSTEM="1",
    )  # fmt: skip
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "CanvOS"]):
        subprocess.run(["git", "-C", str(root), *command], check=True, env=env)
    done = subprocess.run(
        ["git", "-C", str(root), "rev-parse", "HEAD"], check=True, env=env, capture_output=True
    )
    return done.stdout.decode().strip()


def run(*argv: str) -> tuple[int, str, str]:
    """``canvos-doca ARGV`` in this process: exit code, stdout, stderr."""
    from pipeline import cli

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def render(tree: Path, out: Path, *args: str) -> int:
    """``canvos-doca render --canvos TREE --out OUT ARGS``: the exit code."""
    from pipeline import cli

    return cli.main(["render", "--canvos", str(tree), "--out", str(out), *args])


def render_run(tree: Path, out: Path, *args: str) -> tuple[int, str, str]:
    """``canvos-doca render``: exit code, stdout, stderr."""
    return run("render", "--canvos", str(tree), "--out", str(out), *args)


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The one ``canvos-doca: ...`` line a failed command printed (no traceback)."""
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("canvos-doca: ") and "Traceback" not in err
    return lines[0]


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging when something blocks (e.g. a FIFO opened for reading)."""

    def _timeout(signum: int, frame: object) -> None:
        raise TimeoutError("render blocked")

    previous = signal.signal(signal.SIGALRM, _timeout)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def sourced(arg_file: Path) -> dict[str, str]:
    """The variables a shell gets from ``set -a; . .arg`` (CanvOS's earthly.sh sources it)."""
    done = subprocess.run(
        ["bash", "-c", "set -a; . ./.arg; env -0"],
        cwd=arg_file.parent,
        env={},
        capture_output=True,
        check=True,
    )
    pairs = [item.split("=", 1) for item in done.stdout.decode().split("\0") if "=" in item]
    keys = {line.split("=", 1)[0] for line in arg_file.read_text().splitlines() if "=" in line}
    return {key: value for key, value in pairs if key in keys}


def old_tree(root: Path, earthfile: str = V4_6) -> Path:
    """A checkout made by ``make_canvos_tree`` with another ref's Earthfile."""
    (root / "Earthfile").write_text(earthfile)
    return root


def tree(text: str = V4_9) -> CanvosTree:
    """The files ``context.prepare`` reads from a checkout with Earthfile ``text``."""
    return CanvosTree(DOCKERFILE, text, json.dumps(K8S_VERSIONS), commit="c" * 40)


def overlays() -> Overlays:
    return Overlays(
        fragment=(OVERLAYS / canvos.FRAGMENT).read_text(),
        default_user_data=(OVERLAYS / canvos.DEFAULT_USER_DATA).read_text(),
    )
