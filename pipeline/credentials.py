"""Where credentials go. Pure: no secret value is ever logged or returned in text
that leaves the engine; these helpers only place values the caller already holds.
YAML is read with ``pipeline.safeyaml`` like everywhere else.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml

from pipeline import facts, safeyaml
from pipeline.errors import HIDDEN, InvalidInput, Problem
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


# What cached build steps see in place of a user-data secret.
PLACEHOLDER = "canvos-doca-secret-written-after-the-build"


@dataclass(frozen=True)
class UserDataSecrets:
    """user-data split for a build that keeps its secrets out of cached steps.

    ``public`` is what the cached Earthly steps get: every secret value
    (``facts.PALETTE_USER_DATA_SECRETS``) replaced by ``PLACEHOLDER``, the
    rest as written. ``full`` is the user-data the ISO must carry (the edge
    host token merged in); None when the user-data holds no secret, and
    ``public`` is then the text unchanged.
    """

    public: str
    full: str | None = None


def split_secrets(user_data: str, edge_host_token: str | None = None) -> UserDataSecrets:
    """Separate the secrets of a checked user-data (``edge_host_token`` wins
    over a token written in the file). Raises ``InvalidInput`` (never quoting
    a value) when the token cannot be placed."""
    data: Any = safeyaml.load(user_data, "user_data", "the prepared user-data")
    found = list(_secret_slots(data))
    if edge_host_token is None and not found:
        return UserDataSecrets(public=user_data)
    full = with_edge_host_token(user_data, edge_host_token) if edge_host_token else None
    full_data: Any = (
        safeyaml.load(full, "user_data", "the prepared user-data") if full is not None else data
    )
    public_data = copy.deepcopy(full_data)
    for parent, key in _secret_slots(public_data):
        parent[key] = PLACEHOLDER
    return UserDataSecrets(public=_dump(public_data), full=full or _dump(full_data))


def _secret_slots(data: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """(mapping, key) of every secret value set in ``data`` (lists are walked)."""
    for dotted in facts.PALETTE_USER_DATA_SECRETS:
        *path, key = dotted.split(".")
        for parent in _walk(data, path):
            if parent.get(key) not in (None, ""):
                yield parent, key


def _walk(node: Any, path: list[str]) -> Iterator[dict[str, Any]]:
    if isinstance(node, list):
        for item in node:
            yield from _walk(item, path)
    elif isinstance(node, dict):
        if not path:
            yield node
        elif path[0] in node:
            yield from _walk(node[path[0]], path[1:])


def _dump(data: Any) -> str:
    body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
    return f"{facts.KAIROS_CLOUD_CONFIG_HEADER}\n{body}"


def with_edge_host_token(user_data: str, token: str) -> str:
    """user-data with ``facts.PALETTE_EDGE_HOST_TOKEN`` (``stylus.site.edgeHostToken``)
    set to ``token``, creating the mappings on the way.

    The result only ever lives in a Dagger secret written onto the finished
    ISO, so losing the user's comments here costs nothing (the prepared
    user-data in the build context keeps them). Raises ``InvalidInput``
    (never quoting the token) when a mapping on the way is something else.
    """
    data: Any = safeyaml.load(user_data, "edge_host_token", "the prepared user-data") or {}
    *path, key = facts.PALETTE_EDGE_HOST_TOKEN.split(".")
    node = data
    for name in path:
        node = node.setdefault(name, {}) if isinstance(node, dict) else None
    if not isinstance(node, dict):
        where = ".".join(path)
        raise InvalidInput(
            [
                Problem(
                    "edge_host_token",
                    HIDDEN,
                    f"cannot be added: the user-data or its {where} is not a mapping.",
                    f"make {where} a mapping in your user-data.",
                )
            ]
        )
    node[key] = token
    return _dump(data)
