"""The await edge of ``build``: verify every image, collect facts, assemble the output.

The engine's answers (file sizes and contents, exit codes) are replaced by
answers derived from the query each await would send, so what is checked is
our orchestration: which steps are awaited, verified and collected.
"""

from __future__ import annotations

import json
from typing import Any
from unittest import mock

import dagger
import pytest
from chains import own, steps, walk
from dagger import dag

from pipeline import earthly, facts, runner
from pipeline.context import Prepared, describe_ref
from pipeline.earthly import EarthlyBuild
from pipeline.errors import BuildFailed
from pipeline.spec import BuildSpec

VERSIONS = ("1.33.10", "1.34.6")
DOCA = {"doca_version": "3.2.2", "profile": "doca-ofed"}


def digest_of(path: str) -> str:
    return f"{abs(hash(path)) % (1 << 64):064x}"


class FakeEngine:
    """Answers derived from the selections; records what was verified."""

    def __init__(self, failing_verify: str = "") -> None:
        self.failing_verify = failing_verify
        self.verified: list[str] = []

    def path(self, obj: Any) -> str:
        return str(steps(obj)[-1][1].get("path", ""))

    async def size(self, file: dagger.File) -> int:
        return 1000 + len(self.path(file))

    def saved_ref(self, file: dagger.File) -> str:
        """The image ref of the Earthly exec that wrote ``file`` (its CANVOS_DOCA_SAVE)."""
        saved = [a["value"] for n, a in steps(file) if n == "withEnvVariable"]
        names = [a["name"] for n, a in steps(file) if n == "withEnvVariable"]
        return saved[len(names) - 1 - names[::-1].index("CANVOS_DOCA_SAVE")].split("|")[0]

    async def contents(self, file: dagger.File) -> str:
        path = self.path(file)
        failing = self.saved_ref(file) == self.failing_verify if "/images/" in path else False
        if path.endswith(".sha256"):
            name = path.rsplit("/", 1)[-1].removesuffix(".sha256")
            return f"{digest_of(name)}  {name}\n"
        if path.endswith(".verify-exit"):
            self.verified.append(self.saved_ref(file))
            return "1\n" if failing else "0\n"
        if path.endswith(".verify"):
            return "FAIL  dkms installed\n" if failing else "ok    manifest present\n"
        if path.endswith(".doca.json"):
            return json.dumps(DOCA)
        if path.endswith(".json"):
            return json.dumps([{"Id": f"sha256:{digest_of(path)}", "Size": 5}])
        raise AssertionError(f"unexpected read of {path}")

    async def version(self, _: Any) -> str:
        return "v0.21.11"

    def patches(self) -> list[Any]:
        # Plain functions, so the patched methods receive the File/Container.
        def forward(method: Any) -> Any:
            return lambda obj: method(obj)

        return [
            mock.patch.object(dagger.File, "size", forward(self.size)),
            mock.patch.object(dagger.File, "contents", forward(self.contents)),
            mock.patch.object(type(dag), "version", forward(self.version)),
        ]


def make_run(credentials: earthly.Credentials | None = None) -> runner.Run:
    description = describe_ref(
        BuildSpec(k8s_version=VERSIONS), pe_version="v4.9.38", commit="c" * 40
    )
    prepared = Prepared(files={"user-data": "#cloud-config\n"}, description=description)
    build = EarthlyBuild(
        context=dag.directory().with_new_file("user-data", "#cloud-config\n"),
        description=description,
        credentials=credentials or earthly.Credentials(),
    )
    return runner.Run(build=build, prepared=prepared, secrets_given=("registry_password",))


async def run_build(
    engine: FakeEngine, credentials: earthly.Credentials | None = None
) -> dagger.Directory:
    patches = engine.patches()
    for patch in patches:
        patch.start()
    try:
        return await runner.build_directory(make_run(credentials))
    finally:
        for patch in patches:
            patch.stop()


async def test_build_verifies_every_image_and_lays_out_the_output() -> None:
    engine = FakeEngine()
    out = await run_build(engine)
    providers = [f"localhost:5000/ubuntu:k3s-{v}-v4.9.38" for v in VERSIONS]
    assert set(engine.verified) == {"palette-installer-image:v4.9.38", *providers}
    names = [a["path"] for a in own(out, "withFile")]
    assert names == sorted(
        [
            "palette-edge-installer.iso",
            "palette-edge-installer.iso.sha256",
            *[f"ubuntu-k3s-{v}-v4.9.38.tar" for v in VERSIONS],
            *[f"ubuntu-k3s-{v}-v4.9.38.tar.sha256" for v in VERSIONS],
        ]
    )
    (manifest_file,) = own(out, "withNewFile")
    assert manifest_file["path"] == "manifest.json"
    manifest = json.loads(manifest_file["contents"])
    images = manifest["outputs"]["provider_images"]
    assert [i["k8s_version"] for i in images] == list(VERSIONS)
    assert all(i["doca"] == DOCA and i["verify"] == "passed" for i in images)
    assert images[0]["tarball"]["sha256"] == digest_of("ubuntu-k3s-1.33.10-v4.9.38.tar")
    assert manifest["outputs"]["iso"]["sha256"] == digest_of("palette-edge-installer.iso")
    assert manifest["outputs"]["installer_image"]["ref"] == "palette-installer-image:v4.9.38"
    assert manifest["inputs"]["canvos"]["commit"] == "c" * 40
    assert manifest["inputs"]["secrets_provided"] == {"registry_password": True}
    assert manifest["inputs"]["spec"]["k8s_version"] == list(VERSIONS)
    assert manifest["tool"]["version"] == manifest["tools"]["canvos-doca"]
    assert manifest["tools"]["dagger_engine"] == "v0.21.11"
    assert manifest["tools"]["earthly_image"] == earthly.Tools().earthly_image
    # Disk: verify ran in docker; no image was imported into the engine, and the
    # installer image was never written out as a tarball.
    assert not [name for name, _ in walk(out) if name == "import"]
    assert manifest["outputs"]["installer_image"]["tarball"] is None
    assert manifest["outputs"]["installer_image"]["doca"] == DOCA


async def test_build_exports_the_iso_with_user_data_secrets_written_onto_it() -> None:
    user_data = dag.set_secret("canvos-doca-user-data-x", "#cloud-config\n")
    out = await run_build(FakeEngine(), earthly.Credentials(user_data=user_data))
    files = {a["path"]: a["source"] for a in own(out, "withFile")}
    for name in ("palette-edge-installer.iso", "palette-edge-installer.iso.sha256"):
        chain = steps(files[name])
        assert ("from", {"address": facts.ISO_TOOL_IMAGE}) in chain, name
        assert chain[-2:] == [("directory", {"path": earthly.ISO_OUT}), ("file", {"path": name})]


async def test_a_failing_verify_stops_the_build_with_its_report() -> None:
    bad = "localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"
    with pytest.raises(BuildFailed) as caught:
        await run_build(FakeEngine(failing_verify=bad))
    message = str(caught.value)
    assert f"canvos-doca verify {bad}: FAILED (exit code 1)" in message
    assert "FAIL  dkms installed" in message


async def test_provider_image_carries_publish_credentials_not_in_the_image() -> None:
    engine = FakeEngine()
    password = dag.set_secret("registry", "pw")
    run = make_run(earthly.Credentials(registry_username="ci", registry_password=password))
    patches = engine.patches()
    for patch in patches:
        patch.start()
    try:
        ctr = await runner.provider_container(run, "1.34.6", password)
    finally:
        for patch in patches:
            patch.stop()
    assert engine.verified == ["localhost:5000/ubuntu:k3s-1.34.6-v4.9.38"]
    assert own(ctr, "withRegistryAuth") == [
        {"address": "localhost:5000", "username": "ci", "secret": password}
    ]
    assert [name for name, _ in steps(ctr)][:2] == ["container", "import"]
