"""The air-gapped DOCA source (``--doca-airgap``): its doca-host .deb and version.

The image stage takes exactly one ``doca-host_*.deb`` (the local-repo
package NVIDIA publishes) and installs the DOCA version baked into the
Dockerfile. A .deb of another version would fail only inside the image
build, minutes later; ``check`` reads the package's own control fields when
the context is rendered and refuses a mismatch.

How the control fields are read: with ``dpkg-deb --show`` when ``dpkg-deb``
is on PATH (dpkg's own reader, every compression dpkg supports); otherwise
with the standard library, since a .deb is an ar archive whose
``control.tar[.gz|.xz]`` member holds ``./control`` (deb(5)). Only a
zstd-compressed control member needs dpkg-deb there (or Python 3.14's
``compression.zstd``). Either way only the small control member is read,
never the multi-GB package pool.
"""

from __future__ import annotations

import fnmatch
import io
import lzma
import re
import shutil
import subprocess
import tarfile
import zlib
from pathlib import Path
from typing import Protocol

from pipeline import facts
from pipeline.errors import InvalidInput, Problem

FIELD = "doca_airgap"
# What the image stage looks for (overlays/doca/install/doca-install.sh).
DEB_GLOB = facts.DOCA_LOCAL_REPO_GLOB
PACKAGE = "doca-host"
_CONTROL_LIMIT = 1024 * 1024
# control.tar holds control, md5sums and maintainer scripts: tens of KB.
_UNPACKED_LIMIT = 16 * 1024 * 1024
_AR_MAGIC = b"!<arch>\n"
_FIELD_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9-]*):[ \t]*(.*?)[ \t]*$")


class NotADeb(Exception):
    """The file is not a Debian binary package this module can read."""


def doca_version_of(package_version: str) -> str:
    """The DOCA release of a doca-host package version.

    ``"3.2.2-034000-25.10-ubuntu2204"`` -> ``"3.2.2"``: the part before the
    first ``-`` (after an epoch, if any), the same rule as the image stage's
    ``doca-host_${DOCA_VERSION}-*`` file-name check.
    """
    without_epoch = re.sub(r"^[0-9]+:", "", package_version)
    return without_epoch.split("-", 1)[0]


def doca_host_debs(source: Path) -> list[Path]:
    """The doca-host packages of an air-gapped source: the file itself, or the
    ``doca-host_*.deb`` files at the top of a directory (none for a flat repo)."""
    if source.is_dir():
        return sorted(p for p in source.iterdir() if fnmatch.fnmatch(p.name, DEB_GLOB))
    return [source]


def check(source: str, doca_version: str) -> None:
    """Refuse an air-gapped doca-host package that is not ``doca_version``.

    A flat apt repository directory (no doca-host .deb) passes unchanged.
    Raises ``InvalidInput`` naming the file, its version and the fix.
    """
    if not source:
        return
    path = Path(source)
    debs = doca_host_debs(path)
    if path.is_file() and not fnmatch.fnmatch(path.name, DEB_GLOB):
        raise InvalidInput(
            [
                Problem(
                    FIELD,
                    source,
                    f"is not named {DEB_GLOB}, the name the image stage looks for.",
                    "pass NVIDIA's doca-host local-repo package under its original file name.",
                )
            ]
        )
    if len(debs) > 1:
        names = ", ".join(p.name for p in debs)
        raise InvalidInput(
            [
                Problem(
                    FIELD,
                    source,
                    f"holds {len(debs)} doca-host packages ({names}); the image stage takes one.",
                    f"keep only the doca-host .deb of DOCA {doca_version} in it.",
                )
            ]
        )
    for deb in debs:
        try:
            fields = control_fields(deb)
        except NotADeb as exc:
            raise InvalidInput(
                [Problem(FIELD, str(deb), f"is not a readable Debian package ({exc}).", _FIX)]
            ) from None
        package, version = fields.get("Package", ""), fields.get("Version", "")
        if package != PACKAGE:
            raise InvalidInput(
                [
                    Problem(
                        FIELD,
                        str(deb),
                        f"is the package {package or '(unnamed)'!s}, not {PACKAGE}.",
                        _FIX,
                    )
                ]
            )
        found = doca_version_of(version)
        if found != doca_version:
            raise InvalidInput(
                [
                    Problem(
                        FIELD,
                        str(deb),
                        f"holds DOCA-Host {found} (package version {version}), "
                        f"but doca_version is {doca_version}.",
                        f"pass --doca-version {found}, or the doca-host .deb of DOCA "
                        f"{doca_version}.",
                    )
                ]
            )


_FIX = "pass NVIDIA's doca-host_<version>-..._<arch>.deb local-repo package."


def control_fields(deb: Path, use_dpkg: bool | None = None) -> dict[str, str]:
    """``Package`` and ``Version`` of a .deb (``use_dpkg``: None = when on PATH).

    Raises ``NotADeb`` with the reason when the file is not a readable package.
    """
    dpkg_deb = shutil.which("dpkg-deb")
    if use_dpkg is None:
        use_dpkg = dpkg_deb is not None
    if use_dpkg:
        if dpkg_deb is None:
            raise NotADeb("dpkg-deb is not installed")
        return _fields_by_dpkg(dpkg_deb, deb)
    fields = _parse_control(_control_by_stdlib(deb))
    return {name: fields.get(name, "") for name in ("Package", "Version")}


def _fields_by_dpkg(dpkg_deb: str, deb: Path) -> dict[str, str]:
    command = [dpkg_deb, "--show", "--showformat=${Package}\\n${Version}\\n", "--", str(deb)]
    try:
        done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NotADeb(f"dpkg-deb failed: {exc}") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        reason = message[0] if message else f"exit code {done.returncode}"
        raise NotADeb(reason.removeprefix("dpkg-deb: ").removeprefix("error: ")[:200])
    lines = done.stdout.decode("utf-8", "replace").splitlines()
    if len(lines) < 2:
        raise NotADeb("dpkg-deb printed no Package/Version")
    return {"Package": lines[0].strip(), "Version": lines[1].strip()}


def _control_by_stdlib(deb: Path) -> str:
    """The ``control`` file of a .deb, read with the standard library."""
    try:
        with deb.open("rb") as archive:
            if archive.read(len(_AR_MAGIC)) != _AR_MAGIC:
                raise NotADeb("no ar archive header")
            while True:
                header = archive.read(60)
                if len(header) < 60:
                    raise NotADeb("no control.tar member")
                if header[58:60] != b"`\n":
                    raise NotADeb("damaged ar member header")
                name = header[:16].decode("ascii", "replace").strip().rstrip("/")
                try:
                    size = int(header[48:58].decode("ascii", "replace").strip())
                except ValueError:
                    raise NotADeb("damaged ar member size") from None
                if name.startswith("control.tar"):
                    if size > _CONTROL_LIMIT:
                        raise NotADeb(f"{name} is larger than 1 MiB")
                    return _control_from_tar(name, archive.read(size))
                archive.seek(size + size % 2, io.SEEK_CUR)
    except OSError as exc:
        raise NotADeb(exc.strerror or str(exc)) from None


def _control_from_tar(name: str, data: bytes) -> str:
    try:
        if name.endswith(".gz"):
            data = _bounded(zlib.decompressobj(wbits=16 + zlib.MAX_WBITS), data)
        elif name.endswith(".xz"):
            data = _bounded(lzma.LZMADecompressor(), data)
        elif name.endswith(".zst"):
            data = _zstd_decompress(data)
        elif name != "control.tar":
            raise NotADeb(f"unknown member compression {name}")
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                if member.name in ("./control", "control") and member.isfile():
                    if member.size > _CONTROL_LIMIT:
                        raise NotADeb("control file larger than 1 MiB")
                    content = tar.extractfile(member)
                    if content is None:
                        break
                    return content.read().decode("utf-8", "replace")
    except (OSError, EOFError, zlib.error, lzma.LZMAError, tarfile.TarError) as exc:
        raise NotADeb(f"damaged {name}: {exc}") from None
    raise NotADeb(f"{name} has no control file")


class _Decompressor(Protocol):
    @property
    def eof(self) -> bool: ...

    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _bounded(decompressor: _Decompressor, data: bytes) -> bytes:
    """Decompress at most ``_UNPACKED_LIMIT`` bytes (a small bomb stays small)."""
    out = decompressor.decompress(data, _UNPACKED_LIMIT)
    if len(out) >= _UNPACKED_LIMIT and not decompressor.eof:
        raise NotADeb(f"control member unpacks to more than {_UNPACKED_LIMIT // 2**20} MiB")
    return out


def _zstd_decompress(data: bytes) -> bytes:
    try:
        from compression import zstd  # type: ignore[import-not-found,unused-ignore]
    except ImportError:
        raise NotADeb(
            "control.tar.zst needs dpkg-deb (apt-get install dpkg) or Python 3.14"
        ) from None
    return bytes(zstd.decompress(data))


def _parse_control(text: str) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = _FIELD_LINE.match(line)
        if match:
            fields.setdefault(match.group(1), match.group(2))
    return fields
