"""Lazy Dagger chains that run CanvOS's Earthly targets. Nothing here awaits.

The shape follows CanvOS's ``earthly.sh``: the pinned all-in-one Earthly image
runs with ``--allow-privileged`` and starts an embedded BuildKit, which needs
root capabilities; ``SAVE IMAGE`` loads images into a docker daemon, here a
pinned ``docker:dind`` service reached over ``DOCKER_HOST``. Both keep their
state on cache volumes keyed by tool version and target arch:

  * Earthly's BuildKit state is LOCKED (one BuildKit per volume at a time),
    so a second build on the same engine reuses every layer; concurrent
    builds of one arch take turns, one Earthly exec at a time.
  * dockerd's state is PRIVATE (a concurrent build gets a directory of its
    own instead of waiting): it holds nothing between runs, since every image
    is removed once saved, and a volume (not the container's own layer)
    keeps dockerd on its overlay2 driver.

``EarthlyBuild`` holds one prepared build (context, description with the
spec and the rebuild value, tools, credentials) and has a method per target.

Caching, step by step:
  * Dagger caches each ``with_exec`` by its inputs: the prepared context (a
    CanvOS commit, never a branch name), argv and env. Same inputs -> the
    exec is not run at all.
  * The provider-image and installer-image execs get the context *without*
    ``user-data`` (CanvOS reads it only in ``+iso``'s build-iso step), so a
    user-data change leaves them as Dagger cache hits.
  * No Earthly step ever sees a secret of user-data (the edge host token, a
    registry password): ``+iso`` builds the ISO from the user-data with every
    secret replaced by a placeholder (``credentials.split_secrets``), so
    Earthly's persistent cache volume holds no token. A last, separate exec
    (``iso_output``) writes the real user-data onto the finished ISO from a
    Dagger secret.
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

Disk, per image a target saves (``earthly-run.sh``): the docker daemon holds
it only while the exec runs (verify and the DOCA manifest are read there, in
the copy docker already unpacked, then the image is removed); the installer
image is never written out as a tarball; a provider image is written once,
as the OCI tarball ``build`` exports. Only ``provider-image`` imports that
tarball into a ``Container`` (``SavedImage.container``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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

from pipeline import artifacts, canvos, facts, verify
from pipeline.buildsecrets import BuildSecret
from pipeline.credentials import registry_hosts
from pipeline.description import BuildDescription
from pipeline.errors import InvalidInput, Problem
from pipeline.kinds import has_credentials
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
USER_DATA = f"{SECRET_DIR}/user-data"
ISO_SCRIPT = "/usr/local/bin/canvos-doca-iso-user-data"
ISO_IN = "/run/canvos-doca-iso/in"
ISO_OUT = "/run/canvos-doca-iso/out"
ISO_TMP = "/run/canvos-doca-iso/tmp"
# How earthly-run.sh handles a saved image: also write an OCI tarball, or only
# read its facts, verify report and DOCA manifest.
SAVE_TAR = "tar"
SAVE_CHECK = "check"
# Earthly's own analytics off, as earthly.sh does.
GLOBAL_CONFIG = "{disable_analytics: true}"

# Runs inside the Earthly image (Alpine, busybox sh); shellcheck-clean file next
# to this module. Secrets arrive as files, only on tmpfs.
RUN_SCRIPT = (Path(__file__).parent / "earthly-run.sh").read_text()
# Runs inside the ISO tool image (bash, xorriso).
ISO_USER_DATA_SCRIPT = (Path(__file__).parent / "iso-user-data.sh").read_text()


@dataclass(frozen=True)
class Tools:
    """The images the chains run (pinned defaults, overridable for mirrors)."""

    earthly_image: str = facts.EARTHLY_IMAGE
    dind_image: str = facts.DIND_IMAGE
    iso_tool_image: str = facts.ISO_TOOL_IMAGE


@dataclass(frozen=True)
class Credentials:
    """Secrets for the build. None of them is ever put in argv or plain env."""

    registry_username: str = ""
    registry_password: Secret | None = None
    docker_config: Secret | None = None
    ubuntu_pro_key: Secret | None = None
    # The user-data with its secrets (``credentials.split_secrets().full``):
    # written onto the finished ISO by the last exec, never seen by Earthly.
    user_data: Secret | None = None
    # Build secrets of the DOCA stage (pipeline.buildsecrets): mounted files
    # in the Earthly execs, handed to Earthly as --secret-file.
    build_secrets: Mapping[BuildSecret, Secret] = field(default_factory=dict)


@dataclass(frozen=True)
class SavedImage:
    """An image an Earthly target loaded into docker, as ``earthly-run.sh`` left it.

    ``inspect`` is ``docker image inspect`` JSON, ``verify_report`` and
    ``verify_exit`` the DOCA verify script's output and exit code (run in
    docker), ``doca_manifest`` the image's DOCA manifest (empty when it has
    none). ``tarball``/``checksum`` exist for provider images only.
    """

    ref: str
    name: str
    built: Container  # the Earthly exec that produced it
    inspect: File
    verify_report: File
    verify_exit: File
    doca_manifest: File
    tarball: File | None = None
    checksum: File | None = None

    def container(self) -> Container:
        """The image as a Dagger ``Container`` (imports the tarball: another
        copy of the image in the engine, so only ``provider-image`` uses it)."""
        if self.tarball is None:
            raise ValueError(f"{self.ref} was saved without a tarball")
        return dag.container().import_(self.tarball)


def version_of(image: str) -> str:
    """The tag of an image reference (``repo:tag`` or ``repo:tag@sha256:...``)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else "latest"


def cache_key(kind: str, image: str, arch: str) -> str:
    """A cache volume name that never mixes tool versions or target arches."""
    return f"canvos-doca-{kind}-{version_of(image)}-{arch}"


def docker_daemon(arch: str, tools: Tools) -> Service:
    """The docker daemon Earthly's SAVE IMAGE loads images into (state: see
    the module docstring; PRIVATE so a concurrent build never waits on it)."""
    state = dag.cache_volume(cache_key("docker", tools.dind_image, arch))
    return (
        dag.container()
        .from_(tools.dind_image)
        .with_env_variable("DOCKER_TLS_CERTDIR", "")
        .with_mounted_cache(DOCKER_STATE, state, sharing=CacheSharingMode.PRIVATE)
        .with_exposed_port(DOCKER_PORT)
        .as_service(
            args=["dockerd", f"--host=tcp://0.0.0.0:{DOCKER_PORT}", "--tls=false"],
            use_entrypoint=True,
            insecure_root_capabilities=True,
        )
    )


def proxy_env(spec: BuildSpec) -> dict[str, str]:
    """Proxy variables for Earthly and its BuildKit, both spellings; the docker
    service is always reached directly.

    Plain environment, so part of the exec's cache key: a proxy URL is not a
    secret, and CanvOS passes it on as a build arg anyway. A URL with
    credentials never gets here (the spec's proxy rule, ``spec.RULES``,
    refuses it first); ``ValueError`` if one does.
    """
    env: dict[str, str] = {}
    for name, value in (("HTTP_PROXY", spec.http_proxy), ("HTTPS_PROXY", spec.https_proxy)):
        if value and has_credentials(value):
            raise ValueError(f"{name.lower()} carries credentials; refused before the build")
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
        """``+iso`` ran on the context as prepared (user-data secrets replaced
        by placeholders): the ISO and its .sha256 are in OUTPUT_DIR."""
        ctr = self._container(self.context, replace(self.credentials, user_data=None))
        return self._run(ctr, facts.CANVOS_TARGET_ISO, self._k8s_args())

    def iso_output(self) -> Directory:
        """The ISO and its .sha256 to hand out: ``+iso``'s, or, when
        user-data holds secrets, a copy with the real user-data written onto
        it (``iso-user-data.sh`` in the ISO tool image; the secret is a
        mounted file, temporary copies stay on a tmpfs)."""
        out = self.iso().directory(OUTPUT_DIR)
        if self.credentials.user_data is None:
            return out
        iso_name, _ = canvos.iso_files(self.spec)
        iso = f"{ISO_IN}/{iso_name}"
        public = f"{ISO_IN}/user-data"
        return (
            dag.container()
            .from_(self.tools.iso_tool_image)
            .with_new_file(ISO_SCRIPT, ISO_USER_DATA_SCRIPT, permissions=0o755)
            .with_mounted_file(iso, out.file(iso_name))
            .with_mounted_file(public, self.context.file("user-data"))
            .with_mounted_secret(USER_DATA, self.credentials.user_data)
            .with_mounted_temp(ISO_TMP)
            .with_env_variable("TMPDIR", ISO_TMP)
            .with_mounted_directory(ISO_OUT, dag.directory())
            .with_exec(
                [ISO_SCRIPT, iso, public, USER_DATA, facts.CANVOS_ISO_USER_DATA_PATH, ISO_OUT]
            )
            .directory(ISO_OUT)
        )

    def installer_image(self) -> SavedImage:
        """``+iso-image``: the installer rootfs the ISO boots, to verify before +iso."""
        ref = self.description.outputs.installer_image
        target = facts.CANVOS_TARGET_INSTALLER_IMAGE
        return self._saved(target, self._k8s_args(), ref, SAVE_CHECK)

    def provider_image(self, k8s_version: str) -> SavedImage:
        """``+build-provider-images`` for exactly one requested K8s version."""
        if not k8s_version:
            raise ValueError("K8S_VERSION must be explicit: CanvOS would build every version")
        ref = self.description.outputs.provider_image(k8s_version)
        target = facts.CANVOS_TARGET_PROVIDER_IMAGES
        return self._saved(target, [f"--K8S_VERSION={k8s_version}"], ref, SAVE_TAR)

    def doca_image(self, secrets: Sequence[Secret] = ()) -> Container:
        """The Kairos base with the prepared Dockerfile (DOCA stage included)
        built without Earthly, with the args Earthly's base-image passes.

        Only the DOCA block's build secrets go in (``secrets``, each named by
        the id its ``--mount=type=secret`` asks for); the registry, Pro and
        user-data secrets do not (CanvOS's own Dockerfile steps ask for none),
        and the proxies (credential-free, see ``proxy_env``) are build args
        here as they are in CanvOS's base-image.
        """
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
            platform=Platform(f"linux/{spec.arch}"), build_args=args, secrets=list(secrets) or None
        )

    # -------------------------------------------------------------- parts

    def _k8s_args(self) -> list[str]:
        """``+iso`` and ``+iso-image`` build for the first requested K8s version."""
        return [f"--K8S_VERSION={version}" for version in self.spec.k8s_version[:1]]

    def _saved(self, target: str, build_args: Sequence[str], ref: str, mode: str) -> SavedImage:
        """Run an image target; ``earthly-run.sh`` verifies the image in docker,
        saves it as a tarball when ``mode`` is SAVE_TAR, then removes it."""
        name = artifacts.tarball_name(ref)
        credentials = replace(self.credentials, user_data=None)
        ctr = self._container(without_user_data(self.context), credentials)
        ran = self._run(ctr, target, build_args, save={ref: (name, mode)})
        tarball = ran.file(f"{IMAGES_DIR}/{name}.tar") if mode == SAVE_TAR else None
        checksum = ran.file(f"{IMAGES_DIR}/{name}.tar.sha256") if mode == SAVE_TAR else None
        return SavedImage(
            ref=ref,
            name=name,
            built=ran,
            inspect=ran.file(f"{IMAGES_DIR}/{name}.json"),
            verify_report=ran.file(f"{IMAGES_DIR}/{name}.verify"),
            verify_exit=ran.file(f"{IMAGES_DIR}/{name}.verify-exit"),
            doca_manifest=ran.file(f"{IMAGES_DIR}/{name}.doca.json"),
            tarball=tarball,
            checksum=checksum,
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
            .with_env_variable("CANVOS_DOCA_VERIFY", verify.VERIFY_COMMAND)
            .with_env_variable("CANVOS_DOCA_MANIFEST", verify.DOCA_MANIFEST)
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
        return self._with_build_secrets(ctr, credentials.build_secrets)

    @staticmethod
    def _with_build_secrets(ctr: Container, secrets: Mapping[BuildSecret, Secret]) -> Container:
        """Each build secret as a mounted file; its Earthly ``NAME=PATH`` (no
        value) in CANVOS_DOCA_SECRET_FILES, which earthly-run.sh hands to
        Earthly as EARTHLY_SECRET_FILES."""
        if not secrets:
            return ctr
        ordered = sorted(secrets, key=lambda s: s.name)
        for spec in ordered:
            ctr = ctr.with_mounted_secret(spec.dagger_path, secrets[spec])
        return ctr.with_env_variable("CANVOS_DOCA_SECRET_FILES", ",".join(s.flag for s in ordered))

    def _run(
        self,
        ctr: Container,
        target: str,
        build_args: Sequence[str],
        save: Mapping[str, tuple[str, str]] | None = None,
    ) -> Container:
        """Run one Earthly target; ``save`` maps image refs to (file name, mode)."""
        ctr = ctr.with_env_variable("CANVOS_DOCA_TARGET", target)
        if save:
            lines = "\n".join(f"{ref}|{name}|{mode}" for ref, (name, mode) in save.items())
            ctr = ctr.with_env_variable("CANVOS_DOCA_SAVE", lines)
        # Root capabilities for Earthly's embedded BuildKit (overlayfs, namespaces).
        return ctr.with_exec(earthly_argv(target, build_args), insecure_root_capabilities=True)


def output_directory(files: Mapping[str, File], manifest_json: str) -> Directory:
    """The directory ``build`` returns: artifacts by name plus the manifest.

    ``with_file`` without permissions or owner: Dagger v0.21 then hard-links
    each file from the exec that wrote it (``util/layercopy``), so this
    directory costs no second copy of the tarballs and the ISO.
    """
    out = dag.directory()
    for name in sorted(files):
        out = out.with_file(name, files[name])
    return out.with_new_file(artifacts.MANIFEST_NAME, manifest_json)
