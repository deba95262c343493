"""context.prepare: each source read once, what the Earthfile says recorded, the
rebuild value and the Ubuntu Pro key handled in one place."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from unittest import mock

import pytest

from pipeline import canvos, context, userdata
from pipeline.context import Prepared
from pipeline.earthfile import PRO_BUILD_ARG, PRO_SECRET
from pipeline.errors import HIDDEN, InvalidInput
from pipeline.inputs import BuildInputs
from pipeline.plan import plan_text
from pipeline.spec import BuildSpec
from tests import earthfiles
from tests.unit.conftest import overlays, tree

OVERLAYS = Path(__file__).resolve().parents[2] / "overlays"
USER_DATA = "#cloud-config\n# mine\ninstall:\n  device: auto\n  bind_mounts: [/var/lib/mine]\n"


DEFAULT = BuildSpec()


def prepared(spec: BuildSpec = DEFAULT, text: str = earthfiles.V4_9, **kw: object) -> Prepared:
    return context.prepare(spec, tree(text), overlays(), **kw)  # type: ignore[arg-type]


def block(p: Prepared) -> str:
    dockerfile = p.files["Dockerfile"]
    return dockerfile[dockerfile.index(canvos.BLOCK_BEGIN) : dockerfile.index(canvos.BLOCK_END)]


# ----------------------------------------------------------- parsed once


@pytest.mark.parametrize(
    ("profile", "composed"),
    [
        ("doca-ofed", 1),  # nothing to add: the user's file is parsed once
        ("doca-networking", 2),  # + one parse of the edited file to verify the edit
    ],
)
def test_user_data_is_parsed_once(profile: str, composed: int) -> None:
    real = userdata._compose
    seen: Counter[str] = Counter()

    def counting(text: str, source: str) -> object:
        seen[text] += 1
        return real(text, source)

    with mock.patch.object(userdata, "_compose", counting):
        result = context.prepare(
            BuildSpec(doca_profile=profile), tree(), overlays(), BuildInputs(user_data=USER_DATA)
        )
    assert seen[USER_DATA] == 1
    assert sum(seen.values()) == composed
    assert "/var/lib/mine" in block(result)  # the user's own bind mount is created


def test_the_earthfile_is_parsed_once() -> None:
    with mock.patch("pipeline.earthfile.read", wraps=context.earthfile.read) as read:
        context.prepare(BuildSpec(), tree(), overlays())
    assert read.call_count == 1


# ------------------------------------------------------ the Kairos base


@pytest.mark.parametrize(
    ("text", "tag_arg", "tag"),
    [
        (earthfiles.V4_9, "KAIROS_VERSION", earthfiles.V4_9_KAIROS),
        (earthfiles.MAIN, "KAIROS_INIT_VERSION", earthfiles.MAIN_KAIROS_INIT),
    ],
)
def test_base_image_is_recorded_in_the_description_and_the_plan(
    text: str, tag_arg: str, tag: str
) -> None:
    result = prepared(text=text)
    expected = f"{earthfiles.PUB_REPO}/edge/kairos-ubuntu:22.04-core-amd64-generic-{tag}"
    written = json.loads(result.files[canvos.DESCRIPTION_FILE])["canvos"]
    assert written["base_image"] == expected and written["kairos_tag_arg"] == tag_arg
    assert result.description.canvos.base_image == expected
    plan = plan_text(result.description, result.warnings)
    assert f"Kairos base {expected} (tag from the Earthfile's {tag_arg})" in plan


def test_fips_base_is_recorded() -> None:
    result = prepared(BuildSpec(fips_enabled=True), text=earthfiles.MAIN)
    assert result.description.canvos.base_image.startswith(f"{earthfiles.FIPS_REPO}/edge/")


def test_a_ref_without_a_base_rule_warns_and_records_nothing() -> None:
    result = prepared(text=earthfiles.OLD)
    assert result.description.canvos.base_image == ""
    assert any("doca-image needs --base-image" in w for w in result.warnings)


def test_installer_image_follows_the_image_tag() -> None:
    pe = earthfiles.V4_9_PE_VERSION
    assert prepared().description.outputs.installer_image == f"palette-installer-image:{pe}"
    tagged = prepared(BuildSpec(custom_tag="doca")).description.outputs
    assert tagged.installer_image == f"palette-installer-image:{pe}-doca"
    assert tagged.provider_image("1.34.6").endswith(f"-{pe}-doca")


# ---------------------------------------------------------------- rebuild


def test_rebuild_reaches_the_doca_install_step_through_one_arg() -> None:
    plain, forced = prepared(), prepared(rebuild="1700000000")
    text = block(forced)
    arg = "ARG CANVOS_DOCA_REBUILD=1700000000"
    # Declared before the DOCA install RUN, so it is part of that step's cache key.
    assert text.index(arg) < text.index("doca-install.sh") and text.index(arg) < text.index("RUN")
    old, new = plain.files["Dockerfile"].splitlines(), forced.files["Dockerfile"].splitlines()
    assert [(a, b) for a, b in zip(old, new, strict=True) if a != b] == [
        ("ARG CANVOS_DOCA_REBUILD=", arg)
    ]
    assert forced.description.rebuild == "1700000000"
    assert json.loads(forced.files[canvos.DESCRIPTION_FILE])["rebuild"] == "1700000000"


@pytest.mark.parametrize("value", ["a b", "$(reboot)", 'x"y', "a\nb"])
def test_a_rebuild_value_that_cannot_be_an_arg_is_refused(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        prepared(rebuild=value)
    assert [p.field for p in caught.value.problems] == ["rebuild"]


# ------------------------------------------------------------- Ubuntu Pro


def arg_lines(p: Prepared) -> list[str]:
    return [line for line in p.files[".arg"].splitlines() if not line.startswith("#")]


def test_pro_key_on_main_is_an_earthly_secret_switched_on_in_arg() -> None:
    result = prepared(text=earthfiles.MAIN, ubuntu_pro_key=True)
    assert result.description.canvos.ubuntu_pro == PRO_SECRET
    assert "UBUNTU_PRO_ATTACH='true'" in arg_lines(result)
    assert not any(line.startswith("UBUNTU_PRO_KEY") for line in arg_lines(result))
    assert "Earthly secret UBUNTU_PRO_KEY" in plan_text(result.description)


def test_pro_key_on_v4_9_is_the_build_arg_and_says_so() -> None:
    result = prepared(ubuntu_pro_key=True)
    assert result.description.canvos.ubuntu_pro == PRO_BUILD_ARG
    assert not any(line.startswith("UBUNTU_PRO") for line in arg_lines(result))
    assert any("as a build arg" in w for w in result.warnings)


def test_without_a_key_nothing_about_pro_is_written() -> None:
    result = prepared(text=earthfiles.MAIN)
    assert result.description.canvos.ubuntu_pro == ""
    assert not any(line.startswith("UBUNTU_PRO") for line in arg_lines(result))


@pytest.mark.parametrize(
    ("spec", "text", "words"),
    [
        (BuildSpec(), earthfiles.OLD, "reads no Ubuntu Pro key"),
        (BuildSpec(arch="arm64"), earthfiles.MAIN, "only to Ubuntu images on amd64"),
    ],
)
def test_a_pro_key_is_never_dropped_silently(spec: BuildSpec, text: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        prepared(spec, text=text, ubuntu_pro_key=True)
    problems = [p for p in caught.value.problems if p.field == "ubuntu_pro_key"]
    assert len(problems) == 1 and words in problems[0].message
    assert problems[0].value is HIDDEN
