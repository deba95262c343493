"""``canvos-doca plan|render``: the pipeline's core without a Dagger engine.

Exit codes: 0 ok, otherwise the failing error class's ``exit_code``
(``pipeline.errors``; 2 for invalid input or a file that cannot be read or
written), with one ``canvos-doca: ...`` line per problem on stderr naming the
path and the fix, and no traceback. How ``render`` writes (staging,
``--force``, in place, links, permissions) is described in ``pipeline/output.py``.
"""

from __future__ import annotations

import argparse
import dataclasses
import difflib
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

from pipeline import (
    airgap,
    canvos,
    checkout,
    facts,
    hostitems,
    hostsources,
    inputs,
    output,
    presets,
    userdata,
)
from pipeline.context import CanvosTree, Overlays, Prepared, describe_ref, prepare, warnings
from pipeline.daggeronly import DAGGER_ONLY
from pipeline.description import tool_version
from pipeline.errors import HIDDEN, CanvosDocaError, InvalidInput, Problem, raise_if
from pipeline.inputs import NO_FILES, BuildInputs
from pipeline.plan import plan_text
from pipeline.reference import input_table, knob_table
from pipeline.spec import (
    BOOL_FIELDS,
    CONFIG_ONLY,
    FLAG_FIELD_NAMES,
    LIST_FIELDS,
    LIST_SEPARATORS,
    BuildSpec,
    default,
    doc,
    kebab,
    split_list,
)

Files = BuildInputs[Path, Path]

OVERLAYS_DIR = output.package_overlays()


class _Parser(argparse.ArgumentParser):
    """argparse without prefix matching (``--force`` is not
    ``--force-interactive-install``), for the parser and every sub-command."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs["allow_abbrev"] = False
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """argparse's error with the value it would quote left out (it may be
        a secret: ``--force=TOKEN``, a token typed as the sub-command)."""
        message = re.sub(
            r"(ignored explicit argument|invalid choice:) '.*?'( |$)", r"\1\2", message
        )
        super().error(message)


# Knobs render never takes: it builds the --canvos checkout as it is.
_NOT_ON_RENDER = ("canvos_ref", "canvos_url")
_FLAG = re.compile(r"--[A-Za-z0-9][A-Za-z0-9_-]*")


def _parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """The parser and its sub-commands' parsers by name."""
    parser = _Parser(
        prog="canvos-doca",
        description="Build spec and CanvOS build context for Palette Edge images with "
        "NVIDIA DOCA-Host, without a Dagger engine.",
    )
    parser.add_argument("--version", action="version", version=f"canvos-doca {tool_version()}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    plan = commands.add_parser(
        "plan",
        help="print the resolved build and its warnings",
        usage="%(prog)s [--canvos DIR] [--config FILE] [--FLAG VALUE ...] (see --help)",
    )
    knobs = commands.add_parser(
        "knobs", help="print every knob with its default, and the file inputs (Markdown tables)"
    )
    presets_ = commands.add_parser(
        "presets", help="list the shipped presets (--preset NAME), one line each"
    )
    render = commands.add_parser(
        "render",
        help="write a CanvOS checkout prepared for the DOCA build (run earthly.sh on it)",
        usage="%(prog)s --canvos DIR --out DIR [--force] [--config FILE] [--FLAG VALUE ...] "
        "(see --help)",
    )
    render.add_argument("--canvos", required=True, type=Path, help="CanvOS checkout to start from")
    render.add_argument("--out", required=True, type=Path, help="directory to create")
    render.add_argument(
        "--force", action="store_true", help="replace --out if it exists (only after success)"
    )
    plan.add_argument("--canvos", type=Path, help="CanvOS checkout to read PE_VERSION etc. from")
    for sub, skip in ((plan, ()), (render, _NOT_ON_RENDER)):
        sub.add_argument("--config", type=Path, help="YAML file of knobs (keys = knob names)")
        _add_file_inputs(sub)
        _add_knobs(sub, skip)
    return parser, {"plan": plan, "knobs": knobs, "presets": presets_, "render": render}


def _flags(parser: argparse.ArgumentParser) -> list[str]:
    return [o for a in parser._actions for o in a.option_strings if o.startswith("--")]


def _unknown(
    extra: Sequence[str], command: str, subs: Mapping[str, argparse.ArgumentParser]
) -> str:
    """The error for arguments ``command`` does not take: flag names only
    (a value may be a secret, e.g. ``--edge-host-token eyJ...``), each with
    a hint where one helps."""
    flags = [a.split("=", 1)[0] for a in extra if _FLAG.fullmatch(a.split("=", 1)[0])]
    values = len(extra) - len(flags)
    head = "unrecognized arguments" + (": " + " ".join(flags) if flags else "")
    if values:
        head += f" (and {values} value{'s' if values > 1 else ''}, not shown)"
    hints = [hint for flag in dict.fromkeys(flags) if (hint := _hint(flag, command, subs))]
    return "; ".join([head, *hints])


def _hint(flag: str, command: str, subs: Mapping[str, argparse.ArgumentParser]) -> str:
    """What to type instead of ``flag`` on ``command`` ("" when nothing fits)."""
    dashed = "--" + flag[2:].replace("_", "-")
    name = dashed[2:].replace("-", "_")
    own = _flags(subs[command])
    if dashed in own:
        return f"did you mean {dashed} (flags are written with '-', not '_')?"
    if name in DAGGER_ONLY:
        return f"{dashed} is an argument of the Dagger module only; on the CLI: {DAGGER_ONLY[name]}"
    if name in CONFIG_ONLY:
        return f"{name} is set in --config only (its sources: next to the --config file)"
    if command == "render" and name in _NOT_ON_RENDER:
        return (
            f"render builds the --canvos checkout as it is: check the ref out there "
            f"(git -C DIR checkout TAG) instead of {dashed}"
        )
    elsewhere = [c for c, sub in subs.items() if c != command and dashed in _flags(sub)]
    if elsewhere:
        return f"{dashed} is a flag of {' and '.join(elsewhere)}, not {command}"
    close = difflib.get_close_matches(dashed, own, n=1)
    return f"did you mean {close[0]} (not {flag})?" if close else ""


def _add_file_inputs(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("file inputs (read once; not config keys)")
    for item in inputs.FILE_INPUTS:
        flag = f"--{kebab(item.name)}"
        group.add_argument(flag, dest=item.name, type=Path, metavar="PATH", help=item.doc)


def _add_knobs(parser: argparse.ArgumentParser, skip: Sequence[str] = ()) -> None:
    group = parser.add_argument_group(
        "build knobs (override --config, which overrides --preset; host_files is set in "
        "--config only, its source: paths relative to the --config file's directory)"
    )
    for name in FLAG_FIELD_NAMES:
        if name in skip:
            continue
        flag = f"--{kebab(name)}"
        text = f"{doc(name)} [default: {_shown_default(name)}]"
        if name in BOOL_FIELDS:
            group.add_argument(flag, dest=name, action=argparse.BooleanOptionalAction, help=text)
        elif name in LIST_FIELDS:
            separator = LIST_SEPARATORS[name]
            metavar = "'V V...'" if separator == " " else f"V[{separator}V...]"
            group.add_argument(
                flag,
                dest=name,
                action="extend",
                type=_splitter(name),
                metavar=metavar,
                help=text + " (repeatable)",
            )
        else:
            metavar = "NAME" if name == "preset" else "VALUE"
            group.add_argument(flag, dest=name, metavar=metavar, help=text)


def _splitter(name: str) -> Callable[[str], list[str]]:
    """One flag value of list knob ``name`` as its items: split like a text
    value of the config file (``spec.split_list``); an empty value stays
    empty, so ``--k8s-version ''`` still reaches the "never empty" check."""
    return lambda text: list(split_list(name, text))


def _shown_default(name: str) -> str:
    value = default(name)
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return "true" if value else "false"
    return value or "empty"


def _spec_from(args: argparse.Namespace) -> tuple[BuildSpec, dict[str, Path]]:
    """The spec, and the ``host_files`` sources read for it (paths): a source
    is relative to the --config file's directory."""
    overrides = {name: getattr(args, name, None) for name in FLAG_FIELD_NAMES}
    if args.config is None:
        return inputs.load_spec(None, "config", overrides), {}
    parsed = inputs.parse(inputs.read_text(args.config, "config"), str(args.config))
    root = Path(os.path.abspath(args.config)).parent
    parsed, read = hostsources.load_local(parsed, root, f"{root} (the --config file's directory)")
    return inputs.resolve_layers(parsed, overrides), read


def _files_from(args: argparse.Namespace) -> Files:
    return inputs.from_paths(*(getattr(args, name) for name in inputs.FILE_INPUT_NAMES))


def _tree(canvos_dir: Path) -> CanvosTree:
    root = checkout.open_checkout(canvos_dir)
    return CanvosTree(
        dockerfile=checkout.read_file(root, facts.CANVOS_DOCKERFILE) or "",
        earthfile=checkout.read_file(root, facts.CANVOS_EARTHFILE) or "",
        k8s_versions_json=checkout.read_file(root, "k8s_version.json"),
        commit=checkout.commit(root),
        tag=checkout.tag(root),
        local_path=str(root),
    )


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
    paths: Mapping[str, Path | None] | None = None,
) -> Prepared:
    """Write the prepared checkout to ``out`` (rules: ``pipeline/output.py``).

    ``paths`` are the files the user named (field -> path: --config and the
    file inputs), only so that ``--force`` never deletes one of them. Raises
    ``InvalidInput`` before anything is written when an input is wrong.
    """
    target = output.check_target(out, canvos_dir, force, paths)
    prepared = _prepare(spec, canvos_dir, files)
    if files.airgap is not None:
        airgap.check(str(files.airgap.source), spec.doca_version)
    output.write(target, checkout.open_checkout(canvos_dir), prepared.files, _sources(files))
    return prepared


def _sources(files: Files) -> list[output.Source]:
    """What render copies besides the checkout: overlays, air-gapped source, key, BFB."""
    sources = [output.Source(OVERLAYS_DIR, canvos.CONTEXT_DIR, "overlays")]
    if files.airgap is not None:
        source = files.airgap.source
        into = canvos.AIRGAP_DIR if source.is_dir() else f"{canvos.AIRGAP_DIR}/{source.name}"
        sources.append(output.Source(source, into, "doca_airgap"))
    if files.repo_key is not None:
        sources.append(output.Source(files.repo_key, canvos.KEY_PATH, "doca_repo_key"))
    if files.signing_cert is not None:
        # The certificate only: the private key is never copied anywhere.
        sources.append(
            output.Source(files.signing_cert, canvos.SIGNING_CERT_PATH, "module_signing_cert")
        )
    if files.bfb is not None and files.bfb_info is not None:
        into = f"{hostitems.BFB_DIR}/{files.bfb_info.name}"
        sources.append(output.Source(files.bfb, into, "bfb"))
    return sources


def main(argv: Sequence[str] | None = None) -> int:
    parser, subs = _parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        subs[args.command].error(_unknown(extra, args.command, subs))
    if args.command == "knobs":
        print(knob_table() + "\n" + input_table(), end="")
        return 0
    try:
        if args.command == "presets":
            print(presets.listing(), end="")
            return 0
        spec, files, sources = _inputs_from(args)
        if args.command == "render":
            paths = {"config": args.config}
            paths |= {name: getattr(args, name) for name in inputs.FILE_INPUT_NAMES}
            paths |= sources  # so --force never deletes a host_files source
            prepared = render(spec, args.canvos, args.out, args.force, files, paths)
            print(plan_text(prepared.description, prepared.warnings), end="")
            where = Path(os.path.abspath(args.out))
            secrets = {
                secret: Path(os.path.abspath(getattr(args, secret.field)))
                for secret in files.build_secrets
            }
            print(output.next_steps(where, spec.k8s_version, secrets), end="")
        elif args.canvos is not None:
            prepared = _prepare(spec, args.canvos, files)
            print(plan_text(prepared.description, prepared.warnings), end="")
        else:
            description = describe_ref(spec, files)
            text = plan_text(description, warnings(description), unchecked=canvos.CHECKOUT_CHECKS)
            print(text, end="")
    except InvalidInput as exc:
        print(f"canvos-doca: {_as_typed(exc).render()}", file=sys.stderr)
        return exc.exit_code
    except CanvosDocaError as exc:
        print(f"canvos-doca: {exc.render()}", file=sys.stderr)
        return exc.exit_code
    return 0


# Inputs the CLI names by the flag the user typed (knobs keep their names:
# they are config keys as well as flags).
_TYPED = {name: f"--{kebab(name)}" for name in ("config", *inputs.FILE_INPUT_NAMES)}


def _as_typed(exc: InvalidInput) -> InvalidInput:
    """``exc`` with each file input's problems named by its flag
    (``--user-data``, not ``user_data``); the same error class."""

    def named(field: str) -> str:
        head = re.split(r"[.\[]", field, maxsplit=1)[0]
        return _TYPED[head] + field[len(head) :] if head in _TYPED else field

    return type(exc)(dataclasses.replace(p, field=named(p.field)) for p in exc.problems)


def _unused_with_checkout(args: argparse.Namespace) -> list[Problem]:
    """plan's --canvos-ref/--canvos-url name a CanvOS to clone; --canvos is
    used as it is (render takes neither flag)."""
    if args.canvos is None:
        return []
    fixes = {
        "canvos_ref": f"drop --canvos-ref, or check that ref out in the checkout "
        f"(git -C {args.canvos} checkout <tag>).",
        "canvos_url": "drop --canvos-url, or drop --canvos to plan for the ref of that URL.",
    }
    return [
        Problem(
            f"--{kebab(name)}",
            getattr(args, name) if name == "canvos_ref" else HIDDEN,
            f"cannot be used with --canvos: the checkout {args.canvos} is used as it is "
            "(its own commit and PE_VERSION).",
            fix,
        )
        for name, fix in fixes.items()
        if getattr(args, name, None) is not None
    ]


def _inputs_from(args: argparse.Namespace) -> tuple[BuildSpec, Files, dict[str, Path]]:
    """The spec, the file inputs and the ``host_files`` sources read, with the
    problems of spec and inputs reported at once."""
    problems: list[Problem] = _unused_with_checkout(args)
    spec, files = None, None
    sources: dict[str, Path] = {}
    try:
        spec, sources = _spec_from(args)
    except InvalidInput as exc:
        problems += exc.problems
    try:
        files = _files_from(args)
    except InvalidInput as exc:
        problems += exc.problems
    if args.canvos is None and files is not None:
        # plan without a checkout: nothing else reads the user-data, so check it here
        if files.user_data is not None:
            problems += userdata.problems(files.user_data, files.user_data_source)
        if spec is not None:
            problems += files.problems(spec)
    if spec is not None and files is not None and files.airgap is not None:
        # plan and render check the air-gapped package's version alike
        try:
            airgap.check(str(files.airgap.source), spec.doca_version)
        except InvalidInput as exc:
            problems += exc.problems
    raise_if(problems)
    assert spec is not None and files is not None
    return spec, files, sources


if __name__ == "__main__":
    raise SystemExit(main())
