"""The await edge of ``boot-test`` (``bootvm.boot_test``), without an engine.

The engine's answers (sizes, file contents, exit codes, stderr) are derived
from the query each await would send, so what is checked is the
orchestration: the installer is verified, its manifest decides what the VM
checks, the test ISO is built, the VM runs, and the verdict becomes a
returned directory or an error a user can act on.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import dagger
import pytest

from pipeline import bootvm, earthly
from pipeline.boottest.harness import RunConfig
from pipeline.errors import BuildFailed, InvalidInput
from pipeline.spec import BuildSpec
from tests.boot.samples import MANIFEST, make_run
from tests.boot.tinyvm import REPORT_SCRIPT
from tests.pipeline.chains import named, own, steps

SCRIPT = REPORT_SCRIPT.read_text()
USER_DATA = "#cloud-config\ninstall:\n  device: auto\n"


class FakeEngine:
    def __init__(
        self, passed: bool = True, code: int = 0, manifest: dict[str, Any] | None = None
    ) -> None:
        self.passed = passed
        self.code = code
        self.manifest = MANIFEST if manifest is None else manifest
        self.config: RunConfig | None = None
        self.awaited: list[str] = []

    def path(self, obj: Any) -> str:
        return str(steps(obj)[-1][1].get("path", ""))

    async def size(self, file: dagger.File) -> int:
        self.awaited.append(f"size {self.path(file)}")
        return 4096

    async def contents(self, file: dagger.File) -> str:
        path = self.path(file)
        # What earthly-run.sh leaves for the installer image: the verify exit
        # code and report (run in docker) and the image's DOCA manifest.
        if path.endswith(".verify-exit"):
            self.awaited.append("verify installer")
            return "0\n"
        if path.endswith(".verify"):
            return "ok    manifest present\n"
        self.awaited.append(f"read {path}")
        if path.endswith(".doca.json"):
            return json.dumps(self.manifest)
        if path == "report.json":
            check = {
                "name": "boot 2: marker survived the reboot",
                "passed": self.passed,
                "detail": "found (nothing)",
            }
            return json.dumps(
                {"passed": self.passed, "accelerator": "kvm", "warnings": [], "checks": [check]}
            )
        if path == "serial.log":
            return "".join(f"console line {n}\n" for n in range(100))
        raise AssertionError(f"unexpected read of {path}")

    def is_vm(self, ctr: dagger.Container) -> bool:
        return own(ctr, "withExec")[-1]["args"][:3] == ["python3", "-m", "boottest"]

    async def exit_code(self, ctr: dagger.Container) -> int:
        if not self.is_vm(ctr):
            self.awaited.append("verify installer")
            return 0
        [config] = [a["contents"] for a in own(ctr, "withNewFile") if a["path"] == bootvm.CONFIG]
        self.config = RunConfig.from_json(config)
        self.awaited.append("run VM")
        return self.code

    async def stdout(self, ctr: dagger.Container) -> str:
        return "ok    manifest present\n"

    async def stderr(self, ctr: dagger.Container) -> str:
        return "boot-test: unusable config: KeyError 'machine'\n"

    def patches(self) -> list[Any]:
        def forward(method: Any) -> Any:
            return lambda obj: method(obj)

        return [
            mock.patch.object(dagger.File, "size", forward(self.size)),
            mock.patch.object(dagger.File, "contents", forward(self.contents)),
            mock.patch.object(dagger.Container, "exit_code", forward(self.exit_code)),
            mock.patch.object(dagger.Container, "stdout", forward(self.stdout)),
            mock.patch.object(dagger.Container, "stderr", forward(self.stderr)),
        ]


async def boot_test(engine: FakeEngine, *, report_only: bool = False, **spec: Any) -> Any:
    run = make_run(USER_DATA, BuildSpec(**spec) if spec else None)
    patches = engine.patches()
    for patch in patches:
        patch.start()
    try:
        return await bootvm.boot_test(run, SCRIPT, bootvm.Settings(), report_only=report_only)
    finally:
        for patch in patches:
            patch.stop()


async def test_a_passing_test_returns_the_report_directory() -> None:
    engine = FakeEngine()
    out = await boot_test(engine)
    assert steps(out)[-1] == ("directory", {"path": bootvm.OUT})
    # Verified installer, its manifest, the test ISO, then the VM, then the verdict.
    assert engine.awaited[1:] == [
        "verify installer",
        f"read {earthly.IMAGES_DIR}/palette-installer-image-v4.9.38.doca.json",
        "size palette-edge-installer.iso",
        "run VM",
        "read report.json",
    ]
    assert engine.config is not None
    expect = engine.config.expectation
    assert expect.paths[:2] == tuple(MANIFEST["bind_mounts"]) and expect.kernel_args == (
        "iommu=pt",
    )
    # The ISO the VM boots is the variant built on the test user-data.
    [iso] = [a["source"] for a in named(out, "withMountedFile") if a["path"] == bootvm.ISO]
    written = [a["contents"] for a in named(iso, "withNewFile") if a["path"] == "user-data"]
    assert (
        written[-1].startswith(USER_DATA.split("\n")[0])
        and "canvos-doca-boot-report" in written[-1]
    )


async def test_a_failing_test_explains_itself_with_the_console_tail() -> None:
    with pytest.raises(BuildFailed) as failed:
        await boot_test(FakeEngine(passed=False))
    message = str(failed.value)
    assert "canvos-doca boot test FAILED (kvm)" in message
    assert "FAIL boot 2: marker survived the reboot: found (nothing)" in message
    assert "  console line 99\n" in message and "console line 10\n" not in message
    assert "--report-only" in message


async def test_report_only_returns_a_failed_report() -> None:
    out = await boot_test(FakeEngine(passed=False), report_only=True)
    assert steps(out)[-1] == ("directory", {"path": bootvm.OUT})


async def test_a_harness_that_cannot_run_says_why() -> None:
    with pytest.raises(BuildFailed, match=r"(?s)could not run \(exit code 2\).*unusable config"):
        await boot_test(FakeEngine(code=2))


async def test_an_image_without_a_persistence_report_is_refused_plainly() -> None:
    old = {k: v for k, v in MANIFEST.items() if k != "persistence"}
    engine = FakeEngine(manifest=old)
    with pytest.raises(BuildFailed, match=r"cannot check .*'persistence'"):
        await boot_test(engine)
    assert "run VM" not in engine.awaited


async def test_a_build_the_vm_cannot_test_is_refused_before_any_work() -> None:
    engine = FakeEngine()
    with pytest.raises(InvalidInput, match="arch"):
        await boot_test(engine, arch="arm64")
    assert engine.awaited == []
