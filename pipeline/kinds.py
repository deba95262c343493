"""What a knob's value must look like, by kind, and how a value is shown.

Every check takes one value and returns the problem with it as a sentence
(``None`` when the value is fine). They say what the value is not, never
what it contains: a proxy URL holds a password. Values reach CanvOS's
``.arg`` (which ``earthly.sh`` sources), ``RUN`` commands of its Earthfile
(unquoted) and ``ARG`` defaults of the Dockerfile, so every kind allows
printable ASCII only, without spaces, quotes, ``$``, backslashes or other
shell syntax, and URLs take anything else percent-encoded.

Grammars: image references follow distribution/reference (``regexp.go``:
domain, lowercase path components, tag ``[\\w][\\w.-]{0,127}``, digest);
URLs are split with ``urllib.parse`` and hosts checked with ``ipaddress``;
``no_proxy`` entries are what curl and Go's ``httpproxy`` accept (host,
``.domain``, ``*.domain``, ``*``, IP address or CIDR range, optional port).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Final
from urllib.parse import SplitResult, urlsplit

# A file name: NAME_MAX (255 bytes) less the ".iso.sha256" CanvOS appends.
MAX_FILE_NAME: Final = 255 - len(".iso.sha256")
# distribution/reference: NameTotalLengthMax.
MAX_IMAGE_NAME: Final = 255

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_DOMAIN = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_PORT = re.compile(r"[0-9]{1,5}")
_REGISTRY_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_REGISTRY_HOST = rf"(?:{_REGISTRY_LABEL}(?:\.{_REGISTRY_LABEL})*|\[[0-9A-Fa-f:.]+\])(?::[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_REGISTRY_PATH = re.compile(rf"{_REGISTRY_HOST}(?:/{_PATH_COMPONENT})*")
_IMAGE = re.compile(
    rf"(?P<name>(?:{_REGISTRY_HOST}/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?"
    r"(?:@[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,})?"
)
# RFC 3986 unreserved characters and percent-encodings: all a user name or
# password may hold unencoded here (the rest: percent-encode it, @ as %40).
_USERINFO_PART = re.compile(r"(?:[A-Za-z0-9._~-]|%[0-9A-Fa-f]{2})*")
# Path characters that mean nothing to a shell or a Dockerfile.
# ('@' is not one: a raw '@' after the host means a password was split.)
_URL_PATH = re.compile(r"(?:[A-Za-z0-9._~/:+,=-]|%[0-9A-Fa-f]{2})*")
_SCP_GIT = re.compile(rf"[A-Za-z0-9._-]+@{_LABEL}(?:\.{_LABEL})*:(?!//)[A-Za-z0-9._~/+-]+")
_REF_CHARS = re.compile(r"[A-Za-z0-9._/+-]+")


def text(value: str, secret: bool = False) -> str | None:
    """Printable ASCII without spaces: what every knob value is made of.

    The problem names the character's code point and position, unless
    ``secret`` (so ``k8s_version: 1.٣٤.6`` says U+0663 at position 3).
    """
    for index, char in enumerate(value, 1):
        if "!" <= char <= "~":
            continue
        if char == " ":
            what = "a space"
        elif ord(char) < 0x20 or 0x7F <= ord(char) < 0xA0:
            what = "a control character"
        else:
            what = "a non-ASCII character"
        where = "" if secret else f" (U+{ord(char):04X}) at position {index}"
        return f"contains {what}{where}; only printable ASCII is allowed."
    return None


def host(value: str) -> str | None:
    """A DNS name (labels of letters, digits, '-', '_') or an IP address."""
    try:
        ipaddress.ip_address(value)
        return None
    except ValueError:
        pass
    if len(value) <= 253 and _DOMAIN.fullmatch(value):
        return None
    return "is not a host name or IP address."


def registry_path(value: str) -> str | None:
    """``host[:port][/path...]`` without a scheme, e.g. ``ghcr.io/acme``."""
    if _REGISTRY_PATH.fullmatch(value):
        return None
    return "is not a registry host[:port][/path] (lowercase path, no scheme)."


def image_reference(value: str) -> str | None:
    """An OCI image reference: ``[registry/]repo[:tag][@digest]``."""
    found = _IMAGE.fullmatch(value)
    if found and len(found["name"]) <= MAX_IMAGE_NAME:
        return None
    return "is not an image reference like registry.example.com/kairos/ubuntu:22.04."


def file_name(value: str) -> str | None:
    """A plain file name of letters, digits, '.', '_', '-' (no '/')."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", value):
        return "is not a plain file name."
    if len(value) > MAX_FILE_NAME:
        return f"is {len(value)} characters long; a file name may have {MAX_FILE_NAME}."
    return None


def host_list(value: str) -> str | None:
    """Comma-separated no_proxy entries (see the module docstring)."""
    for index, entry in enumerate(value.split(","), 1):
        if not entry:
            return f"has an empty entry (number {index})."
        if not _is_no_proxy_entry(entry):
            return (
                f"entry {index} is not a host, .domain, *.domain, *, IP address or "
                "CIDR range (with an optional :port)."
            )
    return None


def _is_no_proxy_entry(entry: str) -> bool:
    if entry == "*":
        return True
    try:
        ipaddress.ip_network(entry.strip("[]"), strict=False)
        return True
    except ValueError:
        pass
    name, port = entry, ""
    if entry.startswith("["):  # [v6]:port
        name, _, port = entry[1:].partition("]:")
    elif entry.count(":") == 1:  # host:port
        name, port = entry.split(":")
    if ":" in entry and not _PORT.fullmatch(port):
        return False
    for prefix in ("*.", "."):
        if name.startswith(prefix):
            name = name[len(prefix) :]
            break
    return host(name) is None


def http_url(
    value: str, *, credentials: bool, path: bool, schemes: tuple[str, ...] = ("http", "https")
) -> str | None:
    """An ``http(s)://host[:port]`` URL.

    ``credentials``: a ``user:password@`` part is allowed (percent-encoded);
    ``path``: a path is allowed (otherwise only ``/``). Query strings and
    fragments are never allowed.
    """
    parts = _split(value)
    if parts is None or parts.scheme not in schemes or not parts.netloc:
        return f"is not a valid URL with the scheme {', '.join(schemes)}."
    problem = _authority(parts, credentials)
    if problem:
        return problem
    if any("@" in part for part in (parts.path, parts.query, parts.fragment)):
        return (
            "has an '@' after the host: a user name or password holding '/', '?' or '#' "
            "must be percent-encoded (%2F, %3F, %23)."
        )
    if "?" in value or "#" in value:
        return "has a query (?...) or fragment (#...), which this URL may not have."
    if not path and parts.path not in ("", "/"):
        return "has a path; give only scheme://host:port."
    if not _URL_PATH.fullmatch(parts.path):
        return "has characters in its path that must be percent-encoded."
    return None


def git_url(value: str) -> str | None:
    """A Git remote: ``https://``, ``http://``, ``ssh://`` or ``git://``, or
    the scp-like ``user@host:path``; credentials in a URL are allowed."""
    if _SCP_GIT.fullmatch(value):
        return None
    return http_url(value, credentials=True, path=True, schemes=("https", "http", "ssh", "git"))


def git_ref(value: str) -> str | None:
    """A tag, branch or commit name, as ``git check-ref-format`` allows them
    (the subset without shell syntax)."""
    bad = (
        not _REF_CHARS.fullmatch(value)
        or value.startswith(("-", "/", "."))
        or value.endswith(("/", ".", ".lock"))
        or ".." in value
        or "//" in value
        or "/." in value
    )
    return "is not a Git tag, branch or commit name." if bad else None


def has_credentials(url: str) -> bool:
    """Whether a URL carries credentials: a password, or any user name in an
    http(s) URL (a token passed as the user). ``git@host:repo`` and
    ``ssh://git@host/...`` name an SSH user, not a secret."""
    try:
        parts = urlsplit(url)
    except ValueError:  # e.g. an unbalanced IPv6 bracket: err on the safe side
        return "@" in url
    if parts.password is not None:
        return True
    return parts.scheme in ("http", "https") and parts.username is not None


def redact_url(value: str) -> str | None:
    """A URL as it may be shown: ``user:password@`` becomes ``***@``, a query
    or fragment ``***``. ``None`` when ``value`` does not parse as
    ``scheme://host`` (it could be credentials without a scheme) or has an
    ``@`` after the host (a password holding ``/``, ``?`` or ``#`` that was
    not percent-encoded), except the scp-like Git form ``user@host:path``,
    whose user is not a secret."""
    if not value or _SCP_GIT.fullmatch(value):
        return value
    parts = _split(value)
    if parts is None or not parts.scheme or not parts.netloc:
        return None
    if any("@" in part for part in (parts.path, parts.query, parts.fragment)):
        return None
    # urllib takes the user part up to the last '@' (as here): passwords
    # holding '@' or '/' stay hidden.
    netloc = parts.netloc
    if parts.username is not None or parts.password is not None:
        netloc = "***@" + netloc.rpartition("@")[2]
    query = "***" if parts.query else ""
    fragment = "***" if parts.fragment else ""
    return SplitResult(parts.scheme, netloc, parts.path, query, fragment).geturl()


def _split(value: str) -> SplitResult | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        return None
    return parts


def _authority(parts: SplitResult, credentials: bool) -> str | None:
    if parts.username is not None or parts.password is not None:
        if not credentials:
            return "contains a user name or password (user:password@)."
        user_info = parts.netloc.rpartition("@")[0]
        if not all(_USERINFO_PART.fullmatch(part) for part in user_info.split(":", 1)):
            return (
                "has characters in its user name or password that must be "
                "percent-encoded (e.g. @ as %40, $ as %24, ' as %27)."
            )
    hostname = parts.hostname or ""
    if not hostname or host(hostname) is not None:
        return "has no valid host name."
    return None
