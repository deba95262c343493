"""The Earthfile facts, read from both CanvOS layouts (v4.9.x and main)."""

from __future__ import annotations

import dataclasses

import pytest

from pipeline import canvos, earthfile
from pipeline.earthfile import PRO_BUILD_ARG, PRO_SECRET
from pipeline.spec import BuildSpec
from tests import earthfiles
from tests.earthfiles import FIPS_REPO, PUB_REPO

LAYOUTS = {
    "v4.9": (earthfiles.V4_9, "KAIROS_VERSION", earthfiles.V4_9_KAIROS),
    "main": (earthfiles.MAIN, "KAIROS_INIT_VERSION", earthfiles.MAIN_KAIROS_INIT),
}


def base_image(text: str, spec: BuildSpec) -> str:
    return earthfile.read(text).base_image(canvos.arg_values(spec))


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_the_kairos_tag_comes_from_the_arg_the_earthfile_uses(layout: str) -> None:
    text, tag_arg, tag = LAYOUTS[layout]
    parsed = earthfile.read(text)
    assert parsed.kairos_tag_arg == tag_arg
    assert base_image(text, BuildSpec()) == (
        f"{PUB_REPO}/edge/kairos-ubuntu:22.04-core-amd64-generic-{tag}"
    )


def test_main_does_not_use_kairos_version_although_it_declares_it() -> None:
    parsed = earthfile.read(earthfiles.MAIN)
    assert parsed.args["KAIROS_VERSION"] != earthfiles.MAIN_KAIROS_INIT
    assert parsed.args["KAIROS_VERSION"] not in base_image(earthfiles.MAIN, BuildSpec())


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_release_and_arch_fill_the_tag(layout: str) -> None:
    text, _, tag = LAYOUTS[layout]
    spec = BuildSpec(os_version="24.04", arch="arm64")
    assert base_image(text, spec) == f"{PUB_REPO}/edge/kairos-ubuntu:24.04-core-arm64-generic-{tag}"


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_fips_switches_to_the_fips_repository(layout: str) -> None:
    text, _, tag = LAYOUTS[layout]
    fips = BuildSpec(fips_enabled=True, k8s_distribution="kubeadm-fips")
    assert (
        base_image(text, fips) == f"{FIPS_REPO}/edge/kairos-ubuntu:22.04-core-amd64-generic-{tag}"
    )
    # The switch applies only to the default registry: a mirror stays a mirror.
    mirrored = dataclasses.replace(fips, spectro_pub_repo="mirror.corp/palette")
    assert base_image(text, mirrored).startswith("mirror.corp/palette/edge/kairos-ubuntu:")


def test_mirrors_and_overrides_win() -> None:
    text = earthfiles.V4_9
    spec = BuildSpec(spectro_pub_repo="mirror.corp/palette", os_version="24.04", arch="arm64")
    assert base_image(text, spec) == (
        f"mirror.corp/palette/edge/kairos-ubuntu:24.04-core-arm64-generic-{earthfiles.V4_9_KAIROS}"
    )
    spec = dataclasses.replace(spec, kairos_base_image_url="kairos.corp/edge", fips_enabled=True)
    assert base_image(text, spec).startswith("kairos.corp/edge/kairos-ubuntu:")
    spec = dataclasses.replace(spec, base_image="my/base:1")
    assert base_image(text, spec) == "my/base:1"


def test_an_earthfile_without_a_base_rule_resolves_to_nothing() -> None:
    parsed = earthfile.read(earthfiles.OLD)
    assert parsed.base_image(canvos.arg_values(BuildSpec())) == ""
    assert parsed.kairos_tag_arg == ""
    assert parsed.base_image(canvos.arg_values(BuildSpec(base_image="my/base:1"))) == "my/base:1"


@pytest.mark.parametrize(
    ("text", "contract"),
    [(earthfiles.V4_9, PRO_BUILD_ARG), (earthfiles.MAIN, PRO_SECRET), (earthfiles.OLD, "")],
)
def test_ubuntu_pro_contract_is_detected(text: str, contract: str) -> None:
    assert earthfile.read(text).ubuntu_pro == contract


def test_pe_version_and_declared_args() -> None:
    v4_9, main = earthfile.read(earthfiles.V4_9), earthfile.read(earthfiles.MAIN)
    assert v4_9.pe_version == earthfiles.V4_9_PE_VERSION
    assert main.pe_version == earthfiles.MAIN_PE_VERSION
    assert "INSTALL_NVIDIA_GPU_DRIVERS" in main.declared
    assert "INSTALL_NVIDIA_GPU_DRIVERS" not in v4_9.declared
    assert v4_9.args["DRBD_VERSION"] == "9.2.13"  # quotes removed
    assert earthfile.read("VERSION 0.6\n").pe_version == ""


@pytest.mark.parametrize(
    ("template", "values", "expected"),
    [
        ("$A/$B", {"A": "x", "B": "y"}, "x/y"),
        ("${A}-z", {"A": "$B", "B": "deep"}, "deep-z"),
        ("$A", {}, None),
        ("$A", {"A": "$A"}, None),  # a loop never resolves
        ("plain", {}, "plain"),
    ],
)
def test_expand(template: str, values: dict[str, str], expected: str | None) -> None:
    assert earthfile.expand(template, values) == expected
