"""The Dagger module: thin ``@function`` wrappers over the pure core.

Every build knob of ``pipeline.spec`` is a constructor argument, documented
from the spec itself, so all functions share them:

    dagger call --doca-version 3.2.2 --k8s-version 1.34.6 plan

Knobs left out fall back to ``--config``, then to ``--preset``'s values, then
to the spec's defaults.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Annotated, Any, TypeVar, cast

from dagger import (
    Container,
    DefaultPath,
    Directory,
    Doc,
    File,
    Ignore,
    Secret,
    dag,
    function,
    object_type,
)

from pipeline import (
    bootstage,
    bootvm,
    buildsecrets,
    canvos,
    disk,
    earthly,
    facts,
    inputs,
    runner,
    spec,
    textfile,
    workspace,
)
from pipeline.context import CanvosTree, Overlays, Prepared, prepare
from pipeline.credentials import split_secrets
from pipeline.errors import raise_if
from pipeline.plan import plan_text
from pipeline.spec import BuildSpec

_KNOB_TYPES: dict[type, Any] = {str: str, bool: bool, tuple: list[str]}


def _with_spec_knobs(cls: type) -> type:
    """Add one optional constructor argument per spec knob that is not
    config-only (``spec.CONFIG_ONLY``: set those in --config), with its Doc."""
    for field in spec.FIELDS:
        if field.name in spec.CONFIG_ONLY:
            continue
        kind = _KNOB_TYPES[type(field.default)]
        text = f"{spec.doc(field.name)} Default: {_shown(field.default)}."
        cls.__annotations__[field.name] = Annotated[kind | None, Doc(text)]
        setattr(cls, field.name, None)
    return cls


_F = TypeVar("_F", bound=Callable[..., Any])


def _uncached(func: _F) -> _F:
    """``@function(cache="never")``: functions that resolve --canvos-ref must not be
    served from Dagger's function cache, or a moved branch would return an old build.
    (The SDK accepts ``cache=`` but its type overloads omit it.)"""
    decorate = function(cache="never")  # type: ignore[call-overload]
    return cast(_F, decorate(func))


@dataclass(frozen=True)
class _Resolved:
    """One call's build, resolved: ``prepared.files`` (and so ``context``)
    hold user-data with its secrets replaced by placeholders; ``user_data``
    is the user-data with them, a Dagger secret (None when it has none)."""

    prepared: Prepared
    context: Directory
    given: inputs.BuildInputs[Directory, File]
    user_data: Secret | None


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ",".join(value) or "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value) or "empty"


@object_type
@_with_spec_knobs
class CanvosDoca:
    """Builds Palette Edge Appliance images (CanvOS) with NVIDIA DOCA-Host baked in."""

    overlays: Annotated[
        Directory,
        DefaultPath("overlays"),
        Doc("The project's overlays (DOCA stage, hostprep, user-data template)."),
    ]
    config: Annotated[
        File | None, Doc("YAML file of knobs (keys = knob names); explicit flags win.")
    ] = None
    host_files_dir: Annotated[
        Directory | None,
        Ignore([".git"]),
        Doc(
            "Directory the --config file's host_files source: paths are relative to (the CLI "
            "reads them next to --config); each named file is read, a UTF-8 text file of at "
            f"most {textfile.size_text(spec.HOST_FILE_LIMIT)}. The engine uploads the whole "
            "directory (.git left out): pass one that holds just those files."
        ),
    ] = None
    canvos: Annotated[
        Directory | None,
        Ignore([facts.CANVOS_BUILD_DIR, ".git"]),
        Doc("A local CanvOS checkout to use instead of cloning --canvos-url at --canvos-ref."),
    ] = None
    # File inputs (pipeline.inputs): read once, never knobs.
    user_data: Annotated[File | None, Doc(inputs.doc("user_data"))] = None
    doca_airgap: Annotated[Directory | None, Doc(inputs.doc("doca_airgap"))] = None
    doca_repo_key: Annotated[File | None, Doc(inputs.doc("doca_repo_key"))] = None
    module_signing_cert: Annotated[File | None, Doc(inputs.doc("module_signing_cert"))] = None
    # Build secrets (pipeline.buildsecrets): Secrets, never Files or text.
    module_signing_key: Annotated[Secret | None, Doc(inputs.doc("module_signing_key"))] = None
    doca_repo_auth: Annotated[Secret | None, Doc(inputs.doc("doca_repo_auth"))] = None
    bfb: Annotated[File | None, Doc(inputs.doc("bfb"))] = None
    # Secrets: dagger.Secret (env:NAME, file:PATH, ...), never plain args.
    registry_username: Annotated[
        str, Doc("Username for --registry-password (private mirrors and publishing).")
    ] = ""
    registry_password: Annotated[
        Secret | None,
        Doc(
            "Registry password/token: used for the mirror and image registries of the spec "
            "during the build, and for publish of provider-image."
        ),
    ] = None
    docker_config: Annotated[
        Secret | None,
        Doc(
            "A docker config.json with auths for several registries, "
            "e.g. file:$HOME/.docker/config.json."
        ),
    ] = None
    ubuntu_pro_key: Annotated[
        Secret | None,
        Doc(
            "Ubuntu Pro token; CanvOS attaches the image to Ubuntu Pro with it (an Earthly "
            "secret where the CanvOS ref reads one; refused where it reads no key)."
        ),
    ] = None
    edge_host_token: Annotated[
        Secret | None,
        Doc(
            f"Palette edge host registration token, written to user-data "
            f"{facts.PALETTE_EDGE_HOST_TOKEN} on the finished ISO only (no cached build step "
            "sees it)."
        ),
    ] = None
    # Tools and cache control.
    earthly_image: Annotated[
        str, Doc("Earthly all-in-one image (pinned to what CanvOS's earthly.sh uses).")
    ] = facts.EARTHLY_IMAGE
    dind_image: Annotated[
        str, Doc("docker:dind image that receives Earthly's SAVE IMAGE output.")
    ] = facts.DIND_IMAGE
    iso_tool_image: Annotated[
        str,
        Doc(
            "Image with xorriso that writes user-data secrets onto the finished ISO "
            "(pinned to CanvOS's OSBUILDER_IMAGE)."
        ),
    ] = facts.ISO_TOOL_IMAGE
    rebuild: Annotated[
        str,
        Doc(
            "Any new value (e.g. $(date +%s)) rebuilds the DOCA stage and everything built "
            "on it, once for all targets of the call."
        ),
    ] = ""

    @_uncached
    async def plan(self) -> str:
        """The resolved build: sources, outputs, persistent paths, warnings, disk (no secrets)."""
        resolved = await self._resolve()
        described = resolved.prepared.description
        needs = disk.plan_lines(
            len(described.spec.k8s_version),
            user_data_secrets=resolved.user_data is not None,
            airgap=resolved.given.airgap is not None,
        )
        text = plan_text(described, resolved.prepared.warnings)
        return text + "\n".join(needs) + "\n"

    @_uncached
    async def prepare(self) -> Directory:
        """The CanvOS checkout prepared for the DOCA build (.arg, Dockerfile, user-data, ...)."""
        resolved = await self._checked()
        if resolved.user_data is None:
            return resolved.context
        return workspace.with_secret_file(
            resolved.context, "user-data", resolved.user_data, self.earthly_image
        )

    @_uncached
    async def build_iso(self) -> File:
        """The installer ISO (its rootfs verified: the DOCA checks pass)."""
        return await runner.iso_file(await self._run())

    @_uncached
    async def provider_image(
        self,
        k8s: Annotated[
            str, Doc("Which of the requested --k8s-version values to build (default: the first).")
        ] = "",
    ) -> Container:
        """The provider image for one K8s version, verified; chain publish or export."""
        run = await self._run()
        return await runner.provider_container(run, k8s, self.registry_password)

    @_uncached
    async def build(self) -> Directory:
        """ISO, .sha256, one OCI tarball per K8s version and manifest.json, all verified."""
        return await runner.build_directory(await self._run())

    @_uncached
    async def doca_image(self) -> Container:
        """The CanvOS base image with only the DOCA stage (no Earthly), for fast iteration."""
        resolved = await self._checked()
        described = resolved.prepared.description
        build = earthly.EarthlyBuild(resolved.context, described, self._tools())
        return build.doca_image(await self._dockerfile_secrets())

    @_uncached
    async def verify(
        self,
        image: Annotated[
            Container | None,
            Doc("Image to check (default: build the provider image of the first K8s version)."),
        ] = None,
    ) -> str:
        """Run the DOCA verify script in a provider image; its report (fails on a bad image)."""
        if image is None:
            run = await self._run()
            built = await runner.built_provider(run, run.spec.k8s_version[0])
            return await runner.check_saved(built)
        return await runner.check("image", image)

    @_uncached
    async def boot_test(
        self,
        timeout: Annotated[
            int,
            Doc(
                "Minutes the test may take with KVM (install and two boots); without a "
                f"usable /dev/kvm they are multiplied by {facts.TCG_SLOWDOWN}."
            ),
        ] = bootvm.DEFAULT_TIMEOUT_MINUTES,
        memory: Annotated[int, Doc("Memory of the VM in MiB.")] = bootvm.DEFAULT_MEMORY_MIB,
        cpus: Annotated[int, Doc("Virtual CPUs of the VM.")] = bootvm.DEFAULT_CPUS,
        report_only: Annotated[
            bool,
            Doc("Return report.json and serial.log even when a check fails (see passed)."),
        ] = False,
        qemu_image: Annotated[
            str, Doc("Image that runs QEMU (Debian; qemu, OVMF, python3 added if missing).")
        ] = facts.QEMU_IMAGE,
    ) -> Directory:
        """Install the ISO in a VM, boot it twice, check DOCA and its persistent state."""
        script = await self.overlays.file(bootstage.REPORT_SCRIPT).contents()
        settings = bootvm.Settings(timeout, memory, cpus, qemu_image)
        return await bootvm.boot_test(await self._run(), script, settings, report_only=report_only)

    # ------------------------------------------------------------ helpers

    async def _run(self) -> runner.Run:
        resolved = await self._checked()
        credentials = earthly.Credentials(
            registry_username=self.registry_username,
            registry_password=self.registry_password,
            docker_config=self.docker_config,
            ubuntu_pro_key=self.ubuntu_pro_key,
            user_data=resolved.user_data,
            build_secrets=self._build_secrets(),
        )
        given = runner.secret_names(
            registry_password=self.registry_password,
            docker_config=self.docker_config,
            ubuntu_pro_key=self.ubuntu_pro_key,
            edge_host_token=self.edge_host_token,
            module_signing_key=self.module_signing_key,
            doca_repo_auth=self.doca_repo_auth,
        )
        build = earthly.EarthlyBuild(
            context=resolved.context,
            description=resolved.prepared.description,
            tools=self._tools(),
            credentials=credentials,
        )
        return runner.Run(build=build, prepared=resolved.prepared, secrets_given=given)

    def _build_secrets(self) -> dict[buildsecrets.BuildSecret, Secret]:
        """The build secrets given, by what they are (``pipeline.buildsecrets``)."""
        given = {
            buildsecrets.MODULE_SIGNING: self.module_signing_key,
            buildsecrets.DOCA_REPO_AUTH: self.doca_repo_auth,
        }
        return {spec: secret for spec, secret in given.items() if secret is not None}

    async def _dockerfile_secrets(self) -> list[Secret]:
        """The build secrets for a Dockerfile build (``doca-image``): Dagger
        mounts a secret under the id that is its name, so each is set again
        under the id the block's mount asks for. The value goes from one
        secret to the other inside the module, never into a query argument
        other than ``setSecret``'s."""
        return [
            dag.set_secret(spec.id, await secret.plaintext())
            for spec, secret in self._build_secrets().items()
        ]

    def _tools(self) -> earthly.Tools:
        return earthly.Tools(self.earthly_image, self.dind_image, self.iso_tool_image)

    async def _spec(self) -> BuildSpec:
        config = None
        if self.config is not None:
            config = await workspace.read_text(self.config, "config", "--config")
        overrides = {name: getattr(self, name) for name in spec.FLAG_FIELD_NAMES}
        parsed = await workspace.load_host_sources(inputs.parse(config), self.host_files_dir)
        resolved = inputs.resolve_layers(parsed, overrides)
        # Knobs are plain query values: a URL with credentials stops here,
        # before it reaches a git query, .arg or a Dockerfile.
        raise_if(workspace.url_credential_problems(resolved))
        return resolved

    async def _source(self, resolved: BuildSpec) -> tuple[Directory, str]:
        """The CanvOS tree and the commit a moving ref resolved to."""
        if self.canvos is not None:
            return self.canvos, ""
        commit = await dag.git(resolved.canvos_url).ref(resolved.canvos_ref).commit()
        return workspace.canvos_source(resolved.canvos_url, commit), commit

    async def _tree(self, source: Directory, commit: str) -> CanvosTree:
        """The CanvOS files prepare() reads, each size-checked before it is read."""

        async def read(name: str) -> str:
            return await workspace.read_text(source.file(name), "canvos", f"CanvOS {name}")

        names = await source.entries()
        versions = "k8s_version.json"
        return CanvosTree(
            dockerfile=await read(facts.CANVOS_DOCKERFILE),
            earthfile=await read(facts.CANVOS_EARTHFILE),
            k8s_versions_json=await read(versions) if versions in names else None,
            commit=commit,
            local_path="(--canvos directory)" if self.canvos is not None else "",
        )

    async def _resolve(self) -> _Resolved:
        resolved = await self._spec()
        source, commit = await self._source(resolved)
        tree = await self._tree(source, commit)
        overlays = Overlays(
            fragment=await self.overlays.file(canvos.FRAGMENT).contents(),
            default_user_data=await self.overlays.file(canvos.DEFAULT_USER_DATA).contents(),
        )
        given = await workspace.read_inputs(
            self.user_data,
            self.doca_airgap,
            self.doca_repo_key,
            self.bfb,
            signing=(self.module_signing_cert, self.module_signing_key),
            repo_auth=self.doca_repo_auth,
        )
        prepared = prepare(
            resolved,
            tree,
            overlays,
            given,
            rebuild=self.rebuild,
            ubuntu_pro_key=self.ubuntu_pro_key is not None,
        )
        token = None
        if self.edge_host_token is not None:
            token = await self.edge_host_token.plaintext()
        split = split_secrets(prepared.files["user-data"], token)
        prepared = replace(prepared, files={**prepared.files, "user-data": split.public})
        user_data = None
        if split.full is not None:
            # setSecret's cache identity is its name (dagger v0.21
            # core/schema/secret.go): a digest of the content in the name
            # makes a new token a new cache key for the exec that uses it.
            digest = hashlib.sha256(split.full.encode()).hexdigest()[:32]
            user_data = dag.set_secret(f"canvos-doca-user-data-{digest}", split.full)
        context = workspace.prepared_context(source, self.overlays, prepared.files, given)
        return _Resolved(prepared, context, given, user_data)

    async def _checked(self) -> _Resolved:
        """``_resolve`` plus the checks that run an exec (the air-gapped .deb's
        version), for the functions that build or hand out the context."""
        resolved = await self._resolve()
        if resolved.given.airgap is not None:
            version = resolved.prepared.description.spec.doca_version
            await runner.guard(
                "read the doca-host package of --doca-airgap",
                workspace.check_airgap(resolved.given.airgap, version, self.earthly_image),
            )
        return resolved
