"""The build job's shell steps, run for real against a stand-in `dagger` CLI.

Each step runs as the runner would (``bash -eo pipefail``) with the job's and
step's ``env:`` (their simple ``${{ ctx.name }}`` expressions evaluated) and
$GITHUB_ENV carried between steps. tests/workflows/fake_dagger.py checks every
command line against the registration and writes a manifest.json built by
``pipeline.artifacts``, so the jq queries, the publish loop and the secret
handling are exercised against the real manifest layout.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from pipeline import canvos, spec
from pipeline.config import parse_config

ROOT = Path(__file__).parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "build.yml"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TOKEN = "ghs_not-a-real-token-0123456789"
EXPRESSION = re.compile(r"^\$\{\{\s*([a-z_]+)\.([A-Za-z0-9_]+)\s*\}\}$")


def workflow() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(WORKFLOW.read_text())
    return data


def step(prefix: str) -> dict[str, Any]:
    steps: list[dict[str, Any]] = workflow()["jobs"]["build"]["steps"]
    return next(s for s in steps if s.get("name", "").startswith(prefix))


class Runner:
    """Runs steps of the build job in one working directory."""

    def __init__(self, tmp_path: Path, contexts: dict[str, dict[str, str]]) -> None:
        if shutil.which("jq") is None:
            ci = os.environ.get("CI", "").lower() == "true"
            (pytest.fail if ci else pytest.skip)("jq not installed (.ci/run installs it)")
        self.work = tmp_path / "work"
        self.work.mkdir()
        self.files = tmp_path / "github"
        self.files.mkdir()
        bin_dir = tmp_path / "bin"
        bin_dir.mkdir()
        fake = bin_dir / "dagger"
        fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.workflows.fake_dagger "$@"\n')
        fake.chmod(0o755)
        self.log = tmp_path / "dagger.log"
        self.contexts = contexts
        self.env: dict[str, str] = {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "PYTHONPATH": str(ROOT),
            "HOME": str(tmp_path),
            "FAKE_DAGGER_LOG": str(self.log),
            "FAKE_CANVOS_COMMIT": COMMIT,
            "GITHUB_ACTOR": "octo-bot",
            "GITHUB_REPOSITORY_OWNER": "Acme-Corp",
            "GITHUB_ENV": str(self.files / "env"),
            "GITHUB_OUTPUT": str(self.files / "output"),
            "GITHUB_STEP_SUMMARY": str(self.files / "summary"),
        }
        for path in ("env", "output", "summary"):
            (self.files / path).write_text("")
        wf = workflow()
        self.env.update(self.evaluate(wf.get("env", {})))
        self.env.update(self.evaluate(wf["jobs"]["build"].get("env", {})))

    def evaluate(self, env: dict[str, Any]) -> dict[str, str]:
        values = {}
        for name, value in env.items():
            text = str(value)
            match = EXPRESSION.match(text)
            if match:
                context, key = match.groups()
                text = self.contexts.get(context, {}).get(key, "")
            assert "${{" not in text, f"{name}: only ${{{{ ctx.name }}}} is evaluated here"
            values[name] = text
        return values

    def run(self, prefix: str) -> subprocess.CompletedProcess[str]:
        selected = step(prefix)
        env = {**self.env, **self.evaluate(selected.get("env", {}))}
        result = subprocess.run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", selected["run"]],
            cwd=self.work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
        assert result.returncode == 0, f"{prefix}:\n{result.stdout}\n{result.stderr}"
        # What the step exported for the next steps.
        for line in (self.files / "env").read_text().splitlines():
            key, _, value = line.partition("=")
            self.env[key] = value
        return result

    def calls(self) -> list[list[str]]:
        lines = self.log.read_text().splitlines() if self.log.exists() else []
        return [json.loads(line) for line in lines]

    def manifest(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.work / "out" / "manifest.json").read_text())
        return data


def flag(argv: list[str], name: str) -> list[str]:
    return [argv[i + 1] for i, token in enumerate(argv[:-1]) if token == name]


def run_nightly_entry(tmp_path: Path, entry: Path) -> Runner:
    matrix = {"name": entry.stem, "config": str(entry)}
    runner = Runner(tmp_path, {"matrix": matrix, "secrets": {"GITHUB_TOKEN": TOKEN}})
    runner.run("Engine and registry settings")
    runner.run("Build (nightly entry")
    runner.run("Summary")
    runner.run("Pick the CanvOS ref to publish")
    runner.run("Publish provider images (nightly entry")
    return runner


@pytest.mark.parametrize("name", ["ubuntu-24.04-doca-2.9.1", "canvos-main-ubuntu-22.04-doca-3.2.2"])
def test_nightly_entry_builds_summarises_and_publishes(name: str, tmp_path: Path) -> None:
    entry = ROOT / "builds" / "nightly" / f"{name}.yaml"
    runner = run_nightly_entry(tmp_path, entry)
    resolved = spec.build_spec(
        parse_config(entry.read_text()),
        {"image_registry": "ghcr.io/acme-corp", "image_repo": "canvos-doca"},
    )
    build, *publishes = runner.calls()
    assert "build" in build and flag(build, "--image-registry") == ["ghcr.io/acme-corp"]
    # Exactly what the upload step picks up.
    names = sorted(p.name for p in (runner.work / "out").iterdir())
    assert names == sorted([*canvos.iso_files(resolved), "manifest.json"])
    # The job summary names the commit the ref resolved to.
    summary = (runner.files / "summary").read_text()
    assert f"CanvOS {resolved.canvos_ref} = commit {COMMIT}" in summary
    # One publish per provider image, to the reference the manifest records.
    refs = canvos.provider_image_refs(resolved, "v4.9.38")
    assert [flag(p, "--address")[-1] for p in publishes] == refs
    assert refs[0].startswith("ghcr.io/acme-corp/canvos-doca:k3s-1.34.6-v4.9.38-")
    # The pushed digests end up in the job summary.
    assert all(f"{ref}@sha256:" in (runner.files / "summary").read_text() for ref in refs)
    moving = resolved.canvos_ref == "main"
    for argv in publishes:
        assert flag(argv, "--canvos-ref") == [COMMIT if moving else resolved.canvos_ref]
        assert flag(argv, "--secret") == ["env:REGISTRY_PASSWORD"]
        assert flag(argv, "--username") == ["octo-bot"]
    # The token reached the fake only through its environment, never argv.
    assert all(TOKEN not in " ".join(argv) for argv in runner.calls())


def test_dispatched_build_publishes_every_k8s_version(tmp_path: Path) -> None:
    inputs = {
        "canvos_ref": "v4.9.38",
        "doca_version": "3.2.2",
        "doca_profile": "doca-networking",
        "os_version": "24.04",
        "k8s_distribution": "rke2",
        "k8s_version": "1.33.10,1.34.6",
        "custom_tag": "",
    }
    contexts = {"inputs": inputs, "matrix": {"name": "dispatch", "config": ""}}
    runner = Runner(tmp_path, {**contexts, "secrets": {"GITHUB_TOKEN": TOKEN}})
    runner.run("Engine and registry settings")
    runner.run("Build (dispatched knobs)")
    runner.run("Summary")
    runner.run("Pick the CanvOS ref to publish")
    runner.run("Publish provider images (dispatched knobs)")
    build, *publishes = runner.calls()
    assert flag(build, "--doca-profile") == ["doca-networking"]
    assert flag(build, "--custom-tag") == [""]
    assert [flag(p, "--k8s") for p in publishes] == [["1.33.10"], ["1.34.6"]]
    assert [flag(p, "--address")[-1] for p in publishes] == [
        "ghcr.io/acme-corp/canvos-doca:rke2-1.33.10-v4.9.38",
        "ghcr.io/acme-corp/canvos-doca:rke2-1.34.6-v4.9.38",
    ]
    # Same constructor knobs as the build: the image comes from the engine's cache.
    prefix = build[: build.index("build")]
    for argv in publishes:
        assert argv[: argv.index("provider-image")] == prefix
    assert all(TOKEN not in " ".join(argv) for argv in runner.calls())


def test_the_fake_cli_refuses_what_the_module_does_not_register(tmp_path: Path) -> None:
    # The stand-in is strict, so the runs above prove the expanded commands are valid.
    runner = Runner(tmp_path, {})
    result = subprocess.run(
        ["dagger", "call", "--image-registy", "x", "plan"],
        env=runner.env,
        cwd=runner.work,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "no argument --image-registy" in result.stderr


def test_the_fake_cli_refuses_an_unset_secret_variable(tmp_path: Path) -> None:
    runner = Runner(tmp_path, {})
    argv = ["dagger", "call", "--registry-password", "env:NOT_SET_ANYWHERE", "plan"]
    result = subprocess.run(
        argv, env=runner.env, cwd=runner.work, capture_output=True, text=True, check=False
    )
    assert result.returncode == 3 and "NOT_SET_ANYWHERE" in result.stderr
