"""Reading the text files a render needs: bounded, UTF-8, one clear error each.

Every file is size-checked before it is read whole or parsed, so a wrong
file (a disk image passed as user-data, a 50 MB log) is refused at once
instead of exhausting memory. Errors name the file and never quote its
content: a user-data file holds the edge host token.

Limits (the README's no-engine section documents them):

- user-data: 256 KiB. Kairos cloud-configs are kilobytes (CanvOS's
  ``user-data.template`` is 2.7 KB on main, 2026-11); 256 KiB leaves room for
  embedded certificates and scripts.
- ``--config``: 64 KiB. One line per knob; the longest real one is under 2 KB.
- Files read from a CanvOS checkout (Dockerfile, Earthfile,
  k8s_version.json): 1 MiB each. CanvOS main's Earthfile, the largest, is 80 KB.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pipeline.errors import InvalidInput, Problem

KIB = 1024
MIB = 1024 * KIB
USER_DATA_LIMIT = 256 * KIB
CONFIG_LIMIT = 64 * KIB
CHECKOUT_FILE_LIMIT = 1 * MIB


def size_text(size: int) -> str:
    """``262144`` -> ``"256 KiB"``; ``1048576`` -> ``"1 MiB"``."""
    if size >= MIB and size % MIB == 0:
        return f"{size // MIB} MiB"
    if size >= KIB and size % KIB == 0:
        return f"{size // KIB} KiB"
    return f"{size} bytes"


def kind(mode: int) -> str:
    """What a file of ``st_mode`` is, in words (for messages)."""
    if stat.S_ISREG(mode):
        return "a regular file"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symbolic link"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    return "a special file"


def os_problem(field: str, path: Path | str, exc: OSError, action: str, fix: str) -> Problem:
    """``field='path': cannot be <action> (<strerror>). Fix: <fix>`` for an OSError."""
    reason = exc.strerror or type(exc).__name__
    return Problem(field, str(path), f"cannot be {action} ({reason}).", fix)


def read_user_file(path: Path, field: str, limit: int, what: str) -> str:
    """The text of a file the user named (a flag or config value).

    A symbolic link is followed (the user chose the path) and pipes such as
    ``<(...)`` work: the read is bounded by ``limit`` whatever the file is.
    ``what`` says what the file should be, e.g. ``"a #cloud-config YAML file"``.
    Raises ``InvalidInput`` (one problem naming ``path``) on any failure.
    """
    return decode(read_user_bytes(path, field, limit, what), field, path, f"pass {what}.")


def read_user_bytes(path: Path, field: str, limit: int, what: str) -> bytes:
    """The bytes of a file the user named, read like ``read_user_file`` (bounded
    by ``limit``, a directory refused) but not decoded: for key and
    certificate files, whose checks look at PEM labels only."""
    fix = f"pass {what}."
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(
            [os_problem(field, path, exc, "read", f"check the path; {fix}")]
        ) from None
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise InvalidInput([Problem(field, str(path), "is a directory.", fix)])
        return _read_bounded(fd, field, path, limit, fix)
    finally:
        os.close(fd)


def read_regular(fd: int, field: str, path: Path | str, limit: int, fix: str) -> str:
    """The text of the regular file open as ``fd`` (not closed here).

    Anything but a regular file is refused without reading: a FIFO would block
    and a device would never end.
    """
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise InvalidInput(
            [Problem(field, str(path), f"is {kind(st.st_mode)}, not a regular file.", fix)]
        )
    return decode(_read_bounded(fd, field, path, limit, fix), field, path, fix)


def _read_bounded(fd: int, field: str, path: Path | str, limit: int, fix: str) -> bytes:
    st = os.fstat(fd)
    if stat.S_ISREG(st.st_mode) and st.st_size > limit:
        raise _too_large(field, path, limit, fix)
    chunks: list[bytes] = []
    total = 0
    try:
        while total <= limit:
            chunk = os.read(fd, min(limit + 1 - total, 1 * MIB))
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    except OSError as exc:
        raise InvalidInput([os_problem(field, path, exc, "read", fix)]) from None
    if total > limit:
        raise _too_large(field, path, limit, fix)
    return b"".join(chunks)


def _too_large(field: str, path: Path | str, limit: int, fix: str) -> InvalidInput:
    return InvalidInput(
        [
            Problem(
                field,
                str(path),
                f"is larger than {size_text(limit)}, the limit for this file.",
                f"check that this is the right file; {fix}",
            )
        ]
    )


def decode(data: bytes, field: str, path: Path | str, fix: str) -> str:
    """UTF-8 text, or ``InvalidInput`` saying where the first bad byte is.

    A NUL byte means a binary file: refused too, as no text format here
    allows one. The message gives the offset, never the bytes.
    """
    nul = data.find(b"\0")
    if nul >= 0:
        raise InvalidInput(
            [Problem(field, str(path), f"is binary (a NUL byte at offset {nul}), not text.", fix)]
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            [
                Problem(
                    field,
                    str(path),
                    f"is not UTF-8 text (invalid byte at offset {exc.start}).",
                    f"save it as UTF-8; {fix}",
                )
            ]
        ) from None
