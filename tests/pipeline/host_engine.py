"""Answers for the few awaits of the module's resolve step, read from host files.

The module's own code runs unchanged (``CanvosDoca._resolve``, ``_checked``,
``plan``); only the engine's answers to ``entries``, ``exists``, ``size``, ``contents``,
``export`` and ``Secret.plaintext`` come from here. The lazy object each
await is called on is read back from its selections: ``dag.host()
.directory(P).file(F)`` is the host file ``P/F``; a file cut from a mounted
file by an exec (``workspace.deb_head``) is the first bytes its ``head -c``
command names. Everything read is recorded, so tests can assert what was
*not* read (an oversized file's content).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

import dagger
from chains import steps


class HostEngine:
    def __init__(self) -> None:
        self.read: list[Path] = []  # files whose content was read
        self.exported: dict[str, int] = {}  # export path -> bytes written

    def path(self, obj: Any) -> Path:
        """The host path a host-rooted Directory/File chain names."""
        found: Path | None = None
        for name, args in steps(obj):
            if name in ("directory", "file"):
                found = Path(args["path"]) if found is None else found / args["path"]
        if found is None:
            raise AssertionError(f"not a host path: {steps(obj)}")
        return found

    async def entries(self, directory: dagger.Directory, path: str | None = None) -> list[str]:
        return sorted(p.name for p in self.path(directory).iterdir())

    async def exists(
        self, directory: dagger.Directory, path: str, expected_type: Any = None, **_: Any
    ) -> bool:
        found = self.path(directory) / path
        if expected_type == dagger.ExistsType.REGULAR_TYPE:
            return found.is_file()
        return found.exists()

    async def size(self, file: dagger.File) -> int:
        return self.path(file).stat().st_size

    async def contents(self, file: dagger.File, **_: Any) -> str:
        path = self.path(file)
        self.read.append(path)
        return path.read_bytes().decode("utf-8", "replace")

    async def export(self, file: dagger.File, path: str, **_: Any) -> str:
        chain = steps(file)
        (mounted,) = [a for n, a in chain if n == "withMountedFile"]
        (command,) = [a["args"] for n, a in chain if n == "withExec"]
        count = int(re.search(r"head -c (\d+) ", command[-1]).group(1))  # type: ignore[union-attr]
        with self.path(mounted["source"]).open("rb") as src, open(path, "wb") as dst:
            data = src.read(count)
            dst.write(data)
        self.exported[path] = len(data)
        return path

    async def plaintext(self, secret: dagger.Secret) -> str:
        ((_, args),) = steps(secret)
        return str(args["plaintext"])

    @contextmanager
    def running(self) -> Iterator[HostEngine]:
        def forward(method: Any) -> Any:
            async def call(obj: Any, *args: Any, **kwargs: Any) -> Any:
                return await method(obj, *args, **kwargs)

            return call

        patches = [
            mock.patch.object(dagger.Directory, "entries", forward(self.entries)),
            mock.patch.object(dagger.Directory, "exists", forward(self.exists)),
            mock.patch.object(dagger.File, "size", forward(self.size)),
            mock.patch.object(dagger.File, "contents", forward(self.contents)),
            mock.patch.object(dagger.File, "export", forward(self.export)),
            mock.patch.object(dagger.Secret, "plaintext", forward(self.plaintext)),
        ]
        for patch in patches:
            patch.start()
        try:
            yield self
        finally:
            for patch in patches:
                patch.stop()
