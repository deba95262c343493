"""Lazy Dagger chains that run CanvOS's Earthly targets. Nothing here awaits.

The shape follows CanvOS's ``earthly.sh``: the pinned all-in-one Earthly image
runs with ``--allow-privileged`` and starts an embedded BuildKit, which needs
root capabilities; ``SAVE IMAGE`` loads images into a docker daemon, here a
pinned ``docker:dind`` service reached over ``DOCKER_HOST``. Both keep their
state on named cache volumes (LOCKED: one BuildKit / one dockerd per volume
at a time), keyed by tool version and target arch, so a second build on the
same engine reuses every layer.

``EarthlyBuild`` holds one prepared build (context, description with the
spec and the rebuild value, tools, credentials) and has a method per target.

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
  * ``rebuild`` is applied once, when the context is prepared: its value is an
    ARG of the DOCA block, so the first target of a run rebuilds the DOCA
    stage and everything on it, and every later target (same context, same
    Dockerfile) reuses that result from the Earthly cache. No target runs
    with ``--no-cache``: the installer rootfs that is verified is the one
    ``+iso`` packs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
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

from pipeline import artifacts, facts
from pipeline.credentials import registry_hosts
from pipeline.description import BuildDescription
from pipeline.errors import InvalidInput, Problem
from pipeline.spec import BuildSpec

WORKSPACE = "/workspace"
OUTPUT_DIR = f"{WORKSPACE}/{facts.CANVOS_BUILD_DIR}"
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
UBUNTU_PRO_KEY = f"{SECRET_DIR}/ubuntu-pro-key"
USER_DATA = f"{WORKSPACE}/user-data"
# Earthly's own analytics off, as earthly.sh does.
GLOBAL_CONFIG = "{disable_analytics: true}"

# Runs inside the Earthly image (Alpine, busybox sh); shellcheck-clean file next
# to this module. Secrets arrive as files, only on tmpfs.
RUN_SCRIPT = (Path(__file__).parent / "earthly-run.sh").read_text()


@dataclass(frozen=True)
class Tools:
    """The images the chains run (pinned defaults, overridable for mirrors)."""

    earthly_image: str = facts.EARTHLY_IMAGE
    dind_image: str = facts.DIND_IMAGE


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


def version_of(image: str) -> str:
    """The tag of an image reference (``repo:tag`` or ``repo:tag@sha256:...``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def cache_key(kind: str, image: str, arch: str) -> str:
    """A cache volume name that never mixes tool versions or target arches."""
    return f"canvos-doca-{kind}-{version_of(image)}-{arch}"


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


def earthly_argv(target: str, build_args: Sequence[str]) -> list[str]:
    """The command line after the entrypoint's ``--allow-privileged``."""
    return [SCRIPT, target, *build_args]


def without_user_data(context: Directory) -> Directory:
    """The context the image targets see: they never read user-data."""
    return context.without_file("user-data")


@dataclass(frozen=True)
class EarthlyBuild:
    """One prepared CanvOS build and the Earthly targets that run on it.

    Every target gets the same prepared context (the image targets without
    ``user-data``), the same tools, credentials and cache volumes, so they
    share one ``base-image`` build.
    """

    context: Directory
    description: BuildDescription
    tools: Tools = Tools()
    credentials: Credentials = Credentials()

    @property
    def spec(self) -> BuildSpec:
        return self.description.spec

    @property
    def rebuild(self) -> str:
        """The rebuild value, already baked into the context's DOCA block."""
        return self.description.rebuild

    def iso(self) -> Container:
        """``+iso`` ran: the ISO and its .sha256 are in OUTPUT_DIR."""
        ctr = self._container(self.context, self.credentials)
        if self.credentials.user_data is not None:
            ctr = ctr.with_mounted_secret(USER_DATA, self.credentials.user_data)
        return self._run(ctr, facts.CANVOS_TARGET_ISO, self._k8s_args())

    def installer_image(self) -> SavedImage:
        """``+iso-image``: the installer rootfs the ISO boots, to verify before +iso."""
        ref = self.description.outputs.installer_image
        return self._saved(facts.CANVOS_TARGET_INSTALLER_IMAGE, self._k8s_args(), ref)

    def provider_image(self, k8s_version: str) -> SavedImage:
        """``+build-provider-images`` for exactly one requested K8s version."""
        if not k8s_version:
            raise ValueError("K8S_VERSION must be explicit: CanvOS would build every version")
        ref = self.description.outputs.provider_image(k8s_version)
        target = facts.CANVOS_TARGET_PROVIDER_IMAGES
        return self._saved(target, [f"--K8S_VERSION={k8s_version}"], ref)

    def doca_image(self) -> Container:
        """The Kairos base with the prepared Dockerfile (DOCA stage included)
        built without Earthly, with the args Earthly's base-image passes."""
        spec, base = self.spec, self.description.canvos.base_image
        if not base:
            raise InvalidInput(
                [
                    Problem(
                        "base_image",
                        "",
                        f"is unknown: the Earthfile of CanvOS {self.description.canvos.ref} has "
                        "no Kairos base image rule canvos-doca can read.",
                        "pass --base-image with the Kairos base image to build on.",
                    )
                ]
            )
        values = {
            "BASE": base,
            "OS_DISTRIBUTION": spec.os_distribution,
            "OS_VERSION": spec.os_version,
            "HTTP_PROXY": spec.http_proxy,
            "HTTPS_PROXY": spec.https_proxy,
            "NO_PROXY": spec.no_proxy,
        }
        args = [BuildArg(name=key, value=value) for key, value in values.items() if value]
        return without_user_data(self.context).docker_build(
            platform=Platform(f"linux/{spec.arch}"), build_args=args
        )

    # -------------------------------------------------------------- parts

    def _k8s_args(self) -> list[str]:
        """``+iso`` and ``+iso-image`` build for the first requested K8s version."""
        return [f"--K8S_VERSION={version}" for version in self.spec.k8s_version[:1]]

    def _saved(self, target: str, build_args: Sequence[str], ref: str) -> SavedImage:
        """Run an image target, save the image it loaded into docker, import it."""
        name = artifacts.tarball_name(ref)
        credentials = replace(self.credentials, user_data=None)
        ctr = self._container(without_user_data(self.context), credentials)
        ran = self._run(ctr, target, build_args, save={ref: name})
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

    def _container(self, context: Directory, credentials: Credentials) -> Container:
        """The Earthly container with ``context`` at /workspace."""
        spec, tools = self.spec, self.tools
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
        ctr = (
            ctr.with_new_file(SCRIPT, RUN_SCRIPT, permissions=0o755)
            .with_mounted_temp("/root/.docker")
            .with_mounted_directory(WORKSPACE, context)
            .with_workdir(WORKSPACE)
        )
        return self._with_credentials(ctr, credentials)

    def _with_credentials(self, ctr: Container, credentials: Credentials) -> Container:
        if credentials.docker_config is not None:
            ctr = ctr.with_mounted_secret(DOCKER_CONFIG, credentials.docker_config)
        if credentials.registry_password is not None:
            ctr = (
                ctr.with_env_variable("CANVOS_DOCA_REGISTRY_USER", credentials.registry_username)
                .with_env_variable(
                    "CANVOS_DOCA_REGISTRY_HOSTS", " ".join(registry_hosts(self.spec))
                )
                .with_mounted_secret(REGISTRY_PASSWORD, credentials.registry_password)
            )
        if credentials.ubuntu_pro_key is not None:
            pro = self.description.canvos.ubuntu_pro
            if not pro:  # prepare() refuses a key the Earthfile cannot take
                raise ValueError("an Ubuntu Pro key without a CanvOS contract to pass it")
            # The script hands the key file to Earthly the way the Earthfile takes it.
            ctr = ctr.with_env_variable("CANVOS_DOCA_UBUNTU_PRO", pro).with_mounted_secret(
                UBUNTU_PRO_KEY, credentials.ubuntu_pro_key
            )
        return ctr

    def _run(
        self,
        ctr: Container,
        target: str,
        build_args: Sequence[str],
        save: Mapping[str, str] | None = None,
    ) -> Container:
        """Run one Earthly target; ``save`` maps image refs to tarball names."""
        ctr = ctr.with_env_variable("CANVOS_DOCA_TARGET", target)
        if save:
            lines = "\n".join(f"{ref}|{name}" for ref, name in save.items())
            ctr = ctr.with_env_variable("CANVOS_DOCA_SAVE", lines)
        # Root capabilities for Earthly's embedded BuildKit (overlayfs, namespaces).
        return ctr.with_exec(earthly_argv(target, build_args), insecure_root_capabilities=True)


def output_directory(files: Mapping[str, File], manifest_json: str) -> Directory:
    """The directory ``build`` returns: artifacts by name plus the manifest."""
    out = dag.directory()
    for name in sorted(files):
        out = out.with_file(name, files[name])
    return out.with_new_file(artifacts.MANIFEST_NAME, manifest_json)
