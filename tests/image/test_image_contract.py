# ruff: noqa: E501  (embedded shell scripts read better unwrapped)
"""What a built image keeps right after it leaves the build: its own persistent
paths at every boot, no stale persistent copy hiding its links, no private
key, modules signed by the given key and built with the kernel's compiler, and
DKMS packages among the extra packages built for the image kernel."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from typing import Any

import pytest
import yaml

from pipeline import facts

from . import harness
from .conftest import DEFAULT_BIND_MOUNTS, SigningKey, Stage

pytestmark = pytest.mark.docker

OEM_CONFIG = "/system/oem/50_canvos-doca.yaml"
RELOCATED_OPT = "/usr/lib/canvos-doca/relocated/opt/mellanox"
PRIVATE_KEYS = (
    r"(find / -xdev \( -path /proc -o -path /sys -o -path /dev \) -prune -o -type f -print0"
    r" | xargs -0 grep -l -I -E -- '-----BEGIN ([A-Z0-9]+ )*PRIVATE KEY-----' 2>/dev/null || true)"
)


def sh(image: str, script: str, **kw: Any) -> str:
    return harness.run_in(image, script, check=True, **kw)[1]


def manifest(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(sh(image, "cat /usr/share/canvos-doca/manifest.json"))
    return data


# ------------------------------------------------------------------ boot emulation


def yip_script(config: dict[str, Any], stage: str) -> str:
    """The shell equivalent of yip running one stage of a cloud-config: each
    step's `if` through `sh -c` (false skips the step), then each command
    through `sh -c` (mudler/yip pkg/console, pkg/plugins/commands.go)."""
    lines = []
    for step in config["stages"].get(stage, []):
        cond = step.get("if")
        for command in step.get("commands", []):
            run = f"sh -c {shlex.quote(command)} || exit 1"
            lines.append(f"if sh -c {shlex.quote(cond)}; then {run}; fi" if cond else run)
    return "\n".join(lines)


def env_file(values: dict[str, str]) -> str:
    """An environment file the way yip's environment_file writes it (godotenv)."""
    return "".join(f'{key}="{values[key]}"\n' for key in sorted(values))


def read_env(text: str) -> dict[str, str]:
    """What immucore's ReadEnv (godotenv.Parse) gets from such a file."""
    out = {}
    for line in text.splitlines():
        if "=" in line and not line.startswith("#"):
            key, value = line.split("=", 1)
            out[key.strip()] = value.strip().strip('"')
    return out


def boot_binds(cos_layout: str, extra_layout: str) -> list[str]:
    """immucore's bind list (pkg/state/steps_shared.go LoadEnvLayoutDagStep):
    PERSISTENT_STATE_PATHS + CUSTOM_BIND_MOUNTS of cos-layout.env, then
    PERSISTENT_STATE_PATHS of extra-layout.env."""
    cos, extra = read_env(cos_layout), read_env(extra_layout)
    words = (
        cos.get("PERSISTENT_STATE_PATHS", "").split()
        + cos.get("CUSTOM_BIND_MOUNTS", "").split()
        + extra.get("PERSISTENT_STATE_PATHS", "").split()
    )
    return list(dict.fromkeys(words))


def test_image_adds_its_bind_mounts_at_every_boot(stage: Stage) -> None:
    config = yaml.safe_load(sh(stage.image, f"cat {OEM_CONFIG}"))
    ours = DEFAULT_BIND_MOUNTS.split()
    defaults = list(facts.KAIROS_PERSISTENT_STATE_PATHS)
    extras = list(facts.KAIROS_EXTRA_BINDS["ubuntu"])
    # The rootfs stage as kairos-init's 00_rootfs.yaml and 01_extra_binds.yaml
    # leave it on Ubuntu (both via yip environment_file), then our rootfs.after.
    cos = env_file(
        {
            "VOLUMES": "LABEL=COS_PERSISTENT:/usr/local",
            "OVERLAY": "tmpfs:25%",
            "RW_PATHS": " ".join(facts.KAIROS_RW_PATHS),
            "PERSISTENT_STATE_PATHS": " ".join(defaults),
        }
    )
    extra = env_file({"PERSISTENT_STATE_PATHS": " ".join(extras)})
    after = yip_script(config, "rootfs.after")
    out = sh(
        stage.image,
        f"""
        set -e
        boot() {{
          rm -rf /run/cos && mkdir -p /run/cos
          printf '%s' {shlex.quote(cos)} > /run/cos/cos-layout.env
          if [ "$1" = ubuntu ]; then printf '%s' {shlex.quote(extra)} > /run/cos/extra-layout.env; fi
          {after}
        }}
        boot ubuntu
        {after}
        echo '--- cos'; cat /run/cos/cos-layout.env
        echo '--- extra'; cat /run/cos/extra-layout.env
        boot other
        echo '--- other'; cat /run/cos/extra-layout.env
        boot ubuntu
        touch /run/cos/recovery_mode
        printf '%s' {shlex.quote(extra)} > /run/cos/extra-layout.env
        {after}
        echo '--- recovery'; cat /run/cos/extra-layout.env
        """,
    )
    parts = dict(re.findall(r"^--- (\w+)\n(.*?)(?=^--- |\Z)", out, re.M | re.S))
    binds = boot_binds(parts["cos"], parts["extra"])
    assert [p for p in defaults + extras + ours if p not in binds] == [], binds
    # The rootfs.after step ran twice: no path twice, the distro extras first.
    assert read_env(parts["extra"])["PERSISTENT_STATE_PATHS"].split() == extras + ours
    assert parts["cos"] == cos  # the Kairos defaults are untouched
    # Without distro extras (another OS) the file is created with ours only.
    assert read_env(parts["other"])["PERSISTENT_STATE_PATHS"].split() == ours
    # Recovery mode keeps the persistent partition out: nothing is added.
    assert read_env(parts["recovery"])["PERSISTENT_STATE_PATHS"].split() == extras


@pytest.fixture(scope="session")
def stage_with_rsync(stage: Stage, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The default stage image plus rsync, to sync persistent paths like immucore."""
    tag = harness.stage_tag("default-rsync")
    d = tmp_path_factory.mktemp("rsync")
    (d / "Dockerfile").write_text(
        f"FROM {stage.image}\n"
        "RUN apt-get update -q && apt-get install -y -q --no-install-recommends rsync"
        " && rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin\n"
    )
    harness.docker("build", "--network=host", "-t", tag, str(d))
    return tag


def test_stale_persistent_directory_is_reported_then_moved_aside(
    stage: Stage, stage_with_rsync: str, image_kernels: list[str]
) -> None:
    """An earlier image left a real /opt/mellanox in the persistent state: the
    immucore sync cannot put the image's link there, detection says so, and
    the image's boot step moves the directory aside (kept) for the link."""
    newest = image_kernels[1]
    config = yaml.safe_load(sh(stage.image, f"cat {OEM_CONFIG}"))
    state = "/usr/local/.state/opt.bind"
    sync = f"rsync -aquAX /opt/ {state}/"  # immucore internal/utils/mounts.go SyncState
    code, out = harness.run_in(
        stage_with_rsync,
        f"""
        mkdir -p {state}/mellanox/doca/bin
        echo 'stale DOCA of an earlier image' > {state}/mellanox/doca/bin/doca-standin-info
        {sync}; echo "sync1=$?"
        mount --bind {state} /opt
        echo "kind1=$(stat -c %F /opt/mellanox)"
        canvos-doca-detect --json --kernel {newest}; echo "detect1=$?"
        {yip_script(config, "initramfs")}
        echo "boot-step=$?"
        echo "link=$(readlink /opt/mellanox)"
        for d in /opt/mellanox.stale-*; do echo "aside=$d"; cat "$d/doca/bin/doca-standin-info"; done
        cat /var/log/canvos-doca.log
        canvos-doca-detect --kernel {newest}; echo "detect2=$?"
        umount /opt
        {sync}; echo "sync2=$?"
        mount --bind {state} /opt
        echo "link2=$(readlink /opt/mellanox)"
        /opt/mellanox/doca/bin/doca-standin-info
        """,
        caps=("SYS_ADMIN",),
    )
    assert code == 0, out
    assert "sync1=0" not in out and "could not make way for new symlink: mellanox" in out, out
    assert "kind1=directory" in out
    detect1 = json.loads(next(line for line in out.splitlines() if line.startswith("{")))
    assert detect1["status"] == "mismatch" and "detect1=2" in out
    assert f"/opt/mellanox is a directory, not the image's link to {RELOCATED_OPT}" in " ".join(
        detect1["problems"]
    ), detect1
    assert "boot-step=0" in out
    assert f"link={RELOCATED_OPT}" in out
    aside = re.search(r"^aside=(/opt/mellanox\.stale-\d{8}-\d{6})$", out, re.M)
    assert aside, out
    assert "stale DOCA of an earlier image" in out  # kept, not deleted
    assert re.search(
        rf"canvos-doca-restore-links: moved the stale /opt/mellanox aside to {re.escape(aside.group(1))}",
        out,
    ), out
    assert "detect2=0" in out
    assert "sync2=0" in out and f"link2={RELOCATED_OPT}" in out
    assert "doca-standin-info DOCA 3.2.1" in out


# ------------------------------------------------------------------ signing, keys


def module_signatures(
    image: str, kernel: str, modules: tuple[str, ...]
) -> dict[str, tuple[str, str]]:
    out = sh(
        image,
        f"for m in {' '.join(modules)}; do"
        f' echo "$m|$(modinfo -k {kernel} -F signer $m)|$(modinfo -k {kernel} -F sig_key $m)"; done',
    )
    sigs = {}
    for line in out.splitlines():
        name, signer, key = line.split("|")
        sigs[name] = (signer, key.replace(":", "").lstrip("0").upper())
    return sigs


def test_modules_carry_the_given_signer(
    stage: Stage, signing_key: SigningKey, image_kernels: list[str]
) -> None:
    newest = image_kernels[1]
    sigs = module_signatures(stage.image, newest, ("mlx5_core", "mlx5_ib", "acpi_call"))
    assert sigs == {
        m: (signing_key.subject_cn, signing_key.serial)
        for m in ("mlx5_core", "mlx5_ib", "acpi_call")
    }
    signing = manifest(stage.image)["module_signing"]
    assert signing["mode"] == "key"
    assert signing["sha256"] == signing_key.sha256
    assert signing["serial"] == signing_key.serial
    # The certificate to enroll (mokutil --import takes DER) is in the image.
    out = sh(
        stage.image,
        f"openssl x509 -inform DER -in {signing['certificate']} -noout -fingerprint -sha256",
    )
    assert out.strip().split("=", 1)[1] == signing_key.sha256


def test_signing_key_is_in_no_layer(stage: Stage, signing_key: SigningKey) -> None:
    """The key arrives as a build secret: no layer of the image holds it."""
    body = [line for line in signing_key.key.read_text().splitlines() if "-----" not in line]
    needles = [body[3].encode(), body[-2].encode()]
    assert sh(stage.image, PRIVATE_KEYS) == ""
    save = subprocess.Popen([harness.DOCKER, "save", stage.image], stdout=subprocess.PIPE)
    assert save.stdout is not None
    found, tail, size = [], b"", 0
    for chunk in iter(lambda: save.stdout.read(1 << 20), b""):  # type: ignore[union-attr]
        window = tail + chunk
        found += [n for n in needles if n in window]
        tail, size = window[-128:], size + len(chunk)
    assert save.wait() == 0
    assert size > 100_000_000, "docker save produced too little to be the image"
    assert found == []


def test_no_private_key_left_when_dkms_generates_one(
    stage_330: Stage, image_kernels: list[str]
) -> None:
    """Without a key pair, Debian's DKMS generates one and signs with it (the
    modules carry a signature); the private half is gone from the image."""
    out = sh(
        stage_330.image,
        f'echo "keys: $({PRIVATE_KEYS} | wc -l)"; ls -A /var/lib/dkms;'
        f' echo "sig_key: $(modinfo -k {image_kernels[1]} -F sig_key mlx5_core)"',
    )
    assert "keys: 0" in out, out
    assert "mok.key" not in out
    assert re.search(r"^sig_key: [0-9A-F:]+$", out, re.M), out  # signed, by a key no one has
    assert manifest(stage_330.image)["module_signing"]["mode"] == "throwaway"


# ------------------------------------------------------------------ DKMS of extra packages


def test_extra_dkms_package_is_built_for_the_image_kernel(
    stage: Stage, image_kernels: list[str]
) -> None:
    older, newest = image_kernels
    out = sh(
        stage.image,
        f"""
        dkms status acpi-call
        modinfo -k {newest} -n acpi_call
        echo "older: $(modinfo -k {older} -n acpi_call 2>/dev/null || echo none)"
        echo "headers: $(dpkg-query -W -f='${{db:Status-Status}}' linux-headers-{newest} 2>/dev/null || echo none)"
        """,
    )
    assert re.search(rf"^acpi-call/\S+, {re.escape(newest)}, x86_64: installed", out, re.M), out
    assert re.search(rf"^/lib/modules/{re.escape(newest)}/updates/dkms/acpi_call\.ko", out, re.M), (
        out
    )
    assert "older: none" in out
    assert "headers: none" in out or "headers: not-installed" in out, out
    extra = manifest(stage.image)["extra_dkms"]
    assert [(e["module"], e["kernel"]) for e in extra] == [("acpi-call", newest)]


# ------------------------------------------------------------------ compiler


def test_modules_are_built_with_the_kernels_compiler(
    stage: Stage, image_kernels: list[str]
) -> None:
    newest = image_kernels[1]
    out = sh(
        stage.image,
        f"""
        sed -n 's/^CONFIG_CC_VERSION_TEXT="\\(.*\\)"$/\\1/p' /boot/config-{newest}
        for m in mlx5_core acpi_call; do
          f="$(modinfo -k {newest} -n $m)"
          case "$f" in *.xz) xz -dc "$f" ;; *.zst) zstd -dcq "$f" ;; *) cat "$f" ;; esac > /tmp/m.ko
          readelf -p .comment /tmp/m.ko | sed -n 's/.*\\(GCC: .*\\)$/\\1/p' | sort -u
        done
        """,
    )
    kernel_cc, *comments = out.splitlines()
    version = kernel_cc.split(" ", 1)[1]  # "(Debian 12.2.0-...) 12.2.0"
    assert comments and set(comments) == {f"GCC: {version}"}, out
    compiler = manifest(stage.image)["compiler"]
    assert compiler["kernel"] == kernel_cc
    assert compiler["gcc"] == f"gcc-{version.rsplit(' ', 1)[1].split('.')[0]}"


def test_unavailable_kernel_compiler_fails_with_one_line(
    odd_bases: dict[str, str], repos: harness.RepoServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    values = harness.block_values(repo_url=repos.url())
    ctx = harness.make_context(tmp_path_factory.mktemp("ctx-gcc99"), values)
    result = harness.build(ctx, harness.stage_tag("gcc99"), odd_bases["gcc99"])
    assert result.returncode != 0
    lines = result.error_lines()
    assert len(lines) == 1, result.log[-4000:]
    assert re.match(
        r"kernel \S+ was built with GCC 99 \(.*\) but gcc-99 is not in the image's package sources",
        lines[0],
    ), lines


def test_signing_certificate_without_the_key_fails_with_one_line(
    base_image: str,
    repos: harness.RepoServer,
    signing_key: SigningKey,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    values = harness.block_values(repo_url=repos.url())
    ctx = harness.make_context(
        tmp_path_factory.mktemp("ctx-nokey"), values, signing_cert=signing_key.cert
    )
    result = harness.build(ctx, harness.stage_tag("nokey"), base_image)
    assert result.returncode != 0
    assert result.error_lines() == [
        "keys/module-signing.crt is in the build context but the module-signing private key"
        " did not arrive as a build secret: pass the key with the certificate"
    ], result.log[-4000:]
