"""The nightly boot-test steps of .github/workflows/build.yml, run for real.

The steps run as the runner would (tests/workflows/test_build_steps.py's
Runner: ``bash -eo pipefail`` with the job's and step's env) against a stand-in
`dagger` (tests/boot/fake_dagger.py) whose ``boot-test ... export`` writes a
report.json made by the harness's own ``make_report``: the jq in the verdict
step reads the real report layout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.workflows import dagger_calls, test_workflows
from tests.workflows.test_build_steps import ROOT, Runner, flag, step

ENTRY = ROOT / "builds" / "nightly" / "ubuntu-22.04-doca-3.2.2.yaml"


def nightly(tmp_path: Path, **env: str) -> Runner:
    runner = Runner(tmp_path, {"matrix": {"name": ENTRY.stem, "config": str(ENTRY)}})
    fake = tmp_path / "bin" / "dagger"
    fake.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m tests.boot.fake_dagger "$@"\n')
    runner.env.update(env)
    return runner


def run_step(runner: Runner, prefix: str) -> subprocess.CompletedProcess[str]:
    """Like Runner.run, but a failing step is returned, not asserted."""
    selected = step(prefix)
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", selected["run"]],
        cwd=runner.work,
        env={**runner.env, **runner.evaluate(selected.get("env", {}))},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_a_passing_boot_test_is_summarised_and_the_job_goes_on(tmp_path: Path) -> None:
    runner = nightly(tmp_path, KVM_DEVICE="/dev/null")  # any character device
    for prefix in ("Engine and registry settings", "Build (nightly entry", "KVM for the boot test"):
        runner.run(prefix)
    runner.run("Boot test (nightly entry")
    build, boot_test = runner.calls()
    assert boot_test[boot_test.index("boot-test") :] == [
        *("boot-test", "--report-only", "export", "--path", "boot-test")
    ]
    # Same constructor knobs as the build: the ISO's layers come from the engine cache.
    assert boot_test[: boot_test.index("boot-test")] == build[: build.index("build")]
    assert flag(boot_test, "--config") == [str(ENTRY)]
    out = runner.work / "boot-test"
    assert sorted(p.name for p in out.iterdir()) == ["report.json", "serial.log"]
    verdict = run_step(runner, "Boot test verdict")
    assert verdict.returncode == 0, verdict.stderr
    summary = (runner.files / "summary").read_text()
    assert f"### Boot test: {ENTRY.stem}\nPASSED (kvm; install 301 s)\n" in summary
    assert "- ok boot 2: marker survived the reboot: " in summary


def test_a_failing_boot_test_fails_the_job_after_its_report_is_kept(tmp_path: Path) -> None:
    runner = nightly(tmp_path, KVM_DEVICE="/dev/null", FAKE_BOOT_TEST="fail")
    runner.run("Engine and registry settings")
    runner.run("Boot test (nightly entry")  # --report-only: the call itself succeeds
    verdict = run_step(runner, "Boot test verdict")
    assert verdict.returncode == 1
    assert "::error::Boot test of ubuntu-22.04-doca-3.2.2 failed" in verdict.stdout
    summary = (runner.files / "summary").read_text()
    assert "FAILED (kvm;" in summary
    assert "- **FAIL** boot 2: marker survived the reboot: " in summary


def test_a_runner_without_kvm_stops_before_the_boot_test(tmp_path: Path) -> None:
    runner = nightly(tmp_path, KVM_DEVICE=str(tmp_path / "no-kvm"))
    result = run_step(runner, "KVM for the boot test")
    assert result.returncode == 1 and "::error::This runner has no" in result.stdout
    (tmp_path / "remote").mkdir()
    remote = nightly(tmp_path / "remote", KVM_DEVICE="/missing", RUNNER_HOST="tcp://engine:1")
    assert run_step(remote, "KVM for the boot test").returncode == 0


def job_steps() -> list[dict[str, Any]]:
    steps: list[dict[str, Any]] = test_workflows.build()["jobs"]["build"]["steps"]
    return steps


def test_the_boot_test_runs_for_nightly_entries_before_anything_is_published() -> None:
    names = [s.get("name", s.get("uses", "")) for s in job_steps()]
    boot = next(i for i, n in enumerate(names) if n.startswith("Boot test (nightly"))
    verdict = next(i for i, n in enumerate(names) if n.startswith("Boot test verdict"))
    publish = min(i for i, n in enumerate(names) if n.startswith("Publish"))
    assert boot < verdict < publish
    assert names.index("Pick the CanvOS ref to publish") > verdict
    for s in job_steps()[boot - 1 : verdict + 1]:
        assert s["if"].startswith("matrix.config != ''"), s
    # The report is uploaded even when the boot test step failed.
    upload = job_steps()[verdict - 1]
    assert upload["uses"].startswith("actions/upload-artifact@")
    assert "!cancelled()" in upload["if"]
    assert upload["with"]["path"].split() == ["boot-test/report.json", "boot-test/serial.log"]


def test_the_boot_test_call_is_a_registered_chain() -> None:
    constructor, schema = dagger_calls.schema_for(test_workflows.registration.registration())
    [call] = dagger_calls.check_script(step("Boot test (nightly entry")["run"], constructor, schema)
    assert call.problems == [] and call.functions == ["boot-test", "export"]
