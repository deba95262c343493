"""A build's inputs, read once: one adapter for the CLI and the Dagger module.

Knobs are text, flags and lists (``pipeline.spec``). The inputs of
``FILE_INPUTS`` are files whose *content* the build needs, so they are not knobs:

* ``user_data``: the user-data baked into the ISO (text);
* ``doca_airgap``: an air-gapped DOCA source, a flat apt repository directory
  or a doca-host local-repo ``.deb`` (on the CLI the ``.deb`` itself may be
  given);
* ``doca_repo_key``: a pinned DOCA signing key;
* ``module_signing_cert`` / ``module_signing_key``: the key pair that signs
  every DKMS module (both or neither; the key is a Dagger ``Secret``);
* ``doca_repo_auth``: an apt auth.conf for a DOCA mirror that needs a login
  (a Dagger ``Secret``).

The two secrets never enter the rendered output or a layer: they travel as
build secrets (``pipeline.buildsecrets``); here they are only checked.
* ``bfb``: a BlueField bootstream the host's nodeprep flashes (hundreds of
  MB: copied into the build context as a file, never read through the
  Dagger API; the CLI records its SHA-256).

The CLI hands in paths (``from_paths``), the Dagger module ``File``,
``Directory`` and ``Secret`` objects (``workspace.read_inputs``); both end
in the same ``BuildInputs``, which ``context.prepare`` reads. Both also load the spec the same way:
``parse`` the config, read its ``host_files`` sources
(``hostsources.load_local`` next to the CLI's ``--config``,
``workspace.load_host_sources`` from Dagger's ``--host-files-dir``), then
``resolve_layers`` (``load_spec`` does all three for a local root).
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from pipeline import buildsecrets, facts, hostsources, presets, spec, textfile
from pipeline.buildsecrets import AuthEntry
from pipeline.config import parse_config
from pipeline.errors import HIDDEN, InvalidInput, Problem, raise_if
from pipeline.spec import BuildSpec

if TYPE_CHECKING:  # the CLI never imports the Dagger SDK
    from dagger import File

ONLINE = "online"
REPO_DIR = "repo-dir"
REPO_DEB = "repo-deb"

D = TypeVar("D")  # a directory (Path or dagger.Directory)
F = TypeVar("F")  # a file (Path or dagger.File)


@dataclass(frozen=True)
class FileInput:
    """One file input, as the CLI and the Dagger module document it."""

    name: str
    cli: str  # what the CLI flag takes
    dagger: str  # the Dagger argument type
    doc: str


FILE_INPUTS: tuple[FileInput, ...] = (
    FileInput(
        "user_data",
        "file",
        "File",
        "user-data for the ISO (default: a template that installs and powers off).",
    ),
    FileInput(
        "doca_airgap",
        "directory or .deb file",
        "Directory",
        "Air-gapped DOCA source: a flat apt repository directory, or one holding a "
        "doca-host .deb (the CLI also takes the .deb itself).",
    ),
    FileInput(
        "doca_repo_key",
        "file",
        "File",
        "Pinned DOCA signing key (default: the key published with the repository).",
    ),
    FileInput(
        "module_signing_cert",
        "file",
        "File",
        "Certificate (PEM; the CLI takes DER too) of the key pair that signs every DKMS "
        "module, for Secure Boot hosts that enroll it as a MOK; needs --module-signing-key. "
        "Public: it goes into the build context and the image (default: a throwaway key, "
        "deleted after the build).",
    ),
    FileInput(
        "module_signing_key",
        "file (checked, never copied)",
        "Secret",
        "Unencrypted PEM private key of that pair; needs --module-signing-cert. A build "
        f"secret ({buildsecrets.MODULE_SIGNING.name}) mounted only while the DKMS modules "
        "are built: in no layer, build arg or rendered file. The build checks it matches "
        "the certificate.",
    ),
    FileInput(
        "doca_repo_auth",
        "file (checked, never copied)",
        "Secret",
        "apt auth.conf (machine HOST login USER password PASS) for a DOCA mirror that needs "
        f"a login; a build secret ({buildsecrets.DOCA_REPO_AUTH.name}) mounted at "
        f"{buildsecrets.DOCA_REPO_AUTH.target} for the DOCA install step only.",
    ),
    FileInput(
        "bfb",
        ".bfb file",
        "File",
        "BlueField bootstream (.bfb) baked into the image where the AI-RA-Infra nodeprep "
        "reads it (docs/ai-ra-infra.md); copied into the build context as a file (the CLI "
        "reads it once for its SHA-256; the Dagger module never reads it through the API).",
    ),
)
FILE_INPUT_NAMES = tuple(i.name for i in FILE_INPUTS)


def doc(name: str) -> str:
    """The documentation of a file input."""
    return next(i.doc for i in FILE_INPUTS if i.name == name)


@dataclass(frozen=True)
class Bfb:
    """A BlueField bootstream: file name, size in bytes and SHA-256 (hex;
    "" where it is not computed: the Dagger module leaves it to the image
    build's manifest)."""

    name: str
    size: int
    sha256: str = ""


# A .bfb file name as NVIDIA publishes them (bf-bundle-2.9.1-40_24.11_ubuntu-22.04_prod.bfb).
_BFB_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,250}\.bfb", re.ASCII)


def bfb_name_problems(name: str) -> list[Problem]:
    """Problems with a BFB's file name (it becomes a path in the image)."""
    if _BFB_NAME.fullmatch(name):
        return []
    return [
        Problem(
            "bfb",
            name[:80],
            "is not a .bfb file name of letters, digits, '.', '_', '+' and '-'.",
            "rename the file, e.g. bf-bundle-2.9.1-40_24.11_ubuntu-22.04_prod.bfb.",
        )
    ]


@dataclass(frozen=True)
class Airgap(Generic[D]):
    """An air-gapped DOCA source: its kind (REPO_DIR or REPO_DEB) and where it is."""

    kind: str
    source: D


@dataclass(frozen=True)
class BuildInputs(Generic[D, F]):
    """The file inputs of one build, read once.

    ``user_data`` is the text of the user's file (None: the default
    template) and ``user_data_source`` how messages name it (its path on
    the CLI); ``airgap`` and ``repo_key`` keep their source (a ``Path`` on
    the CLI, a ``Directory``/``File`` in Dagger) to be copied into the
    build context.
    """

    user_data: str | None = None
    airgap: Airgap[D] | None = None
    repo_key: F | None = None
    user_data_source: str = "user-data"
    # The module-signing certificate (its key was given too) and its SHA-256.
    signing_cert: F | None = None
    signing_sha256: str = ""
    # The entries of a DOCA repository auth.conf (machines only, no login or password).
    repo_auth: tuple[AuthEntry, ...] | None = None

    @property
    def build_secrets(self) -> tuple[buildsecrets.BuildSecret, ...]:
        """The build secrets the DOCA steps get."""
        given = {
            buildsecrets.MODULE_SIGNING: self.signing_cert is not None,
            buildsecrets.DOCA_REPO_AUTH: self.repo_auth is not None,
        }
        return tuple(secret for secret, on in given.items() if on)

    # The BFB's source (copied into the build context) and what is known of it.
    bfb: F | None = None
    bfb_info: Bfb | None = None

    @property
    def doca_source(self) -> str:
        """Where DOCA comes from: ONLINE, REPO_DIR or REPO_DEB."""
        return self.airgap.kind if self.airgap is not None else ONLINE

    def problems(self, resolved: BuildSpec) -> list[Problem]:
        """What these inputs and the spec cannot do together."""
        if self.airgap is not None and resolved.doca_repo_url != spec.default("doca_repo_url"):
            return [
                Problem(
                    "doca_airgap",
                    str(self.airgap.source) if isinstance(self.airgap.source, Path) else HIDDEN,
                    "and doca_repo_url are both set.",
                    "use one DOCA source: the air-gapped one or a repo URL.",
                )
            ]
        if self.repo_auth is not None and self.airgap is not None:
            return [
                Problem(
                    "doca_repo_auth",
                    HIDDEN,
                    "is given with --doca-airgap: an air-gapped build reads no repository.",
                    "drop --doca-repo-auth, or build from the mirror (--doca-repo-url).",
                )
            ]
        if self.repo_auth is not None:
            # The file's path is not kept: name the input only.
            found = buildsecrets.auth_host_problems(self.repo_auth, "", resolved.doca_repo_url)
            return [dataclasses.replace(p, value=HIDDEN) for p in found]
        return []


AnyInputs = BuildInputs[Any, Any]
# A build with no file inputs: the default user-data, DOCA online, no pinned key.
NO_FILES: AnyInputs = BuildInputs()


def classify_airgap(names: Sequence[str], given: str | None = None) -> str:
    """Which kind of air-gapped source a directory listing (or file name) is;
    a problem shows ``given`` (the path the user typed) when there is one,
    else the listing's first names."""
    if any(fnmatch.fnmatchcase(n, facts.DOCA_LOCAL_REPO_GLOB) for n in names):
        return REPO_DEB
    if any(n in ("Packages", "Packages.gz", "Packages.xz", "InRelease", "Release") for n in names):
        return REPO_DIR
    raise InvalidInput(
        [
            Problem(
                "doca_airgap",
                given if given is not None else ", ".join(sorted(names)[:5]) or "<empty>",
                "is neither a flat apt repository (Packages/Release at its top) "
                "nor a doca-host .deb.",
                "pass the directory of NVIDIA's DOCA repo mirror, "
                f"or the {facts.DOCA_LOCAL_REPO_GLOB} local-repo file.",
            )
        ]
    )


def load_spec(
    config: str | None,
    source: str = "config",
    overrides: Mapping[str, object] | None = None,
    root: Path | None = None,
) -> BuildSpec:
    """The spec from a config file's text (None: no file) and explicit values:
    the layers defaults <- preset <- config file <- explicit values
    (``spec.resolve``). The preset is the one the explicit values name, else
    the config file's (``pipeline.presets``). ``host_files`` sources of the
    config are read from ``root`` (the config file's directory; None: a
    source is an error), ``pipeline.hostsources``."""
    parsed = parse(config, source)
    if root is not None:
        parsed = hostsources.load_local(parsed, root, f"{root} (the config's directory)")[0]
    return resolve_layers(parsed, overrides)


def parse(config: str | None, source: str = "config") -> dict[str, object]:
    """A config file's raw knob values (``{}`` for no file); the file
    inputs, when written as keys, are named as such."""
    elsewhere = {
        name: f"{name} is a file input, not a knob: pass it as --{spec.kebab(name)}."
        for name in FILE_INPUT_NAMES
    }
    return parse_config(config, source, elsewhere) if config is not None else {}


def resolve_layers(
    parsed: Mapping[str, object], overrides: Mapping[str, object] | None = None
) -> BuildSpec:
    """The spec from a parsed config (its sources read) and explicit values,
    with the preset they name between the defaults and the config."""
    overrides = overrides or {}
    preset = presets.layer(presets.chosen(parsed, overrides))
    return spec.resolve([preset, parsed, overrides])


# ------------------------------------------------------------------- CLI


# What a user-named text file must be, and its size limit (checked before parsing).
_TEXT_FILES = {
    "config": (textfile.CONFIG_LIMIT, "a YAML file of knobs (keys = knob names)"),
    "user_data": (
        textfile.USER_DATA_LIMIT,
        f"a YAML file starting with {facts.KAIROS_CLOUD_CONFIG_HEADER}",
    ),
}


def read_text(path: Path, field: str) -> str:
    """A user-named UTF-8 text file (``config`` or ``user_data``), size-limited
    (``pipeline/textfile.py``); problems name the field and the path, never
    the content."""
    limit, what = _TEXT_FILES[field]
    return textfile.read_user_file(path, field, limit, what)


def from_paths(
    user_data: Path | None = None,
    doca_airgap: Path | None = None,
    doca_repo_key: Path | None = None,
    module_signing_cert: Path | None = None,
    module_signing_key: Path | None = None,
    doca_repo_auth: Path | None = None,
    bfb: Path | None = None,
) -> BuildInputs[Path, Path]:
    """The CLI's file inputs: every problem with them at once. The key and
    the auth.conf are read only to be checked, and never kept."""
    problems: list[Problem] = []
    bfb_info = None
    if bfb is not None:
        try:
            bfb_info = read_bfb(bfb)
        except InvalidInput as exc:
            problems += exc.problems
    text = None
    if user_data is not None:
        try:
            text = read_text(user_data, "user_data")
        except InvalidInput as exc:
            problems += exc.problems
    airgap = None
    if doca_airgap is not None:
        try:
            airgap = Airgap(_airgap_kind(doca_airgap), doca_airgap)
        except InvalidInput as exc:
            problems += exc.problems
    if doca_repo_key is not None:
        problems += repo_key_problems(doca_repo_key)
    sha256, found = signing_pair(
        _bytes(module_signing_cert, "module_signing_cert"),
        _bytes(module_signing_key, "module_signing_key"),
        str(module_signing_cert),
        str(module_signing_key),
    )
    problems += found
    entries = None
    if doca_repo_auth is not None:
        entries, found = repo_auth(_bytes(doca_repo_auth, "doca_repo_auth"), str(doca_repo_auth))
        problems += found
    if problems:
        raise InvalidInput(problems)
    return BuildInputs(
        user_data=text,
        airgap=airgap,
        repo_key=doca_repo_key,
        user_data_source=str(user_data) if user_data is not None else "user-data",
        signing_cert=module_signing_cert if sha256 else None,
        signing_sha256=sha256,
        repo_auth=entries,
        bfb=bfb,
        bfb_info=bfb_info,
    )


# What each secret-side file must be, and its size limit.
_BYTE_FILES = {
    "module_signing_cert": (buildsecrets.CERT_LIMIT, "a certificate (PEM or DER)"),
    "module_signing_key": (buildsecrets.KEY_LIMIT, "an unencrypted PEM private key"),
    "doca_repo_auth": (buildsecrets.AUTH_LIMIT, "an apt auth.conf"),
}


def _bytes(path: Path | None, field: str) -> bytes | Problem | None:
    """A key-side file's bytes (bounded), a Problem naming it, or None when not given."""
    if path is None:
        return None
    limit, what = _BYTE_FILES[field]
    try:
        return textfile.read_user_bytes(path, field, limit, what)
    except InvalidInput as exc:
        return exc.problems[0]


def signing_pair(
    cert: bytes | Problem | None, key: bytes | Problem | None, cert_name: str, key_name: str
) -> tuple[str, list[Problem]]:
    """The certificate's SHA-256 ("" without a pair) and the problems of the
    module-signing pair: both or neither, each file what it should be. The
    pair's match is checked by the build, where the key is (lib.sh)."""
    problems = buildsecrets.pair_problems(cert is not None, key is not None)
    for data, name, check in (
        (cert, cert_name, buildsecrets.certificate_problems),
        (key, key_name, buildsecrets.key_problems),
    ):
        if isinstance(data, Problem):
            problems.append(data)
        elif data is not None:
            problems += check(data, name)
    if problems or not isinstance(cert, bytes):
        return "", problems
    return buildsecrets.fingerprint(cert), []


def repo_auth(
    data: bytes | Problem | None, name: str
) -> tuple[tuple[AuthEntry, ...] | None, list[Problem]]:
    """The entries of a DOCA repository auth.conf (machines only) and its problems."""
    if data is None:
        return None, []
    if isinstance(data, Problem):
        return None, [data]
    fix = f"pass {_BYTE_FILES['doca_repo_auth'][1]}."
    try:
        text = textfile.decode(data, "doca_repo_auth", name, fix)
    except InvalidInput as exc:
        return None, list(exc.problems)
    problems = buildsecrets.auth_problems(text, name)
    return (None, problems) if problems else (tuple(buildsecrets.auth_entries(text)), [])


_HASH_CHUNK = 1024 * 1024


def read_bfb(path: Path) -> Bfb:
    """A BFB file's name, size and SHA-256 (read once, in chunks). Raises
    ``InvalidInput`` naming the path for a bad name, a missing, empty or
    unreadable file, or anything that is not a regular file."""
    raise_if(bfb_name_problems(path.name))
    fix = "pass the .bfb file NVIDIA publishes for the host's BlueField."
    digest = hashlib.sha256()
    try:
        with path.open("rb") as stream:
            if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
                raise InvalidInput([Problem("bfb", str(path), "is not a regular file.", fix)])
            size = 0
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
                size += len(chunk)
    except IsADirectoryError:
        raise InvalidInput([Problem("bfb", str(path), "is a directory.", fix)]) from None
    except OSError as exc:
        raise InvalidInput([textfile.os_problem("bfb", path, exc, "read", fix)]) from None
    if size == 0:
        raise InvalidInput([Problem("bfb", str(path), "is empty.", fix)])
    return Bfb(path.name, size, digest.hexdigest())


# An OpenPGP key file: ASCII-armored, or binary starting with a public-key
# packet (RFC 4880 4.2/5.5: tag 6, old format 0x98-0x9b, new format 0xc6).
# NVIDIA publishes its key armored, 1.7 KB.
_ARMORED_PUBLIC = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
_ARMORED_PRIVATE = b"-----BEGIN PGP PRIVATE KEY BLOCK-----"
_BINARY_PUBLIC = frozenset({0x98, 0x99, 0x9A, 0x9B, 0xC6})
KEY_LIMIT = 64 * 1024


def repo_key_problems(path: Path) -> list[Problem]:
    """Problems with a pinned DOCA key file (empty when it is an OpenPGP public
    key). A private key is refused without being copied anywhere; the file's
    content is never shown."""
    fix = f"pass the repository's public key, e.g. {facts.DOCA_KEY_FILE_NAME}."
    try:
        with path.open("rb") as key:
            head = key.read(KEY_LIMIT + 1)
    except IsADirectoryError:
        return [Problem("doca_repo_key", str(path), "is a directory, not a key file.", fix)]
    except OSError as exc:
        return [textfile.os_problem("doca_repo_key", path, exc, "read", f"check the path; {fix}")]
    if len(head) > KEY_LIMIT:
        message = f"is larger than {textfile.size_text(KEY_LIMIT)}, too large for a key."
    elif _ARMORED_PRIVATE in head:
        message = "is a PRIVATE key; the build needs only the public key (keep this one secret)."
    elif _ARMORED_PUBLIC in head or (head and head[0] in _BINARY_PUBLIC):
        return []
    else:
        message = "is not an OpenPGP public key (armored or binary)."
    return [Problem("doca_repo_key", str(path), message, fix)]


def _airgap_kind(path: Path) -> str:
    if path.is_file():
        return classify_airgap([path.name], str(path))
    if path.is_dir():
        return classify_airgap([p.name for p in path.iterdir()], str(path))
    raise InvalidInput([Problem("doca_airgap", str(path), "does not exist.", "check the path.")])


# ---------------------------------------------------------------- Dagger


async def dagger_bfb(bfb: File) -> Bfb:
    """A BFB ``File``'s name and size from the engine (its content stays
    there: it is copied into the build context, not read). Raises
    ``InvalidInput`` for a bad name or an empty file."""
    name = await bfb.name()
    raise_if(bfb_name_problems(name))
    size = await bfb.size()
    if size == 0:
        raise InvalidInput([Problem("bfb", name, "is empty.", "pass the .bfb file itself.")])
    return Bfb(name, size)
