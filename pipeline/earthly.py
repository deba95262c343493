"""Lazy Dagger chains that run CanvOS's Earthly targets. Nothing here awaits.

The shape follows CanvOS's ``earthly.sh``: the pinned all-in-one Earthly image
runs with ``--allow-privileged`` and starts an embedded BuildKit, which needs
root capabilities; ``SAVE IMAGE`` loads images into a docker daemon, here a
pinned ``docker:dind`` service reached over ``DOCKER_HOST``. Both keep their
state on named cache volumes (LOCKED: one BuildKit / one dockerd per volume
at a time), keyed by tool version and target arch, so a second build on the
same engine reuses every layer.

Caching, step by step:
  * Dagger caches each ``with_exec`` by its inputs: the prepared context (a
    CanvOS commit, never a branch name), argv and env. Same inputs -> the
    exec is not run at all.
  * The provider-image and installer-image execs get the context *without*
    ``user-data`` (CanvOS reads it only in ``+iso``'s build-iso step), so a
    user-data change leaves them as Dagger cache hits.
  * The ``+iso`` exec does re-run after a user-data change, but inside it
    Earthly's BuildKit cache (the volume) still holds ``base-image``: its
    Dockerfile build copies only ``canvos-doca/`` and ``certs/``, so the DOCA
    layer's key does not involve user-data and only the ISO assembly runs.
  * ``rebuild`` (any new value) adds ``--no-cache`` and an env var, which
    changes the exec key and makes Earthly ignore its cache: a forced rebuild.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from dagger import (
    BuildArg,
    CacheSharingMode,
    Container,
    Directory,
    File,
    Platform,
    Secret,
    Service,
    dag,
)

from pipeline import canvos, images
from pipeline.credentials import registry_hosts
from pipeline.spec import BuildSpec

WORKSPACE = "/workspace"
OUTPUT_DIR = f"{WORKSPACE}/{canvos.BUILD_DIR}"
IMAGES_DIR = f"{OUTPUT_DIR}/images"
EARTHLY_CACHE = "/tmp/earthly"
DOCKER_STATE = "/var/lib/docker"
DOCKER_ALIAS = "docker"
DOCKER_PORT = 2375
DOCKER_HOST = f"tcp://{DOCKER_ALIAS}:{DOCKER_PORT}"
SCRIPT = "/usr/local/bin/canvos-doca-earthly"
SECRET_DIR = "/run/canvos-doca"
REGISTRY_PASSWORD = f"{SECRET_DIR}/registry-password"
DOCKER_CONFIG = f"{SECRET_DIR}/docker-config.json"
USER_DATA = f"{WORKSPACE}/user-data"
# Earthly's own analytics off, as earthly.sh does.
GLOBAL_CONFIG = "{disable_analytics: true}"

# Runs inside the Earthly image (Alpine, busybox sh); shellcheck-clean file next
# to this module. Secrets arrive as files or secret env vars, only on tmpfs.
RUN_SCRIPT = (Path(__file__).parent / "earthly-run.sh").read_text()


@dataclass(frozen=True)
class Tools:
    """The images the chains run (pinned defaults, overridable for mirrors)."""

    earthly_image: str = images.EARTHLY_IMAGE
    dind_image: str = images.DIND_IMAGE


@dataclass(frozen=True)
class Credentials:
    """Secrets for the build. None of them is ever put in argv or plain env."""

    registry_username: str = ""
    registry_password: Secret | None = None
    docker_config: Secret | None = None
    ubuntu_pro_key: Secret | None = None
    # user-data with the edge host token merged in; mounted for +iso only.
    user_data: Secret | None = None


@dataclass(frozen=True)
class SavedImage:
    """An image Earthly loaded into docker, saved as an OCI tarball."""

    ref: str
    name: str
    built: Container  # the Earthly exec that produced it
    tarball: File
    inspect: File
    checksum: File
    container: Container


def cache_key(kind: str, image: str, arch: str) -> str:
    """A cache volume name that never mixes tool versions or target arches."""
    return f"canvos-doca-{kind}-{images.version_of(image)}-{arch}"


def docker_daemon(arch: str, tools: Tools) -> Service:
    """The docker daemon Earthly's SAVE IMAGE loads images into."""
    state = dag.cache_volume(cache_key("docker", tools.dind_image, arch))
    return (
        dag.container()
        .from_(tools.dind_image)
        .with_env_variable("DOCKER_TLS_CERTDIR", "")
        .with_mounted_cache(DOCKER_STATE, state, sharing=CacheSharingMode.LOCKED)
        .with_exposed_port(DOCKER_PORT)
        .as_service(
            args=["dockerd", f"--host=tcp://0.0.0.0:{DOCKER_PORT}", "--tls=false"],
            use_entrypoint=True,
            insecure_root_capabilities=True,
        )
    )


def proxy_env(spec: BuildSpec) -> dict[str, str]:
    """Proxy variables for Earthly and its BuildKit, both spellings; the docker
    service is always reached directly."""
    env: dict[str, str] = {}
    for name, value in (("HTTP_PROXY", spec.http_proxy), ("HTTPS_PROXY", spec.https_proxy)):
        if value:
            env[name] = env[name.lower()] = value
    if env:
        no_proxy = ",".join(p for p in (spec.no_proxy, DOCKER_ALIAS) if p)
        env["NO_PROXY"] = env["no_proxy"] = no_proxy
    return env


def earthly_container(
    context: Directory,
    spec: BuildSpec,
    tools: Tools = Tools(),
    credentials: Credentials = Credentials(),
    rebuild: str = "",
) -> Container:
    """The Earthly container with the prepared context at /workspace."""
    state = dag.cache_volume(cache_key("earthly", tools.earthly_image, spec.arch))
    ctr = (
        dag.container()
        .from_(tools.earthly_image)
        .with_mounted_cache(EARTHLY_CACHE, state, sharing=CacheSharingMode.LOCKED)
        .with_service_binding(DOCKER_ALIAS, docker_daemon(spec.arch, tools))
        .with_env_variable("DOCKER_HOST", DOCKER_HOST)
        .with_env_variable("GLOBAL_CONFIG", GLOBAL_CONFIG)
    )
    for name, value in sorted(proxy_env(spec).items()):
        ctr = ctr.with_env_variable(name, value)
    if rebuild:
        ctr = ctr.with_env_variable("CANVOS_DOCA_REBUILD", rebuild)
    ctr = (
        ctr.with_new_file(SCRIPT, RUN_SCRIPT, permissions=0o755)
        .with_mounted_temp("/root/.docker")
        .with_mounted_directory(WORKSPACE, context)
        .with_workdir(WORKSPACE)
    )
    return _with_credentials(ctr, spec, credentials)


def _with_credentials(ctr: Container, spec: BuildSpec, credentials: Credentials) -> Container:
    if credentials.docker_config is not None:
        ctr = ctr.with_mounted_secret(DOCKER_CONFIG, credentials.docker_config)
    if credentials.registry_password is not None:
        ctr = (
            ctr.with_env_variable("CANVOS_DOCA_REGISTRY_USER", credentials.registry_username)
            .with_env_variable("CANVOS_DOCA_REGISTRY_HOSTS", " ".join(registry_hosts(spec)))
            .with_mounted_secret(REGISTRY_PASSWORD, credentials.registry_password)
        )
    if credentials.ubuntu_pro_key is not None:
        ctr = ctr.with_secret_variable("UBUNTU_PRO_KEY", credentials.ubuntu_pro_key)
    return ctr


def earthly_argv(target: str, build_args: Sequence[str], rebuild: str = "") -> list[str]:
    """The command line after the entrypoint's ``--allow-privileged``."""
    flags = ["--no-cache"] if rebuild else []
    return [SCRIPT, *flags, target, *build_args]


def run_target(
    ctr: Container,
    target: str,
    build_args: Sequence[str],
    save: Mapping[str, str] | None = None,
    rebuild: str = "",
) -> Container:
    """Run one Earthly target; ``save`` maps image refs to tarball names."""
    ctr = ctr.with_env_variable("CANVOS_DOCA_TARGET", target)
    if save:
        lines = "\n".join(f"{ref}|{name}" for ref, name in save.items())
        ctr = ctr.with_env_variable("CANVOS_DOCA_SAVE", lines)
    # Root capabilities for Earthly's embedded BuildKit (overlayfs, namespaces).
    return ctr.with_exec(earthly_argv(target, build_args, rebuild), insecure_root_capabilities=True)


def without_user_data(context: Directory) -> Directory:
    """The context the image targets see: they never read user-data."""
    return context.without_file("user-data")


def iso(
    context: Directory,
    spec: BuildSpec,
    tools: Tools = Tools(),
    credentials: Credentials = Credentials(),
    rebuild: str = "",
) -> Container:
    """``+iso`` ran: the ISO and its .sha256 are in OUTPUT_DIR."""
    ctr = earthly_container(context, spec, tools, credentials, rebuild)
    if credentials.user_data is not None:
        ctr = ctr.with_mounted_secret(USER_DATA, credentials.user_data)
    return run_target(ctr, canvos.TARGET_ISO, canvos.earthly_args(spec), rebuild=rebuild)


def saved_image(
    context: Directory,
    spec: BuildSpec,
    target: str,
    build_args: Sequence[str],
    ref: str,
    name: str,
    tools: Tools = Tools(),
    credentials: Credentials = Credentials(),
    rebuild: str = "",
) -> SavedImage:
    """Run an image target, save the image it loaded into docker, import it."""
    ctr = earthly_container(without_user_data(context), spec, tools, _no_user_data(credentials))
    ran = run_target(ctr, target, build_args, save={ref: name}, rebuild=rebuild)
    tarball = ran.file(f"{IMAGES_DIR}/{name}.tar")
    return SavedImage(
        ref=ref,
        name=name,
        built=ran,
        tarball=tarball,
        inspect=ran.file(f"{IMAGES_DIR}/{name}.json"),
        checksum=ran.file(f"{IMAGES_DIR}/{name}.tar.sha256"),
        container=dag.container().import_(tarball),
    )


def _no_user_data(credentials: Credentials) -> Credentials:
    return Credentials(
        registry_username=credentials.registry_username,
        registry_password=credentials.registry_password,
        docker_config=credentials.docker_config,
        ubuntu_pro_key=credentials.ubuntu_pro_key,
    )


def provider_image(
    context: Directory,
    spec: BuildSpec,
    k8s_version: str,
    ref: str,
    name: str,
    tools: Tools = Tools(),
    credentials: Credentials = Credentials(),
    rebuild: str = "",
) -> SavedImage:
    """``+build-provider-images`` for exactly one K8s version (never empty)."""
    if not k8s_version:
        raise ValueError("K8S_VERSION must be explicit: CanvOS would build every version")
    return saved_image(
        context,
        spec,
        canvos.TARGET_PROVIDER_IMAGES,
        [f"--K8S_VERSION={k8s_version}"],
        ref,
        name,
        tools,
        credentials,
        rebuild,
    )


def installer_image(
    context: Directory,
    spec: BuildSpec,
    ref: str,
    name: str,
    tools: Tools = Tools(),
    credentials: Credentials = Credentials(),
    rebuild: str = "",
) -> SavedImage:
    """``+iso-image``: the installer rootfs the ISO boots, to verify before +iso."""
    return saved_image(
        context,
        spec,
        canvos.TARGET_INSTALLER_IMAGE,
        canvos.earthly_args(spec),
        ref,
        name,
        tools,
        credentials,
        rebuild,
    )


def doca_image(context: Directory, spec: BuildSpec, base: str) -> Container:
    """The CanvOS base image with the DOCA stage only, built from the prepared
    Dockerfile without Earthly (the args Earthly's base-image target passes)."""
    values = {
        "BASE": base,
        "OS_DISTRIBUTION": spec.os_distribution,
        "OS_VERSION": spec.os_version,
        "HTTP_PROXY": spec.http_proxy,
        "HTTPS_PROXY": spec.https_proxy,
        "NO_PROXY": spec.no_proxy,
    }
    args = [BuildArg(name=key, value=value) for key, value in values.items() if value]
    return without_user_data(context).docker_build(
        platform=Platform(f"linux/{spec.arch}"), build_args=args
    )


def output_directory(files: Mapping[str, File], manifest_json: str) -> Directory:
    """The directory ``build`` returns: artifacts by name plus manifest.json."""
    out = dag.directory()
    for name in sorted(files):
        out = out.with_file(name, files[name])
    return out.with_new_file("manifest.json", manifest_json)
