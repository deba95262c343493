"""Every container image the pipeline runs, pinned in one place.

Tags are exact (never ``latest``): a moving tag would change builds behind
the cache's back. Cache volume keys are derived from these versions so a
different Earthly or Docker never reuses another version's state.
"""

from __future__ import annotations

# CanvOS's earthly.sh pins EARTHLY_VERSION=v0.8.15 (checked on tags v4.5.15 and
# v4.9.38 and on main, 2026-11). Upstream Earthly is no longer maintained, so
# the tag is frozen. Spectro mirrors the same image at EARTHLY_MIRROR.
EARTHLY_VERSION = "v0.8.15"
EARTHLY_IMAGE = f"earthly/earthly:{EARTHLY_VERSION}"
EARTHLY_MIRROR = (
    f"us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:{EARTHLY_VERSION}"
)

# Docker daemon that receives Earthly's SAVE IMAGE output. Docker >= 25 writes
# OCI image layouts with `docker save`, which Dagger's Container.import_ reads.
DOCKER_VERSION = "27.5.1"
DIND_IMAGE = f"docker:{DOCKER_VERSION}-dind"


def version_of(image: str) -> str:
    """The tag of an image reference (``repo:tag`` or ``repo:tag@sha256:...``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"
