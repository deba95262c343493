"""The typed description of a prepared build, written as ``canvos-doca.json``.

``context.prepare`` builds it once; ``plan``, ``runner`` and ``artifacts``
read its fields. ``to_json()`` is the one place its JSON form is made (the
file in the build context, the inputs of ``manifest.json``). It never holds
a secret: proxies are redacted and only *how* an Ubuntu Pro key is passed is
recorded.
"""

from __future__ import annotations

import importlib.metadata
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from pipeline.buildsecrets import CERT_PATH, MODULE_SIGNING
from pipeline.persistence import BindMount
from pipeline.spec import BuildSpec, as_dict

TOOL_NAME = "canvos-doca"
# Knobs a local CanvOS checkout makes unused (it is built as it is).
LOCAL_UNUSED = ("canvos_url", "canvos_ref")
# Upgrade hazards depend on the installed files: the image build lists them.
UPGRADE_HAZARDS = "listed by the image build in the DOCA manifest"


def tool_version() -> str:
    """The installed canvos-doca package's version (pyproject.toml); "unknown"
    when the code runs from a checkout that was never installed."""
    try:
        return importlib.metadata.version(TOOL_NAME)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


@dataclass(frozen=True)
class CanvosSource:
    """The CanvOS checkout and what its Earthfile says (read once)."""

    url: str
    ref: str
    commit: str
    pe_version: str
    # The Kairos base image the Dockerfile builds FROM; "" when the Earthfile
    # has no rule canvos-doca can read.
    base_image: str
    # The Earthfile ARG the base image tag comes from (KAIROS_VERSION on
    # v4.9.x, KAIROS_INIT_VERSION on main).
    kairos_tag_arg: str = ""
    # How this build hands CanvOS an Ubuntu Pro key (earthfile.PRO_SECRET or
    # PRO_BUILD_ARG); "" when no key is given.
    ubuntu_pro: str = ""
    # A local checkout (url is its path): the spec's canvos_url/canvos_ref
    # were not used and are left out of the record.
    local: bool = False


@dataclass(frozen=True)
class DocaSource:
    version: str
    ofed: str | None
    profile: str
    source: str  # inputs.ONLINE, REPO_DIR or REPO_DEB
    repo: str  # the apt repository of an online build, else ""
    # The machines of the auth.conf given as a build secret (never its logins).
    repo_auth: tuple[str, ...] = ()


@dataclass(frozen=True)
class ModuleSigning:
    """The module-signing certificate of this build (its key is a build secret)."""

    certificate_sha256: str  # SHA-256 of the DER, lower-case hex
    certificate: str = CERT_PATH
    key_secret: str = MODULE_SIGNING.name


@dataclass(frozen=True)
class Persistence:
    kairos_init_version: str
    bind_mounts: tuple[BindMount, ...]
    left_out: tuple[BindMount, ...]


@dataclass(frozen=True)
class Outputs:
    iso: str
    iso_sha256: str
    # K8s version -> the provider image reference CanvOS tags, in request order.
    provider_images: Mapping[str, str]
    installer_image: str

    def provider_image(self, k8s_version: str) -> str:
        return self.provider_images[k8s_version]


@dataclass(frozen=True)
class BfbRecord:
    """The BlueField bootstream baked in: file name, size in bytes, SHA-256
    (hex; "" where the pipeline does not read the file: the Dagger module
    leaves it to the image build's manifest)."""

    name: str
    size: int
    sha256: str = ""


@dataclass(frozen=True)
class BuildDescription:
    """Everything that was resolved for one build (no secrets)."""

    spec: BuildSpec
    canvos: CanvosSource
    doca: DocaSource
    persistence: Persistence
    outputs: Outputs
    # Any new value rebuilds the DOCA stage and what is built on it, once per run.
    rebuild: str = ""
    # None: DKMS signs with a throwaway key that is deleted after the build.
    module_signing: ModuleSigning | None = None
    tool_version: str = field(default_factory=tool_version)
    bfb: BfbRecord | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "tool": {"name": TOOL_NAME, "version": self.tool_version},
            "spec": as_dict(self.spec, omit=LOCAL_UNUSED if self.canvos.local else ()),
            "canvos": asdict(self.canvos),
            "doca": {**asdict(self.doca), "repo_auth": list(self.doca.repo_auth)},
            "persistence": {
                "kairos_init_version": self.persistence.kairos_init_version,
                "bind_mounts": [asdict(m) for m in self.persistence.bind_mounts],
                "left_out": [asdict(m) for m in self.persistence.left_out],
                "upgrade_hazards": UPGRADE_HAZARDS,
            },
            "outputs": {
                "iso": self.outputs.iso,
                "iso_sha256": self.outputs.iso_sha256,
                "provider_images": list(self.outputs.provider_images.values()),
                "installer_image": self.outputs.installer_image,
            },
            "rebuild": self.rebuild,
            "module_signing": asdict(self.module_signing) if self.module_signing else None,
            "bfb": asdict(self.bfb) if self.bfb is not None else None,
        }

    def to_json(self) -> str:
        """``canvos-doca.json``: stable, sorted, one trailing newline."""
        return json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n"
