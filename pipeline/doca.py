"""DOCA-Host rules derived from the facts: versions, profiles, repositories.

The facts themselves (series, profiles, repository layout; NVIDIA's DOCA-Host
release notes) are in ``pipeline/resources/facts.toml``. The image stage
(overlays/doca/) derives the repository path from the image itself; this
module validates the user's choice before any build starts.
"""

from __future__ import annotations

import re

from pipeline import facts

# Profile meta-package names, in the order users see them.
PROFILES: tuple[str, ...] = tuple(p.name for p in facts.DOCA_PROFILES)
# Profiles that install DKMS kernel modules.
KERNEL_PROFILES: tuple[str, ...] = tuple(p.name for p in facts.DOCA_PROFILES if p.kernel_modules)
# Profiles that ship OVS-DOCA, whose database must persist.
OVS_PROFILES: tuple[str, ...] = tuple(p.name for p in facts.DOCA_PROFILES if p.ovs_state)
# OS_DISTRIBUTION -> releases DOCA-Host supports.
SUPPORTED_OS = facts.DOCA_SUPPORTED_OS
LTS_SERIES = facts.DOCA_LTS_SERIES

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
    return facts.DOCA_SERIES_OFED.get(found) if found else None


def repo_url(base: str, version: str, os_distribution: str, os_version: str, arch: str) -> str:
    """The flat apt repository a build of this target uses, e.g.
    ``<base>/3.2.2/ubuntu22.04/x86_64/``."""
    return facts.DOCA_REPO_LAYOUT.format(
        base=base.rstrip("/"),
        version=version,
        os_dir=f"{os_distribution}{os_version}",
        arch_dir=facts.DOCA_REPO_ARCH[arch],
    )
