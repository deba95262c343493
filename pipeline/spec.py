"""BuildSpec: every knob of a canvos-doca build, its default and its checks.

This is the one place where knobs are defined. Config-file keys are the field
names; CLI flags and Dagger arguments are the same names in kebab-case. The
README's reference table and the Dagger constructor are tested against
``FIELDS`` so they cannot drift.
"""

from __future__ import annotations

import dataclasses
import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from pipeline import doca, facts, kairos
from pipeline.errors import InvalidInput, Problem

DEFAULT_CANVOS_URL = facts.CANVOS_DEFAULT_URL
DEFAULT_CANVOS_REF = facts.CANVOS_DEFAULT_REF
DEFAULT_K8S_VERSION = facts.CANVOS_DEFAULT_K8S_VERSION

K8S_DISTRIBUTIONS = facts.CANVOS_K8S_DISTRIBUTIONS
ARCHES = facts.CANVOS_ARCHES
NVIDIA_DRIVER_TYPES = ("", "open", "proprietary")


def _knob(default: Any, doc: str, group: str) -> Any:
    """A spec field with its documentation (used by CLI, Dagger and README)."""
    return field(default=default, metadata={"doc": doc, "group": group})


@dataclass(frozen=True)
class BuildSpec:
    """A fully resolved, immutable description of one build."""

    # CanvOS source
    canvos_url: str = _knob(DEFAULT_CANVOS_URL, "Git URL of the CanvOS repository.", "canvos")
    canvos_ref: str = _knob(
        DEFAULT_CANVOS_REF,
        "CanvOS tag, branch or commit. Pick the tag matching your Palette agent version; "
        "a branch is resolved to a commit before it becomes a cache key.",
        "canvos",
    )
    # Target image
    os_distribution: str = _knob("ubuntu", "OS of the image (DOCA-Host: ubuntu).", "target")
    os_version: str = _knob("22.04", "Ubuntu release: 22.04 or 24.04.", "target")
    arch: str = _knob("amd64", "CPU architecture: amd64 or arm64.", "target")
    k8s_distribution: str = _knob(
        "k3s", "Kubernetes distribution: " + ", ".join(K8S_DISTRIBUTIONS) + ".", "target"
    )
    k8s_version: tuple[str, ...] = _knob(
        (DEFAULT_K8S_VERSION,),
        "Kubernetes version(s) for provider images, e.g. 1.34.6; comma-separated or "
        "repeated. Never empty: CanvOS would build every version it knows (~60 images).",
        "target",
    )
    image_registry: str = _knob(
        "localhost:5000", "Registry part of the provider image reference.", "target"
    )
    image_repo: str = _knob(
        "", "Repository of the provider image (default: os_distribution).", "target"
    )
    custom_tag: str = _knob("", "Suffix appended to the provider image tag.", "target")
    iso_name: str = _knob(
        "palette-edge-installer", "File name of the installer ISO, without .iso.", "target"
    )
    fips_enabled: bool = _knob(False, "Build a FIPS image (CanvOS FIPS_ENABLED).", "target")
    cis_hardening: bool = _knob(False, "Apply CanvOS CIS hardening.", "target")
    force_interactive_install: bool = _knob(
        False, "Boot the ISO into the interactive installer by default.", "target"
    )
    base_image: str = _knob("", "Override of the Kairos base image (CanvOS BASE_IMAGE).", "target")
    spectro_pub_repo: str = _knob("", "Private mirror of Spectro Cloud's public images.", "mirrors")
    spectro_luet_repo: str = _knob(
        "", "Private mirror of Spectro Cloud's luet repository.", "mirrors"
    )
    kairos_base_image_url: str = _knob("", "Private mirror of the Kairos base images.", "mirrors")
    http_proxy: str = _knob("", "HTTP proxy used during the build.", "mirrors")
    https_proxy: str = _knob("", "HTTPS proxy used during the build.", "mirrors")
    no_proxy: str = _knob("", "Hosts that bypass the proxy.", "mirrors")
    update_kernel: bool = _knob(
        False,
        "CanvOS UPDATE_KERNEL; refused with DOCA (modules would miss the new kernel).",
        "target",
    )
    trusted_boot: bool = _knob(
        False, "Build a Trusted Boot (UKI) image; refused with DOCA (UKI size limit).", "target"
    )
    install_nvidia_gpu_drivers: bool = _knob(
        False,
        "Also bake NVIDIA GPU drivers (CanvOS option; needs a CanvOS ref that has it).",
        "gpu",
    )
    nvidia_driver_branch: str = _knob(
        "", "GPU driver branch, e.g. 580 (empty: CanvOS default).", "gpu"
    )
    nvidia_driver_type: str = _knob(
        "", "GPU driver flavour: open or proprietary (empty: CanvOS default).", "gpu"
    )
    # DOCA
    doca_version: str = _knob(doca.DEFAULT_VERSION, "Exact DOCA-Host version, e.g. 3.2.2.", "doca")
    doca_profile: str = _knob(
        doca.DEFAULT_PROFILE, "DOCA profile: " + ", ".join(doca.PROFILES) + ".", "doca"
    )
    doca_repo_url: str = _knob(
        doca.DEFAULT_REPO_URL,
        "Base URL of the DOCA apt repositories (or a mirror of them).",
        "doca",
    )
    doca_repo_key: str = _knob(
        "", "Path of a pinned DOCA signing key (default: the key published with the repo).", "doca"
    )
    doca_airgap: str = _knob(
        "",
        "Path of an air-gapped DOCA source: a flat apt repo directory or a doca-host .deb.",
        "doca",
    )
    extra_packages: tuple[str, ...] = _knob(
        (), "Extra apt packages the host needs (the rest of nodeprep).", "doca"
    )
    kernel_args: tuple[str, ...] = _knob((), "Kernel boot arguments to add, e.g. iommu=pt.", "doca")
    # Persistence
    bind_mounts: tuple[str, ...] = _knob(
        (), "Extra absolute paths to keep across reboots (install.bind_mounts).", "persistence"
    )
    opensm: bool = _knob(
        False, "Keep opensm state persistent (on-host InfiniBand subnet manager).", "persistence"
    )
    user_data: str = _knob(
        "",
        "Path of the user-data file (default: a template that installs and powers off).",
        "persistence",
    )


FIELDS: tuple[dataclasses.Field[Any], ...] = dataclasses.fields(BuildSpec)
FIELD_NAMES = tuple(f.name for f in FIELDS)
LIST_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.default, tuple))
BOOL_FIELDS = tuple(f.name for f in FIELDS if isinstance(f.default, bool))
# Values that may carry credentials (proxy URLs with user:password@).
REDACTED_FIELDS = ("http_proxy", "https_proxy")


def doc(name: str) -> str:
    """The one-line documentation of a field, with its default."""
    spec_field = next(f for f in FIELDS if f.name == name)
    return str(spec_field.metadata["doc"])


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


def parse_config(text: str, source: str = "config") -> dict[str, object]:
    """Parse a YAML config file into raw field values (unknown keys are errors)."""
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
        raise InvalidInput(
            [
                Problem(
                    source, type(data).__name__, "must be a mapping of knob: value.", "see README."
                )
            ]
        )
    problems = []
    for key in data:
        if key not in FIELD_NAMES:
            close = difflib.get_close_matches(str(key), FIELD_NAMES, n=1)
            hint = f"did you mean {close[0]!r}?" if close else "see the README's knob table."
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

_UNSAFE = re.compile(r"[\"'`$\\\s]")
_K8S_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_TAG = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_REPO = re.compile(r"^[a-z0-9]+(?:[._/-][a-z0-9]+)*$")
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)*$")
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+(?:=[A-Za-z0-9.+~:-]+)?$")
_KERNEL_ARG = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.,:=/+-]*$")
_URL = re.compile(r"^https?://[^\s\"'`$\\]+$")


def _check_safe(spec: BuildSpec) -> list[Problem]:
    """Values end up in .arg and Dockerfile ARGs: no quotes, $, \\ or spaces."""
    problems = []
    for name in FIELD_NAMES:
        value = getattr(spec, name)
        items = value if isinstance(value, tuple) else (value,)
        for item in items:
            if (
                isinstance(item, str)
                and _UNSAFE.search(item)
                and name not in ("user_data", "doca_repo_key", "doca_airgap")
            ):
                problems.append(
                    Problem(
                        name,
                        item,
                        "contains a quote, $, backslash or whitespace.",
                        "remove it; these values are written into .arg and the Dockerfile.",
                    )
                )
    return problems


def _choice(name: str, value: str, allowed: Iterable[str], why: str = "") -> list[Problem]:
    allowed = tuple(allowed)
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


def validate(spec: BuildSpec) -> None:
    """Raise ``InvalidInput`` listing every problem of ``spec`` at once."""
    problems = _check_safe(spec)

    problems += _choice(
        "os_distribution",
        spec.os_distribution,
        doca.SUPPORTED_OS,
        " with DOCA-Host (the DOCA stage installs Ubuntu packages)",
    )
    problems += _choice(
        "os_version",
        spec.os_version,
        doca.SUPPORTED_OS.get(spec.os_distribution, ("22.04", "24.04")),
    )
    problems += _choice("arch", spec.arch, ARCHES)
    problems += _choice("k8s_distribution", spec.k8s_distribution, K8S_DISTRIBUTIONS)
    problems += _choice("doca_profile", spec.doca_profile, doca.PROFILES)
    problems += _choice("nvidia_driver_type", spec.nvidia_driver_type, NVIDIA_DRIVER_TYPES)

    if spec.trusted_boot:
        problems.append(
            Problem(
                "trusted_boot",
                True,
                "Trusted Boot (UKI) cannot carry DOCA: the whole root filesystem must fit in one "
                "signed EFI file that firmware loads into RAM, and DOCA adds hundreds of MB "
                "to GBs.",
                "drop --trusted-boot; only the GRUB-based image is supported with DOCA.",
            )
        )
    if spec.update_kernel:
        problems.append(
            Problem(
                "update_kernel",
                True,
                "CanvOS installs the new kernel after the Dockerfile ran, so the DOCA modules "
                "would be built for a kernel the image no longer boots.",
                "leave update_kernel false; pick a newer CanvOS base image to get a newer kernel.",
            )
        )

    if not spec.k8s_version:
        problems.append(
            Problem(
                "k8s_version",
                "",
                "is empty: CanvOS would then build every Kubernetes version it knows (~60 images).",
                "pass one or more versions, e.g. --k8s-version 1.34.6.",
            )
        )
    for version in spec.k8s_version:
        if not _K8S_VERSION.match(version):
            problems.append(
                Problem(
                    "k8s_version",
                    version,
                    "is not a Kubernetes version like 1.34.6.",
                    "use MAJOR.MINOR.PATCH without a leading v.",
                )
            )
    if len(set(spec.k8s_version)) != len(spec.k8s_version):
        problems.append(
            Problem(
                "k8s_version",
                ",".join(spec.k8s_version),
                "lists a version twice.",
                "list each version once.",
            )
        )

    version_series = doca.series(spec.doca_version)
    if version_series is None:
        problems.append(
            Problem(
                "doca_version",
                spec.doca_version,
                "is not an exact version like 3.2.2.",
                "pin an exact X.Y.Z version; moving aliases like latest-3.2-LTS are not allowed.",
            )
        )
    elif version_series not in doca.SERIES_OFED:
        known = ", ".join(f"{s}.x" for s in doca.SERIES_OFED)
        problems.append(
            Problem(
                "doca_version",
                spec.doca_version,
                f"is not a known DOCA-Host series ({known}).",
                "pick a supported version.",
            )
        )

    if not _URL.match(spec.doca_repo_url):
        problems.append(
            Problem(
                "doca_repo_url",
                spec.doca_repo_url,
                "is not an http(s) URL.",
                f"use e.g. {doca.DEFAULT_REPO_URL} or your mirror of it.",
            )
        )
    for url_field in ("http_proxy", "https_proxy"):
        value = getattr(spec, url_field)
        if value and not _URL.match(value):
            problems.append(
                Problem(
                    url_field,
                    redact_url(value),
                    "is not an http(s) URL.",
                    "use e.g. http://proxy.example.com:3128.",
                )
            )

    if not _REGISTRY.match(spec.image_registry):
        problems.append(
            Problem(
                "image_registry",
                spec.image_registry,
                "is not a registry host[/path].",
                "use e.g. ghcr.io/acme or registry.example.com:5000 (no scheme).",
            )
        )
    if spec.image_repo and not _REPO.match(spec.image_repo):
        problems.append(
            Problem(
                "image_repo",
                spec.image_repo,
                "is not a lowercase repository name.",
                "use lowercase letters, digits, '.', '_', '-' and '/'.",
            )
        )
    if spec.custom_tag and not _TAG.match(spec.custom_tag):
        problems.append(
            Problem(
                "custom_tag",
                spec.custom_tag,
                "is not a valid image tag suffix.",
                "use letters, digits, '.', '_' and '-'.",
            )
        )
    if not _NAME.match(spec.iso_name):
        problems.append(
            Problem(
                "iso_name",
                spec.iso_name,
                "is not a plain file name.",
                "use letters, digits, '.', '_' and '-' (no .iso suffix, no '/').",
            )
        )
    for package in spec.extra_packages:
        if not _PACKAGE.match(package):
            problems.append(
                Problem(
                    "extra_packages",
                    package,
                    "is not a Debian package name.",
                    "use names like ipmitool or pkg=1.2-3.",
                )
            )
    for arg in spec.kernel_args:
        if not _KERNEL_ARG.match(arg):
            problems.append(
                Problem(
                    "kernel_args",
                    arg,
                    "is not a kernel argument like iommu=pt.",
                    "pass one argument per item, without quotes.",
                )
            )
    for path in spec.bind_mounts:
        problems += kairos.check_bind_mount_path("bind_mounts", path)

    if spec.install_nvidia_gpu_drivers and spec.arch != "amd64":
        problems.append(
            Problem(
                "install_nvidia_gpu_drivers",
                True,
                "is supported by CanvOS on amd64 only.",
                "drop it or build for amd64.",
            )
        )
    if spec.doca_airgap and spec.doca_repo_url != doca.DEFAULT_REPO_URL:
        problems.append(
            Problem(
                "doca_airgap",
                spec.doca_airgap,
                "and doca_repo_url are both set.",
                "use one DOCA source: the air-gapped one or a repo URL.",
            )
        )
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
