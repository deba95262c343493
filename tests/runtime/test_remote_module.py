"""Calling the module remotely: ``dagger -m github.com/OWNER/canvos-doca@TAG call ...``.

The engine runs the module in its own container whatever the caller's working
directory; the only files a module gets without the caller passing them are
its ``DefaultPath`` arguments. For a git module the engine resolves a relative
default path inside the repository at that ref, below the module's source
directory (dagger/dagger ``core/modulesource.go``, ``LoadContextDir`` ->
``loadContextFromSource``, ``ModuleSourceKindGit``; v0.21.8), from the git
tree, not from the caller's disk. So every default path must be committed.
(A real remote call is in tests/engine/test_module_on_engine.py.)
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path, PurePosixPath

from pipeline import canvos
from tests.pipeline import registration

ROOT = Path(__file__).parents[2]


def default_paths() -> dict[str, str]:
    """``function --argument`` -> its DefaultPath, over every registered function."""
    return {
        f"{name or '(constructor)'} --{arg.name}": arg.default_path
        for name, function in registration.registration().items()
        for arg in function.args.values()
        if arg.default_path
    }


def committed() -> set[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return set(filter(None, listed.stdout.split("\0")))


def test_every_default_path_is_committed_below_the_module_source() -> None:
    source = json.loads((ROOT / "dagger.json").read_text())["source"]
    files = committed()
    paths = default_paths()
    assert paths, "the overlays come from the module through a DefaultPath"
    for where, path in paths.items():
        # Absolute: from the repository root; relative: from the module source.
        full = PurePosixPath(path.lstrip("/") if path.startswith("/") else f"{source}/{path}")
        prefix = "" if str(full) == "." else f"{full}/"
        assert any(f.startswith(prefix) for f in files), f"{where}: {path} is not committed"


def test_the_files_the_module_reads_from_its_overlays_are_committed() -> None:
    paths = default_paths()
    overlays = paths["(constructor) --overlays"]
    files = committed()
    for name in (canvos.FRAGMENT, canvos.DEFAULT_USER_DATA):
        assert f"{overlays}/{name}" in files, name
