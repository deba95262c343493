"""A stand-in `dagger` CLI for running the build workflow's steps offline.

It logs every command line (JSON, one per line, to $FAKE_DAGGER_LOG), refuses
any `dagger call` the registration does not allow (exit 2), and for the chains
the workflow uses it produces what the real module would: `build ... export`
writes the ISO, its checksum and a manifest.json built by ``pipeline.artifacts``
from the spec the flags resolve to (the CanvOS ref "resolved" to
$FAKE_CANVOS_COMMIT), and `publish` prints a digest reference.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from pipeline import artifacts, canvos, context, spec
from pipeline.config import parse_config
from tests.pipeline import registration
from tests.workflows import dagger_calls

PE_VERSION = "v4.9.38"


def resolved_spec(args: dict[str, str]) -> spec.BuildSpec:
    config = {}
    if "config" in args:
        config = parse_config(Path(args["config"]).read_text(), args["config"])
    overrides = {
        name.replace("-", "_"): value
        for name, value in args.items()
        if name.replace("-", "_") in spec.FIELD_NAMES
    }
    return spec.build_spec(config, overrides)


def manifest(resolved: spec.BuildSpec, commit: str) -> str:
    description = context.describe_ref(resolved, pe_version=PE_VERSION, commit=commit)
    iso_name, _ = canvos.iso_files(resolved)
    images = [
        artifacts.ImageRecord(
            ref=ref,
            tarball=artifacts.Artifact(
                f"{artifacts.tarball_name(ref)}.tar", 4_500_000_000, "d" * 64
            ),
            facts={},
            doca=None,
            k8s_version=version,
        )
        for ref, version in zip(
            canvos.provider_image_refs(resolved, PE_VERSION), resolved.k8s_version, strict=True
        )
    ]
    inputs = artifacts.Inputs(description=description, user_data_sha256="0" * 64)
    iso = artifacts.Artifact(iso_name, 3_000_000_000, "c" * 64)
    return artifacts.render(artifacts.manifest(inputs, iso, images))


def main(argv: list[str]) -> int:
    # The real CLI may read its standard input; a step must not feed it a
    # list it still needs (e.g. `jq ... | while read ...; do dagger ...`).
    if not sys.stdin.isatty():
        sys.stdin.read()
    with open(os.environ["FAKE_DAGGER_LOG"], "a") as log:
        log.write(json.dumps(argv) + "\n")
    constructor, schema = dagger_calls.schema_for(registration.registration())
    call = dagger_calls.check_command(["dagger", *argv], constructor, schema)
    if call.problems:
        print("\n".join(call.problems), file=sys.stderr)
        return 2
    # Like the real CLI: an env: secret must name a variable that is set.
    for _, given in call.steps:
        for value in given.values():
            if value.startswith("env:") and not os.environ.get(value[4:]):
                print(f"secret {value}: the variable is not set", file=sys.stderr)
                return 3
    if not call.steps:  # dagger version
        print("dagger v0.21.11 (fake)")
        return 0
    functions = call.functions
    if functions[:1] == ["build"] and functions[-1] == "export":
        resolved = resolved_spec(call.constructor_args)
        out = Path(call.steps[-1][1]["path"])
        out.mkdir(parents=True, exist_ok=True)
        iso_name, sha_name = canvos.iso_files(resolved)
        (out / iso_name).write_bytes(b"ISO")
        (out / sha_name).write_text(f"{'c' * 64}  {iso_name}\n")
        (out / artifacts.MANIFEST_NAME).write_text(
            manifest(resolved, os.environ["FAKE_CANVOS_COMMIT"])
        )
        print(str(out.resolve()))
    elif functions[-1:] == ["publish"]:
        print(f"{call.steps[-1][1]['address']}@sha256:{'e' * 64}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
