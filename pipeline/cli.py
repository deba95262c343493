"""``canvos-doca plan|render``: the pipeline's core without a Dagger engine.

Exit codes: 0 ok, 2 invalid input (message on stderr, no traceback).
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

from pipeline import canvos
from pipeline.context import (
    CanvosTree,
    Overlays,
    Prepared,
    bind_mount_plan,
    classify_airgap,
    describe,
    prepare,
    warnings,
)
from pipeline.errors import EXIT_INVALID_INPUT, InvalidInput, Problem
from pipeline.plan import plan_text
from pipeline.reference import knob_table
from pipeline.spec import (
    BOOL_FIELDS,
    FIELD_NAMES,
    LIST_FIELDS,
    BuildSpec,
    build_spec,
    default,
    doc,
    kebab,
    parse_config,
)

OVERLAYS_DIR = Path(__file__).resolve().parent.parent / "overlays"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="canvos-doca",
        description="Build spec and CanvOS build context for Palette Edge images with "
        "NVIDIA DOCA-Host, without a Dagger engine.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    plan = commands.add_parser("plan", help="print the resolved build and its warnings")
    commands.add_parser("knobs", help="print every knob with its default (Markdown table)")
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
        _add_knobs(sub)
    return parser


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
    config = {}
    if args.config is not None:
        config = parse_config(_read(args.config, "config"), source=str(args.config))
    overrides = {name: getattr(args, name) for name in FIELD_NAMES}
    return build_spec(config, overrides)


def _read(path: Path, field: str) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(
            [Problem(field, str(path), f"cannot be read ({exc.strerror}).", "check the path.")]
        ) from None


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


def _airgap_kind(spec: BuildSpec) -> str:
    if not spec.doca_airgap:
        return ""
    source = Path(spec.doca_airgap)
    if source.is_file():
        return classify_airgap([source.name])
    if source.is_dir():
        return classify_airgap([p.name for p in source.iterdir()])
    raise InvalidInput(
        [Problem("doca_airgap", spec.doca_airgap, "does not exist.", "check the path.")]
    )


def _prepare(spec: BuildSpec, canvos_dir: Path) -> Prepared:
    user_data = _read(Path(spec.user_data), "user_data") if spec.user_data else None
    if spec.doca_repo_key and not Path(spec.doca_repo_key).is_file():
        raise InvalidInput(
            [Problem("doca_repo_key", spec.doca_repo_key, "is not a file.", "check the path.")]
        )
    return prepare(
        spec,
        _tree(canvos_dir),
        _overlays(),
        user_data=user_data,
        airgap_kind=_airgap_kind(spec),
        has_key=bool(spec.doca_repo_key),
    )


def render(spec: BuildSpec, canvos_dir: Path, out: Path, force: bool = False) -> Prepared:
    """Write the prepared checkout to ``out`` (all or nothing)."""
    if out.exists() and not force:
        raise InvalidInput(
            [Problem("out", str(out), "already exists.", "choose a new directory or pass --force.")]
        )
    prepared = _prepare(spec, canvos_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tree = staging / "tree"
        shutil.copytree(canvos_dir, tree, symlinks=True, ignore=shutil.ignore_patterns("build"))
        shutil.copytree(OVERLAYS_DIR, tree / canvos.CONTEXT_DIR, dirs_exist_ok=True)
        _copy_sources(spec, tree)
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


def _copy_sources(spec: BuildSpec, tree: Path) -> None:
    if spec.doca_airgap:
        source, target = Path(spec.doca_airgap), tree / canvos.AIRGAP_DIR
        target.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target / source.name)
    if spec.doca_repo_key:
        key = tree / canvos.KEY_PATH
        key.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(spec.doca_repo_key, key)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "knobs":
        print(knob_table(), end="")
        return 0
    try:
        spec = _spec_from(args)
        if args.command == "render":
            prepared = render(spec, args.canvos, args.out, force=args.force)
            print(plan_text(spec, prepared.description, prepared.warnings), end="")
            print(f"Wrote {args.out}. Next: cd {args.out} && ./earthly.sh +build-all-images")
        else:
            if args.canvos is not None:
                prepared = _prepare(spec, args.canvos)
                description, notes = prepared.description, prepared.warnings
            else:
                description, notes = _description_without_tree(spec)
            print(plan_text(spec, description, notes), end="")
    except InvalidInput as exc:
        print(f"canvos-doca: {exc.render()}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    return 0


def _description_without_tree(spec: BuildSpec) -> tuple[dict[str, object], tuple[str, ...]]:
    """Plan without a checkout: everything but what only the Earthfile knows."""
    mounts = bind_mount_plan(spec)
    tree = CanvosTree(dockerfile="", earthfile="")
    pe = f"<PE_VERSION of {spec.canvos_ref}>"
    return describe(spec, tree, pe, mounts, _airgap_kind(spec)), tuple(warnings(spec))


if __name__ == "__main__":
    raise SystemExit(main())
