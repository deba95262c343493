"""Writing a rendered CanvOS checkout to ``--out`` without an engine.

What a render does on disk (the README's no-engine section says the same):

- **Staging.** Everything is built in ``.<out>.canvos-doca-staging.XXXXXXXX``
  next to ``--out`` (mode 0700, held under an exclusive ``flock`` while the
  render runs), then moved into place. A render killed at any moment leaves
  at most such a directory; the next render next to the same ``--out``
  removes those whose name matches and whose owner is the current user and
  whose lock is free (the render that made it is gone), nothing else.
- **New output.** ``--out`` must not exist or be an empty directory; the
  staged tree is renamed onto it in one step, so it is complete or absent.
  The check and the rename happen under a lock on the parent directory:
  of two renders to the same new ``--out`` exactly one succeeds.
- **``--force``** replaces an earlier render (a directory holding
  ``canvos-doca.json``) and nothing else. Its top-level entries are swapped
  one by one for the new ones, so the directory itself stays (``--out .``
  from inside it works), and CanvOS's top-level ``build/`` (the ISOs) is
  kept as it is. An interrupted ``--force`` can leave a mix of old and new
  top-level entries, never a half-written file: render again.
- **In place** (``--out`` is the ``--canvos`` checkout, with ``--force``):
  only the entries render writes are replaced (Dockerfile, .arg, user-data,
  canvos-doca.json, canvos-doca/); everything else, ``build/`` included, is
  untouched.
- **Copying** never follows a symbolic link: links are copied as links,
  whatever they point at (inside the tree or not), exactly as ``cp -a`` and
  git do; air-gapped sources likewise. A file render writes replaces
  whatever is at its path (a link included) and a linked directory on its
  way is replaced by a real one, so nothing outside ``--out`` is ever
  written. FIFOs, sockets and devices are refused. Only the checkout's
  top-level ``build/`` (CanvOS's output) and ``canvos-doca/`` (regenerated)
  are not copied; a ``build`` directory anywhere else is copied like any other.
- **Permissions.** ``--out`` is made 0700 (it holds ``.arg`` with proxy
  credentials and ``user-data`` with the edge host token, both written 0600);
  copied files keep their permission bits (no set-id bits).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import shlex
import shutil
import stat
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from pipeline import canvos, facts, userdata_edit
from pipeline.buildsecrets import BuildSecret
from pipeline.errors import InvalidInput, Problem
from pipeline.textfile import kind, os_problem

# Rendered files kept private: .arg (internal proxies and mirrors; credentials
# in them are refused by the spec), the edge host token (user-data). Written 0600.
SECRET_FILES = frozenset({".arg", "user-data"})
STAGING_TAG = "canvos-doca-staging"
OUT_MODE = 0o700
# Entries of a checkout's top level that are never copied into an output.
NOT_COPIED = frozenset({facts.CANVOS_BUILD_DIR, canvos.CONTEXT_DIR})
_MAX_DEPTH = 256
_COPY_CHUNK = 1024 * 1024


def package_data(name: str) -> Path:
    """A directory the project ships beside ``pipeline/`` (``overlays``, ``presets``).

    Installed from a wheel it is package data at ``pipeline/<name>``; in a
    source checkout (editable install, tests, the Dagger module's source) it
    is the repository's ``<name>/``.
    """
    shipped = Path(__file__).resolve().parent / name
    if shipped.is_dir():
        return shipped
    return Path(__file__).resolve().parent.parent / name


def package_overlays() -> Path:
    """The project's ``overlays/`` directory (``package_data``)."""
    return package_data("overlays")


# ----------------------------------------------------------- the target


@dataclass(frozen=True)
class Target:
    """Where and how a render writes.

    ``path`` is absolute. ``mode``: ``"new"`` (must not exist or be empty),
    ``"replace"`` (an earlier render, ``--force``), ``"in-place"`` (the
    checkout itself, ``--force``). ``protected``: top-level names of files
    in place whose content must not be lost (rewriting them with the same
    bytes is fine).
    """

    path: Path
    mode: str
    protected: tuple[str, ...] = ()


def check_target(
    out: Path, checkout: Path, force: bool, inputs: Mapping[str, Path | None] | None = None
) -> Target:
    """Decide how ``out`` can be written, before anything is read or written.

    ``inputs`` are the other files the render reads (field -> path), so that
    ``--force`` never deletes one of them. Raises ``InvalidInput`` (field
    ``out``) with the reason and the fix.
    """
    inputs = inputs or {}
    path = Path(os.path.abspath(out))
    real = Path(os.path.realpath(path))
    source = Path(os.path.realpath(checkout))
    if real == source:
        return _in_place(path, source, force, inputs)
    if real.is_relative_to(source):
        raise _refuse(
            path,
            f"is inside the --canvos checkout {source}; the copy would contain itself.",
            "choose an --out outside the checkout (or --out equal to it with --force "
            "to render in place).",
        )
    if source.is_relative_to(real):
        raise _refuse(
            path,
            f"contains the --canvos checkout {source}.",
            "choose an --out that does not contain the checkout.",
        )
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        _check_parent(path)
        return Target(path, "new")
    except OSError as exc:
        raise InvalidInput([os_problem("out", path, exc, "examined", "check the path.")]) from None
    if stat.S_ISLNK(st.st_mode):
        raise _refuse(path, "is a symbolic link.", f"pass the directory itself ({real}).")
    if not stat.S_ISDIR(st.st_mode):
        raise _refuse(path, f"exists and is {kind(st.st_mode)}.", "choose a new directory.")
    if not _listdir(path):
        return Target(path, "new")
    if not force:
        raise _refuse(path, "already exists.", "choose a new directory or pass --force.")
    _check_replaceable(path)
    for field, given in inputs.items():
        if given is not None and Path(os.path.realpath(given)).is_relative_to(real):
            raise _refuse(
                path,
                f"holds {field} ({given}), which --force would delete with the old output.",
                f"move {field} outside --out first.",
            )
    return Target(path, "replace")


def _in_place(path: Path, source: Path, force: bool, inputs: Mapping[str, Path | None]) -> Target:
    if not force:
        raise _refuse(
            path,
            "is the --canvos checkout itself; rendering in place rewrites its Dockerfile, "
            ".arg, user-data, canvos-doca.json and canvos-doca/.",
            "pass --force to render in place, or choose a new --out.",
        )
    # The checkout's own user-data (the edge host token) is the user's unless
    # it is the --user-data input: render must not silently swap in the template.
    own = source / "user-data"
    given = inputs.get("user_data")
    mine = given is not None and os.path.realpath(given) == os.path.realpath(own)
    return Target(path, "in-place", () if mine else ("user-data",))


def _check_parent(path: Path) -> None:
    for parent in (path.parent, *path.parent.parents):
        if os.path.lexists(parent):
            if not parent.is_dir():
                raise _refuse(
                    path,
                    f"cannot be created: {parent} is not a directory.",
                    "choose an --out whose parent is a directory.",
                )
            return


def _check_replaceable(path: Path) -> None:
    marker = path / canvos.DESCRIPTION_FILE
    if not marker.is_file() or marker.is_symlink():
        raise _refuse(
            path,
            f"is not an earlier canvos-doca output (no {canvos.DESCRIPTION_FILE}); "
            "--force replaces only those.",
            "choose a new directory, or empty this one yourself.",
        )


def _refuse(path: Path, message: str, fix: str) -> InvalidInput:
    return InvalidInput([Problem("out", str(path), message, fix)])


def _listdir(path: Path) -> list[str]:
    try:
        return os.listdir(path)
    except OSError as exc:
        raise InvalidInput([os_problem("out", path, exc, "listed", "check the path.")]) from None


# -------------------------------------------------------------- writing


@dataclass(frozen=True)
class Source:
    """A file or directory to copy into the output.

    ``into`` is its path relative to the output (for a file, the file's own
    path); ``field`` names the input in error messages.
    """

    path: Path
    into: str
    field: str


def write(
    target: Target,
    checkout: Path,
    files: Mapping[str, str],
    sources: Sequence[Source] = (),
) -> None:
    """Write the rendered checkout to ``target`` (see the module docstring).

    ``files``: relative path -> text written over whatever the copy holds
    there; ``sources``: copied after the checkout (overlays, air-gapped DOCA
    source, key). Raises ``InvalidInput`` with one problem on any failure,
    leaving no staging directory and no parent directory it created.
    """
    _check_protected(target, files)
    parent = target.path.parent
    created = _make_parents(parent)
    try:
        with _staging(parent, target.path.name) as staging:
            tree = staging / "tree"
            os.mkdir(tree, OUT_MODE)
            if target.mode != "in-place":
                copy_tree(checkout, tree, "canvos", skip_top=NOT_COPIED)
            for source in sources:
                _copy_source(source, tree)
            for relative in sorted(files):
                mode = 0o600 if relative in SECRET_FILES else 0o644
                write_file(tree, relative, files[relative], mode)
            with _locked(parent):
                _commit(target, tree, staging)
    except OSError as exc:
        _remove_created(created)
        raise InvalidInput(
            [os_problem("out", target.path, exc, "written", "check the path and free space.")]
        ) from None
    except BaseException:
        _remove_created(created)
        raise


def _check_protected(target: Target, files: Mapping[str, str]) -> None:
    """Refuse to replace a protected file in place with different content."""
    for name in target.protected:
        path = target.path / name
        if not os.path.lexists(path) or _same_content(path, files.get(name)):
            continue
        if name == "user-data" and _rendered_from_template(path):
            continue
        raise _refuse(
            target.path,
            f"has its own {name}, which rendering in place would replace.",
            f"pass --{name} {path} to keep it (what render adds is merged into it), "
            "or move it away.",
        )


def _rendered_from_template(path: Path) -> bool:
    """Whether ``path`` is user-data an earlier render wrote from the default
    template: the template itself with only the editor's marked lines added
    (``userdata_edit.MARK``), so no token or setting of the user's."""
    template = (package_overlays() / canvos.DEFAULT_USER_DATA).read_text(encoding="utf-8")
    data = _read_regular(path, 4 * len(template.encode("utf-8")) + 4096)
    if data is None:
        return False
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return userdata_edit.without_own_mounts(text) == template


def _read_regular(path: Path, limit: int) -> bytes | None:
    """Up to ``limit`` + 1 bytes of a regular file (never through a link), or None."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        with os.fdopen(fd, "rb", closefd=False) as existing:
            data = existing.read(limit + 1)
        return data if len(data) <= limit else None
    finally:
        os.close(fd)


def _same_content(path: Path, new: str | None) -> bool:
    if new is None:
        return False
    expected = new.encode("utf-8")
    return _read_regular(path, len(expected)) == expected


def _make_parents(parent: Path) -> list[Path]:
    """Create ``parent`` and its missing ancestors; the ones created, deepest last."""
    missing = []
    for directory in (parent, *parent.parents):
        if os.path.lexists(directory):
            break
        missing.append(directory)
    created: list[Path] = []
    for directory in reversed(missing):
        try:
            os.mkdir(directory)
        except OSError as exc:
            _remove_created(created)
            fix = "choose an --out in a directory you can write to."
            raise InvalidInput([os_problem("out", directory, exc, "created", fix)]) from None
        created.append(directory)
    return created


def _remove_created(created: Sequence[Path]) -> None:
    for directory in reversed(created):
        with contextlib.suppress(OSError):
            os.rmdir(directory)


def staging_pattern(out_name: str) -> re.Pattern[str]:
    """Names of the staging directories of renders to ``out_name``."""
    return re.compile(rf"\.{re.escape(out_name)}\.{STAGING_TAG}\.[A-Za-z0-9_]{{8}}")


@contextlib.contextmanager
def _staging(parent: Path, out_name: str) -> Iterator[Path]:
    """A fresh 0700 staging directory next to the output, locked while in use.

    Stale ones (killed renders) are removed first. Creating and locking
    happen under the parent's lock, so no cleaner sees an unlocked new one.
    """
    with _locked(parent):
        stale = _claim_stale(parent, out_name)
        try:
            path = Path(tempfile.mkdtemp(prefix=f".{out_name}.{STAGING_TAG}.", dir=parent))
        except OSError as exc:
            _release(stale)
            raise InvalidInput(
                [
                    os_problem(
                        "out",
                        parent / out_name,
                        exc,
                        "created",
                        f"choose an --out in a directory you can write to ({parent} is not).",
                    )
                ]
            ) from None
        try:
            lock = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            fcntl.flock(lock, fcntl.LOCK_EX)
        except OSError:
            shutil.rmtree(path, ignore_errors=True)
            _release(stale)
            raise
    try:
        _release(stale)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)
        os.close(lock)


def _claim_stale(parent: Path, out_name: str) -> list[tuple[Path, int]]:
    """Staging directories of dead renders to ``out_name`` owned by us, locked."""
    pattern = staging_pattern(out_name)
    claimed = []
    for name in os.listdir(parent):
        if not pattern.fullmatch(name):
            continue
        path = parent / name
        try:
            st = os.lstat(path)
            if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
                continue
            fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)  # a live render holds it
            continue
        claimed.append((path, fd))
    return claimed


def _release(stale: list[tuple[Path, int]]) -> None:
    """Delete the claimed stale staging directories (outside the parent lock)."""
    for path, fd in stale:
        shutil.rmtree(path, ignore_errors=True)
        os.close(fd)


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """An exclusive ``flock`` on a directory, held for the block."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _commit(target: Target, tree: Path, staging: Path) -> None:
    """Move the staged tree into place (called under the parent's lock)."""
    path = target.path
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        st = None
    if st is None or (stat.S_ISDIR(st.st_mode) and not os.listdir(path)):
        try:
            os.rename(tree, path)
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST):
                raise _created_meanwhile(path) from None
            raise
        return
    if target.mode == "new":
        raise _created_meanwhile(path)
    if target.mode == "replace":
        _check_replaceable(path)
    _swap_entries(tree, path, staging / "old", keep_others=target.mode == "in-place")
    os.chmod(path, OUT_MODE)


def _created_meanwhile(path: Path) -> InvalidInput:
    return _refuse(
        path,
        "already exists (created by another process while this render ran).",
        "choose a new directory or pass --force.",
    )


def _swap_entries(tree: Path, out: Path, old: Path, keep_others: bool) -> None:
    """Replace ``out``'s top-level entries by ``tree``'s, one rename each.

    Replaced entries go to ``old`` (inside the staging directory). Entries
    ``tree`` does not have are moved there too, unless ``keep_others`` or it
    is CanvOS's ``build/``.
    """
    os.mkdir(old, OUT_MODE)
    new_names = set(os.listdir(tree))
    for name in sorted(new_names):
        try:
            current = os.lstat(out / name)
        except FileNotFoundError:
            current = None
        incoming_dir = stat.S_ISDIR(os.lstat(tree / name).st_mode)
        if current is not None and (stat.S_ISDIR(current.st_mode) or incoming_dir):
            os.rename(out / name, old / name)
        # rename() replaces a file or link at the destination; never follows it.
        os.rename(tree / name, out / name)
    if keep_others:
        return
    for name in os.listdir(out):
        if name not in new_names and name != facts.CANVOS_BUILD_DIR:
            os.rename(out / name, old / name)


# -------------------------------------------------------------- copying


def _copy_source(source: Source, tree: Path) -> None:
    """Copy a user-named file or directory (the named path itself may be a link)."""
    into = Path(source.into)
    destination = tree / into
    if source.path.is_dir():
        _make_real_dirs(tree, into)
        copy_tree(source.path, destination, source.field)
        return
    _make_real_dirs(tree, into.parent)
    _unlink_if_present(destination)
    try:
        src_fd = os.open(source.path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput(
            [os_problem(source.field, source.path, exc, "read", "check the path.")]
        ) from None
    try:
        _copy_file(src_fd, destination.parent, destination.name, source.field, source.path)
    finally:
        os.close(src_fd)


def copy_tree(src: Path, dst: Path, field: str, skip_top: frozenset[str] = frozenset()) -> None:
    """Copy the directory ``src`` into the existing directory ``dst``.

    Symbolic links are copied as links and never followed (neither in ``src``
    nor on the way); directories and regular files keep their permission
    bits (set-id bits dropped) and modification times; anything else is
    refused with an ``InvalidInput`` naming the path (field ``field``).
    ``skip_top``: names at the top of ``src`` that are not copied.
    """
    try:
        src_fd = os.open(src, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise InvalidInput([os_problem(field, src, exc, "read", "check the path.")]) from None
    try:
        dst_fd = os.open(dst, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            _copy_dir(src_fd, dst_fd, src, field, skip_top, 0)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _copy_dir(
    src_fd: int, dst_fd: int, src: Path, field: str, skip: frozenset[str], depth: int
) -> None:
    if depth > _MAX_DEPTH:
        raise InvalidInput(
            [
                Problem(
                    field,
                    str(src),
                    f"is nested more than {_MAX_DEPTH} directories deep.",
                    "flatten it.",
                )
            ]
        )
    try:
        entries = sorted(os.listdir(src_fd))
    except OSError as exc:
        raise InvalidInput(
            [os_problem(field, src, exc, "listed", "check its permissions.")]
        ) from None
    for name in entries:
        if name in skip:
            continue
        path = src / name
        try:
            st = os.lstat(name, dir_fd=src_fd)
            if stat.S_ISLNK(st.st_mode):
                os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
            elif stat.S_ISDIR(st.st_mode):
                os.mkdir(name, 0o700, dir_fd=dst_fd)
                child_src = os.open(
                    name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=src_fd
                )
                try:
                    child_dst = os.open(
                        name,
                        os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                        dir_fd=dst_fd,
                    )
                    try:
                        _copy_dir(child_src, child_dst, path, field, frozenset(), depth + 1)
                        # Owner keeps rwx, so the staging tree can always be removed.
                        os.chmod(child_dst, (stat.S_IMODE(st.st_mode) & 0o1777) | 0o700)
                        os.utime(child_dst, ns=(st.st_atime_ns, st.st_mtime_ns))
                    finally:
                        os.close(child_dst)
                finally:
                    os.close(child_src)
            elif stat.S_ISREG(st.st_mode):
                file_fd = os.open(
                    name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=src_fd
                )
                try:
                    _copy_file(file_fd, dst_fd, name, field, path)
                finally:
                    os.close(file_fd)
            else:
                raise _special(field, path, st.st_mode)
        except OSError as exc:
            raise InvalidInput([os_problem(field, path, exc, "copied", "check it.")]) from None


def _special(field: str, path: Path, mode: int) -> InvalidInput:
    return InvalidInput(
        [
            Problem(
                field,
                str(path),
                f"is {kind(mode)}; render copies only regular files, directories "
                "and symbolic links.",
                "remove it (or move it out of the tree) and render again.",
            )
        ]
    )


def _copy_file(src_fd: int, dst: Path | int, name: str, field: str, src: Path) -> None:
    """Copy the open regular file ``src_fd`` to a new file ``name`` in ``dst``."""
    st = os.fstat(src_fd)
    if not stat.S_ISREG(st.st_mode):
        raise _special(field, src, st.st_mode)
    dir_fd = dst if isinstance(dst, int) else os.open(dst, os.O_RDONLY | os.O_DIRECTORY)
    try:
        out_fd = os.open(
            name,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
            dir_fd=dir_fd,
        )
    finally:
        if not isinstance(dst, int):
            os.close(dir_fd)
    try:
        os.set_blocking(src_fd, True)
        while chunk := os.read(src_fd, _COPY_CHUNK):
            _write_all(out_fd, chunk)
        os.fchmod(out_fd, stat.S_IMODE(st.st_mode) & 0o777)
        os.utime(out_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
    finally:
        os.close(out_fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


# -------------------------------------------------------------- writing


def write_file(tree: Path, relative: str, content: str, mode: int) -> None:
    """Write ``content`` to ``tree/relative`` as a new file of ``mode``.

    Whatever is at that path (a file, a link to anywhere) is removed first,
    and a link or file where a parent directory belongs is replaced by a real
    directory, so the write lands inside ``tree`` and nowhere else.
    """
    path = Path(relative)
    _make_real_dirs(tree, path.parent)
    target = tree / path
    _unlink_if_present(target)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        _write_all(fd, content.encode("utf-8"))
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _make_real_dirs(tree: Path, relative: Path) -> None:
    """Make ``tree/relative`` a chain of real directories (links replaced)."""
    current = tree
    for part in relative.parts:
        current = current / part
        try:
            st = os.lstat(current)
        except FileNotFoundError:
            os.mkdir(current, 0o755)
            continue
        if not stat.S_ISDIR(st.st_mode):
            os.unlink(current)
            os.mkdir(current, 0o755)


def _unlink_if_present(path: Path) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


# ------------------------------------------------------------ next steps


def next_steps(
    out: Path, k8s_versions: Sequence[str], secrets: Mapping[BuildSecret, Path] | None = None
) -> str:
    """What to run on the output: one earthly.sh line per K8s version.

    ``.arg`` holds the first version; ``+build-all-images`` builds the ISO and
    its provider image, and each further version is one
    ``+build-provider-images --K8S_VERSION=...`` run (Earthly command-line
    build args override ``.arg``).

    With build ``secrets`` (each with the file the user named) each line
    passes them as ``--secret-file NAME=PATH`` (Earthly flags go before the
    target). CanvOS's earthly.sh
    runs Earthly in a container that sees only this directory, as
    ``/workspace``, and hands its arguments to Earthly as they are; so the
    files go under ``local/``, which CanvOS's ``.earthlyignore`` keeps out of
    every build context, for the run only.
    """
    where = shlex.quote(str(out))
    first, *others = k8s_versions
    secrets = secrets or {}
    flags = "".join(
        f"--secret-file {s.name}={SECRETS_DIR_IN_EARTHLY}/{secret_file(s)} " for s in secrets
    )
    lines = [
        f"Wrote {out}. Next, build it with CanvOS's wrapper "
        f"({len(k8s_versions)} provider image{'s' if len(k8s_versions) > 1 else ''}):",
        f"  cd {where}",
    ]
    if secrets and not _ignores_local(out):
        lines.append(
            f"  echo '{SECRETS_DIR.split('/')[0]}/' >>.earthlyignore"
            "    # this checkout's .earthlyignore lacks it: keep the secrets out of the context"
        )
    if secrets:
        lines.append(f"  mkdir -m 0700 -p {SECRETS_DIR}")
        lines += [
            f"  install -m 0600 {shlex.quote(str(path))} "
            f"{SECRETS_DIR}/{secret_file(s)}    # {_SECRET_WHAT[s.field]}"
            for s, path in secrets.items()
        ]
    lines.append(
        f"  ./earthly.sh {flags}{facts.CANVOS_TARGET_ALL_IMAGES}"
        f"    # installer ISO + provider image for K8s {first}"
    )
    lines += [
        f"  ./earthly.sh {flags}{facts.CANVOS_TARGET_PROVIDER_IMAGES} --K8S_VERSION={version}"
        f"    # provider image for K8s {version}"
        for version in others
    ]
    if secrets:
        lines.append(f"  rm -rf {SECRETS_DIR}    # the secrets are needed only while Earthly runs")
    return "\n".join(lines) + "\n"


# Where the rendered checkout's build secrets sit for an earthly.sh run:
# CanvOS's .earthlyignore lists local/ (v4.9.x and main), so no build
# context holds them; earthly.sh mounts the checkout at /workspace.
SECRETS_DIR = "local/canvos-doca-secrets"
SECRETS_DIR_IN_EARTHLY = f"/workspace/{SECRETS_DIR}"
_SECRET_WHAT = {
    "module_signing_key": "the module-signing private key (PEM)",
    "doca_repo_auth": "the DOCA mirror's apt auth.conf",
}


def _ignores_local(out: Path) -> bool:
    """Whether the output's .earthlyignore keeps ``local/`` out of Earthly's context."""
    try:
        text = (out / ".earthlyignore").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return False
    return any(
        line.strip() in ("local", "local/", "/local", "/local/") for line in text.splitlines()
    )


def secret_file(secret: BuildSecret) -> str:
    """The file name of a build secret under SECRETS_DIR."""
    return secret.field.replace("_", "-")
