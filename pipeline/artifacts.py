"""What ``build`` hands back: file names, checksums and manifest.json. Pure.

Layout of the output directory (export it with ``export --path build/``):

    <iso_name>.iso, <iso_name>.iso.sha256     from CanvOS's +iso
    <image>.tar, <image>.tar.sha256           one OCI tarball per provider image
    manifest.json                             every input and output, see manifest()
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from pipeline.description import BuildDescription

MANIFEST_NAME = "manifest.json"
MANIFEST_SCHEMA = 1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Artifact:
    """One output file: its name in the output directory, size and sha256."""

    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class ImageRecord:
    """A provider (or installer) image and what is known about it."""

    ref: str
    # The exported OCI tarball; None for the installer image (verified, not exported).
    tarball: Artifact | None
    facts: Mapping[str, Any]
    doca: Mapping[str, Any] | None
    k8s_version: str = ""
    verify: str = "passed"


@dataclass(frozen=True)
class Inputs:
    """Everything that went into the build: the description (spec, sources,
    rebuild value) and what only the run knows."""

    description: BuildDescription
    user_data_sha256: str
    secrets: Mapping[str, bool] = field(default_factory=dict)
    tools: Mapping[str, str] = field(default_factory=dict)


def tarball_name(ref: str) -> str:
    """``localhost:5000/ubuntu:k3s-1.34.6-v4.9.38`` -> ``ubuntu-k3s-1.34.6-v4.9.38``."""
    last = ref.split("@", 1)[0].rsplit("/", 1)[-1]
    return _UNSAFE.sub("-", last.replace(":", "-")).strip("-")


def parse_sha256(text: str) -> str:
    """The digest of a ``sha256sum`` line (``<hex>  <name>``)."""
    first = text.split()[0] if text.split() else ""
    if not _SHA256.match(first):
        raise ValueError(f"not a sha256sum line: {text[:80]!r}")
    return first


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def image_facts(inspect_json: str) -> dict[str, Any]:
    """The useful part of ``docker image inspect``: ID (config digest), size, platform."""
    data = json.loads(inspect_json)
    item = data[0] if isinstance(data, list) else data
    return {
        "id": item.get("Id", ""),
        "size": item.get("Size", 0),
        "os": item.get("Os", ""),
        "architecture": item.get("Architecture", ""),
        "created": item.get("Created", ""),
        "repo_tags": list(item.get("RepoTags") or []),
    }


def _image(record: ImageRecord) -> dict[str, Any]:
    return {
        "ref": record.ref,
        "k8s_version": record.k8s_version,
        "config_digest": record.facts.get("id", ""),
        "image": dict(record.facts),
        "tarball": _artifact(record.tarball) if record.tarball is not None else None,
        "doca": dict(record.doca) if record.doca is not None else None,
        "verify": record.verify,
    }


def _artifact(artifact: Artifact) -> dict[str, Any]:
    return {"file": artifact.name, "size": artifact.size, "sha256": artifact.sha256}


def manifest(
    inputs: Inputs,
    iso: Artifact | None,
    images: Sequence[ImageRecord],
    installer: ImageRecord | None = None,
) -> dict[str, Any]:
    """manifest.json: the inputs (spec, CanvOS commit, DOCA choice, user-data
    hash, which secrets were given, never their values), the tools, and every
    output with size and checksum, plus the DOCA manifest read from each image."""
    described = inputs.description.as_dict()
    return {
        "schema": MANIFEST_SCHEMA,
        "tool": described["tool"],
        "tools": dict(inputs.tools),
        "inputs": {
            **{
                key: described[key]
                for key in ("spec", "canvos", "doca", "persistence", "module_signing")
            },
            "user_data_sha256": inputs.user_data_sha256,
            "secrets_provided": dict(sorted(inputs.secrets.items())),
            "rebuild": inputs.description.rebuild,
        },
        "outputs": {
            "iso": _artifact(iso) if iso is not None else None,
            "installer_image": _image(installer) if installer is not None else None,
            "provider_images": [_image(record) for record in images],
        },
    }


def render(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"
