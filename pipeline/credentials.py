"""Where credentials go. Pure: no secret value is ever logged or returned in text
that leaves the engine; these helpers only place values the caller already holds.
YAML is read with ``pipeline.safeyaml`` like everywhere else.
"""

from __future__ import annotations

from typing import Any

import yaml

from pipeline import facts, safeyaml
from pipeline.errors import InvalidInput, Problem
from pipeline.spec import BuildSpec


def registry_hosts(spec: BuildSpec) -> tuple[str, ...]:
    """Registries the username/password pair applies to: the private mirrors
    the build pulls from and the registry provider images are tagged for."""
    refs = (
        spec.spectro_pub_repo,
        spec.spectro_luet_repo,
        spec.kairos_base_image_url,
        spec.base_image,
        spec.image_registry,
    )
    hosts: list[str] = []
    for ref in refs:
        host = ref.split("/", 1)[0] if ref else ""
        if host and host not in hosts:
            hosts.append(host)
    return tuple(hosts)


def with_edge_host_token(user_data: str, token: str) -> str:
    """user-data with ``stylus.site.edgeHostToken`` set to ``token``.

    The result only ever lives in a Dagger secret mounted into the ISO build,
    so losing the user's comments here costs nothing (the prepared user-data
    in the build context keeps them).
    """
    data: Any = safeyaml.load(user_data, "edge_host_token", "the prepared user-data") or {}
    problem = None
    if not isinstance(data, dict):
        problem = "is not a mapping"
    else:
        stylus = data.setdefault("stylus", {})
        site = stylus.setdefault("site", {}) if isinstance(stylus, dict) else None
        if isinstance(site, dict):
            site["edgeHostToken"] = token
        else:
            problem = "has a stylus or stylus.site that is not a mapping"
    if problem:
        raise InvalidInput(
            [
                Problem(
                    "edge_host_token",
                    "<secret>",
                    f"cannot be added: the user-data {problem}.",
                    "make stylus.site a mapping in your user-data.",
                )
            ]
        )
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return f"{facts.KAIROS_CLOUD_CONFIG_HEADER}\n{body}"
