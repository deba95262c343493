"""The boot test's Dagger chains, inspected offline from the queries they would send,
and the tool-install script of the QEMU container run against stand-in commands."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import dagger
from dagger import CacheSharingMode, ReturnType, dag

from pipeline import bootvm, canvos, earthly, facts
from pipeline.boottest.harness import RunConfig
from tests.boot.samples import SECRET_MARK, make_run
from tests.boot.tinyvm import EXPECT
from tests.pipeline.chains import env, named, own, plain_values, steps

ROOT = Path(__file__).parents[2]


def test_the_harness_files_are_the_whole_package() -> None:
    shipped = bootvm.harness_files()
    on_disk = sorted((ROOT / "pipeline" / "boottest").glob("*.py"))
    assert sorted(shipped) == [f"boottest/{p.name}" for p in on_disk]
    assert all(shipped[f"boottest/{p.name}"] == p.read_text() for p in on_disk)


def test_the_qemu_container_is_the_pinned_image_with_the_harness() -> None:
    ctr = bootvm.qemu_container(facts.QEMU_IMAGE)
    assert [a["address"] for a in named(ctr, "from")] == [facts.QEMU_IMAGE]
    assert env(ctr) == {
        "OVMF_CODE": facts.OVMF_CODE,
        "QEMU": facts.QEMU_PROGRAM,
        "PYTHON": facts.PYTHON_PROGRAM,
        "PACKAGES": " ".join(facts.BOOT_TEST_PACKAGES),
    }
    files = {a["path"]: a["contents"] for a in own(ctr, "withNewFile")}
    expected = {f"{bootvm.HARNESS_DIR}/{k}": v for k, v in bootvm.harness_files().items()}
    assert files == expected
    assert own(ctr, "withWorkdir") == [{"path": bootvm.HARNESS_DIR}]


def test_the_vm_runs_privileged_with_the_iso_its_config_and_a_new_nonce() -> None:
    iso = dag.directory().with_new_file("a.iso", "ISO").file("a.iso")
    config = bootvm.run_config(bootvm.Settings(), EXPECT)
    ran = bootvm.vm_run(iso, config, "mirror.example/debian:12", "nonce-1")
    [execute] = own(ran, "withExec")[-1:]
    assert execute["args"] == [
        *(facts.PYTHON_PROGRAM, "-m", "boottest", "run"),
        *("--config", bootvm.CONFIG, "--out", bootvm.OUT),
    ]
    assert execute["insecureRootCapabilities"] is True
    assert execute["expect"] == ReturnType.ANY.value
    assert [a["path"] for a in own(ran, "withMountedFile")] == [bootvm.ISO]
    # The installed disk stays out of the layer cache: a cache volume, one per run.
    [disk] = own(ran, "withMountedCache")
    assert disk["path"] == bootvm.DISK_DIR == str(Path(config.machine.disk).parent)
    assert disk["sharing"] == CacheSharingMode.PRIVATE.value
    assert steps(disk["cache"]) == [("cacheVolume", {"key": bootvm.DISK_CACHE})]
    [written] = [a["contents"] for a in own(ran, "withNewFile") if a["path"] == bootvm.CONFIG]
    assert RunConfig.from_json(written) == config
    assert env(ran)["CANVOS_DOCA_BOOT_TEST_RUN"] == "nonce-1"
    assert [a["address"] for a in named(ran, "from")] == ["mirror.example/debian:12"]


def test_the_run_config_installs_from_the_iso_and_boots_the_disk_alone() -> None:
    settings = bootvm.Settings(timeout_minutes=45, memory_mib=6144, cpus=2)
    config = bootvm.run_config(settings, EXPECT)
    assert (config.install.iso, config.boot.iso, config.boot.kernel) == (bootvm.ISO, "", "")
    machine = config.machine
    assert (machine.memory_mib, machine.cpus, machine.disk) == (6144, 2, bootvm.DISK)
    assert (machine.firmware_code, machine.firmware_vars) == (facts.OVMF_CODE, facts.OVMF_VARS)
    assert config.timeout_minutes == 45 and config.tcg_factor == facts.TCG_SLOWDOWN
    assert config.accelerator == "auto" and config.expectation == EXPECT
    assert json.loads(config.to_json())["tools"] == {"qemu_image": facts.QEMU_IMAGE}


def test_the_variant_iso_is_iso_on_the_test_user_data_without_the_token() -> None:
    run = make_run("#cloud-config\n")
    iso = bootvm.variant_iso(run, "#cloud-config\nstages: {}\n")
    # The file is build/<ISO_NAME>.iso of the +iso exec.
    assert steps(iso)[-1] == ("file", {"path": canvos.iso_files(run.spec)[0]})
    [target] = [
        a["args"]
        for a in named(iso, "withExec", skip=(dagger.Secret,))
        if facts.CANVOS_TARGET_ISO in a["args"]
    ]
    assert target[:2] == [earthly.SCRIPT, facts.CANVOS_TARGET_ISO]
    contexts = [a["contents"] for a in named(iso, "withNewFile") if a["path"] == "user-data"]
    assert contexts[-1] == "#cloud-config\nstages: {}\n"
    # The token-merged user-data secret of the real build is not mounted.
    assert not [a for a in named(iso, "withMountedSecret") if a["path"] == earthly.USER_DATA]
    assert not any(SECRET_MARK in value for value in plain_values(iso))


def test_the_real_build_keeps_its_own_user_data() -> None:
    # The real ISO gets the token-bearing user-data written onto it after
    # Earthly (iso_output); the variant never does.
    real = make_run("#cloud-config\n").build.iso_output()
    assert [a["path"] for a in named(real, "withMountedSecret")] == [earthly.USER_DATA]
    assert {a["contents"] for a in named(real, "withNewFile") if a["path"] == "user-data"} == {
        "#cloud-config\n"
    }


# ------------------------------------------------------------------ install script


def stubs(tmp_path: Path, *, qemu: bool, python: bool) -> tuple[Path, dict[str, str]]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("head", "rm"):
        found = shutil.which(tool)
        assert found is not None
        os.symlink(found, bin_dir / tool)
    qemu_stub = "#!/bin/sh\necho 'QEMU emulator version 7.2.22 (Debian)'\n"
    apt = (
        f'#!/bin/sh\necho "$*" >> {tmp_path}/apt.log\n'
        f'[ "$1" != install ] || printf "%s" "{qemu_stub}" > {bin_dir}/{facts.QEMU_PROGRAM}\n'
        f"chmod +x {bin_dir}/{facts.QEMU_PROGRAM} 2>/dev/null; exit 0\n"
    )
    (bin_dir / "apt-get").write_text(apt)
    (bin_dir / "apt-get").chmod(0o755)
    if qemu:
        (bin_dir / facts.QEMU_PROGRAM).write_text(qemu_stub)
        (bin_dir / facts.QEMU_PROGRAM).chmod(0o755)
    if python:
        os.symlink("/bin/true", bin_dir / facts.PYTHON_PROGRAM)
    firmware = tmp_path / "OVMF_CODE_4M.fd"
    firmware.write_bytes(b"fw")
    environment = {
        "PATH": str(bin_dir),
        "OVMF_CODE": str(firmware),
        "QEMU": facts.QEMU_PROGRAM,
        "PYTHON": facts.PYTHON_PROGRAM,
        "PACKAGES": " ".join(facts.BOOT_TEST_PACKAGES),
    }
    return tmp_path / "apt.log", environment


def install(environment: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["/bin/sh", "-c", bootvm.INSTALL_TOOLS],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_image_with_every_tool_installs_nothing(tmp_path: Path) -> None:
    log, environment = stubs(tmp_path, qemu=True, python=True)
    result = install(environment)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("QEMU emulator version") and not log.exists()


def test_a_missing_tool_installs_the_pinned_package_list(tmp_path: Path) -> None:
    log, environment = stubs(tmp_path, qemu=False, python=True)
    result = install(environment)
    assert result.returncode == 0, result.stderr
    assert log.read_text().splitlines() == [
        "update -q",
        "install -y -q --no-install-recommends " + " ".join(facts.BOOT_TEST_PACKAGES),
    ]


def test_a_missing_firmware_also_installs(tmp_path: Path) -> None:
    log, environment = stubs(tmp_path, qemu=True, python=True)
    environment["OVMF_CODE"] = str(tmp_path / "absent.fd")
    assert install(environment).returncode == 0
    assert "install" in log.read_text()
