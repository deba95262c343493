"""What canvos-doca knows about NVIDIA DOCA-Host: versions, profiles, repos.

Facts from NVIDIA's DOCA-Host release notes (see DOMAIN.md §4). The image
stage (overlays/doca/) derives the repository path from the image itself;
this module validates the user's choice before any build starts.
"""

from __future__ import annotations

import re

# 2025 LTS series; 3.2.2 is the newest patch release confirmed in NVIDIA's download archive.
DEFAULT_VERSION = "3.2.2"
DEFAULT_PROFILE = "doca-ofed"
DEFAULT_REPO_URL = "https://linux.mellanox.com/public/repo/doca"
KEY_FILE_NAME = "GPG-KEY-Mellanox.pub"

# DOCA release series -> the DOCA-OFED (MLNX_OFED successor) release it ships.
# A series is supported on Ubuntu 22.04 and 24.04, amd64 and arm64.
SERIES_OFED = {
    "2.9": "24.10",
    "2.10": "25.01",
    "3.0": "25.04",
    "3.1": "25.07",
    "3.2": "25.10",
    "3.3": "26.01",
    "3.4": "26.04",
    "3.5": "26.07",
}
LTS_SERIES = ("2.9", "3.2")

# Profile meta-packages (apt package names) installable on a host.
PROFILES = (
    "doca-ofed",
    "doca-roce",
    "doca-networking",
    "doca-all",
    "doca-ofed-userspace",
    "doca-networking-userspace",
    "doca-all-userspace",
)
# Profiles that install kernel modules (DKMS) and therefore need the image's
# kernel headers and a compiler during the build.
KERNEL_PROFILES = ("doca-ofed", "doca-roce", "doca-networking", "doca-all")

SUPPORTED_OS = {"ubuntu": ("22.04", "24.04")}
# CanvOS ARCH -> the architecture directory of the DOCA repo for hosts.
REPO_ARCH = {"amd64": "x86_64", "arm64": "arm64-sbsa"}

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")


def series(version: str) -> str | None:
    """``"3.2.1"`` -> ``"3.2"``; None when the version is not X.Y.Z."""
    match = _VERSION_RE.match(version)
    return f"{match.group(1)}.{match.group(2)}" if match else None


def ofed_release(version: str) -> str | None:
    """The DOCA-OFED release a DOCA version ships, if the series is known."""
    found = series(version)
    return SERIES_OFED.get(found) if found else None


def repo_os(os_distribution: str, os_version: str) -> str:
    """The OS directory name of the DOCA repo, e.g. ``ubuntu22.04``."""
    return f"{os_distribution}{os_version}"


def repo_url(base: str, version: str, os_distribution: str, os_version: str, arch: str) -> str:
    """The flat apt repository a build of this target uses."""
    return f"{base.rstrip('/')}/{version}/{repo_os(os_distribution, os_version)}/{REPO_ARCH[arch]}/"


def builds_kernel_modules(profile: str) -> bool:
    return profile in KERNEL_PROFILES
