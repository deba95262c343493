"""Run the DOCA stage's own verify script inside a built image. Lazy, no awaits.

The script and the manifest are installed by ``overlays/doca/tools/customize.sh``
(finalize); the paths are the image-side contract of the DOCA stage.
"""

from __future__ import annotations

from dagger import Container, ReturnType

from pipeline.persistence import IMAGE_SHARE_DIR, IMAGE_TOOLS

VERIFY_COMMAND = IMAGE_TOOLS[0]
DOCA_MANIFEST = f"{IMAGE_SHARE_DIR}/manifest.json"


def verified(image: Container) -> Container:
    """The image after running the verify script; its exit code is kept, not
    raised, so callers can return the report together with the verdict."""
    return image.with_exec([VERIFY_COMMAND], expect=ReturnType.ANY)


def report(name: str, exit_code: int, output: str) -> str:
    """The verify report with a one-line verdict on top."""
    verdict = "passed" if exit_code == 0 else f"FAILED (exit code {exit_code})"
    return f"canvos-doca verify {name}: {verdict}\n{output.rstrip()}\n"
