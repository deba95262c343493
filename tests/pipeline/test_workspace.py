"""The lazy chain that lays out the prepared CanvOS context, inspected offline."""

from __future__ import annotations

from typing import Any

import pytest
from dagger import Directory, dag

from pipeline import canvos, hostitems, workspace
from pipeline.errors import InvalidInput
from pipeline.inputs import REPO_DIR, Airgap, Bfb, BuildInputs, dagger_bfb


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


def test_a_bfb_is_copied_into_the_host_layout_as_a_file() -> None:
    # The BFB (hundreds of MB) is a withFile of the engine's File: its
    # content never becomes a query argument (no withNewFile, no contents()).
    bfb = dag.directory().with_new_file("b.bfb", "BFB").file("b.bfb")
    given: BuildInputs[Directory, Any] = BuildInputs(bfb=bfb, bfb_info=Bfb("bf-bundle.bfb", 3))
    context = workspace.prepared_context(dag.directory(), dag.directory(), {}, given)
    copies = [args for name, args in steps(context) if name == "withFile"]
    assert copies == [{"path": f"{hostitems.BFB_DIR}/bf-bundle.bfb", "source": bfb}]


class _EngineFile:
    """What ``inputs.dagger_bfb`` asks of a ``dagger.File``: name and size."""

    def __init__(self, name: str, size: int) -> None:
        self._name, self._size = name, size
        self.asked: list[str] = []

    async def name(self) -> str:
        self.asked.append("name")
        return self._name

    async def size(self) -> int:
        self.asked.append("size")
        return self._size


async def test_of_a_dagger_bfb_only_name_and_size_are_asked() -> None:
    good = _EngineFile("bf-bundle-2.9.1.bfb", 700_000_000)
    assert await dagger_bfb(good) == Bfb("bf-bundle-2.9.1.bfb", 700_000_000)  # type: ignore[arg-type]
    assert good.asked == ["name", "size"]  # never contents()
    with pytest.raises(InvalidInput, match=r"is not a \.bfb file name"):
        await dagger_bfb(_EngineFile("bundle.tar", 1))  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="is empty"):
        await dagger_bfb(_EngineFile("x.bfb", 0))  # type: ignore[arg-type]
