"""``canvos-doca plan|render``: the pipeline's core without a Dagger engine.

Exit codes: 0 ok, otherwise the failing error class's ``exit_code``
(``pipeline.errors``; 2 for invalid input), with the message on stderr and no
traceback.
``render`` writes into a temporary sibling directory and renames it into
place at the end, so a failure never leaves a half-written output.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from pipeline import canvos, facts, inputs
from pipeline.context import CanvosTree, Overlays, Prepared, describe_ref, prepare, warnings
from pipeline.errors import CanvosDocaError, InvalidInput, Problem, raise_if
from pipeline.inputs import NO_FILES, BuildInputs
from pipeline.plan import plan_text
from pipeline.reference import input_table, knob_table
from pipeline.spec import BOOL_FIELDS, FIELD_NAMES, LIST_FIELDS, BuildSpec, default, doc, kebab

Files = BuildInputs[Path, Path]

OVERLAYS_DIR = Path(__file__).resolve().parent.parent / "overlays"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canvos-doca",
        description="Build spec and CanvOS build context for Palette Edge images with "
        "NVIDIA DOCA-Host, without a Dagger engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resolved build and its warnings")
    commands.add_parser(
        "knobs", help="print every knob with its default, and the file inputs (Markdown tables)"
    )
    render = commands.add_parser(
        "render", help="write a CanvOS checkout prepared for the DOCA build (run earthly.sh on it)"
    )
    render.add_argument("--canvos", required=True, type=Path, help="CanvOS checkout to start from")
    render.add_argument("--out", required=True, type=Path, help="directory to create")
    render.add_argument(
        "--force", action="store_true", help="replace --out if it exists (only after success)"
    )
    plan.add_argument("--canvos", type=Path, help="CanvOS checkout to read PE_VERSION etc. from")
    for sub in (plan, render):
        sub.add_argument("--config", type=Path, help="YAML file of knobs (keys = knob names)")
        _add_file_inputs(sub)
        _add_knobs(sub)
    return parser


def _add_file_inputs(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("file inputs (read once; not config keys)")
    for item in inputs.FILE_INPUTS:
        flag = f"--{kebab(item.name)}"
        group.add_argument(flag, dest=item.name, type=Path, metavar="PATH", help=item.doc)


def _add_knobs(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("build knobs (override --config)")
    for name in FIELD_NAMES:
        flag = f"--{kebab(name)}"
        text = f"{doc(name)} [default: {_shown_default(name)}]"
        if name in BOOL_FIELDS:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=text)
        elif name in LIST_FIELDS:
            group.add_argument(
                flag, dest=name, action="append", metavar="V[,V...]", help=text + " (repeatable)"
            )
        else:
            group.add_argument(flag, dest=name, metavar="VALUE", help=text)


def _shown_default(name: str) -> str:
    value = default(name)
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value or "empty"


def _spec_from(args: argparse.Namespace) -> BuildSpec:
    config = inputs.read_text(args.config, "config") if args.config is not None else None
    overrides = {name: getattr(args, name) for name in FIELD_NAMES}
    return inputs.load_spec(config, str(args.config), overrides)


def _files_from(args: argparse.Namespace) -> Files:
    return inputs.from_paths(*(getattr(args, name) for name in inputs.FILE_INPUT_NAMES))


def _read(path: Path, field: str) -> str:
    return inputs.read_text(path, field)


def _tree(canvos_dir: Path) -> CanvosTree:
    if not canvos_dir.is_dir():
        raise InvalidInput(
            [Problem("canvos", str(canvos_dir), "is not a directory.", "pass a CanvOS checkout.")]
        )
    k8s_json = canvos_dir / "k8s_version.json"
    return CanvosTree(
        dockerfile=_read(canvos_dir / "Dockerfile", "canvos"),
        earthfile=_read(canvos_dir / "Earthfile", "canvos"),
        k8s_versions_json=k8s_json.read_text(encoding="utf-8") if k8s_json.is_file() else None,
        commit=_git_head(canvos_dir),
        local_path=str(canvos_dir.resolve()),
    )


def _git_head(canvos_dir: Path) -> str:
    """The checkout's commit, read from .git without running git."""
    head = canvos_dir / ".git" / "HEAD"
    if not head.is_file():
        return ""
    text = head.read_text().strip()
    if text.startswith("ref: "):
        ref = canvos_dir / ".git" / text[5:]
        return ref.read_text().strip() if ref.is_file() else ""
    return text


def _overlays() -> Overlays:
    return Overlays(
        fragment=(OVERLAYS_DIR / canvos.FRAGMENT).read_text(encoding="utf-8"),
        default_user_data=(OVERLAYS_DIR / canvos.DEFAULT_USER_DATA).read_text(encoding="utf-8"),
    )


def _prepare(spec: BuildSpec, canvos_dir: Path, files: Files) -> Prepared:
    return prepare(spec, _tree(canvos_dir), _overlays(), files)


def render(
    spec: BuildSpec,
    canvos_dir: Path,
    out: Path,
    force: bool = False,
    files: Files = NO_FILES,
) -> Prepared:
    """Write the prepared checkout to ``out`` (all or nothing)."""
    if out.exists() and not force:
        raise InvalidInput(
            [Problem("out", str(out), "already exists.", "choose a new directory or pass --force.")]
        )
    prepared = _prepare(spec, canvos_dir, files)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tree = staging / "tree"
        shutil.copytree(
            canvos_dir, tree, symlinks=True, ignore=shutil.ignore_patterns(facts.CANVOS_BUILD_DIR)
        )
        shutil.copytree(OVERLAYS_DIR, tree / canvos.CONTEXT_DIR, dirs_exist_ok=True)
        _copy_sources(files, tree)
        for relative, content in prepared.files.items():
            target = tree / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
        if out.exists():
            old = staging / "old"
            out.rename(old)
        tree.rename(out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return prepared


def _copy_sources(files: Files, tree: Path) -> None:
    if files.airgap is not None:
        source, target = files.airgap.source, tree / canvos.AIRGAP_DIR
        target.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / source.name)
    if files.repo_key is not None:
        key = tree / canvos.KEY_PATH
        key.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(files.repo_key, key)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "knobs":
        print(knob_table() + "\n" + input_table(), end="")
        return 0
    try:
        spec, files = _inputs_from(args)
        if args.command == "render":
            prepared = render(spec, args.canvos, args.out, force=args.force, files=files)
            print(plan_text(prepared.description, prepared.warnings), end="")
            print(f"Wrote {args.out}. Next: cd {args.out} && ./earthly.sh +build-all-images")
        elif args.canvos is not None:
            prepared = _prepare(spec, args.canvos, files)
            print(plan_text(prepared.description, prepared.warnings), end="")
        else:
            description = describe_ref(spec, files)
            print(plan_text(description, warnings(description)), end="")
    except CanvosDocaError as exc:
        print(f"canvos-doca: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    return 0


def _inputs_from(args: argparse.Namespace) -> tuple[BuildSpec, Files]:
    """The spec and the file inputs, with the problems of both reported at once."""
    problems: list[Problem] = []
    spec, files = None, None
    try:
        spec = _spec_from(args)
    except InvalidInput as exc:
        problems += exc.problems
    try:
        files = _files_from(args)
    except InvalidInput as exc:
        problems += exc.problems
    raise_if(problems)
    assert spec is not None and files is not None
    return spec, files


if __name__ == "__main__":
    raise SystemExit(main())
