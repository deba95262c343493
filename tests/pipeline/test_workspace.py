"""The lazy chain that lays out the prepared CanvOS context, inspected offline."""

from __future__ import annotations

from typing import Any

from dagger import Directory, dag

from pipeline import canvos, workspace
from pipeline.inputs import REPO_DIR, Airgap, BuildInputs


def steps(obj: Any) -> list[tuple[str, dict[str, Any]]]:
    return [(field.name, field.args) for field in obj._ctx.selections]


def test_canvos_source_is_pinned_to_a_commit() -> None:
    tree = workspace.canvos_source("https://github.com/spectrocloud/CanvOS.git", "a" * 40)
    assert steps(tree) == [
        ("git", {"url": "https://github.com/spectrocloud/CanvOS.git"}),
        ("commit", {"id": "a" * 40}),
        ("tree", {}),
    ]


def test_overlays_sources_and_files_are_placed() -> None:
    source: Directory = dag.directory()
    overlays: Directory = dag.directory().with_new_file("doca/Dockerfile.fragment", "RUN true")
    airgap: Directory = dag.directory()
    key = dag.directory().with_new_file("k", "KEY").file("k")
    files = {"Dockerfile": "FROM x", ".arg": "A=1", "user-data": "#cloud-config"}
    given = BuildInputs(user_data=None, airgap=Airgap(REPO_DIR, airgap), repo_key=key)
    context = workspace.prepared_context(source, overlays, files, given)
    chain = steps(context)[len(steps(source)) :]
    names = [name for name, _ in chain]
    assert names[:3] == ["withDirectory", "withDirectory", "withFile"]
    assert chain[0][1]["path"] == canvos.CONTEXT_DIR and chain[0][1]["source"] is overlays
    assert chain[1][1]["path"] == canvos.AIRGAP_DIR and chain[1][1]["source"] is airgap
    assert chain[2][1]["path"] == canvos.KEY_PATH
    written = {args["path"]: args["contents"] for name, args in chain if name == "withNewFile"}
    assert written == files


def test_without_airgap_or_key_only_overlays_and_files() -> None:
    context = workspace.prepared_context(dag.directory(), dag.directory(), {"a": "1"})
    names = [name for name, _ in steps(context)]
    assert names.count("withDirectory") == 1 and "withFile" not in names
