"""``host_files`` sources in the Dagger module: --host-files-dir is registered
with its Doc and upload filter, and the module's own resolve step reads each
source through that Directory (the engine's answers come from host files,
``host_engine.HostEngine``), with the CLI's limits and messages."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import dagger
import pytest
from dagger import dag
from host_engine import HostEngine
from registration import CONSTRUCTOR, registered_functions

from pipeline import hostitems, inputs, spec, textfile
from pipeline.context import prepare
from pipeline.errors import InvalidInput
from pipeline.main import CanvosDoca
from tests.unit.conftest import make_canvos_tree, overlays
from tests.unit.conftest import tree as canvos_tree

ROOT = Path(__file__).parents[2]
TEXT = "configure system hostname .\nconfigure lldp portidsubtype iframe\n"
SECRET = "s3cr3t-Sentinel-77a0b1"
ENTRY = '/etc/lldpd.d/rcp-lldpd.conf: {source: files/lldpd.conf, mode: "0600"}'


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return make_canvos_tree(tmp_path / "CanvOS")


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "files").mkdir(parents=True)
    (root / "files" / "lldpd.conf").write_text(TEXT)
    return root


def config_file(root: Path, *entries: str) -> dagger.File:
    path = root / "knobs.yaml"
    path.write_text("host_files:\n" + "".join(f"  {e}\n" for e in entries))
    return dag.host().file(str(path))


def module(tree: Path, **kwargs: Any) -> CanvosDoca:
    host = dag.host()
    return CanvosDoca(
        overlays=host.directory(str(ROOT / "overlays")), canvos=host.directory(str(tree)), **kwargs
    )


def host_layout(files: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in files.items() if k.startswith(hostitems.HOST_DIR)}


# -------------------------------------------------------------- registration


def test_host_files_dir_is_an_optional_documented_directory() -> None:
    arg = registered_functions()[CONSTRUCTOR]["host-files-dir"]
    assert arg.type == "Directory" and arg.optional and arg.default_path is None
    assert "source:" in arg.doc and textfile.size_text(spec.HOST_FILE_LIMIT) in arg.doc
    assert arg.ignore == (".git",)


# ------------------------------------------------------------ reading


async def test_a_source_is_read_through_the_directory_into_the_same_layout(
    tree: Path, site: Path
) -> None:
    engine = HostEngine()
    canvos = module(
        tree, config=config_file(site, ENTRY), host_files_dir=dag.host().directory(str(site))
    )
    with engine.running():
        resolved = await canvos._resolve()
    assert engine.read.count(site / "files" / "lldpd.conf") == 1  # read once
    with HostEngine().running():
        plan = await canvos.plan()
    inline = inputs.load_spec(
        None,
        "config",
        {"host_files": {"/etc/lldpd.d/rcp-lldpd.conf": {"content": TEXT, "mode": "0600"}}},
    )
    expected = prepare(inline, canvos_tree(), overlays()).files
    assert host_layout(resolved.prepared.files) == host_layout(expected)
    assert "from files/lldpd.conf" in plan and TEXT.splitlines()[0] not in plan
    # the text reaches the context as the host/ file, as inline content does
    written = [f for f in resolved.prepared.files.values() if f == TEXT]
    assert written == [TEXT]


async def test_a_source_without_host_files_dir_says_what_to_pass(tree: Path, site: Path) -> None:
    engine = HostEngine()
    with engine.running(), pytest.raises(InvalidInput) as caught:
        await module(tree, config=config_file(site, ENTRY)).plan()
    (problem,) = caught.value.problems
    assert problem.field == "host_files[/etc/lldpd.d/rcp-lldpd.conf].source"
    assert problem.value == "files/lldpd.conf" and "--host-files-dir DIR" in problem.fix
    assert site / "files" / "lldpd.conf" not in engine.read


@pytest.mark.parametrize(
    ("source", "data", "message"),
    [
        ("../outside.conf", None, "leads out of its directory ('..')"),
        ("/etc/passwd", None, "is absolute"),
        ("files/nope.conf", None, "is not a file in --host-files-dir"),
        ("files", None, "is not a file in --host-files-dir"),
        ("files/blob", SECRET.encode() + b"\0\x01", "is binary (a NUL byte at offset"),
        ("files/latin1", SECRET.encode() + b"\xe9t\xe9\n", "is not UTF-8 text"),
        (
            "files/big",
            SECRET.encode() + b"a" * spec.HOST_FILE_LIMIT,
            f"is larger than {textfile.size_text(spec.HOST_FILE_LIMIT)}",
        ),
    ],
)
async def test_bad_sources_are_refused_naming_the_entry_never_the_content(
    tree: Path, site: Path, source: str, data: bytes | None, message: str
) -> None:
    (site.parent / "outside.conf").write_text(SECRET)
    if data is not None:
        (site / source).write_bytes(data)
    engine = HostEngine()
    canvos = module(
        tree,
        config=config_file(site, f"/etc/a.conf: {{source: {source}}}"),
        host_files_dir=dag.host().directory(str(site)),
    )
    with engine.running(), pytest.raises(InvalidInput) as caught:
        await canvos.plan()
    (problem,) = caught.value.problems
    assert problem.field == "host_files[/etc/a.conf].source" and problem.value == source
    assert message in problem.message and SECRET not in str(caught.value)
    if source == "files/big":
        assert site / source not in engine.read  # refused by size, before contents()
    if source.startswith(("..", "/")):
        assert not engine.read[1:]  # only the config file was read
