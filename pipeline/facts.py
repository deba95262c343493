"""Upstream facts (DOCA, Kairos, CanvOS, pinned images), loaded once from
``pipeline/resources/facts.toml``.

Every fact is defined in that one file, with the upstream source and version it
comes from. Python reads it here; the image-build scripts read what they need
from ``facts.env`` (``shell_env()``), written into the rendered build context
next to ``persistent-paths.txt``, so shell never keeps a copy of its own.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

FACTS_FILE = "resources/facts.toml"


def _load() -> dict[str, Any]:
    text = resources.files("pipeline").joinpath(FACTS_FILE).read_text(encoding="utf-8")
    return tomllib.loads(text)


@dataclass(frozen=True)
class Profile:
    """A DOCA profile meta-package and what installing it implies."""

    name: str
    kernel_modules: bool
    ovs_state: bool


_RAW = _load()
_DOCA: dict[str, Any] = _RAW["doca"]
_KAIROS: dict[str, Any] = _RAW["kairos"]
_SYSTEMD: dict[str, Any] = _RAW["systemd"]
_CANVOS: dict[str, Any] = _RAW["canvos"]
_IMAGES: dict[str, str] = _RAW["images"]
_PALETTE: dict[str, Any] = _RAW["palette"]
_DISK: dict[str, Any] = _RAW["disk"]
_NODEPREP: dict[str, Any] = _RAW["nodeprep"]
_HOST_ITEMS: dict[str, Any] = _RAW["host_items"]
_BUILD_TIME: dict[str, Any] = _RAW["build_time"]

# ------------------------------------------------------------------- DOCA
DOCA_SOURCE: str = _DOCA["source"]
DOCA_DEFAULT_VERSION: str = _DOCA["default_version"]
DOCA_DEFAULT_PROFILE: str = _DOCA["default_profile"]
DOCA_DEFAULT_REPO_URL: str = _DOCA["default_repo_url"]
DOCA_KEY_FILE_NAME: str = _DOCA["key_file_name"]
DOCA_VERSION_PATTERN: str = _DOCA["version_pattern"]
DOCA_LTS_SERIES: tuple[str, ...] = tuple(_DOCA["lts_series"])
DOCA_REPO_LAYOUT: str = _DOCA["repo_layout"]
DOCA_REPO_LABEL_GLOB: str = _DOCA["repo_label_glob"]
DOCA_LOCAL_REPO_GLOB: str = _DOCA["local_repo_glob"]
DOCA_SERIES_OFED: dict[str, str] = dict(_DOCA["series_ofed"])
DOCA_REPO_ARCH: dict[str, str] = dict(_DOCA["repo_arch"])
DOCA_SUPPORTED_OS: dict[str, tuple[str, ...]] = {
    name: tuple(versions) for name, versions in _DOCA["supported_os"].items()
}
DOCA_PROFILES: tuple[Profile, ...] = tuple(
    Profile(name, bool(p["kernel_modules"]), bool(p["ovs_state"]))
    for name, p in _DOCA["profiles"].items()
)

# ----------------------------------------------------------------- Kairos
KAIROS_INIT_VERSION: str = _KAIROS["kairos_init_version"]
KAIROS_SOURCE: str = _KAIROS["source"]
KAIROS_PATH_LIST_MAJOR: int = _KAIROS["path_list_kairos_major"]
KAIROS_PERSISTENT_PARTITION: str = _KAIROS["persistent_partition"]
KAIROS_CLOUD_CONFIG_HEADER: str = _KAIROS["cloud_config_header"]
KAIROS_RW_PATHS: tuple[str, ...] = tuple(_KAIROS["rw_paths"])
KAIROS_BOOT_MOUNTS: tuple[str, ...] = tuple(_KAIROS["boot_mounts"])

# ---------------------------------------------------------------- systemd
SYSTEMD_UNIT_TYPES: tuple[str, ...] = tuple(_SYSTEMD["unit_types"].split())
SYSTEMD_UNIT_DIR: str = _SYSTEMD["unit_dir"]
SYSTEMD_MODPROBE_DIR: str = _SYSTEMD["modprobe_dir"]
SYSTEMD_MODULES_LOAD_DIR: str = _SYSTEMD["modules_load_dir"]
KAIROS_PERSISTENT_STATE_PATHS: tuple[str, ...] = tuple(_KAIROS["persistent_state_paths"])
KAIROS_EXTRA_BINDS: dict[str, tuple[str, ...]] = {
    name: tuple(paths) for name, paths in _KAIROS["extra_binds"].items()
}

# ----------------------------------------------------------------- CanvOS
CANVOS_SOURCE: str = _CANVOS["source"]
CANVOS_DEFAULT_URL: str = _CANVOS["default_url"]
CANVOS_DEFAULT_REF: str = _CANVOS["default_ref"]
CANVOS_DEFAULT_K8S_VERSION: str = _CANVOS["default_k8s_version"]
CANVOS_K8S_DISTRIBUTIONS: tuple[str, ...] = tuple(_CANVOS["k8s_distributions"])
CANVOS_ARCHES: tuple[str, ...] = tuple(_CANVOS["arches"])
CANVOS_MARKER: str = _CANVOS["marker"]
CANVOS_EARTHFILE: str = _CANVOS["files"]["earthfile"]
CANVOS_DOCKERFILE: str = _CANVOS["files"]["dockerfile"]
CANVOS_WRAPPER: str = _CANVOS["files"]["wrapper"]
CANVOS_CHECKOUT_FILES: tuple[str, ...] = tuple(_CANVOS["files"].values())
CANVOS_BUILD_DIR: str = _CANVOS["build_dir"]
CANVOS_ISO_USER_DATA_PATH: str = _CANVOS["iso_user_data_path"]
CANVOS_OS_VERSION_ALIASES: dict[str, str] = dict(_CANVOS["os_version_aliases"])
CANVOS_INSTALLER_IMAGE_REPO: str = _CANVOS["installer_image_repo"]
CANVOS_UBUNTU_BRANCH_ARCHES: tuple[str, ...] = tuple(_CANVOS["ubuntu_branch_arches"])
CANVOS_NVIDIA_DRIVER_TYPES: tuple[str, ...] = tuple(_CANVOS["nvidia_driver_types"])
# .arg.template defaults: os_distribution, os_version, arch, k8s_distribution,
# iso_name, clusterconfig, edge_custom_config.
CANVOS_DEFAULTS: dict[str, str] = dict(_CANVOS["defaults"])
CANVOS_TARGET_ISO: str = _CANVOS["targets"]["iso"]
CANVOS_TARGET_PROVIDER_IMAGES: str = _CANVOS["targets"]["provider_images"]
CANVOS_TARGET_INSTALLER_IMAGE: str = _CANVOS["targets"]["installer_image"]
CANVOS_TARGET_ALL_IMAGES: str = _CANVOS["targets"]["all_images"]

# ----------------------------------------------------------------- images
EARTHLY_IMAGE: str = _IMAGES["earthly"]
DIND_IMAGE: str = _IMAGES["dind"]
QEMU_IMAGE: str = _IMAGES["qemu"]
ISO_TOOL_IMAGE: str = _IMAGES["iso_tool"]

# -------------------------------------------------------------- boot test
_BOOT_TEST: dict[str, Any] = _RAW["boot_test"]
BOOT_TEST_SOURCE: str = _BOOT_TEST["source"]
BOOT_TEST_PACKAGES: tuple[str, ...] = tuple(_BOOT_TEST["packages"])
BOOT_TEST_ARCHES: tuple[str, ...] = tuple(_BOOT_TEST["arches"])
QEMU_PROGRAM: str = _BOOT_TEST["qemu_program"]
PYTHON_PROGRAM: str = _BOOT_TEST["python_program"]
OVMF_CODE: str = _BOOT_TEST["ovmf_code"]
OVMF_VARS: str = _BOOT_TEST["ovmf_vars"]
KAIROS_ACTIVE_SENTINEL: str = _BOOT_TEST["kairos_active_sentinel"]
KAIROS_STATE_DIR: str = _BOOT_TEST["kairos_state_dir"]
TCG_SLOWDOWN: int = int(_BOOT_TEST["tcg_slowdown"])

# ---------------------------------------------------------------- Palette
PALETTE_SOURCE: str = _PALETTE["source"]
# Dotted user-data keys whose values are secrets, the edge host token first.
PALETTE_EDGE_HOST_TOKEN: str = _PALETTE["edge_host_token"]
PALETTE_USER_DATA_SECRETS: tuple[str, ...] = (
    PALETTE_EDGE_HOST_TOKEN,
    *_PALETTE["other_user_data_secrets"],
)

# --------------------------------------------------------------- nodeprep
NODEPREP_SOURCE: str = _NODEPREP["source"]
# The directory the AI-RA-Infra nodeprep reads the BFB from (<dir>/<file name>).
NODEPREP_BFB_DIR: str = _NODEPREP["bfb_dir"]

# ------------------------------------------------------------- host items
HOST_ITEMS_SOURCE: str = _HOST_ITEMS["source"]
# The host items' modprobe options and modules to load, one file each.
HOST_MODPROBE_FILE: str = f"{SYSTEMD_MODPROBE_DIR}/{_HOST_ITEMS['file_name']}"
HOST_MODULES_LOAD_FILE: str = f"{SYSTEMD_MODULES_LOAD_DIR}/{_HOST_ITEMS['file_name']}"

# ------------------------------------------------------------------- disk
DISK_SOURCE: str = _DISK["source"]
# Estimated sizes in GB: provider_image, iso, earthly_state,
# earthly_per_k8s_version, tool_images (see facts.toml for each basis).
DISK_GB: dict[str, int] = {
    key.removesuffix("_gb"): int(value) for key, value in _DISK.items() if key.endswith("_gb")
}


# ------------------------------------------------------------- build time
BUILD_TIME_SOURCE: str = _BUILD_TIME["source"]
# A first build on a cold engine: (low, high) minutes, on BUILD_TIME_HOST.
FIRST_BUILD_MINUTES: tuple[int, int] = (
    int(_BUILD_TIME["first_build_minutes"][0]),
    int(_BUILD_TIME["first_build_minutes"][1]),
)
BUILD_TIME_HOST: str = _BUILD_TIME["host"]


def first_build_estimate() -> str:
    """The first-build estimate as the docs and ``plan`` state it: the low and
    high minutes joined by an en dash (U+2013), then `` minutes``."""
    low, high = FIRST_BUILD_MINUTES
    return f"{low}\N{EN DASH}{high} minutes"


def shell_env(extra: Mapping[str, str] | None = None) -> str:
    """``facts.env``: the facts the image-build scripts need, as ``KEY=value``
    lines (space-separated lists, no quoting; read with ``fact KEY``, never
    sourced). ``extra``: more values defined in modules this one cannot import
    (``canvos.facts_env`` passes the stage's fixed paths); a key that is
    already a fact is a ``ValueError``."""
    values = {
        "DOCA_PROFILES": " ".join(p.name for p in DOCA_PROFILES),
        "DOCA_KERNEL_PROFILES": " ".join(p.name for p in DOCA_PROFILES if p.kernel_modules),
        "DOCA_OVS_PROFILES": " ".join(p.name for p in DOCA_PROFILES if p.ovs_state),
        "DOCA_VERSION_PATTERN": DOCA_VERSION_PATTERN,
        "DOCA_REPO_LAYOUT": DOCA_REPO_LAYOUT,
        "DOCA_DEFAULT_REPO_URL": DOCA_DEFAULT_REPO_URL,
        "DOCA_KEY_FILE_NAME": DOCA_KEY_FILE_NAME,
        "DOCA_REPO_LABEL_GLOB": DOCA_REPO_LABEL_GLOB,
        "DOCA_LOCAL_REPO_GLOB": DOCA_LOCAL_REPO_GLOB,
        "DOCA_SUPPORTED_OS": " ".join(
            f"{name}{version}"
            for name, versions in DOCA_SUPPORTED_OS.items()
            for version in versions
        ),
        **{f"DOCA_REPO_ARCH_{arch}": directory for arch, directory in DOCA_REPO_ARCH.items()},
        "NODEPREP_BFB_DIR": NODEPREP_BFB_DIR,
        "HOST_MODPROBE_FILE": HOST_MODPROBE_FILE,
        "HOST_MODULES_LOAD_FILE": HOST_MODULES_LOAD_FILE,
        "SYSTEMD_UNIT_TYPES": " ".join(SYSTEMD_UNIT_TYPES),
    }
    clash = sorted(set(values) & set(extra or {}))
    if clash:
        raise ValueError(f"facts.env keys defined twice: {', '.join(clash)}")
    values.update(extra or {})
    lines = ["# Generated by canvos-doca from pipeline/resources/facts.toml; do not edit."]
    lines += [f"{key}={value}" for key, value in values.items()]
    return "\n".join(lines) + "\n"
