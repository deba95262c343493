"""BuildSpec: every knob of a canvos-doca build, its default and its checks.

This is the one place where knobs are defined. Config-file keys are the field
names; CLI flags and Dagger arguments are the same names in kebab-case. The
README's reference table and the Dagger constructor are tested against
``FIELDS`` so they cannot drift. Knobs are text, flags and lists, plus
``host_files`` (a mapping, config files and presets only); the inputs that
are files (user-data, an air-gapped DOCA source, a pinned key, a BFB) are not
knobs: see ``pipeline.inputs``.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline import doca, facts, kinds, persistence
from pipeline.errors import HIDDEN, InvalidInput, Problem, kind_of

K8S_DISTRIBUTIONS = facts.CANVOS_K8S_DISTRIBUTIONS
NVIDIA_DRIVER_TYPES = ("", *facts.CANVOS_NVIDIA_DRIVER_TYPES)
_CANVOS = facts.CANVOS_DEFAULTS
_ALL_RELEASES = tuple(sorted({v for versions in doca.SUPPORTED_OS.values() for v in versions}))


def _either(values: Iterable[str]) -> str:
    """``a, b or c``."""
    *head, last = values
    return f"{', '.join(head)} or {last}" if head else last


def _knob(default: Any, doc: str) -> Any:
    """A spec field with its documentation (used by CLI, Dagger and README)."""
    return field(default=default, metadata={"doc": doc})


# A file the image carries (``host_files``): at most this much text each
# (half a config file, which is limited to 64 KiB), and at most this many.
HOST_FILE_LIMIT = 32 * 1024
MAX_HOST_FILES = 64
DEFAULT_FILE_MODE = 0o644


@dataclass(frozen=True)
class PlacedFile:
    """One ``host_files`` entry: absolute ``path`` in the image, its text
    ``content`` and ``mode`` (permission bits, e.g. ``0o644``). ``source``
    is the relative path the content was read from (``"source:"`` entries,
    ``pipeline.hostsources``; shown by ``plan``), ``""`` for inline content."""

    path: str
    content: str
    mode: int = DEFAULT_FILE_MODE
    source: str = ""

    @property
    def sha256(self) -> str:
        """SHA-256 of the UTF-8 content, lower-case hex."""
        return hashlib.sha256(self.content.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Sourced:
    """The value of a ``source:`` entry once read (``pipeline.hostsources``
    puts it in the raw layer): the relative path as written and the text."""

    source: str
    text: str


@dataclass(frozen=True)
class BuildSpec:
    """A fully resolved, immutable description of one build."""

    preset: str = _knob(
        "",
        "Named set of knob values shipped with canvos-doca (canvos-doca presets lists them), "
        "between the defaults and --config: defaults < preset < config < flags.",
    )
    # CanvOS source
    canvos_url: str = _knob(facts.CANVOS_DEFAULT_URL, "Git URL of the CanvOS repository.")
    canvos_ref: str = _knob(
        facts.CANVOS_DEFAULT_REF,
        "CanvOS tag, branch or commit. Pick the tag matching your Palette agent version; "
        "a branch is resolved to a commit before it becomes a cache key.",
    )
    # Target image
    os_distribution: str = _knob(
        _CANVOS["os_distribution"], f"OS of the image (DOCA-Host: {_either(doca.SUPPORTED_OS)})."
    )
    os_version: str = _knob(
        _CANVOS["os_version"],
        f"Ubuntu release: {_either(doca.SUPPORTED_OS[_CANVOS['os_distribution']])}; "
        + ", ".join(
            f"{k} means {v}"
            for k, v in facts.CANVOS_OS_VERSION_ALIASES.items()
            if v in doca.SUPPORTED_OS[_CANVOS["os_distribution"]]  # no alias of a refused release
        )
        + " (as in CanvOS).",
    )
    arch: str = _knob(_CANVOS["arch"], f"CPU architecture: {_either(facts.CANVOS_ARCHES)}.")
    k8s_distribution: str = _knob(
        _CANVOS["k8s_distribution"],
        "Kubernetes distribution: " + ", ".join(K8S_DISTRIBUTIONS) + ".",
    )
    k8s_version: tuple[str, ...] = _knob(
        (facts.CANVOS_DEFAULT_K8S_VERSION,),
        "Kubernetes version(s) for provider images, e.g. 1.34.6; comma-separated or "
        "repeated. Never empty: CanvOS would build every version it knows (~60 images).",
    )
    image_registry: str = _knob("localhost:5000", "Registry part of the provider image reference.")
    image_repo: str = _knob("", "Repository of the provider image (default: os_distribution).")
    custom_tag: str = _knob("", "Suffix appended to the provider image tag.")
    iso_name: str = _knob(_CANVOS["iso_name"], "File name of the installer ISO, without .iso.")
    fips_enabled: bool = _knob(False, "Build a FIPS image (CanvOS FIPS_ENABLED).")
    cis_hardening: bool = _knob(False, "Apply CanvOS CIS hardening.")
    force_interactive_install: bool = _knob(
        False, "Boot the ISO into the interactive installer by default."
    )
    base_image: str = _knob("", "Override of the Kairos base image (CanvOS BASE_IMAGE).")
    spectro_pub_repo: str = _knob("", "Private mirror of Spectro Cloud's public images.")
    spectro_luet_repo: str = _knob("", "Private mirror of Spectro Cloud's luet repository.")
    kairos_base_image_url: str = _knob("", "Private mirror of the Kairos base images.")
    http_proxy: str = _knob("", "HTTP proxy used during the build.")
    https_proxy: str = _knob("", "HTTPS proxy used during the build.")
    no_proxy: str = _knob("", "Hosts that bypass the proxy.")
    update_kernel: bool = _knob(
        False, "CanvOS UPDATE_KERNEL; refused with DOCA (modules would miss the new kernel)."
    )
    trusted_boot: bool = _knob(
        False, "Build a Trusted Boot (UKI) image; refused with DOCA (UKI size limit)."
    )
    install_nvidia_gpu_drivers: bool = _knob(
        False, "Also bake NVIDIA GPU drivers (CanvOS option; needs a CanvOS ref that has it)."
    )
    nvidia_driver_branch: str = _knob("", "GPU driver branch, e.g. 580 (empty: CanvOS default).")
    nvidia_driver_type: str = _knob(
        "",
        f"GPU driver flavour: {_either(facts.CANVOS_NVIDIA_DRIVER_TYPES)} (empty: CanvOS default).",
    )
    # DOCA
    doca_version: str = _knob(facts.DOCA_DEFAULT_VERSION, "Exact DOCA-Host version, e.g. 3.2.2.")
    doca_profile: str = _knob(
        facts.DOCA_DEFAULT_PROFILE, "DOCA profile: " + ", ".join(doca.PROFILES) + "."
    )
    doca_repo_url: str = _knob(
        facts.DOCA_DEFAULT_REPO_URL, "Base URL of the DOCA apt repositories (or a mirror of them)."
    )
    doca_packages: tuple[str, ...] = _knob(
        (),
        "Extra packages from the DOCA repository, installed with the profile in the DOCA step "
        "(their DKMS modules are built for the image kernel), e.g. mlnx-nfsrdma-dkms.",
    )
    extra_packages: tuple[str, ...] = _knob(
        (), "Extra apt packages the host needs (the rest of nodeprep)."
    )
    kernel_args: tuple[str, ...] = _knob(
        (),
        "Kernel boot arguments to add, e.g. iommu=pt console=ttyS1,115200n8. A text value is "
        "split at spaces, never at commas; a YAML list item is one argument.",
    )
    # Host items: what a host's nodeprep expects beyond DOCA.
    host_files: tuple[PlacedFile, ...] = field(
        default=(),
        metadata={
            "doc": "Files the image carries (config file or preset only): a mapping of "
            "absolute path to {content: text, mode: '0644'} or {source: relative/path, mode: "
            "'0644'} (a text file next to the config, or under --host-files-dir in Dagger); "
            "not under a Kairos persistent path, where an upgrade could not reliably replace it.",
            "kind": "files",
        },
    )
    enable_units: tuple[str, ...] = _knob(
        (), "systemd units to enable for boot, e.g. lldpd.service (must be installed)."
    )
    modprobe_options: tuple[str, ...] = _knob(
        (),
        "modprobe options, one module per item: 'ib_core netns_mode=0' (text values are "
        f"split at ';'), written to {facts.SYSTEMD_MODPROBE_DIR}.",
    )
    modules_load: tuple[str, ...] = _knob(
        (),
        "Kernel modules to load at boot, e.g. rpcrdma "
        f"(written to {facts.SYSTEMD_MODULES_LOAD_DIR}).",
    )
    # Persistence
    bind_mounts: tuple[str, ...] = _knob(
        (), "Extra absolute paths to keep across reboots (install.bind_mounts)."
    )
    opensm: bool = _knob(False, "Keep opensm state persistent (on-host InfiniBand subnet manager).")


FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(BuildSpec)
FIELD_NAMES = tuple(f.name for f in FIELDS)
# Mappings of destination path -> file: set in a config file or a preset only
# (file contents are no command-line or Dagger query values).
FILES_FIELDS = tuple(f.name for f in FIELDS if f.metadata.get("kind") == "files")
CONFIG_ONLY = FILES_FIELDS
# Knobs that are also CLI flags and Dagger constructor arguments.
FLAG_FIELD_NAMES = tuple(n for n in FIELD_NAMES if n not in CONFIG_ONLY)
LIST_FIELDS = tuple(
    f.name for f in FIELDS if isinstance(f.default, tuple) and f.name not in FILES_FIELDS
)
BOOL_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.default, bool))
TEXT_FIELDS = tuple(
    n for n in FIELD_NAMES if n not in LIST_FIELDS and n not in BOOL_FIELDS + FILES_FIELDS
)
# How a text value of a list field is split into items (YAML list items and
# Dagger list items never are): kernel arguments are separated by spaces and
# may hold commas (console=ttyS1,115200n8); modprobe options hold spaces and
# array values with commas (so ';'); the other lists by commas.
_SEPARATORS = {"kernel_args": " ", "modprobe_options": ";"}
LIST_SEPARATORS: dict[str, str] = {name: _SEPARATORS.get(name, ",") for name in LIST_FIELDS}
# Values CanvOS reads as another one (its Earthfile maps OS_VERSION 22 to 22.04).
ALIASES: dict[str, Mapping[str, str]] = {"os_version": facts.CANVOS_OS_VERSION_ALIASES}


def doc(name: str) -> str:
    """The one-line documentation of a field."""
    return str(next(f for f in FIELDS if f.name == name).metadata["doc"])


def default(name: str) -> Any:
    return next(f for f in FIELDS if f.name == name).default


def kebab(name: str) -> str:
    return name.replace("_", "-")


# ---------------------------------------------------------------- loading


def split_list(name: str, text: str) -> tuple[str, ...]:
    """A text value of list field ``name`` split into items (``LIST_SEPARATORS``)."""
    return tuple(part.strip() for part in text.split(LIST_SEPARATORS[name]) if part.strip())


# A wrong boolean is shown only when it is a short word (a typo such as
# "ture"), never when it could be a URL or a token meant for another knob.
_SHOWN_WORD = re.compile(r"[A-Za-z]{1,12}")


def _coerce(name: str, value: object) -> tuple[object, Problem | None]:
    """One raw value (YAML, CLI text, Dagger argument) as the field's type."""
    if name in FILES_FIELDS:
        return _coerce_files(name, value)
    if name in LIST_FIELDS:
        if isinstance(value, str):
            return split_list(name, value), None
        items = value if isinstance(value, (list, tuple)) else [value]
        out: list[str] = []
        for index, item in enumerate(items):
            if isinstance(item, (dict, list, tuple, bool)):
                problem = f"is {kind_of(item)}; each item must be a single text value."
                return value, Problem(f"{name}[{index}]", HIDDEN, problem, "write it as text.")
            if item is not None and str(item).strip():
                out.append(str(item).strip())
        return tuple(out), None
    if name in BOOL_FIELDS:
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower() if isinstance(value, str) else None
        if text in ("true", "yes", "1"):
            return True, None
        if text in ("false", "no", "0", ""):
            return False, None
        shown = value if isinstance(value, str) and _SHOWN_WORD.fullmatch(value) else HIDDEN
        what = "is not" if shown is not HIDDEN else f"is {kind_of(value)} that is not"
        return value, Problem(name, shown, f"{what} a boolean.", "use true or false.")
    if isinstance(value, (dict, list, tuple, bool)):
        problem = f"is {kind_of(value)}; it must be a single text value."
        return value, Problem(name, HIDDEN, problem, f"set {name} to one value, as text.")
    text = "" if value is None else str(value).strip()
    return ALIASES.get(name, {}).get(text, text), None


_MODE = re.compile(r"0?[0-7]{3}|0o[0-7]{3}", re.ASCII)
_FILE_KEYS = ("content", "source", "mode")
_FILE_KEY_SHOWN = re.compile(r"[A-Za-z0-9_-]{1,32}")
# A wrong mode is shown only when it is short and plain ("0844", "rw").
_SHOWN_WORD_OR_MODE = re.compile(r"[A-Za-z0-9]{1,8}")


def _coerce_files(name: str, value: object) -> tuple[object, Problem | None]:
    """A ``host_files`` mapping (path -> text, or -> {content, mode}) as
    ``PlacedFile``s. The mode is octal text as written ("0644"; the config
    reader hands it over unconverted). Contents are never shown."""
    if isinstance(value, tuple) and all(isinstance(v, PlacedFile) for v in value):
        return value, None
    if not isinstance(value, Mapping):
        return value, Problem(
            name,
            HIDDEN,
            f"is {kind_of(value)}; it must be a mapping of absolute paths to files.",
            f"write {name}: then one '/path/in/image: {{content: ..., mode: \"0644\"}}' "
            "line per file.",
        )
    out: list[PlacedFile] = []
    for path, entry in value.items():
        where = f"{name}[{path}]"
        if isinstance(entry, str):
            entry = {"content": entry}
        unknown = (
            sorted(set(map(str, entry)) - set(_FILE_KEYS)) if isinstance(entry, Mapping) else []
        )
        if unknown:
            return value, _unknown_file_key(where, unknown[0])
        if not isinstance(entry, Mapping):
            return value, Problem(
                where,
                HIDDEN,
                "must be the file's text, or a mapping with the keys content or source, "
                "and mode, only.",
                'write content: | (the text) or source: path/to/file, and optionally mode: "0644".',
            )
        content, source, problem = _content(where, entry)
        if problem is not None:
            return value, problem
        mode, problem = _mode(where, entry.get("mode"))
        if problem is not None:
            return value, problem
        out.append(PlacedFile(str(path), content, mode, source))
    return tuple(out), None


def _unknown_file_key(where: str, key: str) -> Problem:
    """A key a ``host_files`` entry does not take, named (keys are the
    user's own words, not secrets), with the closest allowed key."""
    shown_key = key if _FILE_KEY_SHOWN.fullmatch(key) else "(a key)"
    close = difflib.get_close_matches(key, _FILE_KEYS, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    return Problem(
        f"{where}.{shown_key}",
        HIDDEN,
        f"is not a key of a file entry; the keys are {', '.join(_FILE_KEYS)}.",
        f'{hint}write content: | (the text) or source: path/to/file, and optionally mode: "0644".',
    )


def _content(where: str, entry: Mapping[str, object]) -> tuple[str, str, Problem | None]:
    """(text, source path or "", problem) of one entry: exactly one of
    ``content`` and ``source``; a source must have been read (``Sourced``)."""
    has_content, has_source = "content" in entry, "source" in entry
    if has_content == has_source:
        what = "has both content and source" if has_content else "has neither content nor source"
        return (
            "",
            "",
            Problem(
                where,
                HIDDEN,
                f"{what}; a file takes its text from exactly one of them.",
                "keep content: (the text inline) or source: (a file's relative path), not both.",
            ),
        )
    if has_source:
        source = entry["source"]
        if isinstance(source, Sourced):
            return source.text, source.source, None
        return (
            "",
            "",
            Problem(
                f"{where}.source",
                HIDDEN,
                "was not read: no directory to read source files from was given.",
                "pass the config as a file (--config), or in Dagger --host-files-dir DIR.",
            ),
        )
    content = entry["content"]
    if not isinstance(content, str):
        return (
            "",
            "",
            Problem(
                f"{where}.content",
                HIDDEN,
                f"is {kind_of(content)}; it must be the file's text.",
                "write the text, e.g. as a YAML block: content: |",
            ),
        )
    return content, "", None


def _mode(where: str, mode_text: object) -> tuple[int, Problem | None]:
    """An entry's mode: octal text as written (``DEFAULT_FILE_MODE`` when absent)."""
    if mode_text is None:
        return DEFAULT_FILE_MODE, None
    text = mode_text if isinstance(mode_text, str) else None
    if text is None or not _MODE.fullmatch(text.strip()):
        plain = text is not None and _SHOWN_WORD_OR_MODE.fullmatch(text)
        return DEFAULT_FILE_MODE, Problem(
            f"{where}.mode",
            text if plain else HIDDEN,
            "is not an octal permission mode like 0644.",
            'write three octal digits, optionally with a leading 0: "0644" '
            "(no set-id or sticky bits).",
        )
    return int(text.strip().removeprefix("0o"), 8), None


def resolve(layers: Sequence[Mapping[str, object]]) -> BuildSpec:
    """Defaults, then each layer in order (a later layer wins), validated.

    A layer maps knob names to raw values (a parsed ``--config`` file, the
    explicit flags); ``None`` means "not given", so an omitted flag never
    hides an earlier layer's value. Raises ``InvalidInput`` with every problem.
    """
    raw: dict[str, object] = {}
    for layer in layers:
        raw.update({k: v for k, v in layer.items() if v is not None})
    problems: list[Problem] = []
    values: dict[str, object] = {}
    for name, value in raw.items():
        if name not in FIELD_NAMES:
            problems.append(Problem(name, HIDDEN, "is not a known knob.", "see the README."))
            continue
        coerced, problem = _coerce(name, value)
        if problem:
            problems.append(problem)
        values[name] = coerced
    if problems:
        raise InvalidInput(problems)
    spec = BuildSpec(**values)  # type: ignore[arg-type]
    validate(spec)
    return spec


def build_spec(
    config: Mapping[str, object] | None = None, overrides: Mapping[str, object] | None = None
) -> BuildSpec:
    """Resolve defaults <- config file <- explicit arguments (``resolve``)."""
    return resolve([config or {}, overrides or {}])


# ------------------------------------------------------------- validation


@dataclass(frozen=True)
class Rule:
    """What every value of a field (each item of a list) must be."""

    # The problem with one value as a sentence (``pipeline.kinds``), or None.
    check: Callable[[str], str | None]
    fix: str
    optional: bool = False  # the empty value is allowed
    # May carry credentials: shown only through ``kinds.redact_url``.
    secret: bool = False
    # Values are printable ASCII without spaces (``kinds.text``); False where
    # the check itself allows spaces.
    plain: bool = True


def _pattern(regex: str, message: str) -> Callable[[str], str | None]:
    compiled = re.compile(regex, re.ASCII)
    return lambda value: None if compiled.fullmatch(value) else message


def _proxy(value: str) -> str | None:
    """A proxy URL without ``user:password@``: CanvOS's Earthfile passes the
    proxies to its Dockerfile as build args (``ARG HTTP_PROXY``), and BuildKit
    keeps build args in the image history (docs/building.md)."""
    if kinds.has_credentials(value):
        return (
            "carries a user name or password, which would end up in the image: CanvOS "
            "passes the proxy to its Dockerfile as a build arg (ARG HTTP_PROXY/HTTPS_PROXY), "
            "and BuildKit writes build args into the image history."
        )
    return kinds.http_url(value, credentials=False, path=False)


_PROXY = Rule(
    _proxy,
    "use e.g. http://proxy.example.com:3128, without user:password: a proxy that admits "
    "the build host by its source address, or a forwarding proxy next to the build that "
    "adds the credentials itself (e.g. Squid with cache_peer ... login=, or cntlm).",
    optional=True,
    # A refused value may still hold a password: shown only redacted.
    secret=True,
)
_MIRROR = Rule(
    kinds.registry_path, "use e.g. registry.example.com/palette (no scheme).", optional=True
)

# Field -> the rule its values must follow. Every text knob that reaches
# .arg, the Dockerfile block or a command has one (or a CHOICES entry).
RULES: dict[str, Rule] = {
    "canvos_url": Rule(
        kinds.git_url,
        f"use e.g. {facts.CANVOS_DEFAULT_URL} or git@github.com:org/CanvOS.git.",
        secret=True,
    ),
    "canvos_ref": Rule(kinds.git_ref, "use a tag such as v4.9.38, a branch or a commit id."),
    "k8s_version": Rule(
        _pattern(r"[0-9]+\.[0-9]+\.[0-9]+", "is not a Kubernetes version like 1.34.6."),
        "use MAJOR.MINOR.PATCH without a leading v.",
    ),
    "image_registry": Rule(
        kinds.registry_path, "use e.g. ghcr.io/acme or registry.example.com:5000 (no scheme)."
    ),
    "image_repo": Rule(
        _pattern(r"[a-z0-9]+(?:[._/-][a-z0-9]+)*", "is not a lowercase repository name."),
        "use lowercase letters, digits, '.', '_', '-' and '/'.",
        optional=True,
    ),
    "custom_tag": Rule(
        _pattern(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}", "is not a valid image tag suffix."),
        "use up to 128 letters, digits, '.', '_' and '-'.",
        optional=True,
    ),
    "iso_name": Rule(
        kinds.file_name,
        f"use up to {kinds.MAX_FILE_NAME} letters, digits, '.', '_' and '-' "
        "(no .iso suffix, no '/').",
    ),
    "base_image": Rule(
        kinds.image_reference,
        "use e.g. registry.example.com/kairos/ubuntu:22.04-core-amd64-generic-v4.0.4.",
        optional=True,
    ),
    "spectro_pub_repo": _MIRROR,
    "spectro_luet_repo": _MIRROR,
    "kairos_base_image_url": _MIRROR,
    "http_proxy": _PROXY,
    "https_proxy": _PROXY,
    "no_proxy": Rule(
        kinds.host_list,
        "list hosts separated by commas, e.g. localhost,127.0.0.1,.example.com,10.0.0.0/8.",
        optional=True,
    ),
    "nvidia_driver_branch": Rule(
        _pattern(r"[1-9][0-9]{2,3}", "is not an NVIDIA driver branch number."),
        "use the branch number alone, e.g. 580.",
        optional=True,
    ),
    "doca_version": Rule(
        _pattern(facts.DOCA_VERSION_PATTERN.strip("^$"), "is not an exact version like 3.2.2."),
        "pin an exact X.Y.Z version; moving aliases like latest-3.2-LTS are not allowed.",
    ),
    # No credentials: the URL is baked into the Dockerfile as an ARG default,
    # which image history keeps.
    "doca_repo_url": Rule(
        lambda v: kinds.http_url(v, credentials=False, path=True),
        f"use e.g. {facts.DOCA_DEFAULT_REPO_URL} or a mirror of it, without user:password "
        "(it would be written into the Dockerfile and the image history); give a mirror's "
        "login as an apt auth.conf with --doca-repo-auth, a build secret.",
        secret=True,
    ),
    # Names only: the DOCA version pins their versions (one repository per release).
    "doca_packages": Rule(
        _pattern(r"[a-z0-9][a-z0-9+.-]+", "is not a Debian package name."),
        "use package names of the DOCA repository, such as mlnx-nfsrdma-dkms, without a version "
        "(doca_version pins them).",
    ),
    "extra_packages": Rule(
        _pattern(r"[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?", "is not a Debian package name."),
        "use names like ipmitool or pkg=1.2-3.",
    ),
    "kernel_args": Rule(
        _pattern(r"[A-Za-z0-9_.][A-Za-z0-9_.,:=/+-]*", "is not a kernel argument like iommu=pt."),
        "pass one argument per item, without quotes.",
    ),
    "preset": Rule(
        _pattern(r"[a-z0-9][a-z0-9-]{0,63}", "is not a preset name."),
        "use a name that canvos-doca presets lists, e.g. ai-ra-infra.",
        optional=True,
    ),
    # systemd.unit(5): unit name, optional @instance, a unit type suffix.
    "enable_units": Rule(
        _pattern(
            rf"[A-Za-z0-9:_.-]+(?:@[A-Za-z0-9:_.-]*)?\.(?:{'|'.join(facts.SYSTEMD_UNIT_TYPES)})",
            "is not a systemd unit name.",
        ),
        "use the full unit name with its type, e.g. lldpd.service or rshim.service "
        "(letters, digits, : _ . - and one @).",
    ),
    # Module names as modprobe reads them (MODULE_NAME_LEN is 64 bytes with the NUL).
    "modules_load": Rule(
        _pattern(r"[A-Za-z0-9_-]{1,63}", "is not a kernel module name."),
        "use the module name alone, e.g. rpcrdma (letters, digits, _ and -).",
    ),
    # modprobe.d(5): "options MODULE PARAM[=VALUE] ..." without the keyword.
    "modprobe_options": Rule(
        _pattern(
            r"[A-Za-z0-9_-]{1,63}(?: [A-Za-z0-9_][A-Za-z0-9_.-]*(?:=[A-Za-z0-9_.,:/+-]+)?)+",
            "is not 'MODULE PARAM=VALUE ...'.",
        ),
        "write the module name, then its parameters, separated by single spaces: "
        "'ib_core netns_mode=0' (no quotes, one module per item).",
        plain=False,
    ),
}

# Field -> (the values allowed for this spec, why others are not).
CHOICES: dict[str, tuple[Callable[[BuildSpec], Iterable[str]], str]] = {
    "os_distribution": (
        lambda s: doca.SUPPORTED_OS,
        " with DOCA-Host (the DOCA stage installs Ubuntu packages)",
    ),
    # An unknown distribution is reported on its own: allow any supported release then.
    "os_version": (lambda s: doca.SUPPORTED_OS.get(s.os_distribution, _ALL_RELEASES), ""),
    "arch": (lambda s: facts.CANVOS_ARCHES, ""),
    "k8s_distribution": (lambda s: K8S_DISTRIBUTIONS, ""),
    "doca_profile": (lambda s: doca.PROFILES, ""),
    "nvidia_driver_type": (lambda s: NVIDIA_DRIVER_TYPES, ""),
}

# Flags refused with DOCA: (why, fix).
REFUSED: dict[str, tuple[str, str]] = {
    "trusted_boot": (
        "Trusted Boot (UKI) cannot carry DOCA: the whole root filesystem must fit in one "
        "signed EFI file that firmware loads into RAM, and DOCA adds hundreds of MB to GBs.",
        "drop --trusted-boot; only the GRUB-based image is supported with DOCA.",
    ),
    "update_kernel": (
        "CanvOS installs the new kernel after the Dockerfile ran, so the DOCA modules "
        "would be built for a kernel the image no longer boots.",
        "leave update_kernel false; pick a newer CanvOS base image to get a newer kernel.",
    ),
}


def _values(spec: BuildSpec, name: str) -> tuple[str, ...]:
    value = getattr(spec, name)
    return value if isinstance(value, tuple) else (value,)


def shown(name: str, value: str) -> object:
    """How a value of field ``name`` may appear in a message or a plan: as is,
    redacted (a URL that may carry credentials), or ``HIDDEN``."""
    rule = RULES.get(name)
    if rule is None or not rule.secret:
        return value
    redacted = kinds.redact_url(value)
    return HIDDEN if redacted is None else redacted


def shown_text(name: str, value: str) -> str:
    """``shown`` for plans and records: ``"(not shown)"`` instead of ``HIDDEN``."""
    safe = shown(name, value)
    return "(not shown)" if safe is HIDDEN else str(safe)


def _value_problems(name: str, value: str) -> list[Problem]:
    """The one problem (or none) of one value of a text or list field."""
    rule = RULES.get(name)
    secret = rule is not None and rule.secret
    if rule is not None and rule.optional and not value:
        return []
    plain = rule is None or rule.plain
    message = kinds.text(value, secret) if value and plain else None
    if message is None and rule is not None:
        message = rule.check(value)
    if message is None:
        return []
    fix = rule.fix if rule is not None else "use printable ASCII characters only, no spaces."
    return [Problem(name, shown(name, value), message, fix)]


def _table_problems(spec: BuildSpec) -> list[Problem]:
    """The rules of the tables above, for every field they name."""
    problems: list[Problem] = []
    for name in FIELD_NAMES:
        if name in FILES_FIELDS:
            continue  # CROSS_FIELD_RULES: _host_files
        if name in BOOL_FIELDS:
            if getattr(spec, name) and name in REFUSED:
                problems.append(Problem(name, True, *REFUSED[name]))
            continue
        found = [p for value in _values(spec, name) for p in _value_problems(name, value)]
        problems += found
        if name in CHOICES and not found:
            allowed, why = CHOICES[name]
            problems += _choice(name, getattr(spec, name), tuple(allowed(spec)), why)
    return problems


def _choice(name: str, value: str, allowed: tuple[str, ...], why: str) -> list[Problem]:
    if value in allowed:
        return []
    listed = ", ".join(a or "''" for a in allowed)
    return [
        Problem(
            name,
            value,
            f"is not supported{why}. Allowed: {listed}.",
            f"set {name} to one of: {listed}.",
        )
    ]


def _k8s_versions(spec: BuildSpec) -> list[Problem]:
    """Never empty (CanvOS would build every version), never a version twice."""
    if not spec.k8s_version:
        return [
            Problem(
                "k8s_version",
                "",
                "is empty: CanvOS would then build every Kubernetes version it knows (~60 images).",
                "pass one or more versions, e.g. --k8s-version 1.34.6.",
            )
        ]
    seen: set[str] = set()
    for version in spec.k8s_version:
        if version in seen:
            return [
                Problem(
                    "k8s_version", version, "is listed more than once.", "list each version once."
                )
            ]
        seen.add(version)
    return []


def _doca_version(spec: BuildSpec) -> list[Problem]:
    """A known series (the exact X.Y.Z form is a RULES entry)."""
    found = doca.series(spec.doca_version)
    if found is None or found in facts.DOCA_SERIES_OFED:
        return []
    known = ", ".join(f"{s}.x" for s in facts.DOCA_SERIES_OFED)
    return [
        Problem(
            "doca_version",
            spec.doca_version,
            f"is not a known DOCA-Host series ({known}).",
            "pick a supported version.",
        )
    ]


def _gpu_drivers(spec: BuildSpec) -> list[Problem]:
    arches = facts.CANVOS_UBUNTU_BRANCH_ARCHES
    if not spec.install_nvidia_gpu_drivers or spec.arch in arches:
        return []
    return [
        Problem(
            "install_nvidia_gpu_drivers",
            True,
            f"is supported by CanvOS on {', '.join(arches)} only.",
            f"drop it or build for {', '.join(arches)}.",
        )
    ]


def _bind_mounts(spec: BuildSpec) -> list[Problem]:
    return [
        p
        for path in spec.bind_mounts
        for p in persistence.check_bind_mount_path("bind_mounts", path)
    ]


def _host_files(spec: BuildSpec) -> list[Problem]:
    """Every ``host_files`` entry: a path the image can own, text content of
    bounded size, plain permission bits. Contents are never shown."""
    problems: list[Problem] = []
    if len(spec.host_files) > MAX_HOST_FILES:
        problems.append(
            Problem(
                "host_files",
                len(spec.host_files),
                f"lists more than {MAX_HOST_FILES} files.",
                "bake fewer files, or ship them in a package (extra_packages).",
            )
        )
    for placed in spec.host_files:
        problems += persistence.check_image_file_path(
            f"host_files[{placed.path}]", placed.path, spec.os_distribution, spec.bind_mounts
        )
        where = f"host_files[{placed.path}].{'source' if placed.source else 'content'}"
        size = len(placed.content.encode("utf-8"))
        if size > HOST_FILE_LIMIT:
            problems.append(
                Problem(
                    where,
                    HIDDEN,
                    f"is {size} bytes; a file placed this way may have {HOST_FILE_LIMIT}.",
                    "ship larger files in a package (extra_packages).",
                )
            )
        if "\0" in placed.content:
            problems.append(
                Problem(
                    where,
                    HIDDEN,
                    "contains a NUL byte; only text files are placed.",
                    "ship binary files in a package (extra_packages).",
                )
            )
        if placed.mode & ~0o777:
            problems.append(
                Problem(
                    f"host_files[{placed.path}].mode",
                    f"{placed.mode:o}",
                    "has set-id or sticky bits.",
                    "use plain permission bits, e.g. 0644 or 0755.",
                )
            )
    return problems


# Rules that look at more than one value of a field, or at several fields.
CROSS_FIELD_RULES: tuple[Callable[[BuildSpec], list[Problem]], ...] = (
    _k8s_versions,
    _doca_version,
    _gpu_drivers,
    _bind_mounts,
    _host_files,
)


def validate(spec: BuildSpec) -> None:
    """Raise ``InvalidInput`` listing every problem of ``spec`` at once."""
    problems = _table_problems(spec)
    for rule in CROSS_FIELD_RULES:
        problems += rule(spec)
    if problems:
        raise InvalidInput(problems)


# ----------------------------------------------------------------- output


def as_dict(spec: BuildSpec, redact: bool = True, omit: Iterable[str] = ()) -> dict[str, object]:
    """Every field but ``omit``, lists as lists; with ``redact``, values that
    may carry credentials as ``shown_text`` gives them."""
    out: dict[str, object] = {}
    for name in FIELD_NAMES:
        if name in omit:
            continue
        value = getattr(spec, name)
        if name in FILES_FIELDS:
            value = [file_record(f) for f in value]
        elif isinstance(value, tuple):
            value = list(value)
        elif redact and isinstance(value, str):
            value = shown_text(name, value)
        out[name] = value
    return out


def file_record(placed: PlacedFile) -> dict[str, object]:
    """How a placed file is recorded and planned: path, mode, size and
    SHA-256, never its content."""
    return {
        "path": placed.path,
        "mode": f"{placed.mode:04o}",
        "size": len(placed.content.encode("utf-8")),
        "sha256": placed.sha256,
    }


def image_repo(spec: BuildSpec) -> str:
    """CanvOS's IMAGE_REPO defaults to the OS distribution."""
    return spec.image_repo or spec.os_distribution
