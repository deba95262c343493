"""Every container image the pipeline runs, pinned in one place.

Tags are exact (never ``latest``): a moving tag would change builds behind
the cache's back. Cache volume keys are derived from these versions so a
different Earthly or Docker never reuses another version's state.
"""

from __future__ import annotations

from pipeline import facts

# Pins and their sources: pipeline/resources/facts.toml [images].
EARTHLY_IMAGE = facts.EARTHLY_IMAGE
DIND_IMAGE = facts.DIND_IMAGE


def version_of(image: str) -> str:
    """The tag of an image reference (``repo:tag`` or ``repo:tag@sha256:...``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"
