"""Secrets the DOCA stage reads while it builds: where each one travels, and
the checks their files get before a build (none of which ever shows content).

Two secrets, same mechanics:

* ``module_signing_key``: the private key that signs every DKMS module (its
  certificate is public and goes into the build context);
* ``doca_repo_auth``: an apt ``auth.conf`` (apt_auth.conf(5)) for a DOCA
  mirror that needs a login.

Each reaches exactly the Dockerfile steps that need it as a BuildKit secret
mount (``RUN --mount=type=secret``): the file is there while the step runs and
in no layer, ARG, build arg or image history. The mount text is a fixed block
value (``canvos._FIXED_VALUES``), empty when the secret is not given.

Earthly (v0.8.15) looks a Dockerfile's secret up by a query-style id whose
``name`` is what ``earthly --secret-file NAME=PATH`` (or
``EARTHLY_SECRET_FILES="NAME=PATH,..."``) sets (``util/llbutil/secretprovider``);
``docker build --secret id=<id>,src=FILE`` supplies the same id. The Dagger
module mounts each secret as a file into the Earthly container
(``dagger_path``) and ``earthly-run.sh`` hands it to Earthly by
``EARTHLY_SECRET_FILES``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from urllib.parse import urlsplit

from pipeline.errors import HIDDEN, Problem

SECRET_DIR = "/run/canvos-doca"


@dataclass(frozen=True)
class BuildSecret:
    """One build secret: its input ``field``, its Earthly secret ``name``, where
    the RUN step sees it (``target``), the block token that carries its mount
    (``token``) and where the Dagger Earthly container has the file
    (``dagger_path``)."""

    field: str
    name: str
    target: str
    token: str
    dagger_path: str

    @property
    def id(self) -> str:
        """The BuildKit secret id Earthly answers for ``name``."""
        return f"name={self.name}&v=0"

    @property
    def mount(self) -> str:
        """The ``RUN`` flag that mounts it (required: a step never runs without it)."""
        return f"--mount=type=secret,id={self.id},target={self.target},required=true"

    @property
    def flag(self) -> str:
        """``NAME=PATH`` for Earthly's ``--secret-file`` / ``EARTHLY_SECRET_FILES``
        in the Dagger Earthly container."""
        return f"{self.name}={self.dagger_path}"


MODULE_SIGNING = BuildSecret(
    field="module_signing_key",
    name="CANVOS_DOCA_MODULE_SIGNING_KEY",
    target=f"{SECRET_DIR}/module-signing.key",
    token="MODULE_SIGNING_MOUNT",
    dagger_path=f"{SECRET_DIR}/module-signing-key",
)
# apt reads every *.conf under auth.conf.d itself (apt_auth.conf(5)); the
# mount exists only while the DOCA install step runs.
DOCA_REPO_AUTH = BuildSecret(
    field="doca_repo_auth",
    name="CANVOS_DOCA_REPO_AUTH",
    target="/etc/apt/auth.conf.d/canvos-doca.conf",
    token="DOCA_REPO_AUTH_MOUNT",
    dagger_path=f"{SECRET_DIR}/doca-repo-auth",
)
SECRETS = (MODULE_SIGNING, DOCA_REPO_AUTH)

# Where render copies the module-signing certificate (public).
CERT_PATH = "canvos-doca/keys/module-signing.crt"

KEY_LIMIT = 64 * 1024
CERT_LIMIT = 64 * 1024
AUTH_LIMIT = 64 * 1024

_PEM = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----\r?\n(.*?)-----END \1-----", re.DOTALL)
_PRIVATE = re.compile(rb"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----")


def _labels(data: bytes) -> list[str]:
    return [m.group(1).decode("ascii") for m in _PEM.finditer(data)]


def _what_it_looks_like(data: bytes) -> str:
    """A content-free description of a file: the PEM labels it holds, or its kind."""
    labels = _labels(data)
    if labels:
        return "holds " + ", ".join(sorted(set(labels)))
    if data.lstrip().startswith(b"#cloud-config"):
        return "looks like a cloud-config (user-data)"
    if b"machine" in data and b"password" in data:
        return "looks like an apt auth.conf"
    if b"\0" in data:
        return "is binary"
    return "holds no PEM block"


def certificate_problems(data: bytes, source: str) -> list[Problem]:
    """Problems with a module-signing certificate file (empty: one PEM
    CERTIFICATE block and nothing else, or one DER certificate, at most
    CERT_LIMIT bytes). Either form is copied unchanged: the DOCA stage reads
    both (lib.sh configure_module_signing). ``source`` names it (its path, or
    ``--module-signing-cert``); content is never shown."""
    field = "module_signing_cert"
    fix = (
        "pass the certificate of your module-signing key pair, PEM (-----BEGIN "
        "CERTIFICATE-----) or DER."
    )
    if len(data) > CERT_LIMIT:
        message = f"is larger than {CERT_LIMIT // 1024} KiB, too large for a certificate."
        return [Problem(field, source, message, fix)]
    if _PRIVATE.search(data):
        return [
            Problem(
                field,
                source,
                "holds a PRIVATE key, not the certificate (were the two files swapped?).",
                "pass the certificate as --module-signing-cert and the private key as "
                "--module-signing-key; keep the key out of every build context.",
            )
        ]
    if _der_key(data):
        return [
            Problem(
                field,
                source,
                "looks like a DER private key, not the certificate (were the two files swapped?).",
                "pass the certificate as --module-signing-cert and the private key as "
                "--module-signing-key; keep the key out of every build context.",
            )
        ]
    count = _labels(data).count("CERTIFICATE")
    if count > 1:
        message = f"holds {count} certificates; pass exactly one."
        return [Problem(field, source, message, fix + " Not a chain: only the signing one.")]
    if _der(data) is None:
        what = _what_it_looks_like(data)
        return [Problem(field, source, f"is not one certificate (PEM or DER): it {what}.", fix)]
    return []


def _der(data: bytes) -> bytes | None:
    """The certificate's DER: the file itself when it is one DER certificate,
    else the bytes of its one PEM CERTIFICATE block with nothing but blank
    text around it. None when neither decodes to an ASN.1 SEQUENCE."""
    if _der_sequence(data):
        return data if data[_header(data) : _header(data) + 1] == b"\x30" else None
    matches = list(_PEM.finditer(data))
    if [m.group(1) for m in matches] != [b"CERTIFICATE"]:
        return None
    try:
        der = base64.b64decode(b"".join(matches[0].group(2).split()), validate=True)
    except (binascii.Error, ValueError):
        return None
    return der if _der_sequence(der) else None


def _header(der: bytes) -> int:
    """Length of the ASN.1 tag and length octets at the start of ``der``."""
    return 2 + (der[1] & 0x7F if der[1] & 0x80 else 0)


def _der_sequence(data: bytes) -> bool:
    """Whether ``data`` is exactly one DER SEQUENCE (tag, definite length that
    covers the rest), of a certificate's size at least."""
    if len(data) <= 64 or data[0] != 0x30 or data[1] in (0x80, 0xFF):
        return False
    header = _header(data)
    if data[1] & 0x80:
        if header > 6 or len(data) < header:
            return False
        length = int.from_bytes(data[2:header], "big")
    else:
        length = data[1]
    return header + length == len(data)


def _der_key(data: bytes) -> bool:
    """A DER private key (PKCS#1, PKCS#8, SEC 1): a SEQUENCE starting with an
    INTEGER version, where a certificate starts with a SEQUENCE."""
    return _der_sequence(data) and data[_header(data) : _header(data) + 1] == b"\x02"


def fingerprint(data: bytes) -> str:
    """SHA-256 of the certificate's DER (a PEM file's decoded block, a DER file
    itself), lower-case hex (what ``openssl x509
    -noout -fingerprint -sha256`` prints, without colons). ``ValueError`` when
    ``certificate_problems`` would refuse the file."""
    der = _der(data)
    if der is None:
        raise ValueError("not one PEM or DER certificate")
    return hashlib.sha256(der).hexdigest()


def key_problems(data: bytes, source: str) -> list[Problem]:
    """Problems with a module-signing private key file (empty: a PEM private
    key block). Whether it belongs to the certificate is checked by the build
    (lib.sh configure_module_signing, with openssl), where the key is; content
    is never shown."""
    field = "module_signing_key"
    fix = (
        "pass the unencrypted PEM private key (-----BEGIN PRIVATE KEY----- or "
        "-----BEGIN RSA PRIVATE KEY-----) of your module-signing key pair."
    )
    if len(data) > KEY_LIMIT:
        return [
            Problem(
                field, source, f"is larger than {KEY_LIMIT // 1024} KiB, too large for a key.", fix
            )
        ]
    if b"ENCRYPTED PRIVATE KEY" in data or b"Proc-Type: 4,ENCRYPTED" in data:
        return [
            Problem(
                field,
                source,
                "is an encrypted private key; DKMS's sign-file cannot ask for a passphrase.",
                "export it unencrypted (openssl pkey -in KEY -out plain.key) into your "
                "secret store and pass that.",
            )
        ]
    if _PRIVATE.search(data):
        return []
    message = f"is not a PEM private key: it {_what_it_looks_like(data)}"
    if "CERTIFICATE" in _labels(data):
        message += " (were --module-signing-cert and --module-signing-key swapped?)"
    return [Problem(field, source, message + ".", fix)]


def pair_problems(cert_given: bool, key_given: bool) -> list[Problem]:
    """Both or neither: a certificate without its key (or the other way) cannot sign."""
    if cert_given == key_given:
        return []
    have, missing = (
        ("module_signing_cert", "--module-signing-key")
        if cert_given
        else ("module_signing_key", "--module-signing-cert")
    )
    return [
        Problem(
            have,
            HIDDEN,
            f"is given without {missing}: modules are signed with the pair or not at all.",
            f"pass {missing} too, or neither.",
        )
    ]


# ----------------------------------------------------------- apt auth.conf

_TOKENS = ("machine", "login", "password")


@dataclass(frozen=True)
class AuthEntry:
    """One ``machine`` entry of an auth.conf: its host (and port), what it
    lacks. Never holds the login or password."""

    machine: str
    host: str
    missing: tuple[str, ...]
    scheme: str = ""  # "" (apt: encrypted protocols only), "http", "https", ...


def auth_entries(text: str) -> list[AuthEntry]:
    """The entries of an apt auth.conf (apt_auth.conf(5): ``machine M login L
    password P`` tokens, an entry may span lines, ``#`` starts a comment).
    Values other than the machine are read past, never kept."""
    words: list[str] = []
    for line in text.splitlines():
        words += line.split("#", 1)[0].split()
    entries: list[AuthEntry] = []
    machine: str | None = None
    seen: set[str] = set()
    index = 0
    while index < len(words):
        word = words[index]
        value = words[index + 1] if index + 1 < len(words) else None
        if word == "machine":
            if machine is not None:
                entries.append(_entry(machine, seen))
            machine, seen = value or "", set()
        elif word in _TOKENS and machine is not None and value is not None:
            seen.add(word)
        elif machine is None or word not in _TOKENS:
            # A stray word: an entry that cannot be read.
            entries.append(AuthEntry("", "", ("machine",)))
            return entries
        index += 2
    if machine is not None:
        entries.append(_entry(machine, seen))
    return entries


def _entry(machine: str, seen: set[str]) -> AuthEntry:
    text = machine if "://" in machine else f"//{machine}"
    try:
        parts = urlsplit(text)
    except ValueError:
        return AuthEntry("", "", ())
    host = parts.netloc.rpartition("@")[2].lower()
    missing = tuple(t for t in ("login", "password") if t not in seen)
    return AuthEntry(machine if host else "", host, missing, parts.scheme.lower())


def auth_problems(text: str, source: str) -> list[Problem]:
    """Problems with the shape of an apt auth.conf: at least one entry, and
    every entry has machine, login and password. Messages name entries by
    number and machine, never a login or password."""
    field = "doca_repo_auth"
    entries = auth_entries(text)
    if not entries:
        return [Problem(field, source, "has no 'machine ... login ... password ...' entry.", _FIX)]
    problems = []
    for number, entry in enumerate(entries, 1):
        if not entry.machine:
            message = f"entry {number} cannot be read as machine/login/password."
            problems.append(Problem(field, source, message, _FIX))
        elif entry.missing:
            message = (
                f"entry {number} (machine {entry.machine}) has no {' or '.join(entry.missing)}."
            )
            problems.append(Problem(field, source, message, _FIX))
    return problems


_FIX = (
    "pass an apt auth.conf with lines like 'machine HOST login USER password PASS' "
    "(apt_auth.conf(5))."
)


def auth_host_problems(entries: tuple[AuthEntry, ...], source: str, repo_url: str) -> list[Problem]:
    """An auth.conf must have an entry for the DOCA repository's host: apt sends
    a login only to the machine it names."""
    parts = urlsplit(repo_url)
    host = (parts.hostname or "").lower()
    names = {host} | ({f"{host}:{parts.port}"} if parts.port else set())
    for_host = [entry for entry in entries if entry.host in names]
    # apt_auth.conf(5), apt >= 1.9: a machine without a protocol is used for
    # encrypted protocols only; plain http needs it written http://HOST.
    if any(
        e.scheme == parts.scheme or (not e.scheme and parts.scheme == "https") for e in for_host
    ):
        return []
    if for_host and parts.scheme == "http":
        return [
            Problem(
                "doca_repo_auth",
                source,
                f"names {host} without http://, and apt sends a login over plain http only to "
                "a machine written with its protocol (apt_auth.conf(5)).",
                f"write 'machine http://{host} login ... password ...', or use an https mirror.",
            )
        ]
    machines = ", ".join(entry.machine for entry in entries)
    return [
        Problem(
            "doca_repo_auth",
            source,
            f"has no entry for the DOCA repository host {host} (its machines: {machines}); "
            "apt would send no login there.",
            f"write 'machine {host} login ... password ...', or set --doca-repo-url to the "
            "mirror the file is for.",
        )
    ]
