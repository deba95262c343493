"""``host_files`` entries that name a file (``source:``) instead of inline ``content:``.

A config layer (a parsed ``--config`` file or preset) may say::

    host_files:
      /etc/lldpd.d/site.conf:
        source: files/lldpd-site.conf   # relative to a root directory
        mode: "0644"

Each source is read once, before ``spec.resolve``, and put back into the
layer as a ``spec.Sourced`` value, so the spec turns it into the same
``PlacedFile`` as inline content: the host/ layout, the plan and the
manifest do not depend on where the text came from.

The root is the directory of the file that names the source: the
``--config`` file's directory on the CLI, the presets directory for a
shipped preset. A Dagger ``File`` has no directory, so the module takes
``--host-files-dir`` (a ``Directory``) as the root of its config's sources
(``workspace.load_host_sources``).

Rules, the same on both sides: a source is a relative, normal path of plain
characters (no ``..``, not absolute), read as a regular text file of at
most ``spec.HOST_FILE_LIMIT`` bytes (no more than that plus one byte is
read), UTF-8 without NUL bytes. On the CLI a symbolic link is followed only
when its target stays inside the root (resolved, then checked); in Dagger
the ``Directory`` is the root. Messages name the entry and the relative
path, never the file's content.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline import spec, textfile
from pipeline.errors import HIDDEN, InvalidInput, Problem, raise_if

FIELD = "host_files"
# One path component: what a file name in a config repository looks like.
_COMPONENT = re.compile(r"[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*|\.[A-Za-z0-9_@+-][A-Za-z0-9_.@+-]*")
_MAX_SOURCE = 255
WHAT = "a UTF-8 text file (binary files go in a package: extra_packages)"


@dataclass(frozen=True)
class Request:
    """One ``source:`` to read: the entry's destination and the relative path."""

    dest: str
    source: str

    @property
    def field(self) -> str:
        return f"{FIELD}[{self.dest}].source"


def requests(layer: Mapping[str, object]) -> tuple[list[Request], list[Problem]]:
    """The ``source:`` entries of a raw layer's ``host_files`` that can be
    read, and the problems of those that cannot (a path that is not
    relative and plain). Entries with both content and source, or another
    shape, are left to ``spec.resolve``, which reports them."""
    files = layer.get(FIELD)
    if not isinstance(files, Mapping):
        return [], []
    found: list[Request] = []
    problems: list[Problem] = []
    for dest, entry in files.items():
        if not isinstance(entry, Mapping) or "source" not in entry or "content" in entry:
            continue
        if isinstance(entry["source"], spec.Sourced):
            continue  # read already (a preset's layer)
        request = Request(str(dest), entry["source"] if isinstance(entry["source"], str) else "")
        problem = path_problem(request, entry["source"])
        if problem is None:
            found.append(request)
        else:
            problems.append(problem)
    return found, problems


def path_problem(request: Request, value: object) -> Problem | None:
    """Why ``value`` cannot be a source path (or None): text, relative,
    normal, plain characters; never ``..``."""
    fix = "write a path relative to the config file's directory, e.g. files/app.conf."
    if not isinstance(value, str) or not value:
        return Problem(request.field, HIDDEN, "must be a relative file path (text).", fix)
    shown: object = value if len(value) <= _MAX_SOURCE and value.isprintable() else HIDDEN
    if value.startswith("/"):
        return Problem(
            request.field, shown, "is absolute; sources are read only from one directory.", fix
        )
    parts = value.split("/")
    if ".." in parts:
        return Problem(request.field, shown, "leads out of its directory ('..').", fix)
    if len(value) > _MAX_SOURCE or not all(_COMPONENT.fullmatch(p) for p in parts):
        return Problem(
            request.field,
            shown,
            "is not a normal relative path of plain characters.",
            f"use letters, digits and . _ - + @ between single '/' (at most {_MAX_SOURCE}); {fix}",
        )
    return None


def apply(layer: Mapping[str, object], texts: Mapping[str, str]) -> dict[str, object]:
    """``layer`` with each read source (``texts``: destination -> text) as a
    ``spec.Sourced`` value; the rest unchanged."""
    files = layer.get(FIELD)
    if not texts or not isinstance(files, Mapping):
        return dict(layer)
    entries: dict[object, object] = {}
    for dest, entry in files.items():
        if str(dest) in texts and isinstance(entry, Mapping):
            entry = {**entry, "source": spec.Sourced(str(entry["source"]), texts[str(dest)])}
        entries[dest] = entry
    return {**layer, FIELD: entries}


def no_root(request: Request) -> Problem:
    """A source with nothing to read it from (Dagger without --host-files-dir)."""
    return Problem(
        request.field,
        request.source,
        "names a file, but no directory to read it from was given.",
        "pass --host-files-dir DIR, DIR being the directory the source paths are relative "
        "to (usually the one holding the --config file), or write the text as content:.",
    )


def missing(request: Request, root_name: str) -> Problem:
    return Problem(
        request.field,
        request.source,
        f"is not a file in {root_name}.",
        f"check the path: it is relative to {root_name}.",
    )


# ------------------------------------------------------------------- local


def load_local(
    layer: Mapping[str, object], root: Path, root_name: str
) -> tuple[dict[str, object], dict[str, Path]]:
    """``layer`` with every ``source:`` read from ``root`` (a local directory,
    called ``root_name`` in messages), and the files read (entry field ->
    resolved path).
    Raises ``InvalidInput`` with every problem at once."""
    wanted, problems = requests(layer)
    texts: dict[str, str] = {}
    read: dict[str, Path] = {}
    for request in wanted:
        try:
            read[request.field], texts[request.dest] = read_local(root, request, root_name)
        except InvalidInput as exc:
            problems += exc.problems
    raise_if(problems)
    return apply(layer, texts), read


def read_local(root: Path, request: Request, root_name: str) -> tuple[Path, str]:
    """The resolved path and text of one source under ``root``. A symbolic
    link (anywhere on the path) is resolved first and must stay inside the
    root's resolved path; then the file is opened without following a link
    and read bounded (``textfile.read_regular``)."""
    base = Path(os.path.realpath(root))
    target = Path(os.path.realpath(base / request.source))
    if not target.is_relative_to(base):
        raise InvalidInput(
            [
                Problem(
                    request.field,
                    request.source,
                    f"leads outside {root_name} through a symbolic link.",
                    f"copy the file into {root_name} instead of linking to it.",
                )
            ]
        )
    try:
        fd = os.open(target, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW | os.O_NONBLOCK)
    except (FileNotFoundError, NotADirectoryError):
        raise InvalidInput([missing(request, root_name)]) from None
    except OSError as exc:
        fix = f"check the file's permissions; pass {WHAT}."
        raise InvalidInput(
            [textfile.os_problem(request.field, request.source, exc, "read", fix)]
        ) from None
    try:
        text = textfile.read_regular(
            fd, request.field, request.source, spec.HOST_FILE_LIMIT, f"pass {WHAT}."
        )
    finally:
        os.close(fd)
    return target, text
