"""The disk a Dagger build needs on the engine host: an estimate for ``plan``. Pure.

Sizes are the estimates in ``facts.toml`` ``[disk]`` (each with its basis);
what is counted follows where the chains put each copy (``pipeline.earthly``):

* Earthly's BuildKit state: the cache volume, kept between runs.
* The docker daemon's state: the cache volume holds one image at a time
  (each is verified, saved and removed before the next target runs).
* One OCI tarball per provider image; ``build``'s output directory
  hard-links it (no second copy).
* The ISO from ``+iso``, and a second one when user-data secrets are
  written onto it.
* The tool images the engine pulls.

``provider-image`` also imports its tarball as a container (the layers
once more, packed and unpacked): about two more image sizes.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline import facts


@dataclass(frozen=True)
class Need:
    """One place that holds data during a build: GB and why."""

    what: str
    gb: int
    why: str


def estimate(k8s_versions: int, user_data_secrets: bool) -> list[Need]:
    """What ``build`` with ``k8s_versions`` provider images needs (GB), item by item."""
    gb = facts.DISK_GB
    image, iso = gb["provider_image"], gb["iso"]
    extra = max(k8s_versions - 1, 0)
    earthly = gb["earthly_state"] + extra * gb["earthly_per_k8s_version"]
    isos = 2 if user_data_secrets else 1
    iso_why = "+iso's output" + (" and the copy with the user-data secrets" if isos == 2 else "")
    tools = "earthly, docker:dind" + (", ISO tool" if user_data_secrets else "")
    return [
        Need(
            "Earthly state",
            earthly,
            "cache volume, kept between runs"
            + (f"; +{gb['earthly_per_k8s_version']} per extra K8s version" if extra else ""),
        ),
        Need("docker state", image, "cache volume; one image at a time, removed once saved"),
        Need(
            "provider tarballs",
            k8s_versions * image,
            f"{k8s_versions} x {image}; build's output directory hard-links them",
        ),
        Need("ISO", isos * iso, iso_why),
        Need("tool images", gb["tool_images"], tools),
    ]


def total_gb(k8s_versions: int, user_data_secrets: bool) -> int:
    """The sum of ``estimate``."""
    return sum(need.gb for need in estimate(k8s_versions, user_data_secrets))


def plan_lines(k8s_versions: int, user_data_secrets: bool, airgap: bool = False) -> list[str]:
    """The ``plan`` section: each item, the total, and what else to reserve
    (``airgap``: a --doca-airgap source, which Earthly copies with the context)."""
    needs = estimate(k8s_versions, user_data_secrets)
    total = total_gb(k8s_versions, user_data_secrets)
    width = max(len(n.what) for n in needs)
    export = k8s_versions * facts.DISK_GB["provider_image"] + facts.DISK_GB["iso"]
    lines = ["  Disk on the engine host (estimate for build on a cold engine, GB)"]
    lines += [f"    {n.what:<{width}}  {n.gb:>3}  {n.why}" for n in needs]
    plus = " + the size of --doca-airgap (in the build context)" if airgap else ""
    lines.append(f"    {'total':<{width}}  {total:>3}{plus}")
    lines.append(f"    Exporting build/ needs {export} GB more where you export it.")
    lines.append(
        f"    provider-image imports its image as a container: "
        f"+{2 * facts.DISK_GB['provider_image']} GB. Basis: facts.toml [disk]."
    )
    return lines
