"""What canvos-doca knows about NVIDIA DOCA-Host: versions, profiles, repos.

Facts from NVIDIA's DOCA-Host release notes (see DOMAIN.md §4). The image
stage (overlays/doca/) derives the repository path from the image itself;
this module validates the user's choice before any build starts.
"""

from __future__ import annotations

import re

from pipeline import facts

DEFAULT_VERSION = facts.DOCA_DEFAULT_VERSION
DEFAULT_PROFILE = facts.DOCA_DEFAULT_PROFILE
DEFAULT_REPO_URL = facts.DOCA_DEFAULT_REPO_URL
SERIES_OFED = facts.DOCA_SERIES_OFED
LTS_SERIES = facts.DOCA_LTS_SERIES
PROFILES = tuple(p.name for p in facts.DOCA_PROFILES)
KERNEL_PROFILES = tuple(p.name for p in facts.DOCA_PROFILES if p.kernel_modules)
SUPPORTED_OS = facts.DOCA_SUPPORTED_OS
REPO_ARCH = facts.DOCA_REPO_ARCH

_VERSION_RE = re.compile(facts.DOCA_VERSION_PATTERN)


def series(version: str) -> str | None:
    """``"3.2.1"`` -> ``"3.2"``; None when the version is not X.Y.Z."""
    if not _VERSION_RE.fullmatch(version):
        return None
    major, minor, _ = version.split(".")
    return f"{major}.{minor}"


def ofed_release(version: str) -> str | None:
    """The DOCA-OFED release a DOCA version ships, if the series is known."""
    found = series(version)
    return SERIES_OFED.get(found) if found else None


def repo_os(os_distribution: str, os_version: str) -> str:
    """The OS directory name of the DOCA repo, e.g. ``ubuntu22.04``."""
    return f"{os_distribution}{os_version}"


def repo_url(base: str, version: str, os_distribution: str, os_version: str, arch: str) -> str:
    """The flat apt repository a build of this target uses."""
    return facts.DOCA_REPO_LAYOUT.format(
        base=base.rstrip("/"),
        version=version,
        os_dir=repo_os(os_distribution, os_version),
        arch_dir=REPO_ARCH[arch],
    )


def builds_kernel_modules(profile: str) -> bool:
    return profile in KERNEL_PROFILES
