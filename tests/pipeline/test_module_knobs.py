"""The Dagger constructor exposes every spec knob, documented from the spec."""

from __future__ import annotations

import dataclasses
import typing

from typing_extensions import Doc

from pipeline import cli
from pipeline.daggeronly import DAGGER_ONLY
from pipeline.inputs import FILE_INPUT_NAMES
from pipeline.inputs import doc as input_doc
from pipeline.main import CanvosDoca
from pipeline.spec import CONFIG_ONLY, FIELD_NAMES, FLAG_FIELD_NAMES, doc
from tests.pipeline.registration import CONSTRUCTOR, registered_functions


def constructor_args() -> dict[str, object]:
    hints = typing.get_type_hints(CanvosDoca, include_extras=True)
    return {f.name: hints[f.name] for f in dataclasses.fields(CanvosDoca) if f.init}


def test_every_knob_is_a_constructor_argument() -> None:
    args = constructor_args()
    assert set(FLAG_FIELD_NAMES) <= set(args)
    # host_files (file contents) are set in --config or a preset only.
    assert CONFIG_ONLY and not set(CONFIG_ONLY) & set(args)
    sources = {"overlays", "config", "host_files_dir", "canvos", *FILE_INPUT_NAMES}
    secrets = {
        "registry_username",
        "registry_password",
        "docker_config",
        "ubuntu_pro_key",
        "edge_host_token",
    }
    build = {"earthly_image", "dind_image", "iso_tool_image", "rebuild"}
    assert set(args) - set(FLAG_FIELD_NAMES) == sources | secrets | build


def test_the_cli_explains_every_constructor_argument_it_has_no_flag_for() -> None:
    """pipeline.daggeronly names exactly the arguments that are no CLI flag
    (so ``canvos-doca render --edge-host-token ...`` says what to do instead)."""
    parser = cli._parser()[1]["render"]
    cli_flags = {o[2:].replace("-", "_") for a in parser._actions for o in a.option_strings}
    assert set(constructor_args()) - cli_flags - {"canvos_ref", "canvos_url"} == set(DAGGER_ONLY)


def test_every_argument_has_doc_text() -> None:
    for name, hint in constructor_args().items():
        docs = [m for m in typing.get_args(hint)[1:] if isinstance(m, Doc)]
        assert docs and docs[0].documentation.strip(), name
        if name in FIELD_NAMES:
            assert docs[0].documentation.startswith(doc(name)), name
        if name in FILE_INPUT_NAMES:
            assert docs[0].documentation == input_doc(name), name


def test_scalar_knobs_default_to_not_given() -> None:
    # None means "not passed", so --config values are not hidden by defaults.
    instance = CanvosDoca(overlays=None)  # type: ignore[arg-type]
    for name in FLAG_FIELD_NAMES:
        assert getattr(instance, name) is None, name


def test_preset_and_bfb_are_registered_with_their_docs() -> None:
    constructor = registered_functions()[CONSTRUCTOR]
    assert constructor["preset"].type == "String" and constructor["preset"].optional
    assert constructor["preset"].doc.startswith(doc("preset"))
    assert constructor["bfb"].type == "File" and constructor["bfb"].optional
    assert constructor["bfb"].doc == input_doc("bfb")
    assert "host-files" not in constructor
    assert constructor["modprobe-options"].type == "[String]"
