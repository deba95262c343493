"""The Dagger module: thin ``@function`` wrappers over the pure core.

Every build knob of ``pipeline.spec`` is a constructor argument, documented
from the spec itself, so all functions share them:

    dagger call --doca-version 3.2.2 --k8s-version 1.34.6 plan

Knobs left out fall back to ``--config`` and then to the spec's defaults.
"""

from typing import Annotated, Any

from dagger import DefaultPath, Directory, Doc, File, Ignore, dag, function, object_type

from pipeline import canvos, spec, workspace
from pipeline.context import CanvosTree, Overlays, Prepared, classify_airgap, prepare
from pipeline.plan import plan_text
from pipeline.spec import BuildSpec

# Knobs that are files or directories in Dagger (paths on the CLI).
FILE_KNOBS = ("user_data", "doca_airgap", "doca_repo_key")
_KNOB_TYPES: dict[type, Any] = {str: str, bool: bool, tuple: list[str]}


def _with_spec_knobs(cls: type) -> type:
    """Add one optional constructor argument per scalar spec knob, with its Doc."""
    for field in spec.FIELDS:
        if field.name in FILE_KNOBS:
            continue
        kind = _KNOB_TYPES[type(field.default)]
        text = f"{spec.doc(field.name)} Default: {_shown(field.default)}."
        cls.__annotations__[field.name] = Annotated[kind | None, Doc(text)]
        setattr(cls, field.name, None)
    return cls


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
        Ignore(["build", ".git"]),
        Doc("A local CanvOS checkout to use instead of cloning --canvos-url at --canvos-ref."),
    ] = None
    user_data: Annotated[
        File | None,
        Doc("user-data for the ISO (default: a template that installs and powers off)."),
    ] = None
    doca_airgap: Annotated[
        Directory | None,
        Doc("Air-gapped DOCA source: a flat apt repo directory, or one with a doca-host .deb."),
    ] = None
    doca_repo_key: Annotated[
        File | None, Doc("Pinned DOCA signing key (default: the key published with the repo).")
    ] = None

    @function
    async def plan(self) -> str:
        """The resolved build: sources, outputs, persistent paths, warnings (no secrets)."""
        resolved, prepared, _ = await self._resolve()
        return plan_text(resolved, prepared.description, prepared.warnings)

    @function
    async def prepare(self) -> Directory:
        """The CanvOS checkout prepared for the DOCA build (.arg, Dockerfile, user-data, ...)."""
        return (await self._resolve())[2]

    # ------------------------------------------------------------ helpers

    async def _spec(self) -> BuildSpec:
        config = {}
        if self.config is not None:
            config = spec.parse_config(await self.config.contents(), source="config")
        overrides: dict[str, object] = {
            name: getattr(self, name) for name in spec.FIELD_NAMES if name not in FILE_KNOBS
        }
        # File knobs arrive as Dagger objects; the spec only records that they were given.
        overrides["user_data"] = "user-data" if self.user_data is not None else None
        overrides["doca_airgap"] = "airgap" if self.doca_airgap is not None else None
        overrides["doca_repo_key"] = "doca.pub" if self.doca_repo_key is not None else None
        return spec.build_spec(config, overrides)

    async def _source(self, resolved: BuildSpec) -> tuple[Directory, str]:
        """The CanvOS tree and the commit a moving ref resolved to."""
        if self.canvos is not None:
            return self.canvos, ""
        commit = await dag.git(resolved.canvos_url).ref(resolved.canvos_ref).commit()
        return workspace.canvos_source(resolved.canvos_url, commit), commit

    async def _resolve(self) -> tuple[BuildSpec, Prepared, Directory]:
        resolved = await self._spec()
        source, commit = await self._source(resolved)
        names = await source.entries()
        tree = CanvosTree(
            dockerfile=await source.file("Dockerfile").contents(),
            earthfile=await source.file("Earthfile").contents(),
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
        user_text = await self.user_data.contents() if self.user_data is not None else None
        airgap_kind = (
            classify_airgap(await self.doca_airgap.entries())
            if self.doca_airgap is not None
            else ""
        )
        prepared = prepare(
            resolved,
            tree,
            overlays,
            user_data=user_text,
            airgap_kind=airgap_kind,
            has_key=self.doca_repo_key is not None,
        )
        context = workspace.prepared_context(
            source, self.overlays, prepared.files, self.doca_airgap, self.doca_repo_key
        )
        return resolved, prepared, context
