"""CanvOS facts the build chains use: the Kairos base and the installer image."""

from __future__ import annotations

import dataclasses

from pipeline import canvos
from pipeline.spec import BuildSpec

# The lines of CanvOS v4.9.38's Earthfile these functions read.
EARTHFILE = """VERSION --arg-scope-and-set --shell-out-anywhere 0.6
ARG SPECTRO_PUB_REPO=us-docker.pkg.dev/palette-images
ARG PE_VERSION=v4.9.38
ARG KAIROS_VERSION=v4.0.4
"""


def test_default_base_is_the_earthfiles_kairos_image() -> None:
    assert canvos.kairos_base_image(BuildSpec(), EARTHFILE) == (
        "us-docker.pkg.dev/palette-images/edge/kairos-ubuntu:22.04-core-amd64-generic-v4.0.4"
    )


def test_mirrors_and_overrides_win() -> None:
    spec = BuildSpec(spectro_pub_repo="mirror.corp/palette", os_version="24.04", arch="arm64")
    assert canvos.kairos_base_image(spec, EARTHFILE) == (
        "mirror.corp/palette/edge/kairos-ubuntu:24.04-core-arm64-generic-v4.0.4"
    )
    spec = dataclasses.replace(spec, kairos_base_image_url="kairos.corp/edge")
    assert canvos.kairos_base_image(spec, EARTHFILE).startswith("kairos.corp/edge/kairos-ubuntu:")
    spec = dataclasses.replace(spec, base_image="my/base:1")
    assert canvos.kairos_base_image(spec, EARTHFILE) == "my/base:1"


def test_installer_image_tag_follows_image_tag() -> None:
    assert canvos.installer_image_ref(BuildSpec(), "v4.9.38") == "palette-installer-image:v4.9.38"
    tagged = BuildSpec(custom_tag="doca")
    assert canvos.installer_image_ref(tagged, "v4.9.38") == "palette-installer-image:v4.9.38-doca"
    assert canvos.provider_image_refs(tagged, "v4.9.38")[0].endswith(
        f"-{canvos.image_tag(tagged, 'v4.9.38')}"
    )
