"""What canvos-doca reads from a CanvOS Earthfile, parsed once per checkout.

CanvOS changes these between refs, so they are read from the checkout's own
Earthfile instead of being assumed (checked on spectrocloud/CanvOS v4.9.38
and main, 2026-11):

* **The Kairos base image.** Both refs set
  ``BASE_IMAGE=$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG`` (unless ``.arg`` sets
  ``BASE_IMAGE``), ``KAIROS_BASE_IMAGE_URL`` defaults to
  ``$SPECTRO_PUB_REPO/edge``, and the Ubuntu tag is
  ``kairos-$OS_DISTRIBUTION:$OS_VERSION-core-$ARCH-generic-<version>`` where
  ``<version>`` is ``$KAIROS_VERSION`` on v4.9.x and ``$KAIROS_INIT_VERSION``
  on main.
* **FIPS.** With ``FIPS_ENABLED=true`` and ``SPECTRO_PUB_REPO`` at its
  default, the Earthfile switches ``SPECTRO_PUB_REPO`` to the FIPS repository
  (``IF ... LET SPECTRO_PUB_REPO=...-fips``), which moves the base image too.
* **Ubuntu Pro.** v4.9.38 declares ``ARG UBUNTU_PRO_KEY`` and runs
  ``pro attach $UBUNTU_PRO_KEY`` (a build arg); main declares
  ``ARG UBUNTU_PRO_ATTACH`` and reads the key with
  ``RUN --secret UBUNTU_PRO_KEY`` (an Earthly secret).

The spec only allows Ubuntu ``X.Y`` releases without Trusted Boot, so the one
tag rule that applies is the non-UKI one written with ``$OS_VERSION-core``;
the rule's text and variables come from the Earthfile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# How the Earthfile takes an Ubuntu Pro key.
PRO_SECRET = "secret"  # ARG UBUNTU_PRO_ATTACH + RUN --secret UBUNTU_PRO_KEY (main)
PRO_BUILD_ARG = "build-arg"  # ARG UBUNTU_PRO_KEY + pro attach $UBUNTU_PRO_KEY (v4.9.x)
PRO_KEY = "UBUNTU_PRO_KEY"
PRO_ATTACH = "UBUNTU_PRO_ATTACH"

_TOP_ARG = re.compile(r"^ARG ([A-Za-z_][A-Za-z0-9_]*)(?:=(.*?))?\s*$", re.MULTILINE)
_ANY_ARG = re.compile(r"^\s*ARG\s+(?:--[a-z-]+\s+)*([A-Za-z_][A-Za-z0-9_]*)", re.MULTILINE)
_RULE = re.compile(r"^\s+ARG {name}=(\S+)\s*$")
_FIPS = re.compile(
    r'^IF \[ "\$FIPS_ENABLED" = "true" \] && \[ "\$SPECTRO_PUB_REPO" = "([^"]+)" \]\s*\n'
    r"\s+LET SPECTRO_PUB_REPO=(\S+)",
    re.MULTILINE,
)
_PRO_SECRET_RUN = re.compile(rf"^\s*RUN\s+(?:--\S+\s+)*--secret\s+{PRO_KEY}\b", re.MULTILINE)
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class FipsSwitch:
    """``IF FIPS_ENABLED and SPECTRO_PUB_REPO == when: LET SPECTRO_PUB_REPO = repo``."""

    when: str
    repo: str


@dataclass(frozen=True)
class Earthfile:
    """The facts of one CanvOS Earthfile (see the module docstring)."""

    # Top-level ``ARG NAME=value`` defaults as written (unexpanded, quotes removed).
    args: Mapping[str, str]
    # Every ARG name declared anywhere (targets included).
    declared: frozenset[str]
    # ``$KAIROS_BASE_IMAGE_URL/$BASE_IMAGE_TAG``; "" when the Earthfile has none.
    base_image_rule: str
    # The Ubuntu X.Y, non-UKI ``BASE_IMAGE_TAG`` template; "" when not found.
    base_image_tag_rule: str
    fips: FipsSwitch | None
    # PRO_SECRET, PRO_BUILD_ARG, or "" when this ref reads no Ubuntu Pro key.
    ubuntu_pro: str

    @property
    def pe_version(self) -> str:
        """The Palette agent version the ref pins (``ARG PE_VERSION``); "" if none."""
        return self.args.get("PE_VERSION", "")

    @property
    def kairos_tag_arg(self) -> str:
        """The ARG the Kairos base tag ends with (KAIROS_VERSION or KAIROS_INIT_VERSION)."""
        names = [a or b for a, b in _VARIABLE.findall(self.base_image_tag_rule)]
        return names[-1] if names else ""

    def base_image(self, arg_file: Mapping[str, str]) -> str:
        """The ``BASE`` the base-image target builds the Dockerfile from, given
        the ``.arg`` values; "" when the Earthfile has no rule that resolves."""
        values = {**self.args, **arg_file}
        if values.get("BASE_IMAGE"):
            return values["BASE_IMAGE"]
        fips = self.fips
        fips_on = values.get("FIPS_ENABLED") == "true"
        if fips and fips_on and values.get("SPECTRO_PUB_REPO") == fips.when:
            values["SPECTRO_PUB_REPO"] = fips.repo
        if not (self.base_image_rule and self.base_image_tag_rule):
            return ""
        values["BASE_IMAGE_TAG"] = self.base_image_tag_rule
        return expand(self.base_image_rule, values) or ""


def read(text: str) -> Earthfile:
    """Parse an Earthfile's text once into the facts canvos-doca uses."""
    args = {name: _unquote(value) for name, value in _TOP_ARG.findall(text) if value}
    declared = frozenset(_ANY_ARG.findall(text))
    fips = _FIPS.search(text)
    return Earthfile(
        args=args,
        declared=declared,
        base_image_rule=_first_rule(text, "BASE_IMAGE"),
        base_image_tag_rule=next(
            (
                rule
                for rule in _rules(text, "BASE_IMAGE_TAG")
                if "$OS_VERSION-core" in rule and not rule.endswith("-uki")
            ),
            "",
        ),
        fips=FipsSwitch(fips.group(1), fips.group(2)) if fips else None,
        ubuntu_pro=_ubuntu_pro(text, declared),
    )


def _ubuntu_pro(text: str, declared: frozenset[str]) -> str:
    if PRO_ATTACH in declared and _PRO_SECRET_RUN.search(text):
        return PRO_SECRET
    if PRO_KEY in declared:
        return PRO_BUILD_ARG
    return ""


def _rules(text: str, name: str) -> list[str]:
    """Values of the indented (conditional) ``ARG NAME=value`` lines, in order."""
    pattern = re.compile(_RULE.pattern.format(name=re.escape(name)), re.MULTILINE)
    return pattern.findall(text)


def _first_rule(text: str, name: str) -> str:
    return next(iter(_rules(text, name)), "")


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def expand(template: str, values: Mapping[str, str], depth: int = 0) -> str | None:
    """``$NAME`` / ``${NAME}`` replaced from ``values``, recursively (as Earthly
    expands ARG defaults); None when a variable is not set."""
    if depth > 10:
        return None
    parts: list[str] = []
    last = 0
    for match in _VARIABLE.finditer(template):
        name = match.group(1) or match.group(2)
        if name not in values:
            return None
        value = expand(values[name], values, depth + 1)
        if value is None:
            return None
        parts += [template[last : match.start()], value]
        last = match.end()
    return "".join(parts) + template[last:]
