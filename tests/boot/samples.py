"""Sample inputs shared by the boot tests: a DOCA manifest and a resolved run."""

from __future__ import annotations

from typing import Any

from dagger import dag

from pipeline import earthly, persistence
from pipeline.context import Prepared, describe_ref
from pipeline.earthly import EarthlyBuild
from pipeline.runner import Run
from pipeline.spec import BuildSpec

SECRET_MARK = "S3CR3T-edge-host-token"
# The persistence part of /usr/share/canvos-doca/manifest.json as the DOCA stage
# writes it (overlays/doca/tools/customize.sh; these values from the stand-in
# packages' build in tests/image).
MANIFEST: dict[str, Any] = {
    "kernel_args": ["iommu=pt", "pci=realloc"],
    "bind_mounts": ["/var/lib/openvswitch", "/var/lib/canvos-doca-test"],
    "persistence": {
        "persistent_paths": [*persistence.persistent_paths("ubuntu")],
        "relocated": [
            {"from": "/opt/mellanox", "to": "/usr/lib/canvos-doca/relocated/opt/mellanox"}
        ],
        "stable_links": [
            {"path": "/etc/init.d/openibd", "target": "/usr/lib/x", "package": "p"},
            {"path": "/opt/mellanox", "target": "/usr/lib/y", "package": "q"},
        ],
        "upgrade_hazards": [
            {
                "path": "/usr/libexec/mlnx_ofed/mlnx_interface_mgr.sh",
                "package": "mlnx-ofed-kernel-utils",
                "persistent_path": "/usr/libexec",
            }
        ],
    },
}


def make_run(user_data: str, spec: BuildSpec | None = None, token: bool = True) -> Run:
    """A resolved run as main.py builds it; with the edge host token merged
    into a user-data secret when ``token``."""
    spec = spec or BuildSpec(kernel_args=("iommu=pt",))
    description = describe_ref(spec, pe_version="v4.9.38", commit="c" * 40)
    secret = dag.set_secret("user-data", f"#cloud-config\nstylus: {{t: {SECRET_MARK}}}\n")
    build = EarthlyBuild(
        context=dag.directory().with_new_file("user-data", user_data),
        description=description,
        credentials=earthly.Credentials(user_data=secret if token else None),
    )
    prepared = Prepared(files={"user-data": user_data}, description=description)
    return Run(build=build, prepared=prepared)
