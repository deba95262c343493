"""user-data checks: every problem at once, never quoting the file."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pipeline import userdata
from pipeline.errors import InvalidInput, Problem

REPO = Path(__file__).resolve().parents[2]
TEMPLATE = REPO / "overlays" / "user-data" / "user-data.yaml"
TOKEN = "tok-3f9a8c7e-SECRET-d41d8cd98f00b204"
PASSWORD = "pw-S3cr3t-registry-pass"


def fields(problems: list[Problem]) -> list[str]:
    return [p.field for p in problems]


def parse(text: str) -> object:
    return yaml.safe_load(text)


def test_template_is_valid() -> None:
    text = TEMPLATE.read_text()
    assert userdata.problems(text) == []
    data = parse(text)
    assert isinstance(data, dict)
    assert data["install"] == {"device": "auto", "poweroff": True}
    # Registration values are the user's: the template only shows them commented out.
    assert "stylus" not in data
    assert "# stylus:" in text and "edgeHostToken" in text


GOOD = f"""#cloud-config
install:
  device: auto
  poweroff: true
  bind_mounts:
    - /var/lib/wpa
stylus:
  site:
    edgeHostToken: {TOKEN}
  registryCredentials:
    password: {PASSWORD}
"""


@pytest.mark.parametrize(
    ("text", "expected_fields", "words"),
    [
        ("install:\n  device: auto\n", ["user_data"], "#cloud-config"),
        ("# cloud-config\ninstall: {}\n", ["user_data"], "#cloud-config"),
        ("#cloud-config\n", ["user_data"], "mapping"),
        ("#cloud-config\n- a\n- b\n", ["user_data"], "mapping"),
        ("#cloud-config\njust text\n", ["user_data"], "mapping"),
        ("#cloud-config\ninstall: [a]\n", ["user_data.install"], "mapping"),
        ("#cloud-config\ninstall:\n  device: auto\n   bad: [\n", ["user_data"], "YAML"),
        ("#cloud-config\na: 1\n---\nb: 2\n", ["user_data"], "YAML"),
        (
            "#cloud-config\ninstall:\n  reboot: true\n  poweroff: true\n",
            ["user_data.install"],
            "both reboot and poweroff",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts: /var/lib/x\n",
            ["user_data.install.bind_mounts"],
            "list of absolute paths",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts:\n    - var/lib/x\n    - /ok\n    - 3\n",
            ["user_data.install.bind_mounts[0]", "user_data.install.bind_mounts[2]"],
            "",
        ),
        (
            "#cloud-config\ninstall:\n  bind_mounts: [/usr/local/x, '/a b']\n",
            ["user_data.install.bind_mounts[0]", "user_data.install.bind_mounts[1]"],
            "",
        ),
        (
            "#cloud-config\ninstall:\n  ephemeral_mounts: [tmp]\n",
            ["user_data.install.ephemeral_mounts[0]"],
            "absolute",
        ),
        (
            "#cloud-config\ninstall:\n  device: auto\ninstall:\n  poweroff: true\n",
            ["user_data.install"],
            "twice",
        ),
        (
            "#cloud-config\nstylus:\n  site:\n    name: a\n    name: b\n",
            ["user_data.stylus.site.name"],
            "twice",
        ),
        # several problems at once
        (
            "install:\n  reboot: true\n  poweroff: true\n  bind_mounts: x\n",
            ["user_data", "user_data.install", "user_data.install.bind_mounts"],
            "",
        ),
    ],
)
def test_check_user_data_refuses(text: str, expected_fields: list[str], words: str) -> None:
    problems = userdata.problems(text)
    assert fields(problems) == expected_fields
    assert words in " ".join(p.message for p in problems)
    assert all(p.fix for p in problems)


@pytest.mark.parametrize(
    "text",
    [
        GOOD,
        "#cloud-config\ninstall:\n",
        "#cloud-config\ninstall:\n  bind_mounts:\n",
        "#cloud-config  \nstylus: {}\n",
        "#cloud-config\ninstall:\n  reboot: true\n  poweroff: false\n",
        "#cloud-config\r\ninstall:\r\n  device: auto\r\n",
    ],
)
def test_check_user_data_accepts(text: str) -> None:
    assert userdata.problems(text) == []


def test_check_user_data_never_quotes_content() -> None:
    broken = [
        f"edgeHostToken: {TOKEN}\n",  # header missing: first line is the secret
        f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: '{TOKEN}\n",  # bad YAML
        f"#cloud-config\nstylus:\n  t: {TOKEN}\n   x: [\n",
        f"#cloud-config\n{TOKEN}\n",  # a scalar, not a mapping
        f"#cloud-config\n- {TOKEN}\n",
        f"#cloud-config\ninstall: {TOKEN}\n",
        f"#cloud-config\ninstall:\n  bind_mounts: {TOKEN}\n",
        f"#cloud-config\ninstall:\n  bind_mounts:\n    - {{token: {TOKEN}}}\n",
        f"#cloud-config\nstylus:\n  tok: {TOKEN}\n  tok: {TOKEN}\n",
    ]
    for text in broken:
        problems = userdata.problems(text)
        assert problems, text
        rendered = str(InvalidInput(problems))
        assert TOKEN not in rendered
        assert TOKEN[:12] not in rendered


def test_yaml_error_names_the_file_and_the_line() -> None:
    problems = userdata.problems("#cloud-config\na: 1\nb: [\n", "site/ud.yaml")
    assert len(problems) == 1
    assert problems[0].value == "site/ud.yaml"
    assert "at line 4" in problems[0].message


def test_user_data_bind_mounts() -> None:
    assert userdata.parse(GOOD).bind_mounts == ("/var/lib/wpa",)
    assert userdata.parse("#cloud-config\ninstall:\n").bind_mounts == ()
    with pytest.raises(InvalidInput):
        userdata.parse("no header: true\n")


def test_a_knobs_file_given_as_user_data_is_named_as_such(tmp_path: Path) -> None:
    # The example: a knobs file passed as --user-data got "make '#cloud-config' the first line".
    from tests.unit.conftest import run

    knobs = tmp_path / "build.yaml"
    knobs.write_text(
        f"doca_version: 3.2.2\nk8s_version: 1.34.6\nhttp_proxy: http://u:{PASSWORD}@p:3128\n"
    )
    code, out, err = run("plan", "--user-data", str(knobs))
    assert code == 2 and out == ""
    assert "looks like a knobs file" in err and "pass it with --config" in err
    assert "first line" not in err
    assert PASSWORD not in err and "3.2.2" not in err


def test_a_headerless_cloud_config_still_gets_the_header_fix() -> None:
    found = userdata.problems("install:\n  poweroff: true\n", "ud.yaml")
    assert "first line" in found[0].fix and "knobs" not in found[0].message
