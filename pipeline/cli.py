"""``canvos-doca plan|render``: the pipeline's core without a Dagger engine.

Exit codes: 0 ok, 2 invalid input or a file that cannot be read or written
(one ``canvos-doca: ...`` line on stderr naming the path and the fix, no
traceback). How ``render`` writes (staging, ``--force``, in place, links,
permissions) is described in ``pipeline/output.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from pipeline import airgap, canvos, checkout, output, textfile
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

OVERLAYS_DIR = output.package_overlays()
# What --config and --user-data must be, and their size limits (pipeline/textfile.py).
_USER_FILES = {
    "config": (textfile.CONFIG_LIMIT, "a YAML file of knobs (keys = knob names)"),
    "user_data": (textfile.USER_DATA_LIMIT, "a #cloud-config YAML file"),
}


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
    render.add_argument(
        "--out",
        required=True,
        type=Path,
        help="directory to create (must not exist or be empty); made 0700",
    )
    render.add_argument(
        "--force",
        action="store_true",
        help="replace an earlier render at --out, keeping its build/ (only after success); "
        "with --out equal to --canvos, render in place",
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
    """A user-named text file, size-limited and UTF-8 (``InvalidInput`` otherwise)."""
    limit, what = _USER_FILES[field]
    return textfile.read_user_file(path, field, limit, what)


def _tree(canvos_dir: Path) -> CanvosTree:
    root = checkout.open_checkout(canvos_dir)
    return CanvosTree(
        dockerfile=checkout.read_file(root, "Dockerfile") or "",
        earthfile=checkout.read_file(root, "Earthfile") or "",
        k8s_versions_json=checkout.read_file(root, "k8s_version.json"),
        commit=checkout.commit(root),
        local_path=str(root),
    )


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


def render(
    spec: BuildSpec,
    canvos_dir: Path,
    out: Path,
    force: bool = False,
    config: Path | None = None,
) -> Prepared:
    """Write the prepared checkout to ``out`` (rules: ``pipeline/output.py``).

    ``config`` is the --config file, only so that ``--force`` never deletes it.
    Raises ``InvalidInput`` before anything is written when an input is wrong.
    """
    inputs = {
        "config": config,
        "user_data": Path(spec.user_data) if spec.user_data else None,
        "doca_airgap": Path(spec.doca_airgap) if spec.doca_airgap else None,
        "doca_repo_key": Path(spec.doca_repo_key) if spec.doca_repo_key else None,
    }
    target = output.check_target(out, canvos_dir, force, inputs)
    prepared = _prepare(spec, canvos_dir)
    airgap.check(spec.doca_airgap, spec.doca_version)
    output.write(target, checkout.open_checkout(canvos_dir), prepared.files, _sources(spec))
    return prepared


def _sources(spec: BuildSpec) -> list[output.Source]:
    """What render copies besides the checkout: overlays, air-gapped source, key."""
    sources = [output.Source(OVERLAYS_DIR, canvos.CONTEXT_DIR, "overlays")]
    if spec.doca_airgap:
        source = Path(spec.doca_airgap)
        into = canvos.AIRGAP_DIR if source.is_dir() else f"{canvos.AIRGAP_DIR}/{source.name}"
        sources.append(output.Source(source, into, "doca_airgap"))
    if spec.doca_repo_key:
        sources.append(output.Source(Path(spec.doca_repo_key), canvos.KEY_PATH, "doca_repo_key"))
    return sources


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "knobs":
        print(knob_table(), end="")
        return 0
    try:
        spec = _spec_from(args)
        if args.command == "render":
            prepared = render(spec, args.canvos, args.out, force=args.force, config=args.config)
            print(plan_text(spec, prepared.description, prepared.warnings), end="")
            print(output.next_steps(Path(os.path.abspath(args.out)), spec.k8s_version), end="")
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
