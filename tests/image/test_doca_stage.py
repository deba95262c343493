# ruff: noqa: E501  (embedded shell scripts and Dockerfile text read better unwrapped)
"""The DOCA stage in real container builds (rendered block, real kernels, real DKMS)."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from . import harness, standin
from .conftest import DEFAULT_BIND_MOUNTS, DEFAULT_EXTRA, SigningKey, Stage, require_success

pytestmark = pytest.mark.docker

OVERLAYS_RO = f"{harness.OVERLAYS}:/src/overlays:ro"


def sh(image: str, script: str, **kw: Any) -> str:
    return harness.run_in(image, script, check=True, **kw)[1]


def manifest(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sh(image, "cat /usr/share/canvos-doca/manifest.json"))
    return data


# ------------------------------------------------------------------ kernels


def test_modules_built_only_for_the_newest_image_kernel(
    stage: Stage, image_kernels: list[str], host_kernel: str
) -> None:
    older, newest = image_kernels
    out = sh(
        stage.image,
        f"""
        find /lib/modules/{newest}/updates/dkms -name '*.ko*' | sort
        echo "older: $(find /lib/modules/{older} -path '*updates/dkms*' -name '*.ko*' | wc -l)"
        echo "host-modules: $(test -e /lib/modules/{host_kernel} && echo yes || echo no)"
        echo "host-dkms: $(ls /var/lib/dkms/mlnx-ofed-kernel/*/ | grep -c -F {host_kernel} || true)"
        modinfo -k {newest} -n mlx5_core
        """,
    )
    assert f"/lib/modules/{newest}/updates/dkms/mlx5_core.ko" in out
    assert f"/lib/modules/{newest}/updates/dkms/mlx5_ib.ko" in out
    assert "older: 0" in out
    assert "host-modules: no" in out
    assert "host-dkms: 0" in out
    assert re.search(rf"^/lib/modules/{re.escape(newest)}/updates/dkms/mlx5_core\.ko", out, re.M)


def test_the_build_says_which_kernel_it_targets(stage: Stage, image_kernels: list[str]) -> None:
    assert f"target (newest, the one CanvOS keeps): {image_kernels[1]}" in stage.result.log


# ------------------------------------------------------------------ manifest


def test_manifest_content(stage: Stage, image_kernels: list[str]) -> None:
    m = manifest(stage.image)
    newest = image_kernels[1]
    assert m["doca_version"] == "3.2.1"
    assert m["profile"] == "doca-ofed"
    assert m["profile_version"] == "3.2.1-1"
    assert m["ofed_version"] == "OFED-internal-25.10-1.7.1"
    assert m["source"]["kind"] == "online"
    assert m["source"]["os"] == "debian12"
    assert m["source"]["arch"] == "x86_64"
    assert m["kernel_policy"] == "newest"
    assert m["kernels"] == [newest]
    assert m["image_kernels"] == image_kernels
    names = {p["name"] for p in m["packages"]}
    assert names == {
        "doca-ofed",
        "mlnx-ofed-kernel-dkms",
        "mlnx-ofed-kernel-utils",
        "mlnx-fw-updater",
    }
    assert all(p["held"] for p in m["packages"])
    assert m["dkms"] == [{"module": "mlnx-ofed-kernel", "version": "25.10", "kernel": newest}]
    assert sorted(m["modules"][newest]) == [
        f"/lib/modules/{newest}/updates/dkms/mlx5_core.ko.xz",
        f"/lib/modules/{newest}/updates/dkms/mlx5_ib.ko.xz",
    ] or all("/updates/dkms/" in p for p in m["modules"][newest])
    assert m["enabled_units"] == ["openibd.service"]
    assert m["firmware_update_on_boot"] is False
    assert m["ofa_kernel_kept"] is True
    assert m["extra_packages"] == sorted(DEFAULT_EXTRA.split())
    assert m["doca_packages"] == []
    assert m["kernel_args"] == ["iommu=pt", "pci=realloc"]
    assert m["bind_mounts"] == DEFAULT_BIND_MOUNTS.split()
    assert "/usr/local" in m["persistence"]["persistent_paths"]


def test_manifest_is_under_an_immutable_path(stage: Stage) -> None:
    persistent = manifest(stage.image)["persistence"]["persistent_paths"]
    for path in ("/usr/share/canvos-doca/manifest.json", "/usr/bin/canvos-doca-detect"):
        assert not any(path == p or path.startswith(p.rstrip("/") + "/") for p in persistent)


# ------------------------------------------------------------------ clean image


def test_no_doca_source_lists_or_caches_left(stage: Stage) -> None:
    out = sh(
        stage.image,
        """
        echo "sources: $(grep -rilE 'doca|mellanox|127\\.0\\.0\\.1' /etc/apt/sources.list /etc/apt/sources.list.d 2>/dev/null | wc -l)"
        echo "lists: $(find /var/lib/apt/lists -type f ! -name lock | wc -l)"
        echo "debs: $(find /var/cache/apt -name '*.deb' | wc -l)"
        echo "pkgcache: $(ls /var/cache/apt/*.bin 2>/dev/null | wc -l)"
        echo "keyrings: $(ls /etc/apt/keyrings 2>/dev/null | wc -l)"
        echo "tmp: $(ls -A /tmp | wc -l)"
        echo "dkms-build: $(ls -d /var/lib/dkms/*/*/build 2>/dev/null | wc -l)"
        apt-mark showhold
        """,
    )
    for key in ("sources", "lists", "debs", "pkgcache", "keyrings", "tmp", "dkms-build"):
        assert f"{key}: 0" in out, out
    for pkg in ("doca-ofed", "mlnx-ofed-kernel-dkms", "mlnx-ofed-kernel-utils", "mlnx-fw-updater"):
        assert re.search(rf"^{pkg}$", out, re.M), f"{pkg} not held:\n{out}"


def test_distribution_dkms_wins_over_docas(stage: Stage) -> None:
    out = sh(stage.image, "dpkg-query -W -f='${Version}' dkms; echo; dkms --version")
    assert "3.9.9-doca1" not in out
    assert "+deb12" in out.splitlines()[0]


def test_ofa_kernel_tree_kept(stage: Stage, image_kernels: list[str]) -> None:
    sh(stage.image, f"test -f /usr/src/ofa_kernel/x86_64/{image_kernels[1]}/Module.symvers")
    sh(stage.image, "test -f /usr/src/mlnx-ofed-kernel-25.10/dkms.conf")


def test_headers_removed_compiler_kept(stage: Stage, image_kernels: list[str]) -> None:
    out = sh(
        stage.image,
        f"dpkg-query -W -f='${{db:Status-Status}}' linux-headers-{image_kernels[1]} 2>&1; echo;"
        " command -v gcc make dkms",
    )
    assert "installed" not in out.splitlines()[0]
    assert "/gcc" in out and "/dkms" in out
    m = manifest(stage.image)
    assert m["build_tools"]["removed"] == [f"linux-headers-{image_kernels[1]}"]


# ------------------------------------------------------------------ services, firmware


def test_openibd_enabled_by_a_vendor_link_only(stage: Stage) -> None:
    out = sh(
        stage.image,
        """
        readlink /usr/lib/systemd/system/sysinit.target.wants/openibd.service
        test -f /usr/lib/systemd/system/openibd.service -o -f /lib/systemd/system/openibd.service
        echo "etc-links: $(find /etc/systemd/system -name 'openibd*' | wc -l)"
        """,
    )
    assert out.splitlines()[0] == "../openibd.service"
    assert "etc-links: 0" in out


def test_firmware_updater_never_ran_and_is_off_on_boot(stage: Stage) -> None:
    out = sh(
        stage.image,
        f"""
        echo "marker: $(test -e {standin.FW_MARKER} && echo present || echo absent)"
        cat /etc/mellanox/mlnx-fw-updater.conf
        echo "diversions: $(dpkg-divert --list | grep -c mlnx || true)"
        head -3 /opt/mellanox/mlnx-fw-updater/mlnx_fw_updater.pl
        """,
    )
    assert "marker: absent" in out
    assert "RUN_FW_UPDATER_ONBOOT=no" in out
    assert "diversions: 0" in out
    # The real updater is back in place (not the build-time stub).
    assert "records that it ran" in out


def test_standins_misbehave_without_the_stage_guards(
    base_image: str, repos: harness.RepoServer
) -> None:
    """Control: installed plainly, the stand-ins flash firmware and break on systemctl."""
    _, out = harness.run_in(
        base_image,
        f"""
        mkdir -p /etc/apt/keyrings
        /usr/lib/apt/apt-helper download-file {repos.url()}/GPG-KEY-Mellanox.pub /etc/apt/keyrings/t.asc >/dev/null
        chmod 644 /etc/apt/keyrings/t.asc
        echo 'deb [signed-by=/etc/apt/keyrings/t.asc] {repos.url()}/3.2.1/debian12/x86_64/ ./' > /etc/apt/sources.list.d/t.list
        apt-get update -qq >/dev/null 2>&1
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mlnx-fw-updater >/dev/null 2>&1
        echo "marker: $(cat {standin.FW_MARKER} 2>/dev/null || echo absent)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mlnx-ofed-kernel-utils 2>&1
        """,
        network="host",
    )
    assert "marker: firmware updater ran" in out, out
    assert "System has not been booted with systemd" in out, out


# ------------------------------------------------------------------ detection


def detect(image: str, args: str, volumes: tuple[str, ...] = ()) -> tuple[int, str]:
    return harness.run_in(image, f"canvos-doca-detect {args}", volumes=volumes)


def test_detect_installed_for_the_image_kernel(stage: Stage, image_kernels: list[str]) -> None:
    code, out = detect(stage.image, f"--kernel {image_kernels[1]} --expect-version 3.2.1")
    assert code == 0, out
    assert "preinstalled" in out
    code, out = detect(stage.image, f"--json --kernel {image_kernels[1]}")
    assert code == 0, out
    data = json.loads(out)
    assert data["status"] == "installed"
    assert data["exit_code"] == 0
    assert data["ofed_version"] == "OFED-internal-25.10-1.7.1"
    assert data["problems"] == []


def test_detect_mismatch_for_other_kernels(
    stage: Stage, image_kernels: list[str], host_kernel: str
) -> None:
    code, out = detect(stage.image, f"--kernel {image_kernels[0]}")
    assert code == 2, out
    assert image_kernels[0] in out
    # Inside a container the running kernel is the build host's.
    code, out = detect(stage.image, "--json")
    assert code == 2, out
    data = json.loads(out)
    assert data["kernel"] == host_kernel
    assert data["status"] == "mismatch"


def test_detect_mismatch_on_missing_module_or_version(
    stage: Stage, image_kernels: list[str]
) -> None:
    newest = image_kernels[1]
    code, out = harness.run_in(
        stage.image,
        f"rm /lib/modules/{newest}/updates/dkms/mlx5_core.ko* && depmod -a {newest} &&"
        f" canvos-doca-detect --kernel {newest}",
    )
    assert code == 2, out
    assert "mlx5_core" in out or "not installed" in out
    code, out = detect(stage.image, f"--kernel {newest} --expect-version 3.3.0")
    assert code == 2, out
    assert "expected 3.3.0" in out


def test_detect_not_installed_in_the_base_image(base_image: str, image_kernels: list[str]) -> None:
    code, out = harness.run_in(
        base_image,
        f"/src/overlays/hostprep/canvos-doca-detect --json --kernel {image_kernels[1]}",
        volumes=(OVERLAYS_RO,),
    )
    assert code == 1, out
    assert json.loads(out)["status"] == "not-installed"


def test_verify_passes_and_catches_breakage(stage: Stage) -> None:
    assert "canvos-doca: verify passed" in stage.result.log
    code, out = harness.run_in(stage.image, "canvos-doca-verify")
    assert code == 0, out
    code, out = harness.run_in(
        stage.image,
        "apt-mark unhold mlnx-fw-updater >/dev/null && echo 'deb http://x/doca ./' >"
        " /etc/apt/sources.list.d/doca.list && openssl genpkey -algorithm ed25519"
        " -out /var/lib/dkms/leaked.pem && mkdir -p /etc/apt/auth.conf.d"
        " && echo 'machine m login u password Leaked-pw' >/etc/apt/auth.conf.d/left.conf"
        " && canvos-doca-verify",
    )
    assert code == 1, out
    assert "FAIL  package mlnx-fw-updater held" in out
    assert "FAIL  no DOCA apt source left" in out
    assert "FAIL  no PEM private key in the image (found: /var/lib/dkms/leaked.pem )" in out
    assert (
        "FAIL  no apt login (auth.conf) in the image (found: /etc/apt/auth.conf.d/left.conf" in out
    )
    assert "Leaked-pw" not in out


# ------------------------------------------------------------------ persistence (issue 5)


def test_bind_mount_paths_exist(stage: Stage) -> None:
    for path in DEFAULT_BIND_MOUNTS.split():
        sh(stage.image, f"test -d {path}")


def test_relocated_pieces_work_from_immutable_paths(stage: Stage) -> None:
    out = sh(
        stage.image,
        """
        echo "etc-modprobe: $(test -e /etc/modprobe.d/mlnx.conf && echo present || echo absent)"
        modprobe -c | grep -x 'options mlx5_core prof_sel=2'
        readlink /opt/mellanox
        /opt/mellanox/doca/bin/doca-standin-info
        readlink /etc/init.d/openibd
        /etc/init.d/openibd bogus || echo "openibd-exit: $?"
        test -f /usr/lib/systemd/system/mlnx_interface_mgr@.service
        echo "etc-unit: $(test -e /etc/systemd/system/mlnx_interface_mgr@.service && echo present || echo absent)"
        """,
    )
    assert "etc-modprobe: absent" in out
    assert "options mlx5_core prof_sel=2" in out
    assert "/usr/lib/canvos-doca/relocated/opt/mellanox" in out
    assert "doca-standin-info DOCA 3.2.1" in out
    assert "/usr/lib/canvos-doca/relocated/etc/init.d/openibd" in out
    assert "usage:" in out and "openibd-exit: 2" in out
    assert "etc-unit: absent" in out


def test_hazard_report_lists_exactly_the_files_left(stage: Stage) -> None:
    persistence = manifest(stage.image)["persistence"]
    assert {h["path"] for h in persistence["upgrade_hazards"]} == standin.EXPECTED_HAZARDS
    assert {link["path"] for link in persistence["stable_links"]} == standin.EXPECTED_LINKS
    assert {r["from"] for r in persistence["relocated"]} == {
        "/etc/init.d/openibd",
        "/etc/modprobe.d/mlnx.conf",
        "/etc/systemd/system/mlnx_interface_mgr@.service",
        "/opt/mellanox",
    }
    # ... and the build output shows the same report.
    assert "canvos-doca: upgrade-hazard report" in stage.result.log
    for path in standin.EXPECTED_HAZARDS:
        assert re.search(rf"#\d+ [\d.]+ +{re.escape(path)} ", stage.result.log)


# ------------------------------------------------------------------ nodeprep leftovers


def test_extra_packages_installed_and_cleaned(stage: Stage) -> None:
    out = sh(stage.image, "jq --version; find /var/lib/apt/lists -type f ! -name lock | wc -l")
    assert out.startswith("jq-")
    assert out.split()[-1] == "0"


def test_kernel_args_compose_with_canvos_and_are_idempotent(stage: Stage) -> None:
    line = sh(stage.image, "grep -m1 'set baseCmd=' /etc/cos/bootargs.cfg").strip()
    for arg in ("iommu=pt", "pci=realloc", "systemd.unified_cgroup_hierarchy=1", "console=tty1"):
        assert line.count(arg) == 1, line
    assert line.endswith('"')
    again = sh(
        stage.image,
        "export CANVOS_DOCA_LIB=/src/overlays/doca/install/lib.sh DOCA_KERNEL_ARGS='iommu=pt pci=realloc';"
        " bash /src/overlays/doca/tools/customize.sh kernel-args >/dev/null 2>&1;"
        " bash /src/overlays/doca/tools/customize.sh kernel-args >/dev/null 2>&1;"
        " grep -m1 'set baseCmd=' /etc/cos/bootargs.cfg",
        volumes=(OVERLAYS_RO,),
    ).strip()
    assert again == line


# ------------------------------------------------------------------ caching


def test_unrelated_context_changes_rerun_no_stage_step(stage: Stage, base_image: str) -> None:
    (stage.ctx / "user-data").write_text("#cloud-config\nstylus:\n  site:\n    name: changed\n")
    (stage.ctx / "Earthfile").write_text("VERSION 0.6\n# changed\n")
    (stage.ctx / "canvos-doca" / "user-data").mkdir(exist_ok=True)
    (stage.ctx / "canvos-doca" / "user-data" / "user-data.yaml").write_text("#cloud-config\n")
    result = harness.build(
        stage.ctx, harness.stage_tag("rebuild"), base_image, secrets=stage.secrets
    )
    require_success(result, "the rebuild")
    for needle in ("doca-install.sh", "customize.sh extra-packages", "customize.sh finalize"):
        assert result.step_states(needle) == ["CACHED"], (needle, result.log[-3000:])


def test_cheap_inputs_do_not_rerun_the_doca_install(
    stage: Stage,
    base_image: str,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    values = {**stage.values, "KERNEL_ARGS": "iommu=pt", "BIND_MOUNTS": "/var/lib/other"}
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-cheap"), values, signing_cert=signing_key.cert
    )
    result = harness.build(ctx, harness.stage_tag("cheap"), base_image, secrets=stage.secrets)
    require_success(result, "the build with other kernel args and bind mounts")
    assert result.step_states("doca-install.sh") == ["CACHED"]
    assert result.step_states("customize.sh extra-packages") == ["CACHED"]
    assert result.step_states("customize.sh finalize") == ["RAN"]
    sh(result.tag, "test -d /var/lib/other")


def test_changing_the_doca_version_reruns_the_install(stage_330: Stage) -> None:
    assert stage_330.result.step_states("doca-install.sh") == ["RAN"]
    m = manifest(stage_330.image)
    assert m["doca_version"] == "3.3.0"
    assert m["ofed_version"] == "OFED-internal-26.01-0.5.2"


# ------------------------------------------------------------------ air-gapped sources


def test_airgapped_local_repo_deb_with_pinned_key(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    work = tmp_path_factory.mktemp("airgap-deb")
    deb = standin.write_local_repo_deb(work / "out", repos.repo_dir("3.2.1"), "3.2.1", work)
    values = harness.block_values(
        repo_url="http://127.0.0.1:9/unused",
        source="repo-deb",
        key_file="canvos-doca/keys/doca.pub",
    )
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-deb"),
        values,
        airgap={deb.name: deb},
        key_text=repos.good_key,
    )
    result = harness.build(ctx, harness.stage_tag("repo-deb"), base_image)
    require_success(result, "the repo-deb build")
    m = manifest(result.tag)
    assert m["source"]["kind"] == "repo-deb"
    assert m["source"]["key"] == "pinned key canvos-doca/keys/doca.pub"
    out = sh(
        result.tag,
        "echo \"doca-host: $(dpkg-query -W -f='${db:Status-Status}' doca-host 2>/dev/null || echo none)\";"
        ' echo "pool: $(ls -d /usr/share/doca-host* 2>/dev/null | wc -l)"; echo "tmp: $(ls -A /tmp | wc -l)"',
    )
    assert "doca-host: none" in out
    assert "pool: 0" in out and "tmp: 0" in out


def test_airgapped_repo_dir_networking_profile(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # doca_packages come from the air-gapped pool like the profile.
    values = harness.block_values(
        repo_url="http://127.0.0.1:9/unused",
        source="repo-dir",
        profile="doca-networking",
        doca_packages="mlnx-nfsrdma-dkms",
    )
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-dir"),
        values,
        airgap={".": repos.repo_dir("3.2.1")},
    )
    result = harness.build(ctx, harness.stage_tag("repo-dir"), base_image)
    require_success(result, "the repo-dir build")
    m = manifest(result.tag)
    assert m["source"]["kind"] == "repo-dir"
    assert m["profile"] == "doca-networking"
    assert m["source"]["key"] == "GPG-KEY-Mellanox.pub of the air-gapped repository"
    assert m["doca_packages"] == ["mlnx-nfsrdma-dkms"]
    assert "mlnx-nfsrdma" in {d["module"] for d in m["dkms"]}
    assert {p["name"]: p["held"] for p in m["packages"]}["mlnx-nfsrdma-dkms"] is True


# ------------------------------------------------------------------ clear failures


def failing_build(
    base: str, values: dict[str, str], tmp: pytest.TempPathFactory, name: str
) -> harness.BuildResult:
    ctx = harness.make_context(tmp.mktemp(f"ctx-{name}"), values)
    result = harness.build(ctx, harness.stage_tag(name), base)
    assert result.returncode != 0, f"{name} build unexpectedly passed"
    assert len(result.error_lines()) == 1, result.log[-4000:]
    return result


def test_wrong_signing_key_fails_with_one_line(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = harness.block_values(repo_url=repos.url("wrongsig"))
    result = failing_build(base_image, values, tmp_path_factory, "wrongsig")
    line = result.error_lines()[0]
    assert line.startswith("bad signature:"), line
    assert "/wrongsig/doca/3.2.1/debian12/x86_64/" in line


def test_missing_version_fails_with_the_url(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = harness.block_values(repo_url=repos.url(), version="9.9.9")
    line = failing_build(base_image, values, tmp_path_factory, "missing").error_lines()[0]
    assert line.startswith("DOCA version 9.9.9 not found:"), line
    assert f"{repos.url()}/9.9.9/debian12/x86_64/" in line


def test_a_doca_package_not_in_the_doca_repository_fails_with_one_line(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    # jq is a distribution package: it belongs in extra_packages.
    values = harness.block_values(repo_url=repos.url(), doca_packages="mlnx-nfsrdma-dkms jq")
    line = failing_build(base_image, values, tmp_path_factory, "docapkg").error_lines()[0]
    assert line.startswith(
        "DOCA package 'jq' (doca_packages) is not in the DOCA 3.2.1 repository"
    ), line
    assert "extra_packages" in line


def test_unreachable_repo_fails_with_the_url(
    base_image: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    port = harness.free_port()
    values = harness.block_values(repo_url=f"http://127.0.0.1:{port}/doca")
    line = failing_build(base_image, values, tmp_path_factory, "unreachable").error_lines()[0]
    assert line.startswith("DOCA repository unreachable:"), line
    assert f"http://127.0.0.1:{port}/doca/3.2.1/" in line


def test_unsupported_os_fails_with_one_line(
    odd_bases: dict[str, str], repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = harness.block_values(repo_url=repos.url())
    line = failing_build(odd_bases["fedora"], values, tmp_path_factory, "fedora").error_lines()[0]
    assert line.startswith("unsupported OS 'fedora 40'"), line


def test_missing_headers_names_the_kernel(
    odd_bases: dict[str, str], repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = harness.block_values(repo_url=repos.url())
    line = failing_build(odd_bases["noheaders"], values, tmp_path_factory, "nohdr").error_lines()[0]
    assert "linux-headers-9.9.9-nohdr-amd64" in line and "kernel 9.9.9-nohdr-amd64" in line, line
    assert "DOCA/kernel pairing" in line


def test_proxy_build_args_are_honoured(
    base_image: str, repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """CanvOS passes HTTP(S)_PROXY as build args: apt must go through them."""
    port = harness.free_port()  # nothing listens: every proxied request fails
    proxy = f"http://127.0.0.1:{port}"
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-proxy"), harness.block_values(repo_url=repos.url())
    )
    result = harness.build(
        ctx,
        harness.stage_tag("proxy"),
        base_image,
        proxies={"HTTP_PROXY": proxy, "HTTPS_PROXY": proxy, "NO_PROXY": ""},
    )
    assert result.returncode != 0
    lines = result.error_lines()
    assert len(lines) == 1, result.log[-3000:]
    assert lines[0].startswith("apt-get update could not fetch the package lists"), lines
    assert f"127.0.0.1:{port}" in lines[0]


def test_dkms_build_failure_names_module_and_kernel(
    base_image: str,
    repos: harness.RepoServer,
    image_kernels: list[str],
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    values = harness.block_values(repo_url=repos.url(), version="3.1.0")
    result = failing_build(base_image, values, tmp_path_factory, "dkmsfail")
    line = result.error_lines()[0]
    assert line.startswith(
        f"DKMS module mlnx-ofed-kernel/25.07 failed to build for kernel {image_kernels[1]}:"
    ), line
    assert "does not support this kernel" in result.log  # make.log tail shown
