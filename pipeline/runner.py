"""The edge where build chains are awaited: run, verify, collect, explain.

``main.py`` resolves a ``Run`` (an ``EarthlyBuild`` plus what the manifest
records) and calls one coroutine here. Every await goes through ``guard`` so
a failure names the step, its likely cause and the end of its log instead of
a traceback.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable
from dataclasses import dataclass
from typing import Any, TypeVar

from dagger import Container, Directory, ExecError, File, QueryError, Secret, dag

from pipeline import artifacts, canvos, earthly, facts, failures, verify
from pipeline.context import Prepared
from pipeline.description import tool_version
from pipeline.earthly import EarthlyBuild, SavedImage
from pipeline.errors import BuildFailed
from pipeline.spec import BuildSpec

T = TypeVar("T")


@dataclass(frozen=True)
class Run:
    """Everything one build needs, resolved (the CanvOS ref is a commit)."""

    build: EarthlyBuild
    prepared: Prepared
    secrets_given: tuple[str, ...] = ()

    @property
    def spec(self) -> BuildSpec:
        return self.build.spec


async def guard(step: str, awaitable: Awaitable[T]) -> T:
    """Await one step; turn engine errors into a message a user can act on."""
    try:
        return await awaitable
    except ExecError as exc:
        raise BuildFailed(failures.explain(step, exc.exit_code, exc.stdout, exc.stderr)) from None
    except QueryError as exc:
        raise BuildFailed(failures.explain_query(step, str(exc))) from None


def pick_version(spec: BuildSpec, wanted: str) -> str:
    """One of the requested K8s versions (the first by default)."""
    if not wanted:
        return spec.k8s_version[0]
    if wanted not in spec.k8s_version:
        raise BuildFailed(
            f"k8s version {wanted!r} was not requested; pass it with --k8s-version "
            f"(requested: {', '.join(spec.k8s_version)})."
        )
    return wanted


async def produce(target: str, image: SavedImage) -> int:
    """Run the Earthly exec behind a saved image; the size of its facts file."""
    return await guard(f"Earthly {target} ({image.ref})", image.inspect.size())


async def check(name: str, image: Container) -> str:
    """Run the DOCA verify script in ``image``; its report, or BuildFailed."""
    ran = verify.verified(image)
    code = await guard(f"verify {name}", ran.exit_code())
    output = await guard(f"verify {name}", ran.stdout())
    return _verdict(name, code, output)


async def check_saved(image: SavedImage) -> str:
    """The verify report ``earthly-run.sh`` wrote for a saved image (run in
    docker, where the image already was); BuildFailed if it failed."""
    step = f"verify {image.ref}"
    code_text = await guard(step, image.verify_exit.contents())
    output = await guard(step, image.verify_report.contents())
    try:
        code = int(code_text.strip())
    except ValueError:
        raise BuildFailed(f"{step}: no exit code was recorded ({code_text[:40]!r}).") from None
    return _verdict(image.ref, code, output)


def _verdict(name: str, code: int, output: str) -> str:
    text = verify.report(name, code, output)
    if code != 0:
        raise BuildFailed(
            text + "The image does not carry a working DOCA-Host stage (see the FAIL lines); "
            "the build's artifacts were not returned."
        )
    return text


async def verified_installer(run: Run) -> SavedImage:
    image = run.build.installer_image()
    await produce(facts.CANVOS_TARGET_INSTALLER_IMAGE, image)
    await check_saved(image)
    return image


async def built_provider(run: Run, version: str) -> SavedImage:
    image = run.build.provider_image(version)
    await produce(f"{facts.CANVOS_TARGET_PROVIDER_IMAGES} --K8S_VERSION={version}", image)
    return image


async def verified_provider(run: Run, version: str) -> SavedImage:
    image = await built_provider(run, version)
    await check_saved(image)
    return image


async def iso_directory(run: Run) -> Directory:
    """``+iso`` run (after the installer rootfs passed verify), user-data
    secrets written onto the ISO: a directory with the ISO and its .sha256."""
    await verified_installer(run)
    out = run.build.iso_output()
    iso_name, _ = canvos.iso_files(run.spec)
    step = facts.CANVOS_TARGET_ISO
    if run.build.credentials.user_data is not None:
        step += " and the user-data secrets written onto the ISO"
    await guard(step, out.file(iso_name).size())
    return out


async def iso_file(run: Run) -> File:
    iso_name, _ = canvos.iso_files(run.spec)
    return (await iso_directory(run)).file(iso_name)


async def provider_container(run: Run, version: str, publish_auth: Secret | None) -> Container:
    image = await verified_provider(run, pick_version(run.spec, version))
    ctr = image.container()
    username = run.build.credentials.registry_username
    if publish_auth is not None and username:
        # Credentials for `publish` only; they are never part of the image.
        host = run.spec.image_registry.split("/", 1)[0]
        ctr = ctr.with_registry_auth(host, username, publish_auth)
    return ctr


async def _record(image: SavedImage, version: str) -> artifacts.ImageRecord:
    """What the manifest says about a saved image (tarball: provider images only)."""
    tarball = None
    if image.tarball is not None and image.checksum is not None:
        size = await guard(f"read {image.name}.tar", image.tarball.size())
        checksum = artifacts.parse_sha256(await guard("read checksum", image.checksum.contents()))
        tarball = artifacts.Artifact(f"{image.name}.tar", size, checksum)
    facts_ = artifacts.image_facts(await guard("read image facts", image.inspect.contents()))
    doca_text = await guard(
        f"read {verify.DOCA_MANIFEST} of {image.ref}", image.doca_manifest.contents()
    )
    return artifacts.ImageRecord(
        ref=image.ref,
        tarball=tarball,
        facts=facts_,
        doca=json.loads(doca_text) if doca_text.strip() else None,
        k8s_version=version,
    )


async def build_directory(run: Run) -> Directory:
    """Everything: the ISO, one tarball per K8s version, checksums, manifest.json."""
    iso_dir = await iso_directory(run)
    installer_image = run.build.installer_image()  # same chain as verified above: a cache hit
    iso_name, iso_sha = canvos.iso_files(run.spec)
    iso = artifacts.Artifact(
        iso_name,
        await guard("read ISO", iso_dir.file(iso_name).size()),
        artifacts.parse_sha256(await guard("read ISO checksum", iso_dir.file(iso_sha).contents())),
    )
    files: dict[str, File] = {iso_name: iso_dir.file(iso_name), iso_sha: iso_dir.file(iso_sha)}
    records = []
    for version in run.spec.k8s_version:
        image = await verified_provider(run, version)
        records.append(await _record(image, version))
        assert image.tarball is not None and image.checksum is not None  # provider images
        files[f"{image.name}.tar"] = image.tarball
        files[f"{image.name}.tar.sha256"] = image.checksum
    inputs = artifacts.Inputs(
        description=run.build.description,
        user_data_sha256=artifacts.sha256_text(run.prepared.files.get("user-data", "")),
        secrets={name: True for name in run.secrets_given},
        tools=await tool_versions(run.build.tools),
    )
    data = artifacts.manifest(inputs, iso, records, await _record(installer_image, ""))
    return earthly.output_directory(files, artifacts.render(data))


async def tool_versions(tools: earthly.Tools) -> dict[str, str]:
    """What ran the build, for the manifest's ``tools``: name -> version or image.

    ``dagger_engine`` is the engine's own answer to the API's ``version`` query
    (e.g. ``v0.21.11``). The Python SDK is not listed separately: the module
    runtime installs the SDK bundled with the engine (dagger/dagger
    ``sdk/python/runtime``), whose package metadata always says ``0.0.0``, so
    the engine version is also the SDK's. Raises ``BuildFailed`` if the engine
    rejects the query.
    """
    return {
        "canvos-doca": tool_version(),
        "earthly_image": tools.earthly_image,
        "docker_image": tools.dind_image,
        "dagger_engine": await guard("read engine version", dag.version()),
    }


def secret_names(**secrets: Any) -> tuple[str, ...]:
    """Names of the secrets that were given (for the manifest; never values)."""
    return tuple(sorted(name for name, value in secrets.items() if value is not None))
