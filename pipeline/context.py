"""The prepared CanvOS build context: the files to write and their description.

Pure: takes the texts it needs from a CanvOS tree, the project's overlays and
the build's inputs, and returns the files to write. The CLI applies them to a
copied directory, the Dagger module to a ``Directory``; both get
byte-identical results. Every source is read once here: the Earthfile
(``pipeline.earthfile``) and the user-data (``pipeline.userdata``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline import (
    canvos,
    doca,
    earthfile,
    facts,
    hostitems,
    persistence,
    presets,
    userdata,
    userdata_edit,
)
from pipeline.description import (
    BfbRecord,
    BuildDescription,
    CanvosSource,
    DocaSource,
    ModuleSigning,
    Outputs,
    Persistence,
)
from pipeline.earthfile import PRO_BUILD_ARG, Earthfile
from pipeline.errors import Problem, raise_if
from pipeline.inputs import NO_FILES, ONLINE, AnyInputs
from pipeline.spec import BuildSpec, shown_text

# A rebuild value is written into the Dockerfile as an ARG default.
_REBUILD = re.compile(r"^[A-Za-z0-9._:+-]*$")


@dataclass(frozen=True)
class CanvosTree:
    """The files of a CanvOS checkout that the renderer reads."""

    dockerfile: str
    earthfile: str
    k8s_versions_json: str | None = None
    commit: str = ""
    # Set when the tree is a local checkout instead of canvos_url at canvos_ref.
    local_path: str = ""
    # The tag at the local checkout's HEAD, if any.
    tag: str = ""


@dataclass(frozen=True)
class Overlays:
    """The project's overlay texts the renderer reads."""

    fragment: str
    default_user_data: str


@dataclass(frozen=True)
class Prepared:
    """Text files to write (relative path -> content) plus the description."""

    files: dict[str, str]
    description: BuildDescription
    warnings: tuple[str, ...] = field(default=())


def prepare(
    spec: BuildSpec,
    tree: CanvosTree,
    overlays: Overlays,
    inputs: AnyInputs = NO_FILES,
    *,
    rebuild: str = "",
    ubuntu_pro_key: bool = False,
) -> Prepared:
    """Compute every file canvos-doca writes into a CanvOS checkout.

    ``rebuild`` (any new value) is baked into the DOCA block, so it
    invalidates the DOCA install step once for every target of the run;
    ``ubuntu_pro_key`` says whether the build has a key to hand CanvOS.
    Raises ``InvalidInput`` with every problem of the tree, inputs and user-data.
    """
    parsed = earthfile.read(tree.earthfile)
    label = canvos.source_label(spec, tree.local_path, parsed.pe_version)
    problems = canvos.check_tree(spec, parsed, tree.k8s_versions_json, ubuntu_pro_key, label)
    problems += inputs.problems(spec) + _rebuild_problems(rebuild)
    if inputs.user_data is None:
        user_data, found = userdata.read(overlays.default_user_data)
    else:
        user_data, found = userdata.read(inputs.user_data, inputs.user_data_source)
    raise_if(problems + found)
    assert user_data is not None  # no problems: it parsed

    mounts = bind_mount_plan(spec)
    mount_paths = tuple(m.path for m in mounts.kept)
    # Every bind path must exist in the image, the user's own ones included.
    created = mount_paths + tuple(p for p in user_data.bind_mounts if p not in mount_paths)
    pro = parsed.ubuntu_pro if ubuntu_pro_key else ""
    source = canvos_source(spec, tree, parsed, pro)
    description = describe(spec, source, mounts, inputs.doca_source, rebuild, _bfb(inputs), inputs)
    values = canvos.block_values(
        spec,
        created,
        inputs.doca_source,
        inputs.repo_key is not None,
        rebuild,
        inputs.build_secrets,
    )
    persistent = persistence.persistent_paths(spec.os_distribution, extra=created)
    files = {
        facts.CANVOS_DOCKERFILE: canvos.insert_block(
            tree.dockerfile, canvos.render_doca_block(overlays.fragment, values)
        ),
        ".arg": canvos.arg_file(spec, pro, parsed),
        "user-data": userdata_edit.add_bind_mounts(user_data, mount_paths, spec.os_distribution),
        canvos.PERSISTENT_PATHS_FILE: "\n".join(persistent) + "\n",
        canvos.FACTS_FILE: canvos.facts_env(),
        f"{canvos.AIRGAP_DIR}/.keep": "",
        canvos.DESCRIPTION_FILE: description.to_json(),
        # Host items: read only by the image build's later steps, so they
        # leave the DOCA install step's cache alone.
        **hostitems.context_files(hostitems.from_spec(spec)),
    }
    notes = canvos.tree_warnings(spec, parsed, label, tree.tag, local=bool(tree.local_path))
    return Prepared(
        files=files, description=description, warnings=warnings(description, tree) + tuple(notes)
    )


def _bfb(inputs: AnyInputs) -> BfbRecord | None:
    info = inputs.bfb_info
    return BfbRecord(info.name, info.size, info.sha256) if info is not None else None


def _rebuild_problems(rebuild: str) -> list[Problem]:
    if _REBUILD.match(rebuild):
        return []
    return [
        Problem(
            "rebuild",
            rebuild,
            "is written into the Dockerfile and may hold only letters, digits and . _ : + -.",
            "use e.g. --rebuild $(date +%s).",
        )
    ]


def canvos_source(spec: BuildSpec, tree: CanvosTree, parsed: Earthfile, pro: str) -> CanvosSource:
    """Where CanvOS comes from and what its Earthfile resolves to for this spec."""
    return CanvosSource(
        url=tree.local_path or shown_text("canvos_url", spec.canvos_url),
        ref=(tree.tag or "(local checkout)") if tree.local_path else spec.canvos_ref,
        commit=tree.commit,
        pe_version=parsed.pe_version,
        base_image=parsed.base_image(canvos.arg_values(spec, pro, parsed)),
        kairos_tag_arg="" if spec.base_image else parsed.kairos_tag_arg,
        ubuntu_pro=pro,
        local=bool(tree.local_path),
    )


def describe(
    spec: BuildSpec,
    source: CanvosSource,
    mounts: persistence.BindMountPlan,
    doca_source: str = ONLINE,
    rebuild: str = "",
    bfb: BfbRecord | None = None,
    inputs: AnyInputs = NO_FILES,
) -> BuildDescription:
    """The machine-readable description of the resolved build (no secrets:
    of the build secrets only the certificate's fingerprint and which
    machines an auth.conf names)."""
    iso, checksum = canvos.iso_files(spec)
    refs = canvos.provider_image_refs(spec, source.pe_version)
    build_dir = facts.CANVOS_BUILD_DIR
    return BuildDescription(
        spec=spec,
        canvos=source,
        doca=DocaSource(
            version=spec.doca_version,
            ofed=doca.ofed_release(spec.doca_version),
            profile=spec.doca_profile,
            source=doca_source,
            repo=shown_text("doca_repo_url", canvos.doca_repo(spec))
            if doca_source == ONLINE
            else "",
            repo_auth=tuple(e.machine for e in inputs.repo_auth or ()),
        ),
        module_signing=ModuleSigning(inputs.signing_sha256) if inputs.signing_sha256 else None,
        persistence=Persistence(facts.KAIROS_INIT_VERSION, mounts.kept, mounts.dropped),
        outputs=Outputs(
            iso=f"{build_dir}/{iso}",
            iso_sha256=f"{build_dir}/{checksum}",
            provider_images=dict(zip(spec.k8s_version, refs, strict=True)),
            installer_image=canvos.installer_image_ref(spec, source.pe_version),
        ),
        rebuild=rebuild,
        bfb=bfb,
    )


def describe_ref(
    spec: BuildSpec, inputs: AnyInputs = NO_FILES, *, pe_version: str = "", commit: str = ""
) -> BuildDescription:
    """The description without a checkout (``plan`` with no ``--canvos``):
    what only the Earthfile knows is a placeholder unless given."""
    source = CanvosSource(
        url=shown_text("canvos_url", spec.canvos_url),
        ref=spec.canvos_ref,
        commit=commit,
        pe_version=pe_version or f"<PE_VERSION of {spec.canvos_ref}>",
        base_image=spec.base_image,
    )
    return describe(
        spec, source, bind_mount_plan(spec), inputs.doca_source, bfb=_bfb(inputs), inputs=inputs
    )


def bind_mount_plan(spec: BuildSpec) -> persistence.BindMountPlan:
    """The persistent paths this build adds to user-data, and those left out."""
    return persistence.explain_bind_mounts(
        spec.doca_profile, spec.bind_mounts, spec.os_distribution, opensm=spec.opensm
    )


def warnings(description: BuildDescription, tree: CanvosTree | None = None) -> tuple[str, ...]:
    """Things worth knowing that do not stop the build."""
    spec, source = description.spec, description.canvos
    out = []
    if doca.series(spec.doca_version) not in doca.LTS_SERIES:
        lts = ", ".join(f"{s}.x" for s in doca.LTS_SERIES)
        out.append(f"DOCA {spec.doca_version} is not an LTS release; LTS series: {lts}.")
    if not source.local and not spec.canvos_ref.startswith("v") and len(spec.canvos_ref) != 40:
        out.append(
            f"canvos_ref {spec.canvos_ref} looks like a branch: builds resolve it to a commit, "
            "so results change when the branch moves. Pin a tag for reproducible images."
        )
    if spec.preset and description.bfb is None and presets.load(spec.preset).bfb_expected:
        out.append(
            f"preset {spec.preset} expects a BlueField bootstream and no --bfb is given: on an "
            "immutable host the nodeprep downloads nothing, finds no BFB and skips flashing "
            "the BlueField. Pass --bfb <file>.bfb."
        )
    for name, gone in presets.dropped(spec).items():
        out.append(
            f"{name} replaces the list of preset {spec.preset} (a layer replaces a whole "
            f"value), so the image lacks: {', '.join(gone)}. List them too to keep them."
        )
    if len(spec.k8s_version) > 1:
        out.append(
            f"{len(spec.k8s_version)} provider images will be built (one per K8s version, "
            "~4-5 GB each); they share the DOCA base layer."
        )
    if tree is not None and not source.base_image:
        out.append(
            f"the Earthfile of CanvOS {source.ref} has no Kairos base image rule canvos-doca "
            "can read: doca-image needs --base-image (the Earthly targets are not affected)."
        )
    if source.ubuntu_pro == PRO_BUILD_ARG:
        out.append(
            f"CanvOS {source.ref} takes the Ubuntu Pro key as a build arg (ARG UBUNTU_PRO_KEY), "
            "which Earthly records with the build; CanvOS refs that read it with "
            "RUN --secret UBUNTU_PRO_KEY (main) keep it out of the build metadata."
        )
    return tuple(out)
