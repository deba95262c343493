"""The Dagger side of a build's sources: the CanvOS tree, the file inputs, the
prepared context.

``canvos_source`` and ``prepared_context`` return lazy ``Directory`` queries
that tests inspect offline. The readers (``read_text``, ``read_inputs``,
``check_airgap``) await only small files, each size-checked first, with the
same limits and messages as the CLI (``pipeline.textfile``).
"""

from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from dagger import Container, Directory, ExistsType, File, Secret, dag

from pipeline import airgap, buildsecrets, canvos, facts, hostitems, hostsources, textfile
from pipeline.errors import InvalidInput, Problem, raise_if
from pipeline.inputs import (
    REPO_DEB,
    Airgap,
    BuildInputs,
    classify_airgap,
    dagger_bfb,
    signing_pair,
)
from pipeline.inputs import repo_auth as auth_entries
from pipeline.kinds import has_credentials
from pipeline.spec import HOST_FILE_LIMIT, BuildSpec

# What a user-named text file must be, and its size limit (as on the CLI).
TEXT_FILES = {
    "config": (textfile.CONFIG_LIMIT, "a YAML file of knobs (keys = knob names)"),
    "user_data": (
        textfile.USER_DATA_LIMIT,
        f"a YAML file starting with {facts.KAIROS_CLOUD_CONFIG_HEADER}",
    ),
    "canvos": (textfile.CHECKOUT_FILE_LIMIT, "a CanvOS checkout"),
}
# A doca-host .deb's control member follows a 72-byte ar prologue and is tens
# of KB; airgap reads at most 1 MiB of it. This much of the head is enough.
DEB_HEAD_BYTES = 2 * textfile.MIB + 4 * textfile.KIB


def canvos_source(url: str, commit: str) -> Directory:
    """The CanvOS tree at an exact commit (a moving ref must be resolved first)."""
    return dag.git(url).commit(commit).tree()


def prepared_context(
    source: Directory,
    overlays: Directory,
    files: dict[str, str],
    inputs: BuildInputs[Directory, File] | None = None,
) -> Directory:
    """The CanvOS checkout with the overlays, the file inputs and the rendered files.

    ``files`` are written as plain query arguments: none may hold a secret
    (``main`` passes user-data with its secrets replaced by placeholders).
    """
    context = source.with_directory(canvos.CONTEXT_DIR, overlays)
    if inputs is not None and inputs.airgap is not None:
        context = context.with_directory(canvos.AIRGAP_DIR, inputs.airgap.source)
    if inputs is not None and inputs.repo_key is not None:
        context = context.with_file(canvos.KEY_PATH, inputs.repo_key)
    if inputs is not None and inputs.signing_cert is not None:
        # The certificate only: the private key stays a Secret.
        context = context.with_file(canvos.SIGNING_CERT_PATH, inputs.signing_cert)
    if inputs is not None and inputs.bfb is not None and inputs.bfb_info is not None:
        # A file copy inside the engine: the BFB never passes through the API.
        context = context.with_file(f"{hostitems.BFB_DIR}/{inputs.bfb_info.name}", inputs.bfb)
    for path in sorted(files):
        context = context.with_new_file(path, files[path])
    return context


def with_secret_file(directory: Directory, path: str, secret: Secret, image: str) -> Directory:
    """``directory`` with ``secret`` written to ``path`` (mode 0600) by an exec
    in ``image``: the value never becomes a plain query argument, as
    ``with_new_file`` would make it."""
    source = "/run/canvos-doca/secret"
    return (
        dag.container()
        .from_(image)
        .with_mounted_directory("/out", directory)
        .with_mounted_secret(source, secret)
        .with_exec(["install", "-m", "0600", source, f"/out/{path}"])
        .directory("/out")
    )


# ------------------------------------------------------------------ readers


async def read_text(file: File, field: str, name: str) -> str:
    """A small text file from the engine: its size checked before it is read,
    then the CLI's text checks (no NUL byte). ``field`` picks the limit
    (TEXT_FILES); ``name`` is how messages call the file. Raises
    ``InvalidInput`` naming the field and file, never quoting the content."""
    limit, what = TEXT_FILES[field]
    fix = f"pass {what}."
    text = await _read_limited(file, field, name, limit, fix)
    # The engine hands back text; this still refuses binary files as the CLI does.
    return textfile.decode(text.encode("utf-8"), field, name, fix)


async def _read_limited(file: File, field: str, shown: str, limit: int, fix: str) -> str:
    """The text of ``file`` once its size is checked against ``limit`` (bytes);
    ``InvalidInput`` naming ``field`` and ``shown`` when it is larger."""
    size = await file.size()
    if size > limit:
        raise InvalidInput(
            [
                Problem(
                    field,
                    shown,
                    f"is larger than {textfile.size_text(limit)}, the limit for this file "
                    f"({size} bytes).",
                    f"check that this is the right file; {fix}",
                )
            ]
        )
    return await file.contents()


async def read_inputs(
    user_data: File | None,
    doca_airgap: Directory | None,
    doca_repo_key: File | None,
    bfb: File | None = None,
    signing: tuple[File | None, Secret | None] = (None, None),
    repo_auth: Secret | None = None,
) -> BuildInputs[Directory, File]:
    """The module's file inputs, like ``inputs.from_paths`` on the CLI: user-data
    size-checked before it is read, the air-gapped source classified, of a
    BFB only its name and size asked for (``inputs.dagger_bfb``), the
    module-signing pair and the DOCA auth.conf checked (the two secrets are
    read here only to be checked; they leave as Secrets). Raises
    ``InvalidInput`` with every problem, never quoting a secret."""
    text = await read_text(user_data, "user_data", "--user-data") if user_data else None
    source = None
    if doca_airgap is not None:
        source = Airgap(classify_airgap(await doca_airgap.entries()), doca_airgap)
    cert, key = signing
    sha256, problems = signing_pair(
        await _cert_bytes(cert),
        await _secret_bytes(key, "module_signing_key", buildsecrets.KEY_LIMIT),
        "--module-signing-cert",
        "--module-signing-key",
    )
    auth = await _secret_bytes(repo_auth, "doca_repo_auth", buildsecrets.AUTH_LIMIT)
    entries, found = auth_entries(auth, "--doca-repo-auth")
    raise_if(problems + found)
    info = await dagger_bfb(bfb) if bfb is not None else None
    return BuildInputs(
        user_data=text,
        airgap=source,
        repo_key=doca_repo_key,
        signing_cert=cert if sha256 else None,
        signing_sha256=sha256,
        repo_auth=entries,
        bfb=bfb,
        bfb_info=info,
    )


async def _cert_bytes(cert: File | None) -> bytes | Problem | None:
    """The certificate's bytes, its size checked before it is read."""
    if cert is None:
        return None
    size = await cert.size()
    if size > buildsecrets.CERT_LIMIT:
        return Problem(
            "module_signing_cert",
            "--module-signing-cert",
            f"is larger than {textfile.size_text(buildsecrets.CERT_LIMIT)}, too large for a "
            f"certificate ({size} bytes).",
            "pass the PEM certificate of your module-signing key pair.",
        )
    text = await cert.contents()
    # The API hands file contents over as text: a DER file's bytes arrive
    # replaced (U+FFFD), so its fingerprint could not be taken.
    if "\ufffd" in text:
        return Problem(
            "module_signing_cert",
            "--module-signing-cert",
            "is binary (a DER certificate?), which the Dagger module cannot read: the API "
            "hands file contents over as text.",
            "convert it to PEM (openssl x509 -inform DER -in CERT -out cert.pem) and pass "
            "that; the CLI (canvos-doca render) takes DER as it is.",
        )
    return text.encode("utf-8")


async def _secret_bytes(secret: Secret | None, field: str, limit: int) -> bytes | Problem | None:
    """A build secret's bytes, to be checked (an oversized one is refused unread beyond)."""
    if secret is None:
        return None
    data = (await secret.plaintext()).encode("utf-8")
    if len(data) > limit:
        return Problem(
            field,
            f"--{field.replace('_', '-')}",
            f"is larger than {textfile.size_text(limit)}, too large for this file.",
            "check that this is the right secret.",
        )
    return data


def deb_head(deb: File, image: str) -> File:
    """The first DEB_HEAD_BYTES of a .deb (its ar header and control member),
    cut in ``image`` (any image with ``head``); the multi-GB file is mounted,
    not copied."""
    ctr: Container = (
        dag.container()
        .from_(image)
        .with_mounted_file("/in.deb", deb)
        .with_exec(["sh", "-c", f"head -c {DEB_HEAD_BYTES} /in.deb > /head.deb"])
    )
    return ctr.file("/head.deb")


async def check_airgap(source: Airgap[Directory], doca_version: str, image: str) -> None:
    """The CLI's air-gap check (``airgap.check``) for a Directory: a doca-host
    .deb must hold ``doca_version``. Only the head of each .deb leaves the
    engine (exported to a temporary directory under its own name); a flat
    apt repository passes unchanged. Raises ``InvalidInput`` like the CLI."""
    if source.kind != REPO_DEB:
        return
    names = [n for n in await source.source.entries() if fnmatch.fnmatchcase(n, airgap.DEB_GLOB)]
    with tempfile.TemporaryDirectory(prefix="canvos-doca-airgap-") as tmp:
        for name in names:
            await deb_head(source.source.file(name), image).export(str(Path(tmp) / name))
        try:
            airgap.check(tmp, doca_version)
        except InvalidInput as exc:
            raise InvalidInput(
                [
                    Problem(p.field, _in_airgap(p.value, tmp), _in_airgap(p.message, tmp), p.fix)
                    for p in exc.problems
                ]
            ) from None


def _in_airgap(value: object, tmp: str) -> str:
    """A path in the temporary copy, named as the user passed it."""
    return str(value).replace(tmp, "--doca-airgap", 1)


def url_credential_problems(spec: BuildSpec) -> list[Problem]:
    """URL knobs the Dagger build refuses when they carry credentials.

    Knobs are plain strings in the Dagger query, and each of these goes on
    into places that keep it: ``doca_repo_url`` into the DOCA block's ARG,
    ``canvos_url`` into the git query. The value shown keeps only scheme and
    host. Proxies with credentials are refused for every path by the spec
    itself (``spec.RULES``: CanvOS hands them to its Dockerfile as build
    args, which BuildKit keeps in the image history).
    """
    fixes = {
        "canvos_url": "pass a local checkout with --canvos, or a URL the engine can read "
        "without credentials.",
        "doca_repo_url": "pass the URL without user:password and the login as an apt "
        "auth.conf with --doca-repo-auth (a build secret), or a local copy with --doca-airgap.",
    }
    reasons = {
        "canvos_url": "it would be part of the engine's git query, in traces and cache keys",
        "doca_repo_url": "it would be baked into the DOCA stage's ARG DOCA_REPO_URL, in the "
        "image history",
    }
    problems = []
    for name, fix in fixes.items():
        value = getattr(spec, name)
        if value and has_credentials(value):
            problems.append(
                Problem(
                    name,
                    _without_userinfo(value),
                    f"carries credentials, which the Dagger build cannot keep secret: "
                    f"{reasons[name]}.",
                    fix,
                )
            )
    return problems


def _without_userinfo(url: str) -> str:
    """``http://user:pw@proxy:3128/x`` -> ``http://***@proxy:3128`` (the host
    is what follows the last ``@``, as urllib reads it)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"***@{host}", "", "", "")) if parts.scheme else "***"


# ------------------------------------------------------ host_files sources


async def load_host_sources(layer: dict[str, object], root: Directory | None) -> dict[str, object]:
    """A parsed config with its ``host_files`` sources read from ``root``
    (``--host-files-dir``; ``pipeline.hostsources``): the Directory is the
    root, so the path checks are the syntactic ones (relative, no ``..``).
    Raises ``InvalidInput`` with every problem, a source without ``root``
    included."""
    wanted, problems = hostsources.requests(layer)
    texts: dict[str, str] = {}
    for request in wanted:
        if root is None:
            problems.append(hostsources.no_root(request))
            continue
        try:
            texts[request.dest] = await read_host_source(root, request)
        except InvalidInput as exc:
            problems += exc.problems
    raise_if(problems)
    return hostsources.apply(layer, texts)


async def read_host_source(root: Directory, request: hostsources.Request) -> str:
    """One source's text: a regular file of ``root`` (links resolved inside
    it by the engine), its size checked before it is read, then the text
    checks (UTF-8, no NUL). The engine hands back invalid UTF-8 as U+FFFD,
    so that character is refused as a sign of a binary file."""
    name = "--host-files-dir"
    fix = f"pass {hostsources.WHAT}."
    if not await root.exists(request.source, expected_type=ExistsType.REGULAR_TYPE):
        raise InvalidInput([hostsources.missing(request, name)])
    file = root.file(request.source)
    text = await _read_limited(file, request.field, request.source, HOST_FILE_LIMIT, fix)
    if "\ufffd" in text:
        raise InvalidInput(
            [
                Problem(
                    request.field,
                    request.source,
                    "is not UTF-8 text (the engine replaced invalid bytes with U+FFFD).",
                    f"save it as UTF-8; {fix}",
                )
            ]
        )
    return textfile.decode(text.encode("utf-8"), request.field, request.source, fix)
