"""The --config file: cloud-configs passed by mistake, YAML's own types, duplicate keys."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.config import parse_config
from pipeline.errors import InvalidInput
from tests.unit.conftest import run

TOKEN = "tok-3f9a8c7e-SECRET"
PASSWD = "pw-SECRET-kairos"
USER_DATA = f"""#cloud-config
install:
  device: auto
  poweroff: true
users:
  - name: kairos
    passwd: {PASSWD}
stylus:
  site:
    edgeHostToken: {TOKEN}
    paletteEndpoint: api.spectrocloud.com
"""


def problems(text: str) -> list[str]:
    with pytest.raises(InvalidInput) as caught:
        parse_config(text, "build.yaml")
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    "text", [USER_DATA, USER_DATA.split("\n", 1)[1]], ids=["with-header", "without-header"]
)
def test_a_user_data_file_passed_as_config_is_named_never_quoted(tmp_path: Path, text: str) -> None:
    config = tmp_path / "user-data"
    config.write_text(text)
    code, _, err = run("plan", "--config", str(config))
    assert code == 2
    assert "is a Kairos cloud-config" in err and f"--user-data {config}" in err
    assert TOKEN not in err and PASSWD not in err
    assert len(err.splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("doca_version: 3.10\n", ["the number 3.1, not as the text 3.10", 'quote it: "3.10"']),
        ("os_version: 24.10\n", ["the number 24.1, not as the text 24.10", 'quote it: "24.10"']),
        ("custom_tag: yes\n", ["the boolean true, not as the text yes"]),
        ("custom_tag: 010\n", ["the number 8"]),
        ("k8s_version: [1.30]\n", ["k8s_version[0]", "the number 1.3"]),
    ],
)
def test_yaml_turning_text_into_a_number_says_so(text: str, words: list[str]) -> None:
    (found,) = problems(text)
    assert "was read by YAML as" in found
    for word in words:
        assert word in found


def test_numbers_yaml_reads_as_written_are_taken_as_text() -> None:
    assert parse_config("os_version: 22.04\nnvidia_driver_branch: 580\n") == {
        "os_version": "22.04",
        "nvidia_driver_branch": "580",
    }


def test_duplicate_keys_are_refused() -> None:
    found = problems("doca_profile: doca-all\nk8s_version: 1.34.6\ndoca_profile: doca-ofed\n")
    assert found == [
        "build.yaml: doca_profile: is defined twice (line 3). Fix: keep one of the two entries."
    ]


def test_unknown_keys_are_named_once_with_a_suggestion_and_no_value() -> None:
    found = problems("doca_versoin: 3.2.2\nfoo: bar\nfoo: baz\n")
    assert "did you mean doca_version?" in found[-2]
    assert sum("foo: is not a known key" in p for p in found) == 1
    assert not any("3.2.2" in p or "bar" in p for p in found)
