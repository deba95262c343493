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

from pipeline import artifacts, earthly, facts, verify
from pipeline.context import describe_ref
from pipeline.description import BuildDescription
from pipeline.earthfile import PRO_BUILD_ARG, PRO_SECRET
from pipeline.earthly import EarthlyBuild
from pipeline.errors import InvalidInput
from pipeline.spec import BuildSpec

SPEC = BuildSpec(k8s_version=("1.33.10", "1.34.6"))
REF = "localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"
INSTALLER = "palette-installer-image:v4.9.38"
BASE = "registry/kairos-ubuntu:22.04-core-arm64"
SECRET_MARK = "S3CR3T-do-not-leak"
TOOLS = earthly.Tools()
NO_CREDENTIALS = earthly.Credentials()


def context() -> Directory:
    return dag.directory().with_new_file("user-data", "#cloud-config\n")


def describe(
    spec: BuildSpec = SPEC, rebuild: str = "", ubuntu_pro: str = "", base: str = BASE
) -> BuildDescription:
    described = describe_ref(spec, pe_version="v4.9.38")
    canvos = dataclasses.replace(described.canvos, ubuntu_pro=ubuntu_pro, base_image=base)
    return dataclasses.replace(described, canvos=canvos, rebuild=rebuild)


def build(
    spec: BuildSpec = SPEC,
    tools: earthly.Tools = TOOLS,
    credentials: earthly.Credentials = NO_CREDENTIALS,
    ctx: Directory | None = None,
    **described: str,
) -> EarthlyBuild:
    return EarthlyBuild(
        ctx if ctx is not None else context(), describe(spec, **described), tools, credentials
    )


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
    for image in (facts.EARTHLY_IMAGE, facts.DIND_IMAGE):
        tag = earthly.version_of(image)
        assert tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), image
    assert facts.EARTHLY_IMAGE.startswith("earthly/earthly:")
    assert facts.DIND_IMAGE.endswith("-dind")
    assert earthly.version_of("reg:5000/a/b:1.2.3@sha256:" + "f" * 64) == "1.2.3"
    assert earthly.version_of("reg:5000/a/b") == "latest"


def test_chains_pull_only_the_pinned_images() -> None:
    ctr = build().iso()
    pulled = {args["address"] for args in named(ctr, "from")}
    assert pulled == {facts.EARTHLY_IMAGE, facts.DIND_IMAGE}


# Spectro Cloud's mirror of the pinned Earthly image.
EARTHLY_MIRROR = "us-docker.pkg.dev/palette-images/third-party/edge/earthly/earthly:v0.8.15"


def test_tool_images_can_be_overridden_for_mirrors() -> None:
    tools = earthly.Tools(earthly_image=EARTHLY_MIRROR, dind_image="mirror/docker:27.5.1-dind")
    ctr = build(tools=tools).iso()
    assert {a["address"] for a in named(ctr, "from")} == {
        EARTHLY_MIRROR,
        "mirror/docker:27.5.1-dind",
    }


# ------------------------------------------------------------- privileges


def test_root_capabilities_only_for_buildkit_and_dockerd() -> None:
    ctr = build().iso()
    privileged = sorted(
        (step, args.get("args")) for step, args in walk(ctr) if args.get("insecureRootCapabilities")
    )
    assert privileged == [
        ("asService", ["dockerd", "--host=tcp://0.0.0.0:2375", "--tls=false"]),
        ("withExec", [earthly.SCRIPT, "+iso", "--K8S_VERSION=1.33.10"]),
    ]


def test_verify_and_doca_image_run_unprivileged() -> None:
    checked = verify.verified(dag.container().from_("example/provider:1"))
    built = build().doca_image()
    for obj in (checked, built):
        assert not any(a.get("insecureRootCapabilities") for _, a in walk(obj))


# ----------------------------------------------------------- cache volumes


def test_state_lives_on_versioned_cache_volumes() -> None:
    ctr = build().iso()
    mounts = {args["path"]: args for args in named(ctr, "withMountedCache")}
    assert set(mounts) == {earthly.EARTHLY_CACHE, earthly.DOCKER_STATE}
    # One BuildKit per Earthly volume; dockerd's (empty between runs) never waits.
    assert mounts[earthly.EARTHLY_CACHE]["sharing"] == CacheSharingMode.LOCKED.value
    assert mounts[earthly.DOCKER_STATE]["sharing"] == CacheSharingMode.PRIVATE.value
    keys = {path: own(args["cache"], "cacheVolume")[0]["key"] for path, args in mounts.items()}
    assert keys == {
        "/tmp/earthly": f"canvos-doca-earthly-{earthly.version_of(facts.EARTHLY_IMAGE)}-amd64",
        "/var/lib/docker": f"canvos-doca-docker-{earthly.version_of(facts.DIND_IMAGE)}-amd64",
    }


def test_other_arch_or_version_never_shares_a_volume() -> None:
    def keys(spec: BuildSpec, tools: earthly.Tools) -> set[str]:
        ctr = build(spec, tools).iso()
        return {own(a["cache"], "cacheVolume")[0]["key"] for a in named(ctr, "withMountedCache")}

    base = keys(SPEC, earthly.Tools())
    arm = keys(dataclasses.replace(SPEC, arch="arm64"), earthly.Tools())
    newer = keys(SPEC, earthly.Tools("earthly/earthly:v0.8.16", "docker:28.0.0-dind"))
    assert not base & arm and not base & newer and len(base) == 2


# ------------------------------------------------------- targets and args


def test_iso_runs_the_iso_target_with_an_explicit_k8s_version() -> None:
    ctr = build().iso()
    assert execs(ctr)[-1]["args"] == [earthly.SCRIPT, "+iso", "--K8S_VERSION=1.33.10"]
    assert env(ctr)["CANVOS_DOCA_TARGET"] == "+iso"


@pytest.mark.parametrize("version", SPEC.k8s_version)
def test_provider_image_per_version(version: str) -> None:
    image = build().provider_image(version)
    assert execs(image.built)[-1]["args"] == [
        earthly.SCRIPT,
        facts.CANVOS_TARGET_PROVIDER_IMAGES,
        f"--K8S_VERSION={version}",
    ]
    assert image.ref == f"localhost:5000/ubuntu:k3s-{version}-v4.9.38"


def test_provider_image_refuses_an_empty_or_unrequested_k8s_version() -> None:
    with pytest.raises(ValueError, match="K8S_VERSION"):
        build().provider_image("")
    with pytest.raises(KeyError):
        build().provider_image("1.20.1")


def written(obj: object) -> dict[str, str]:
    """Files written into a directory chain (the prepared context), by path."""
    return {a["path"]: a["contents"] for a in named(obj, "withNewFile")}


def mounted_dockerfile(ctr: Container) -> str:
    """The Dockerfile of the context an Earthly exec gets at /workspace."""
    return written(own(ctr, "withMountedDirectory")[0]["source"])["Dockerfile"]


def test_rebuild_is_one_context_value_shared_by_every_target() -> None:
    dockerfile = "FROM base\nARG CANVOS_DOCA_REBUILD=1700000000\nRUN install-doca\n"
    ctx = context().with_new_file("Dockerfile", dockerfile)
    run = build(ctx=ctx, rebuild="1700000000")
    runs = {
        "+iso": run.iso(),
        "+iso-image": run.installer_image().built,
        **{f"provider {v}": run.provider_image(v).built for v in SPEC.k8s_version},
    }
    # Every target builds base-image from the same prepared context (the image
    # targets only drop user-data, which base-image never reads), so the first
    # one rebuilds the DOCA stage and the others reuse that result.
    assert {name: mounted_dockerfile(ctr) for name, ctr in runs.items()} == dict.fromkeys(
        runs, dockerfile
    )
    for name, ctr in runs.items():
        chain = steps(own(ctr, "withMountedDirectory")[0]["source"])
        if chain[-1] == ("withoutFile", {"path": "user-data"}):
            chain = chain[:-1]
        assert chain == steps(ctx), name
    assert written(run.doca_image())["Dockerfile"] == dockerfile
    for name, ctr in runs.items():
        argv = execs(ctr)[-1]["args"]
        assert "--no-cache" not in argv, name
        assert not any("REBUILD" in variable for variable in env(ctr)), name
    assert run.rebuild == "1700000000"


def test_earthly_sees_the_context_and_talks_to_the_docker_service() -> None:
    ctx = context()
    ctr = build(ctx=ctx).iso()
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
    variables = env(build(spec).iso())
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"):
        assert variables[name] == "http://proxy:3128"
    assert variables["NO_PROXY"] == variables["no_proxy"] == "corp,docker"
    assert "HTTP_PROXY" not in env(build().iso())


# ------------------------------------------------------------------ secrets


@pytest.mark.parametrize("contract", [PRO_SECRET, PRO_BUILD_ARG])
def test_secrets_are_mounted_and_absent_from_args_and_env(contract: str) -> None:
    creds = credentials()
    ctr = build(credentials=creds, ubuntu_pro=contract).iso()
    mounted = {m["path"]: m["source"] for m in named(ctr, "withMountedSecret")}
    # user-data with its secrets is never mounted into Earthly (see iso_output).
    assert mounted == {
        earthly.DOCKER_CONFIG: creds.docker_config,
        earthly.REGISTRY_PASSWORD: creds.registry_password,
        earthly.UBUNTU_PRO_KEY: creds.ubuntu_pro_key,
    }
    # The key is a file; the script is told only how the Earthfile takes it.
    assert own(ctr, "withSecretVariable") == []
    assert env(ctr)["CANVOS_DOCA_UBUNTU_PRO"] == contract
    assert not any(SECRET_MARK in value for value in plain_values(ctr))
    assert env(ctr)["CANVOS_DOCA_REGISTRY_USER"] == "builder"
    # Credentials are written to a tmpfs, never into the container's layers.
    assert own(ctr, "withMountedTemp") == [{"path": "/root/.docker"}]


def test_image_targets_never_see_user_data() -> None:
    creds = credentials()
    image = build(credentials=creds, ubuntu_pro=PRO_SECRET).provider_image("1.34.6")
    ctr = image.built
    workspace = own(ctr, "withMountedDirectory")[0]["source"]
    assert steps(workspace)[-1] == ("withoutFile", {"path": "user-data"})
    paths = [m["path"] for m in own(ctr, "withMountedSecret")]
    assert earthly.USER_DATA not in paths and earthly.REGISTRY_PASSWORD in paths
    assert earthly.UBUNTU_PRO_KEY in paths  # base-image (Pro attach) runs in every target


def test_iso_context_keeps_user_data() -> None:
    ctx = context()
    ctr = build(ctx=ctx).iso()
    assert own(ctr, "withMountedDirectory")[0]["source"] is ctx


def test_user_data_secrets_are_written_onto_the_iso_after_earthly() -> None:
    creds = credentials()
    ctx = context()
    run = build(credentials=creds, ctx=ctx, ubuntu_pro=PRO_SECRET)
    out = run.iso_output()
    tool = steps(out)
    assert tool[:2] == [("container", {}), ("from", {"address": facts.ISO_TOOL_IMAGE})]
    assert tool[-1] == ("directory", {"path": earthly.ISO_OUT})
    mounts = {a["path"]: a["source"] for a in own(out, "withMountedFile")}
    iso = f"{earthly.ISO_IN}/palette-edge-installer.iso"
    public = f"{earthly.ISO_IN}/user-data"
    # The ISO +iso built (from the context whose user-data has placeholders) ...
    assert steps(mounts[iso])[-1] == ("file", {"path": "palette-edge-installer.iso"})
    (earthly_exec,) = [a for n, a in walk(mounts[iso]) if n == "withExec"]
    assert earthly_exec["args"][:2] == [earthly.SCRIPT, "+iso"]
    assert steps(mounts[public]) == [*steps(ctx), ("file", {"path": "user-data"})]
    # ... and the user-data with its secrets, a mounted secret of this exec only.
    assert own(out, "withMountedSecret") == [{"path": earthly.USER_DATA, "source": creds.user_data}]
    (exec_args,) = own(out, "withExec")
    assert exec_args["args"] == [
        earthly.ISO_SCRIPT,
        iso,
        public,
        earthly.USER_DATA,
        facts.CANVOS_ISO_USER_DATA_PATH,
        earthly.ISO_OUT,
    ]
    # Temporary copies of the secret stay on a tmpfs, out of the exec's layer.
    assert own(out, "withMountedTemp") == [{"path": earthly.ISO_TMP}]
    assert env(out)["TMPDIR"] == earthly.ISO_TMP
    assert not any(SECRET_MARK in value for value in plain_values(out))


def test_without_user_data_secrets_the_iso_is_the_earthly_output() -> None:
    out = build().iso_output()
    assert steps(out)[-1] == ("directory", {"path": earthly.OUTPUT_DIR})
    assert not any(a.get("address") == facts.ISO_TOOL_IMAGE for a in named(out, "from"))


@pytest.mark.parametrize(
    ("url", "secret"),
    [
        ("http://proxy:3128", False),
        ("http://user:pw@proxy:3128", True),
        ("http://token@proxy:3128", True),
        ("https://u:p%40ss@h/doca", True),
        ("git@github.com:spectrocloud/CanvOS.git", False),
        ("ssh://git@github.com/spectrocloud/CanvOS.git", False),
        ("ssh://git:pw@github.com/spectrocloud/CanvOS.git", True),
        ("http://[::1", False),
        ("http://u@[::1", True),
    ],
)
def test_credentials_in_urls_are_recognized(url: str, secret: bool) -> None:
    assert earthly.has_credentials(url) is secret


# ----------------------------------------------------- docker save / import


def test_provider_image_is_verified_in_docker_saved_once_and_imported_on_demand() -> None:
    image = build().provider_image("1.34.6")
    ctr = image.built
    name = "ubuntu-k3s-1.34.6-v4.9.38"
    assert image.name == name
    assert env(ctr)["CANVOS_DOCA_SAVE"] == f"{REF}|{name}|{earthly.SAVE_TAR}"
    assert env(ctr)["CANVOS_DOCA_VERIFY"] == verify.VERIFY_COMMAND
    assert env(ctr)["CANVOS_DOCA_MANIFEST"] == verify.DOCA_MANIFEST
    files = {
        "tarball": f"{name}.tar",
        "checksum": f"{name}.tar.sha256",
        "inspect": f"{name}.json",
        "verify_report": f"{name}.verify",
        "verify_exit": f"{name}.verify-exit",
        "doca_manifest": f"{name}.doca.json",
    }
    for attribute, file_name in files.items():
        file = getattr(image, attribute)
        assert steps(file)[-1] == ("file", {"path": f"{earthly.IMAGES_DIR}/{file_name}"})
        assert steps(file)[:-1] == steps(ctr), attribute
    # Only provider-image imports the tarball (another copy in the engine).
    assert steps(image.container()) == [("container", {}), ("import", {"source": image.tarball})]


def test_installer_image_is_verified_in_docker_never_written_as_a_tarball() -> None:
    image = build().installer_image()
    ctr = image.built
    assert execs(ctr)[-1]["args"] == [earthly.SCRIPT, "+iso-image", "--K8S_VERSION=1.33.10"]
    assert env(ctr)["CANVOS_DOCA_SAVE"] == (
        f"{INSTALLER}|palette-installer-image-v4.9.38|{earthly.SAVE_CHECK}"
    )
    assert image.tarball is None and image.checksum is None
    with pytest.raises(ValueError, match="without a tarball"):
        image.container()


@pytest.mark.parametrize("script", ["earthly-run.sh", "iso-user-data.sh"])
def test_scripts_are_shellcheck_clean(script: str) -> None:
    shellcheck = shutil.which("shellcheck") or str(Path(sys.executable).parent / "shellcheck")
    path = Path(earthly.__file__).parent / script
    result = subprocess.run([shellcheck, str(path)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout


# ---------------------------------------------------------- doca / verify


def test_doca_image_is_a_plain_dockerfile_build_of_the_context() -> None:
    spec = dataclasses.replace(SPEC, arch="arm64", http_proxy="http://p:1")
    built = build(spec).doca_image()
    docker_build = own(built, "dockerBuild")[0]
    args = {a["name"]: a["value"] for a in docker_build["buildArgs"]}
    assert args == {
        "BASE": BASE,
        "OS_DISTRIBUTION": "ubuntu",
        "OS_VERSION": "22.04",
        "HTTP_PROXY": "http://p:1",
    }
    assert docker_build["platform"] == "linux/arm64"
    assert ("withoutFile", {"path": "user-data"}) in steps(built)


def test_doca_image_needs_a_known_base_image() -> None:
    with pytest.raises(InvalidInput) as caught:
        build(base="").doca_image()
    assert caught.value.problems[0].field == "base_image"
    assert "--base-image" in caught.value.problems[0].fix


def test_a_pro_key_without_a_contract_is_never_dropped() -> None:
    with pytest.raises(ValueError, match="Ubuntu Pro"):
        build(credentials=credentials(), ubuntu_pro="").iso()


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
    assert artifacts.MANIFEST_NAME == "manifest.json"
    chain = steps(out)
    assert [(n, a.get("path")) for n, a in chain[1:]] == [
        ("withFile", "a.iso"),
        ("withFile", "b.tar"),
        ("withNewFile", "manifest.json"),
    ]
    assert chain[-1][1]["contents"] == '{"schema": 1}\n'
