"""BuildSpec: every knob of a canvos-doca build, its default and its checks.

This is the one place where knobs are defined. Config-file keys are the field
names; CLI flags and Dagger arguments are the same names in kebab-case. The
README's reference table and the Dagger constructor are tested against
``FIELDS`` so they cannot drift. Knobs are text, flags and lists; the inputs
that are files (user-data, an air-gapped DOCA source, a pinned key) are not
knobs: see ``pipeline.inputs``.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline import doca, facts, persistence
from pipeline.errors import InvalidInput, Problem

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


@dataclass(frozen=True)
class BuildSpec:
    """A fully resolved, immutable description of one build."""

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
        f"Ubuntu release: {_either(doca.SUPPORTED_OS[_CANVOS['os_distribution']])}.",
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
    extra_packages: tuple[str, ...] = _knob(
        (), "Extra apt packages the host needs (the rest of nodeprep)."
    )
    kernel_args: tuple[str, ...] = _knob((), "Kernel boot arguments to add, e.g. iommu=pt.")
    # Persistence
    bind_mounts: tuple[str, ...] = _knob(
        (), "Extra absolute paths to keep across reboots (install.bind_mounts)."
    )
    opensm: bool = _knob(False, "Keep opensm state persistent (on-host InfiniBand subnet manager).")


FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(BuildSpec)
FIELD_NAMES = tuple(f.name for f in FIELDS)
LIST_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.default, tuple))
BOOL_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.default, bool))
# Values that may carry credentials (proxy URLs with user:password@).
REDACTED_FIELDS = ("http_proxy", "https_proxy")


def doc(name: str) -> str:
    """The one-line documentation of a field."""
    return str(next(f for f in FIELDS if f.name == name).metadata["doc"])


def default(name: str) -> Any:
    return next(f for f in FIELDS if f.name == name).default


def kebab(name: str) -> str:
    return name.replace("_", "-")


# ---------------------------------------------------------------- loading


def _split_list(value: object) -> tuple[str, ...]:
    """Lists accept YAML lists, comma-separated strings, or a mix."""
    items: Iterable[object] = value if isinstance(value, (list, tuple)) else [value]
    out: list[str] = []
    for item in items:
        if item is None:
            continue
        out += [part.strip() for part in str(item).split(",") if part.strip()]
    return tuple(out)


def _coerce(name: str, value: object) -> tuple[object, Problem | None]:
    if name in LIST_FIELDS:
        return _split_list(value), None
    if name in BOOL_FIELDS:
        if isinstance(value, bool):
            return value, None
        text = str(value).strip().lower()
        if text in ("true", "yes", "1"):
            return True, None
        if text in ("false", "no", "0", ""):
            return False, None
        return value, Problem(name, value, "is not a boolean.", "use true or false.")
    if isinstance(value, (dict, list)):
        return value, Problem(name, value, "must be a single value.", f"set {name} to a string.")
    return ("" if value is None else str(value)), None


def parse_config(
    text: str, source: str = "config", elsewhere: Mapping[str, str] | None = None
) -> dict[str, object]:
    """Parse a YAML config file into raw field values (unknown keys are errors).

    ``elsewhere`` maps keys that are not knobs but are given another way
    (e.g. file inputs) to the fix shown for them.
    """
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(
            [Problem(source, "<file>", f"is not valid YAML{where}.", "fix the YAML syntax.")]
        ) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise InvalidInput(
            [Problem(source, kind, "must be a mapping of knob: value.", "see README.")]
        )
    problems = []
    for key in data:
        if key in FIELD_NAMES:
            continue
        close = difflib.get_close_matches(str(key), FIELD_NAMES, n=1)
        hint = f"did you mean {close[0]!r}?" if close else "see the README's knob table."
        hint = (elsewhere or {}).get(str(key), hint)
        problems.append(Problem(f"{source}: {key}", data[key], "is not a known key.", hint))
    if problems:
        raise InvalidInput(problems)
    return {str(k): v for k, v in data.items()}


def build_spec(
    config: Mapping[str, object] | None = None, overrides: Mapping[str, object] | None = None
) -> BuildSpec:
    """Resolve defaults <- config file <- explicit arguments, then validate.

    ``overrides`` holds only what the user passed explicitly (``None`` values
    are ignored, so an omitted flag never hides the config file's value).
    """
    raw: dict[str, object] = dict(config or {})
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    problems: list[Problem] = []
    values: dict[str, object] = {}
    for name, value in raw.items():
        if name not in FIELD_NAMES:
            problems.append(Problem(name, value, "is not a known knob.", "see the README."))
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


# ------------------------------------------------------------- validation


@dataclass(frozen=True)
class Pattern:
    """Every value of a field (each item of a list) must match ``pattern``."""

    pattern: str
    message: str
    fix: str
    optional: bool = False  # the empty value is allowed


_URL = r"^https?://[^\s\"'`$\\]+$"

# Field -> the pattern its values must match.
PATTERNS: dict[str, Pattern] = {
    "k8s_version": Pattern(
        r"^\d+\.\d+\.\d+$",
        "is not a Kubernetes version like 1.34.6.",
        "use MAJOR.MINOR.PATCH without a leading v.",
    ),
    "doca_repo_url": Pattern(
        _URL,
        "is not an http(s) URL.",
        f"use e.g. {facts.DOCA_DEFAULT_REPO_URL} or your mirror of it.",
    ),
    "http_proxy": Pattern(
        _URL, "is not an http(s) URL.", "use e.g. http://proxy.example.com:3128.", optional=True
    ),
    "https_proxy": Pattern(
        _URL, "is not an http(s) URL.", "use e.g. http://proxy.example.com:3128.", optional=True
    ),
    "image_registry": Pattern(
        r"^[A-Za-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)*$",
        "is not a registry host[/path].",
        "use e.g. ghcr.io/acme or registry.example.com:5000 (no scheme).",
    ),
    "image_repo": Pattern(
        r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$",
        "is not a lowercase repository name.",
        "use lowercase letters, digits, '.', '_', '-' and '/'.",
        optional=True,
    ),
    "custom_tag": Pattern(
        r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$",
        "is not a valid image tag suffix.",
        "use letters, digits, '.', '_' and '-'.",
        optional=True,
    ),
    "iso_name": Pattern(
        r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
        "is not a plain file name.",
        "use letters, digits, '.', '_' and '-' (no .iso suffix, no '/').",
    ),
    "extra_packages": Pattern(
        r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?$",
        "is not a Debian package name.",
        "use names like ipmitool or pkg=1.2-3.",
    ),
    "kernel_args": Pattern(
        r"^[A-Za-z0-9_.][A-Za-z0-9_.,:=/+-]*$",
        "is not a kernel argument like iommu=pt.",
        "pass one argument per item, without quotes.",
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

# Values end up in .arg and Dockerfile ARGs.
_UNSAFE = re.compile(r"[\"'`$\\\s]")


def _values(spec: BuildSpec, name: str) -> tuple[str, ...]:
    value = getattr(spec, name)
    return value if isinstance(value, tuple) else (value,)


def _shown(name: str, value: str) -> str:
    return redact_url(value) if name in REDACTED_FIELDS else value


def _table_problems(spec: BuildSpec) -> list[Problem]:
    """The rules of the tables above, for every field they name."""
    problems: list[Problem] = []
    for name in FIELD_NAMES:
        if name in BOOL_FIELDS:
            if getattr(spec, name) and name in REFUSED:
                problems.append(Problem(name, True, *REFUSED[name]))
            continue
        for value in _values(spec, name):
            if _UNSAFE.search(value):
                problems.append(
                    Problem(
                        name,
                        _shown(name, value),
                        "contains a quote, $, backslash or whitespace.",
                        "remove it; these values are written into .arg and the Dockerfile.",
                    )
                )
            rule = PATTERNS.get(name)
            if rule and not (rule.optional and not value) and not re.match(rule.pattern, value):
                problems.append(Problem(name, _shown(name, value), rule.message, rule.fix))
        if name in CHOICES:
            allowed, why = CHOICES[name]
            problems += _choice(name, getattr(spec, name), tuple(allowed(spec)), why)
    return problems


def _choice(name: str, value: str, allowed: tuple[str, ...], why: str) -> list[Problem]:
    if value in allowed:
        return []
    shown = ", ".join(a or "''" for a in allowed)
    return [
        Problem(
            name,
            value,
            f"is not supported{why}. Allowed: {shown}.",
            f"set {name} to one of: {shown}.",
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
    if len(set(spec.k8s_version)) != len(spec.k8s_version):
        joined = ",".join(spec.k8s_version)
        return [Problem("k8s_version", joined, "lists a version twice.", "list each version once.")]
    return []


def _doca_version(spec: BuildSpec) -> list[Problem]:
    """An exact X.Y.Z of a known series (moving aliases are refused)."""
    found = doca.series(spec.doca_version)
    if found is None:
        message = "is not an exact version like 3.2.2."
        fix = "pin an exact X.Y.Z version; moving aliases like latest-3.2-LTS are not allowed."
    elif found not in facts.DOCA_SERIES_OFED:
        known = ", ".join(f"{s}.x" for s in facts.DOCA_SERIES_OFED)
        message, fix = f"is not a known DOCA-Host series ({known}).", "pick a supported version."
    else:
        return []
    return [Problem("doca_version", spec.doca_version, message, fix)]


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


# Rules that look at more than one value of a field, or at several fields.
CROSS_FIELD_RULES: tuple[Callable[[BuildSpec], list[Problem]], ...] = (
    _k8s_versions,
    _doca_version,
    _gpu_drivers,
    _bind_mounts,
)


def validate(spec: BuildSpec) -> None:
    """Raise ``InvalidInput`` listing every problem of ``spec`` at once."""
    problems = _table_problems(spec)
    for rule in CROSS_FIELD_RULES:
        problems += rule(spec)
    if problems:
        raise InvalidInput(problems)


# ----------------------------------------------------------------- output


def redact_url(value: str) -> str:
    """Hide user:password@ in URLs."""
    return re.sub(r"^((?:[A-Za-z][A-Za-z0-9+.-]*://)?)[^/@\s]+@", r"\1***@", value)


def as_dict(spec: BuildSpec, redact: bool = True) -> dict[str, object]:
    """Every field, lists as lists, credentials in URLs redacted."""
    out: dict[str, object] = {}
    for name in FIELD_NAMES:
        value = getattr(spec, name)
        if isinstance(value, tuple):
            value = list(value)
        if redact and name in REDACTED_FIELDS and isinstance(value, str):
            value = redact_url(value)
        out[name] = value
    return out


def image_repo(spec: BuildSpec) -> str:
    """CanvOS's IMAGE_REPO defaults to the OS distribution."""
    return spec.image_repo or spec.os_distribution
