"""The Dagger module: thin ``@function`` wrappers over the pure core.

Every build knob of ``pipeline.spec`` is a constructor argument, documented
from the spec itself, so all functions share them:

    dagger call --doca-version 3.2.2 --k8s-version 1.34.6 plan

Knobs left out fall back to ``--config`` and then to the spec's defaults.
"""

from collections.abc import Callable
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

from pipeline import bootstage, bootvm, canvos, earthly, facts, inputs, runner, spec, workspace
from pipeline.context import CanvosTree, Overlays, Prepared, prepare
from pipeline.credentials import with_edge_host_token
from pipeline.plan import plan_text
from pipeline.spec import BuildSpec

_KNOB_TYPES: dict[type, Any] = {str: str, bool: bool, tuple: list[str]}


def _with_spec_knobs(cls: type) -> type:
    """Add one optional constructor argument per scalar spec knob, with its Doc."""
    for field in spec.FIELDS:
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
    canvos: Annotated[
        Directory | None,
        Ignore([facts.CANVOS_BUILD_DIR, ".git"]),
        Doc("A local CanvOS checkout to use instead of cloning --canvos-url at --canvos-ref."),
    ] = None
    # File inputs (pipeline.inputs): read once, never knobs.
    user_data: Annotated[File | None, Doc(inputs.doc("user_data"))] = None
    doca_airgap: Annotated[Directory | None, Doc(inputs.doc("doca_airgap"))] = None
    doca_repo_key: Annotated[File | None, Doc(inputs.doc("doca_repo_key"))] = None
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
            "Palette edge host registration token, written to user-data stylus.site.edgeHostToken."
        ),
    ] = None
    # Tools and cache control.
    earthly_image: Annotated[
        str, Doc("Earthly all-in-one image (pinned to what CanvOS's earthly.sh uses).")
    ] = facts.EARTHLY_IMAGE
    dind_image: Annotated[
        str, Doc("docker:dind image that receives Earthly's SAVE IMAGE output.")
    ] = facts.DIND_IMAGE
    rebuild: Annotated[
        str,
        Doc(
            "Any new value (e.g. $(date +%s)) rebuilds the DOCA stage and everything built "
            "on it, once for all targets of the call."
        ),
    ] = ""

    @_uncached
    async def plan(self) -> str:
        """The resolved build: sources, outputs, persistent paths, warnings (no secrets)."""
        prepared, _ = await self._resolve()
        return plan_text(prepared.description, prepared.warnings)

    @_uncached
    async def prepare(self) -> Directory:
        """The CanvOS checkout prepared for the DOCA build (.arg, Dockerfile, user-data, ...)."""
        return (await self._resolve())[1]

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
        prepared, context = await self._resolve()
        return earthly.EarthlyBuild(context, prepared.description, self._tools()).doca_image()

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
            return await runner.check(built.ref, built.container)
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
        prepared, context = await self._resolve()
        user_data = None
        if self.edge_host_token is not None:
            merged = with_edge_host_token(
                prepared.files["user-data"], await self.edge_host_token.plaintext()
            )
            user_data = dag.set_secret("canvos-doca-user-data", merged)
        credentials = earthly.Credentials(
            registry_username=self.registry_username,
            registry_password=self.registry_password,
            docker_config=self.docker_config,
            ubuntu_pro_key=self.ubuntu_pro_key,
            user_data=user_data,
        )
        given = runner.secret_names(
            registry_password=self.registry_password,
            docker_config=self.docker_config,
            ubuntu_pro_key=self.ubuntu_pro_key,
            edge_host_token=self.edge_host_token,
        )
        build = earthly.EarthlyBuild(
            context=context,
            description=prepared.description,
            tools=self._tools(),
            credentials=credentials,
        )
        return runner.Run(build=build, prepared=prepared, secrets_given=given)

    def _tools(self) -> earthly.Tools:
        return earthly.Tools(self.earthly_image, self.dind_image)

    async def _spec(self) -> BuildSpec:
        config = await self.config.contents() if self.config is not None else None
        overrides = {name: getattr(self, name) for name in spec.FIELD_NAMES}
        return inputs.load_spec(config, "config", overrides)

    async def _source(self, resolved: BuildSpec) -> tuple[Directory, str]:
        """The CanvOS tree and the commit a moving ref resolved to."""
        if self.canvos is not None:
            return self.canvos, ""
        commit = await dag.git(resolved.canvos_url).ref(resolved.canvos_ref).commit()
        return workspace.canvos_source(resolved.canvos_url, commit), commit

    async def _resolve(self) -> tuple[Prepared, Directory]:
        resolved = await self._spec()
        source, commit = await self._source(resolved)
        names = await source.entries()
        tree = CanvosTree(
            dockerfile=await source.file(facts.CANVOS_DOCKERFILE).contents(),
            earthfile=await source.file(facts.CANVOS_EARTHFILE).contents(),
            k8s_versions_json=(
                await source.file("k8s_version.json").contents()
                if "k8s_version.json" in names
                else None
            ),
            commit=commit,
            local_path="(--canvos directory)" if self.canvos is not None else "",
        )
        overlays = Overlays(
            fragment=await self.overlays.file(canvos.FRAGMENT).contents(),
            default_user_data=await self.overlays.file(canvos.DEFAULT_USER_DATA).contents(),
        )
        given = await inputs.from_dagger(self.user_data, self.doca_airgap, self.doca_repo_key)
        prepared = prepare(
            resolved,
            tree,
            overlays,
            given,
            rebuild=self.rebuild,
            ubuntu_pro_key=self.ubuntu_pro_key is not None,
        )
        context = workspace.prepared_context(source, self.overlays, prepared.files, given)
        return prepared, context
