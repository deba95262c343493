"""A local CanvOS checkout (``--canvos``): is it CanvOS, its files, its commit.

Reads only what belongs to the checkout. Files come from its top directory,
and a symbolic link is read only when it resolves inside the checkout. The
commit comes from ``git rev-parse`` run in the checkout, never from reading
``.git`` by hand: packed refs and worktrees work, and a ``HEAD`` such as
``ref: ../../elsewhere`` is an error from git, never the content of a file
outside the tree. Only a verified object id ever leaves this module.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from pipeline import facts
from pipeline.errors import InvalidInput, Problem
from pipeline.textfile import CHECKOUT_FILE_LIMIT, os_problem, read_regular

FIELD = "canvos"
CHECKOUT_FILES = facts.CANVOS_CHECKOUT_FILES
_OBJECT_ID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")  # SHA-1 or SHA-256 repositories
_GIT_TIMEOUT_S = 60


def _what_one_looks_like() -> str:
    files = ", ".join(CHECKOUT_FILES)
    return (
        f"pass a clone of {facts.CANVOS_DEFAULT_URL} (a CanvOS checkout has {files} at its top), "
        f"e.g. git clone --branch {facts.CANVOS_DEFAULT_REF} {facts.CANVOS_DEFAULT_URL}"
    )


def open_checkout(path: Path) -> Path:
    """The checkout's resolved root, once it looks like CanvOS.

    Raises ``InvalidInput`` saying what a CanvOS checkout looks like when
    ``path`` is not a directory or lacks one of ``CHECKOUT_FILES`` at its top.
    """
    if not path.is_dir():
        raise InvalidInput(
            [Problem(FIELD, str(path), "is not a directory.", _what_one_looks_like() + ".")]
        )
    root = path.resolve()
    missing = [name for name in CHECKOUT_FILES if not os.path.lexists(root / name)]
    if missing:
        if (root / "dagger.json").is_file() and (root / "pipeline" / "cli.py").is_file():
            why = "is a canvos-doca checkout, not a CanvOS one"
        else:
            why = f"does not look like a CanvOS checkout: it has no {', '.join(missing)} at its top"
        raise InvalidInput([Problem(FIELD, str(path), f"{why}.", _what_one_looks_like() + ".")])
    return root


def read_file(root: Path, name: str) -> str | None:
    """The UTF-8 text of ``root/name``, or None when there is no such file.

    ``root`` is what ``open_checkout`` returned. Refused with one
    ``InvalidInput`` problem: a link that leads outside the checkout, anything
    but a regular file (a FIFO is never opened for a blocking read), more than
    ``CHECKOUT_FILE_LIMIT`` bytes, binary or non-UTF-8 content.
    """
    path = root / name
    if not os.path.lexists(path):
        return None
    fix = f"restore {name} from CanvOS (git -C {root} checkout -- {name})."
    real = Path(os.path.realpath(path))
    if not real.is_relative_to(root):
        raise InvalidInput(
            [
                Problem(
                    FIELD,
                    str(path),
                    f"is a symbolic link to {real}, outside the checkout; "
                    "render reads only files inside it.",
                    "replace the link with a copy of the file.",
                )
            ]
        )
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput([os_problem(FIELD, path, exc, "read", fix)]) from None
    try:
        return read_regular(fd, FIELD, path, CHECKOUT_FILE_LIMIT, fix)
    finally:
        os.close(fd)


def commit(root: Path) -> str:
    """The commit checked out at ``root`` (hex object id), from git itself.

    ``""`` when ``root`` has no ``.git`` or git is not installed (the
    description then records no commit). A ``.git`` that git cannot resolve
    to a commit is an ``InvalidInput``: a broken checkout is not built from.
    Git runs with the caller's ``GIT_*`` variables removed and discovery
    stopped at ``root``, so it never reports another repository's HEAD.
    """
    if not os.path.lexists(root / ".git"):
        return ""
    git = shutil.which("git")
    if git is None:
        return ""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.parent)
    command = [git, "-C", str(root), "rev-parse", "--verify", "HEAD^{commit}"]
    fix = (
        f"repair the checkout (git -C {root} status says what is wrong), "
        "or remove its .git to render it without a recorded commit."
    )
    try:
        done = subprocess.run(
            command, capture_output=True, env=env, timeout=_GIT_TIMEOUT_S, check=False
        )
    except subprocess.TimeoutExpired:
        raise InvalidInput(
            [
                Problem(
                    FIELD, str(root / ".git"), f"git rev-parse took over {_GIT_TIMEOUT_S} s.", fix
                )
            ]
        ) from None
    except OSError as exc:
        raise InvalidInput([os_problem(FIELD, root / ".git", exc, "read by git", fix)]) from None
    out = done.stdout.decode("ascii", "replace").strip()
    if done.returncode == 0 and _OBJECT_ID.fullmatch(out):
        return out
    reason = _first_line(done.stderr) or f"exit code {done.returncode}"
    raise InvalidInput(
        [
            Problem(
                FIELD,
                str(root / ".git"),
                f"does not resolve to a commit (git: {reason}).",
                fix,
            )
        ]
    )


_TAG = re.compile(r"[A-Za-z0-9._/+-]{1,200}")


def tag(root: Path) -> str:
    """The tag pointing at the checkout's HEAD (``git describe --tags
    --exact-match``, the newest when several do), or ``""``: no ``.git``, no
    git, no tag, or anything git cannot answer. Git runs as in ``commit``."""
    git = shutil.which("git")
    if git is None or not os.path.lexists(root / ".git"):
        return ""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env["GIT_CEILING_DIRECTORIES"] = str(root.parent)
    command = [git, "-C", str(root), "describe", "--tags", "--exact-match", "HEAD"]
    try:
        done = subprocess.run(
            command, capture_output=True, env=env, timeout=_GIT_TIMEOUT_S, check=False
        )
    except (subprocess.TimeoutExpired, OSError):
        return ""
    out = done.stdout.decode("ascii", "replace").strip()
    return out if done.returncode == 0 and _TAG.fullmatch(out) else ""


def _first_line(stderr: bytes) -> str:
    """Git's first message line, printable ASCII only and bounded."""
    for line in stderr.decode("utf-8", "replace").splitlines():
        text = re.sub(r"^(fatal|error): ", "", line.strip())
        text = "".join(c if c.isascii() and c.isprintable() else "?" for c in text)
        if text:
            return text[:200]
    return ""
