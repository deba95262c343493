"""A readable summary of a resolved build (``plan``), secrets redacted.

Values are shown as a user writes them (``true``, ``a, b``; kernel
arguments space-separated, as the kernel reads them); URLs that may carry
credentials come redacted from ``spec.as_dict``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pipeline import facts, presets
from pipeline.buildsecrets import DOCA_REPO_AUTH
from pipeline.description import LOCAL_UNUSED, UPGRADE_HAZARDS, BfbRecord, BuildDescription
from pipeline.earthfile import PRO_BUILD_ARG, PRO_SECRET
from pipeline.persistence import COVERAGE, MECHANISMS, BindMount
from pipeline.spec import FILES_FIELDS, LIST_SEPARATORS, BuildSpec, as_dict, default

_PRO = {
    PRO_SECRET: "attached with the key as the Earthly secret UBUNTU_PRO_KEY (UBUNTU_PRO_ATTACH)",
    PRO_BUILD_ARG: "attached with the key as CanvOS's build arg UBUNTU_PRO_KEY",
}


def plan_text(
    description: BuildDescription, warnings: Sequence[str] = (), unchecked: Sequence[str] = ()
) -> str:
    """What will be built, from where, and what differs from the defaults.

    ``unchecked`` lists what could not be checked (``plan`` without a CanvOS
    checkout), so a plan never looks more verified than it is.
    """
    spec, canvos, doca = description.spec, description.canvos, description.doca
    outputs, persistence = description.outputs, description.persistence
    commit = f" (commit {canvos.commit})" if canvos.commit else ""
    base = canvos.base_image or "(from the CanvOS Earthfile)"
    if canvos.kairos_tag_arg:
        base += f" (tag from the Earthfile's {canvos.kairos_tag_arg})"
    lines = [
        "canvos-doca build plan",
        f"  CanvOS      {canvos.url} @ {canvos.ref}{commit}",
        f"  Palette     PE_VERSION {canvos.pe_version or '(from the CanvOS Earthfile)'}",
        f"  Kairos base {base}",
        f"  Target      {spec.os_distribution} {spec.os_version} {spec.arch}, "
        f"{spec.k8s_distribution} {', '.join(spec.k8s_version)}",
        f"  DOCA-Host   {doca.version} (DOCA-OFED {doca.ofed}), "
        f"profile {doca.profile}, source {doca.source}",
    ]
    if doca.repo:
        lines.append(f"  DOCA repo   {doca.repo}")
    if spec.preset:
        lines.append(f"  Preset      {spec.preset}: {presets.load(spec.preset).description}")
    if description.bfb is not None:
        lines.append(f"  BFB         {_bfb(description.bfb)}")
    if canvos.ubuntu_pro:
        lines.append(f"  Ubuntu Pro  {_PRO[canvos.ubuntu_pro]}")
    if description.rebuild:
        lines.append(
            f"  Rebuild     {description.rebuild}: the DOCA stage and everything built on it "
            "run again, once for all targets"
        )
    lines.append("  Outputs")
    lines.append(f"    ISO            {outputs.iso} (+ {outputs.iso_sha256})")
    lines += [f"    provider image {ref}" for ref in outputs.provider_images.values()]
    lines.append(
        f"  Time        a first build (cold cache): about {facts.first_build_estimate()} "
        f"for one K8s version on {facts.BUILD_TIME_HOST} (estimate; facts.toml [build_time])"
    )
    lines += _secrets(description)
    lines += _mounts("Persistent paths added (install.bind_mounts)", persistence.bind_mounts)
    lines += _mounts("Requested persistent paths left out", persistence.left_out)
    lines += _persistence(persistence.bind_mounts)
    lines.append("  Upgrade hazards (DOCA files under persistent paths)")
    lines.append(f"    {UPGRADE_HAZARDS}")
    changed = _changed(spec, LOCAL_UNUSED if canvos.local else ())
    if changed:
        origin = presets.sources(spec)
        lines.append("  Settings that differ from the defaults")
        lines += [
            f"    {name} = {value}"
            + (f"  ({origin[name]} {spec.preset})" if name in origin else "")
            for name, value in changed
        ]
    if unchecked:
        lines.append(f"  Not checked (no --canvos: no file of CanvOS {canvos.ref} was read)")
        lines += [f"    - {item}" for item in unchecked]
        lines.append("    Pass --canvos with a checkout of that ref to check them.")
    if warnings:
        lines.append("  Warnings")
        lines += [f"    - {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _secrets(description: BuildDescription) -> list[str]:
    """Module signing and the DOCA repository login: what is used, never a secret."""
    signing = description.module_signing
    if signing is None:
        lines = [
            "  Module signing throwaway key (deleted after the build): DKMS modules load on "
            "hosts without Secure Boot only"
        ]
    else:
        lines = [
            f"  Module signing your key pair: certificate {signing.certificate} "
            f"(SHA-256 {signing.certificate_sha256}), key as the build secret "
            f"{signing.key_secret} (in no layer); enroll the certificate as a MOK on "
            "Secure Boot hosts"
        ]
    auth = description.doca.repo_auth
    if auth:
        lines.append(
            f"  DOCA login  apt auth.conf for {', '.join(auth)} as the build secret "
            f"{DOCA_REPO_AUTH.name}, DOCA install step only"
        )
    return lines


def _persistence(mounts: Sequence[BindMount]) -> list[str]:
    """Which mechanism keeps the build's persistent paths on which host
    (``persistence.COVERAGE``)."""
    if not mounts:
        return []
    lines = ["  Persistence (how the paths above reach Kairos)"]
    lines += [
        f"    {case}: {' + '.join(m.name for m in mechanisms)}" for case, mechanisms in COVERAGE
    ]
    lines += [f"    ({m.name}: {m.where}; applied {m.applied})" for m in MECHANISMS]
    return lines


def _mounts(title: str, mounts: Sequence[BindMount]) -> list[str]:
    """A titled list of ``path: reason`` lines, or nothing."""
    if not mounts:
        return []
    return [f"  {title}", *(f"    {m.path}: {m.reason}" for m in mounts)]


def _changed(spec: BuildSpec, omit: Iterable[str]) -> list[tuple[str, str]]:
    """``(knob, value as text)`` of every knob not at its default."""
    values = as_dict(spec, redact=True, omit=omit)
    out = []
    for name, value in values.items():
        base = default(name)
        if value != (list(base) if isinstance(base, tuple) else base):
            out.append((name, _files(spec, value) if name in FILES_FIELDS else _text(name, value)))
    return out


def _files(spec: BuildSpec, records: object) -> str:
    """``host_files`` as path, mode, size (``records``: ``spec.file_record``
    dicts, in the order of ``spec.host_files``) and where the text came
    from; never the content."""
    assert isinstance(records, list)
    parts = []
    for placed, record in zip(spec.host_files, records, strict=True):
        origin = f", from {placed.source}" if placed.source else ""
        parts.append(f"{record['path']} (mode {record['mode']}, {record['size']} bytes{origin})")
    return "; ".join(parts)


def _bfb(bfb: BfbRecord) -> str:
    """``name (N MB[, sha256 H])``: size in MB of 10^6 bytes, as disk tools print it."""
    checksum = f", sha256 {bfb.sha256}" if bfb.sha256 else ", sha256 recorded by the image build"
    return f"{bfb.name} ({bfb.size / 1e6:.1f} MB, {bfb.size} bytes{checksum})"


def _text(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        separator = LIST_SEPARATORS[name]
        joiner = " " if separator == " " else f"{separator} "
        return joiner.join(value) or "(none)"
    return str(value) or "(empty)"
