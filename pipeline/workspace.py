"""Lazy Dagger chains that fetch CanvOS and lay out the prepared build context.

Nothing here awaits: the functions return ``Directory`` queries that tests
inspect offline and that ``main.py`` resolves at its edges.
"""

from __future__ import annotations

from dagger import Directory, File, dag

from pipeline import canvos
from pipeline.inputs import BuildInputs


def canvos_source(url: str, commit: str) -> Directory:
    """The CanvOS tree at an exact commit (a moving ref must be resolved first)."""
    return dag.git(url).commit(commit).tree()


def prepared_context(
    source: Directory,
    overlays: Directory,
    files: dict[str, str],
    inputs: BuildInputs[Directory, File] | None = None,
) -> Directory:
    """The CanvOS checkout with the overlays, the file inputs and the rendered files."""
    context = source.with_directory(canvos.CONTEXT_DIR, overlays)
    if inputs is not None and inputs.airgap is not None:
        context = context.with_directory(canvos.AIRGAP_DIR, inputs.airgap.source)
    if inputs is not None and inputs.repo_key is not None:
        context = context.with_file(canvos.KEY_PATH, inputs.repo_key)
    for path in sorted(files):
        context = context.with_new_file(path, files[path])
    return context
