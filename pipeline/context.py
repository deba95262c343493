"""The prepared CanvOS build context, as a set of file edits.

Pure: takes the texts it needs from a CanvOS tree and the project's overlays
and returns the files to write. The CLI applies them to a copied directory,
the Dagger module to a ``Directory``; both get byte-identical results.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from pipeline import canvos, doca, facts, kairos
from pipeline.errors import InvalidInput, Problem, raise_if
from pipeline.spec import BuildSpec, as_dict

TOOL_VERSION = "0.1.0"
AIRGAP_KINDS = ("", "repo-dir", "repo-deb")


@dataclass(frozen=True)
class CanvosTree:
    """The files of a CanvOS checkout that the renderer reads."""

    dockerfile: str
    earthfile: str
    k8s_versions_json: str | None = None
    commit: str = ""
    # Set when the tree is a local checkout instead of canvos_url at canvos_ref.
    local_path: str = ""


@dataclass(frozen=True)
class Overlays:
    """The project's overlay texts the renderer reads."""

    fragment: str
    default_user_data: str


@dataclass(frozen=True)
class Prepared:
    """Text files to write (relative path -> content) plus the description."""

    files: dict[str, str]
    description: dict[str, object]
    warnings: tuple[str, ...] = field(default=())


def prepare(
    spec: BuildSpec,
    tree: CanvosTree,
    overlays: Overlays,
    user_data: str | None = None,
    airgap_kind: str = "",
    has_key: bool = False,
) -> Prepared:
    """Compute every file canvos-doca writes into a CanvOS checkout."""
    if airgap_kind not in AIRGAP_KINDS:
        raise ValueError(f"airgap_kind {airgap_kind!r} not in {AIRGAP_KINDS}")
    problems = canvos.check_tree(spec, tree.earthfile, tree.k8s_versions_json)
    user_text = overlays.default_user_data if user_data is None else user_data
    problems += kairos.check_user_data(user_text)
    raise_if(problems)

    mounts = bind_mount_plan(spec)
    mount_paths = tuple(m.path for m in mounts.kept)
    # Every bind path must exist in the image, the user's own ones included.
    created = mount_paths + tuple(
        p for p in kairos.user_data_bind_mounts(user_text) if p not in mount_paths
    )
    block = canvos.render_doca_block(
        overlays.fragment, canvos.block_values(spec, created, airgap_kind, has_key)
    )
    pe_version = canvos.earthfile_arg(tree.earthfile, "PE_VERSION") or ""
    description = describe(spec, tree, pe_version, mounts, airgap_kind)
    persistent = kairos.persistent_paths(spec.os_distribution, extra=created)
    files = {
        "Dockerfile": canvos.insert_block(tree.dockerfile, block),
        ".arg": canvos.arg_file(spec),
        "user-data": kairos.merge_user_data(user_text, mount_paths, spec.os_distribution),
        canvos.PERSISTENT_PATHS_FILE: "\n".join(persistent) + "\n",
        canvos.FACTS_FILE: facts.shell_env(),
        f"{canvos.AIRGAP_DIR}/.keep": "",
        canvos.DESCRIPTION_FILE: json.dumps(description, indent=2, sort_keys=True) + "\n",
    }
    return Prepared(files=files, description=description, warnings=tuple(warnings(spec)))


def describe(
    spec: BuildSpec,
    tree: CanvosTree,
    pe_version: str,
    mounts: kairos.BindMountPlan,
    airgap_kind: str,
) -> dict[str, object]:
    """The machine-readable description of the resolved build (no secrets)."""
    iso, checksum = canvos.iso_files(spec)
    return {
        "tool": {"name": "canvos-doca", "version": TOOL_VERSION},
        "spec": as_dict(spec),
        "canvos": {
            "url": tree.local_path or spec.canvos_url,
            "ref": "(local checkout)" if tree.local_path else spec.canvos_ref,
            "commit": tree.commit,
            "pe_version": pe_version,
        },
        "doca": {
            "version": spec.doca_version,
            "ofed": doca.ofed_release(spec.doca_version),
            "profile": spec.doca_profile,
            "source": airgap_kind or "online",
            "repo": "" if airgap_kind else canvos.repo_for(spec),
        },
        "persistence": {
            "kairos_init_version": kairos.KAIROS_INIT_VERSION,
            "bind_mounts": [{"path": m.path, "reason": m.reason} for m in mounts.kept],
            "left_out": [{"path": m.path, "reason": m.reason} for m in mounts.dropped],
            "upgrade_hazards": "listed by the image build in the DOCA manifest",
        },
        "outputs": {
            "iso": f"{canvos.BUILD_DIR}/{iso}",
            "iso_sha256": f"{canvos.BUILD_DIR}/{checksum}",
            "provider_images": canvos.provider_image_refs(spec, pe_version),
        },
    }


def bind_mount_plan(spec: BuildSpec) -> kairos.BindMountPlan:
    """The persistent paths this build adds to user-data, and those left out."""
    return kairos.explain_bind_mounts(
        spec.doca_profile, spec.bind_mounts, spec.os_distribution, opensm=spec.opensm
    )


def warnings(spec: BuildSpec) -> list[str]:
    """Things worth knowing that do not stop the build."""
    out = []
    if doca.series(spec.doca_version) not in doca.LTS_SERIES:
        out.append(
            f"DOCA {spec.doca_version} is not an LTS release; LTS series: "
            + ", ".join(f"{s}.x" for s in doca.LTS_SERIES)
            + "."
        )
    if not spec.canvos_ref.startswith("v") and len(spec.canvos_ref) != 40:
        out.append(
            f"canvos_ref {spec.canvos_ref!r} looks like a branch: builds resolve it to a commit, "
            "so results change when the branch moves. Pin a tag for reproducible images."
        )
    if len(spec.k8s_version) > 1:
        out.append(
            f"{len(spec.k8s_version)} provider images will be built (one per K8s version, "
            "~4-5 GB each); they share the DOCA base layer."
        )
    return out


def classify_airgap(names: list[str]) -> str:
    """Which kind of air-gapped source a directory listing (or file name) is."""
    if any(n.startswith("doca-host") and n.endswith(".deb") for n in names):
        return "repo-deb"
    if any(n in ("Packages", "Packages.gz", "Packages.xz", "InRelease", "Release") for n in names):
        return "repo-dir"
    raise InvalidInput(
        [
            Problem(
                "doca_airgap",
                ", ".join(sorted(names)[:5]) or "<empty>",
                "is neither a flat apt repository (Packages/Release at its top) "
                "nor a doca-host .deb.",
                "pass the directory of NVIDIA's DOCA repo mirror, "
                "or the doca-host_*.deb local-repo file.",
            )
        ]
    )
