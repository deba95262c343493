"""The Earthly / docker chains, inspected offline from the queries they would send."""

from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagger
import pytest
from chains import env, named, own, plain_values, steps, walk
from dagger import CacheSharingMode, Container, Directory, dag

from pipeline import canvos, earthly, images, verify
from pipeline.spec import BuildSpec

SPEC = BuildSpec(k8s_version=("1.33.10", "1.34.6"))
REF = "localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"
SECRET_MARK = "S3CR3T-do-not-leak"


def context() -> Directory:
    return dag.directory().with_new_file("user-data", "#cloud-config\n")


def secret(name: str) -> dagger.Secret:
    return dag.set_secret(name, f"{SECRET_MARK}-{name}")


def credentials() -> earthly.Credentials:
    return earthly.Credentials(
        registry_username="builder",
        registry_password=secret("registry"),
        docker_config=secret("docker-config"),
        ubuntu_pro_key=secret("pro"),
        user_data=secret("user-data"),
    )


def execs(ctr: Container) -> list[dict[str, object]]:
    return own(ctr, "withExec")


# ------------------------------------------------------------------ images


def test_images_are_pinned_exact_tags() -> None:
    for image in (images.EARTHLY_IMAGE, images.DIND_IMAGE):
        tag = images.version_of(image)
        assert tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
    assert images.EARTHLY_IMAGE.startswith("earthly/earthly:")
    assert images.DIND_IMAGE.endswith("-dind")


def test_chains_pull_only_the_pinned_images() -> None:
    ctr = earthly.iso(context(), SPEC)
    pulled = {args["address"] for args in named(ctr, "from")}
    assert pulled == {images.EARTHLY_IMAGE, images.DIND_IMAGE}


# Spectro Cloud's mirror of the pinned Earthly image.
EARTHLY_MIRROR = "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"


def test_tool_images_can_be_overridden_for_mirrors() -> None:
    tools = earthly.Tools(earthly_image=EARTHLY_MIRROR, dind_image="mirror/docker:27.5.1-dind")
    ctr = earthly.iso(context(), SPEC, tools)
    assert {a["address"] for a in named(ctr, "from")} == {
        EARTHLY_MIRROR,
        "mirror/docker:27.5.1-dind",
    }


# ------------------------------------------------------------- privileges


def test_root_capabilities_only_for_buildkit_and_dockerd() -> None:
    ctr = earthly.iso(context(), SPEC)
    privileged = sorted(
        (step, args.get("args")) for step, args in walk(ctr) if args.get("insecureRootCapabilities")
    )
    assert privileged == [
        ("asService", ["dockerd", "--host=tcp://0.0.0.0:2375", "--tls=false"]),
        ("withExec", [earthly.SCRIPT, "+iso", "--K8S_VERSION=1.33.10"]),
    ]


def test_verify_and_doca_image_run_unprivileged() -> None:
    checked = verify.verified(dag.container().from_("example/provider:1"))
    built = earthly.doca_image(context(), SPEC, "example/base:1")
    for obj in (checked, built):
        assert not any(a.get("insecureRootCapabilities") for _, a in walk(obj))


# ----------------------------------------------------------- cache volumes


def test_state_lives_on_locked_versioned_cache_volumes() -> None:
    ctr = earthly.iso(context(), SPEC)
    mounts = {args["path"]: args for args in named(ctr, "withMountedCache")}
    assert set(mounts) == {earthly.EARTHLY_CACHE, earthly.DOCKER_STATE}
    for args in mounts.values():
        assert args["sharing"] == CacheSharingMode.LOCKED.value
    keys = {path: own(args["cache"], "cacheVolume")[0]["key"] for path, args in mounts.items()}
    assert keys == {
        "/tmp/earthly": f"canvos-doca-earthly-{images.version_of(images.EARTHLY_IMAGE)}-amd64",
        "/var/lib/docker": f"canvos-doca-docker-{images.version_of(images.DIND_IMAGE)}-amd64",
    }


def test_other_arch_or_version_never_shares_a_volume() -> None:
    def keys(spec: BuildSpec, tools: earthly.Tools) -> set[str]:
        ctr = earthly.iso(context(), spec, tools)
        return {own(a["cache"], "cacheVolume")[0]["key"] for a in named(ctr, "withMountedCache")}

    base = keys(SPEC, earthly.Tools())
    arm = keys(dataclasses.replace(SPEC, arch="arm64"), earthly.Tools())
    newer = keys(SPEC, earthly.Tools("earthly/earthly:v0.8.16", "docker:28.0.0-dind"))
    assert not base & arm and not base & newer and len(base) == 2


# ------------------------------------------------------- targets and args


def test_iso_runs_the_iso_target_with_an_explicit_k8s_version() -> None:
    ctr = earthly.iso(context(), SPEC)
    assert execs(ctr)[-1]["args"] == [earthly.SCRIPT, "+iso", "--K8S_VERSION=1.33.10"]
    assert env(ctr)["CANVOS_DOCA_TARGET"] == "+iso"


@pytest.mark.parametrize("version", SPEC.k8s_version)
def test_provider_image_per_version(version: str) -> None:
    image = earthly.provider_image(context(), SPEC, version, REF, "img")
    assert execs(image.built)[-1]["args"] == [
        earthly.SCRIPT,
        canvos.TARGET_PROVIDER_IMAGES,
        f"--K8S_VERSION={version}",
    ]


def test_provider_image_refuses_an_empty_k8s_version() -> None:
    with pytest.raises(ValueError, match="K8S_VERSION"):
        earthly.provider_image(context(), SPEC, "", REF, "img")


def test_rebuild_bypasses_dagger_and_earthly_caches() -> None:
    ctr = earthly.iso(context(), SPEC, rebuild="1700000000")
    assert execs(ctr)[-1]["args"][:3] == [earthly.SCRIPT, "--no-cache", "+iso"]
    assert env(ctr)["CANVOS_DOCA_REBUILD"] == "1700000000"
    assert "--no-cache" not in execs(earthly.iso(context(), SPEC))[-1]["args"]


def test_earthly_sees_the_context_and_talks_to_the_docker_service() -> None:
    ctx = context()
    ctr = earthly.iso(ctx, SPEC)
    mounted = own(ctr, "withMountedDirectory")
    assert [(m["path"], m["source"]) for m in mounted] == [(earthly.WORKSPACE, ctx)]
    binding = own(ctr, "withServiceBinding")[0]
    assert binding["alias"] == earthly.DOCKER_ALIAS
    assert env(ctr)["DOCKER_HOST"] == f"tcp://{earthly.DOCKER_ALIAS}:{earthly.DOCKER_PORT}"
    service = binding["service"]
    assert own(service, "withExposedPort")[0]["port"] == earthly.DOCKER_PORT
    assert own(service, "withEnvVariable") == [{"name": "DOCKER_TLS_CERTDIR", "value": ""}]


def test_proxies_reach_earthly_and_skip_the_docker_service() -> None:
    spec = dataclasses.replace(
        SPEC, http_proxy="http://proxy:3128", https_proxy="http://proxy:3128", no_proxy="corp"
    )
    variables = env(earthly.iso(context(), spec))
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        assert variables[name] == "http://proxy:3128"
    assert variables["NO_PROXY"] == variables["no_proxy"] == "corp,docker"
    assert "HTTP_PROXY" not in env(earthly.iso(context(), SPEC))


# ------------------------------------------------------------------ secrets


def test_secrets_are_mounted_and_absent_from_args_and_env() -> None:
    creds = credentials()
    ctr = earthly.iso(context(), SPEC, credentials=creds)
    mounted = {m["path"]: m["source"] for m in named(ctr, "withMountedSecret")}
    assert mounted == {
        earthly.DOCKER_CONFIG: creds.docker_config,
        earthly.REGISTRY_PASSWORD: creds.registry_password,
        earthly.USER_DATA: creds.user_data,
    }
    variables = own(ctr, "withSecretVariable")
    assert variables == [{"name": "UBUNTU_PRO_KEY", "secret": creds.ubuntu_pro_key}]
    assert not any(SECRET_MARK in value for value in plain_values(ctr))
    assert env(ctr)["CANVOS_DOCA_REGISTRY_USER"] == "builder"
    # Credentials are written to a tmpfs, never into the container's layers.
    assert own(ctr, "withMountedTemp") == [{"path": "/root/.docker"}]


def test_image_targets_never_see_user_data() -> None:
    creds = credentials()
    image = earthly.provider_image(context(), SPEC, "1.34.6", REF, "img", credentials=creds)
    ctr = image.built
    workspace = own(ctr, "withMountedDirectory")[0]["source"]
    assert steps(workspace)[-1] == ("withoutFile", {"path": "user-data"})
    paths = [m["path"] for m in own(ctr, "withMountedSecret")]
    assert earthly.USER_DATA not in paths and earthly.REGISTRY_PASSWORD in paths


def test_iso_context_keeps_user_data() -> None:
    ctx = context()
    ctr = earthly.iso(ctx, SPEC)
    assert own(ctr, "withMountedDirectory")[0]["source"] is ctx


# ----------------------------------------------------- docker save / import


def test_saved_image_path_docker_save_then_import() -> None:
    image = earthly.provider_image(context(), SPEC, "1.34.6", REF, "ubuntu-k3s")
    ctr = image.built
    assert env(ctr)["CANVOS_DOCA_SAVE"] == f"{REF}|ubuntu-k3s"
    assert steps(image.tarball)[-1] == ("file", {"path": f"{earthly.IMAGES_DIR}/ubuntu-k3s.tar"})
    assert steps(image.checksum)[-1] == (
        "file",
        {"path": f"{earthly.IMAGES_DIR}/ubuntu-k3s.tar.sha256"},
    )
    assert steps(image.inspect)[-1] == ("file", {"path": f"{earthly.IMAGES_DIR}/ubuntu-k3s.json"})
    assert steps(image.container) == [("container", {}), ("import", {"source": image.tarball})]


def test_run_script_is_shellcheck_clean() -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    script = Path(earthly.__file__).parent / "earthly-run.sh"
    result = subprocess.run([shellcheck, str(script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


def test_installer_image_is_saved_for_verification() -> None:
    image = earthly.installer_image(context(), SPEC, "palette-installer-image:v4.9.38", "inst")
    ctr = image.built
    assert execs(ctr)[-1]["args"] == [earthly.SCRIPT, "+iso-image", "--K8S_VERSION=1.33.10"]
    assert env(ctr)["CANVOS_DOCA_SAVE"] == "palette-installer-image:v4.9.38|inst"


# ---------------------------------------------------------- doca / verify


def test_doca_image_is_a_plain_dockerfile_build_of_the_context() -> None:
    spec = dataclasses.replace(SPEC, arch="arm64", http_proxy="http://p:1")
    built = earthly.doca_image(context(), spec, "registry/kairos-ubuntu:22.04-core-arm64")
    build = own(built, "dockerBuild")[0]
    args = {a["name"]: a["value"] for a in build["buildArgs"]}
    assert args == {
        "BASE": "registry/kairos-ubuntu:22.04-core-arm64",
        "OS_DISTRIBUTION": "ubuntu",
        "OS_VERSION": "22.04",
        "HTTP_PROXY": "http://p:1",
    }
    assert build["platform"] == "linux/arm64"
    assert ("withoutFile", {"path": "user-data"}) in steps(built)


def test_verify_runs_the_doca_stage_script_and_keeps_its_exit_code() -> None:
    ran = verify.verified(dag.container().from_("example/provider:1"))
    exec_args = own(ran, "withExec")[0]
    assert exec_args["args"] == [verify.VERIFY_COMMAND]
    assert exec_args["expect"] == dagger.ReturnType.ANY.value


def test_verify_command_is_what_the_doca_stage_installs() -> None:
    root = Path(earthly.__file__).parents[1] / "overlays" / "doca" / "tools"
    customize = (root / "customize.sh").read_text()
    assert f"{verify.VERIFY_COMMAND}" in customize
    assert Path(verify.VERIFY_COMMAND).name in {p.name for p in root.iterdir()}
    assert (
        verify.DOCA_MANIFEST.rsplit("/", 1)[0] in (root.parent / "install" / "lib.sh").read_text()
    )


def test_output_directory_layout() -> None:
    files = {"b.tar": dag.directory().file("b"), "a.iso": dag.directory().file("a")}
    out = earthly.output_directory(files, '{"schema": 1}\n')
    chain = steps(out)
    assert [(n, a.get("path")) for n, a in chain[1:]] == [
        ("withFile", "a.iso"),
        ("withFile", "b.tar"),
        ("withNewFile", "manifest.json"),
    ]
    assert chain[-1][1]["contents"] == '{"schema": 1}\n'
