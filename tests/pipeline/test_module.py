"""The Dagger module as registered, the moving-ref resolution and the secret wiring."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any
from unittest import mock

import dagger
import pytest
from chains import steps
from dagger import dag
from dagger._exceptions import QueryErrorValue
from registration import (
    BEGIN,
    CONSTRUCTOR,
    END,
    functions_text,
    marked_block,
    registered_functions,
    registration,
)

from pipeline import runner
from pipeline.context import Prepared, describe_ref
from pipeline.errors import BuildFailed
from pipeline.inputs import NO_FILES
from pipeline.main import CanvosDoca, _Resolved
from pipeline.spec import BuildSpec

ROOT = Path(__file__).parents[2]
BUILD_FUNCTIONS = ("build", "build-iso", "provider-image", "doca-image", "verify")
SECRETS = ("registry-password", "docker-config", "ubuntu-pro-key", "edge-host-token")


# -------------------------------------------------------------- registration


def test_every_function_is_registered() -> None:
    names = set(registered_functions())
    assert {*BUILD_FUNCTIONS, "plan", "prepare", CONSTRUCTOR} <= names


def test_every_argument_is_documented() -> None:
    for function, args in registered_functions().items():
        for arg in args.values():
            assert arg.doc.strip(), f"{function or 'constructor'} --{arg.name}"
    for name, function in registration().items():
        assert function.doc.strip(), name or "constructor"


def test_secrets_are_secret_typed_and_optional() -> None:
    constructor = registered_functions()[CONSTRUCTOR]
    for name in SECRETS:
        assert constructor[name].type == "Secret" and constructor[name].optional, name
    assert constructor["registry-username"].type == "String"


def test_ref_resolving_functions_bypass_the_function_cache() -> None:
    # A cached call with --canvos-ref main would return last week's build.
    for name in (*BUILD_FUNCTIONS, "plan", "prepare"):
        assert registration()[name].cache_policy == "Never", name


def test_config_and_knobs_are_constructor_arguments() -> None:
    constructor = registered_functions()[CONSTRUCTOR]
    assert constructor["config"].type == "File"
    assert constructor["k8s-version"].type == "[String]"
    assert constructor["overlays"].default_path == "overlays"


def test_docs_reproduce_the_function_reference() -> None:
    text = (ROOT / "docs" / "building.md").read_text()
    assert BEGIN in text and END in text
    assert marked_block(text) == functions_text()


def test_readme_reproduces_it_when_it_has_the_markers() -> None:
    readme = ROOT / "README.md"
    block = marked_block(readme.read_text()) if readme.exists() else None
    if block is not None:
        assert block == functions_text()


# ------------------------------------------------------------ moving refs


async def test_a_moving_ref_is_resolved_to_a_commit_before_use() -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    asked: list[list[tuple[str, Any]]] = []

    async def resolve(self: dagger.GitRef) -> str:
        asked.append(steps(self))
        return commit

    module = CanvosDoca(overlays=dag.directory())
    spec = BuildSpec(canvos_ref="main")
    with mock.patch.object(dagger.GitRef, "commit", resolve):
        tree, resolved = await module._source(spec)
    assert resolved == commit
    assert asked == [[("git", {"url": spec.canvos_url}), ("ref", {"name": "main"})]]
    # The tree the build uses is addressed by the commit, not by the branch name.
    assert steps(tree) == [
        ("git", {"url": spec.canvos_url}),
        ("commit", {"id": commit}),
        ("tree", {}),
    ]


# ------------------------------------------------------------ secret wiring
# (each secret through the real resolve step: test_secret_channels.py)


async def test_without_secrets_nothing_is_mounted() -> None:
    module = CanvosDoca(overlays=dag.directory())
    prepared = Prepared(
        files={"user-data": "#cloud-config\n"},
        description=describe_ref(BuildSpec(), pe_version="v4.9.38"),
    )

    async def checked(self: CanvosDoca) -> _Resolved:
        return _Resolved(prepared, dag.directory(), NO_FILES, None)

    with mock.patch.object(CanvosDoca, "_checked", checked):
        run = await module._run()
    assert run.build.credentials == runner.earthly.Credentials()
    assert run.secrets_given == ()
    assert run.build.tools == runner.earthly.Tools()
    assert run.build.provider_image("1.34.6").ref.endswith("-v4.9.38")


# ------------------------------------------------------------- error guard


def _exec_error(stdout: str, stderr: str) -> dagger.ExecError:
    value = QueryErrorValue(
        message="process exited with 1",
        extensions={
            "_type": "EXEC_ERROR",
            "cmd": ["x"],
            "exitCode": 1,
            "stdout": stdout,
            "stderr": stderr,
        },
    )
    error = dagger.QueryError([value], SimpleNamespace(document=None))  # type: ignore[arg-type]
    assert isinstance(error, dagger.ExecError)
    return error


async def test_guard_turns_exec_errors_into_actionable_messages() -> None:
    async def failing() -> int:
        raise _exec_error("step 1\nno space left on device\n", "boom")

    with pytest.raises(BuildFailed) as caught:
        await runner.guard("Earthly +iso", failing())
    message = str(caught.value)
    assert message.startswith("Earthly +iso failed (exit code 1).")
    assert "Disk exhausted" in message and "boom" in message


def test_pick_version_only_from_the_requested_ones() -> None:
    spec = BuildSpec(k8s_version=("1.33.10", "1.34.6"))
    assert runner.pick_version(spec, "") == "1.33.10"
    assert runner.pick_version(spec, "1.34.6") == "1.34.6"
    with pytest.raises(BuildFailed, match="was not requested"):
        runner.pick_version(spec, "1.30.0")
