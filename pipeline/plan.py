"""A readable summary of a resolved build (``plan``), secrets redacted."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from pipeline.spec import FIELD_NAMES, BuildSpec, as_dict, default


def plan_text(
    spec: BuildSpec, description: Mapping[str, object], warnings: Sequence[str] = ()
) -> str:
    """What will be built, from where, and what differs from the defaults."""
    canvos = _section(description, "canvos")
    doca = _section(description, "doca")
    outputs = _section(description, "outputs")
    persistence = _section(description, "persistence")
    commit = f" (commit {canvos['commit']})" if canvos.get("commit") else ""
    lines = [
        "canvos-doca build plan",
        f"  CanvOS      {canvos.get('url')} @ {canvos.get('ref')}{commit}",
        f"  Palette     PE_VERSION {canvos.get('pe_version') or '(from the CanvOS Earthfile)'}",
        f"  Target      {spec.os_distribution} {spec.os_version} {spec.arch}, "
        f"{spec.k8s_distribution} {', '.join(spec.k8s_version)}",
        f"  DOCA-Host   {doca.get('version')} (DOCA-OFED {doca.get('ofed')}), "
        f"profile {doca.get('profile')}, source {doca.get('source')}",
    ]
    if doca.get("repo"):
        lines.append(f"  DOCA repo   {doca['repo']}")
    lines.append("  Outputs")
    lines.append(f"    ISO            {outputs.get('iso')} (+ {outputs.get('iso_sha256')})")
    images = outputs.get("provider_images") or []
    for ref in images if isinstance(images, list) else []:
        lines.append(f"    provider image {ref}")
    lines += _mounts("Persistent paths added (install.bind_mounts)", persistence.get("bind_mounts"))
    lines += _mounts("Requested persistent paths left out", persistence.get("left_out"))
    hazards = persistence.get("upgrade_hazards")
    if hazards:
        lines.append("  Upgrade hazards (DOCA files under persistent paths)")
        items = hazards if isinstance(hazards, list) else [hazards]
        lines += [f"    {h}" for h in items]
    changed = _changed(spec)
    if changed:
        lines.append("  Settings that differ from the defaults")
        lines += [f"    {name} = {value}" for name, value in changed]
    if warnings:
        lines.append("  Warnings")
        lines += [f"    - {w}" for w in warnings]
    return "\n".join(lines) + "\n"


def _mounts(title: str, mounts: object) -> list[str]:
    """A titled list of ``path: reason`` lines, or nothing."""
    if not isinstance(mounts, list) or not mounts:
        return []
    rows = [f"    {m.get('path')}: {m.get('reason')}" for m in mounts if isinstance(m, Mapping)]
    return [f"  {title}", *rows]


def _section(description: Mapping[str, object], key: str) -> Mapping[str, object]:
    value = description.get(key)
    return value if isinstance(value, Mapping) else {}


def _changed(spec: BuildSpec) -> list[tuple[str, object]]:
    values = as_dict(spec, redact=True)
    out = []
    for name in FIELD_NAMES:
        base = default(name)
        base = list(base) if isinstance(base, tuple) else base
        if values[name] != base:
            out.append((name, values[name]))
    return out
