"""Output layout, checksums and manifest.json, from fake inputs."""

from __future__ import annotations

import hashlib
import json

import pytest

from pipeline import artifacts
from pipeline.context import describe_ref
from pipeline.spec import BuildSpec, as_dict

SPEC = BuildSpec(bind_mounts=("/var/lib/x",), https_proxy="http://u:pw@proxy:3128")
DESCRIPTION = describe_ref(SPEC, pe_version="v4.9.38", commit="c" * 40)
INSPECT = json.dumps(
    [
        {
            "Id": "sha256:" + "a" * 64,
            "Size": 4_500_000_000,
            "Os": "linux",
            "Architecture": "amd64",
            "Created": "2026-11-25T00:00:00Z",
            "RepoTags": ["localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"],
            "Config": {"Env": ["SECRET=should-not-be-copied"]},
        }
    ]
)
DOCA = {"doca_version": "3.2.2", "kernels": ["5.15.0-1-generic"]}


def test_tarball_name_from_ref() -> None:
    assert (
        artifacts.tarball_name("localhost:5000/ubuntu:k3s-1.34.6-v4.9.38")
        == "ubuntu-k3s-1.34.6-v4.9.38"
    )
    assert artifacts.tarball_name("reg/a/b:t@sha256:" + "f" * 64) == "b-t"
    assert artifacts.tarball_name("palette-installer-image:v4.9.38") == (
        "palette-installer-image-v4.9.38"
    )


def test_parse_sha256_lines() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert artifacts.parse_sha256(f"{digest}  x.iso\n") == digest
    for bad in ("", "nothex  x", "ABC"):
        with pytest.raises(ValueError):
            artifacts.parse_sha256(bad)


def test_image_facts_keep_only_identity_and_size() -> None:
    facts = artifacts.image_facts(INSPECT)
    assert facts["id"] == "sha256:" + "a" * 64 and facts["size"] == 4_500_000_000
    assert facts["architecture"] == "amd64"
    assert "should-not-be-copied" not in json.dumps(facts)


def manifest() -> dict[str, object]:
    inputs = artifacts.Inputs(
        description=DESCRIPTION,
        user_data_sha256=artifacts.sha256_text("#cloud-config\n"),
        secrets={"ubuntu_pro_key": True, "edge_host_token": True},
        tools={"earthly_image": "earthly/earthly:v0.8.15"},
    )
    iso = artifacts.Artifact("x.iso", 2_000_000_000, "c" * 64)
    record = artifacts.ImageRecord(
        ref="localhost:5000/ubuntu:k3s-1.34.6-v4.9.38",
        tarball=artifacts.Artifact("ubuntu-k3s-1.34.6-v4.9.38.tar", 4_400_000_000, "d" * 64),
        facts=artifacts.image_facts(INSPECT),
        doca=DOCA,
        k8s_version="1.34.6",
    )
    return artifacts.manifest(inputs, iso, [record])


def test_manifest_records_inputs_outputs_and_doca() -> None:
    data = manifest()
    inputs = data["inputs"]
    outputs = data["outputs"]
    assert isinstance(inputs, dict) and isinstance(outputs, dict)
    assert inputs["spec"] == as_dict(SPEC)
    assert "pw@" not in json.dumps(data) and inputs["spec"]["https_proxy"].endswith(
        "***@proxy:3128"
    )
    assert inputs["canvos"]["commit"] == "c" * 40
    assert inputs["canvos"]["pe_version"] == "v4.9.38"
    assert inputs["persistence"]["bind_mounts"] == [
        {"path": "/var/lib/x", "reason": "requested in bind_mounts"}
    ]
    assert inputs["doca"]["repo"].endswith("/3.2.2/ubuntu22.04/x86_64/")
    assert inputs["rebuild"] == ""
    assert data["tool"] == {"name": "canvos-doca", "version": DESCRIPTION.tool_version}
    assert inputs["user_data_sha256"] == hashlib.sha256(b"#cloud-config\n").hexdigest()
    assert inputs["secrets_provided"] == {"edge_host_token": True, "ubuntu_pro_key": True}
    assert outputs["iso"] == {"file": "x.iso", "size": 2_000_000_000, "sha256": "c" * 64}
    (image,) = outputs["provider_images"]
    assert image["config_digest"] == "sha256:" + "a" * 64
    assert image["tarball"]["sha256"] == "d" * 64
    assert image["doca"] == DOCA and image["verify"] == "passed"
    assert data["tools"] == {"earthly_image": "earthly/earthly:v0.8.15"}


def test_manifest_renders_stable_json() -> None:
    text = artifacts.render(manifest())
    assert json.loads(text) == manifest()
    assert text == artifacts.render(manifest()) and text.endswith("\n")
