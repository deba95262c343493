"""No command injection through .arg or the Dockerfile block.

CanvOS's earthly.sh starts with ``source .arg``. Every knob that reaches
``.arg`` or the DOCA block is given hostile values; each is rendered, and
every ``.arg`` that render writes is really sourced by bash (``source .arg``
as earthly.sh does, and ``set -a; . .arg``) in a sandbox directory: nothing
may run (canary files) and each variable must hold exactly its value.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeline import canvos, earthfile
from pipeline.spec import BOOL_FIELDS, FIELD_NAMES, LIST_FIELDS, BuildSpec, kebab
from tests.unit.conftest import EARTHFILE, render

CANARY = "canary"
# Each would create ./canary if a shell evaluated it (no spaces: list flags split).
INJECTIONS = (
    f";touch${{IFS}}{CANARY}",
    f"$(touch${{IFS}}{CANARY})",
    f"`touch${{IFS}}{CANARY}`",
    f"'$(touch${{IFS}}{CANARY})'",
    f"x|touch${{IFS}}{CANARY}",
    f"x&&touch${{IFS}}{CANARY}",
    f"x>{CANARY}",
)
# Values that end a line, a quote or a terminal sequence.
BREAKERS = ("a'b", "a\\", "a\nK=1", "a\rK=1", "\x1b]0;title\x07", "a\x00b", "a\u2028b")

# Each knob that reaches .arg or the block, with a value that is valid for it
# (hostile values replace it one at a time).
REACHING: dict[str, str] = {
    "os_distribution": "ubuntu",
    "os_version": "22.04",
    "arch": "amd64",
    "k8s_distribution": "k3s",
    "k8s_version": "1.34.6",
    "image_registry": "ghcr.io/acme",
    "image_repo": "ubuntu",
    "custom_tag": "doca",
    "iso_name": "installer",
    "base_image": "registry.example.com/kairos/ubuntu:22.04-core-amd64-generic-v4.0.4",
    "spectro_pub_repo": "registry.example.com/palette",
    "spectro_luet_repo": "registry.example.com/palette/edge",
    "kairos_base_image_url": "registry.example.com/palette/edge",
    "http_proxy": "http://proxy.example.com:3128",
    "https_proxy": "http://proxy.example.com:3128",
    "no_proxy": "localhost,127.0.0.1",
    "nvidia_driver_branch": "580",
    "nvidia_driver_type": "open",
    "doca_version": "3.2.2",
    "doca_profile": "doca-ofed",
    "doca_repo_url": "https://mirror.example.com/doca",
    "doca_packages": "mlnx-nfsrdma-dkms",
    "extra_packages": "ipmitool",
    "kernel_args": "iommu=pt",
    "bind_mounts": "/var/lib/example",
    # flags: only true or false get through
    "fips_enabled": "true",
    "cis_hardening": "true",
    "force_interactive_install": "true",
    "update_kernel": "false",
    "trusted_boot": "false",
    "install_nvidia_gpu_drivers": "false",
}

# Valid values with characters a shell would act on unquoted: rendered,
# then sourced, and each must come out exactly as written.
TRICKY: list[tuple[str, str]] = [
    ("no_proxy", "*"),
    ("no_proxy", "*.corp,.example.com,10.0.0.0/8,[::1]:8080"),
    # Proxies carry no user:password (refused: it would reach the image history).
    ("http_proxy", "http://proxy.example.com:3128"),
    ("https_proxy", "http://[fd00::1]:3128/"),
    ("base_image", "localhost:5000/kairos/ubuntu@sha256:" + "a" * 64),
    ("custom_tag", "a-b_c.d"),
    ("kernel_args", "console=ttyS1,115200n8 isolcpus=2-27,30-55"),
]


def _reaching_fields() -> set[str]:
    """Knobs whose value appears in .arg or the block values (found by trying)."""
    found = set()
    for name in FIELD_NAMES:
        if name in BOOL_FIELDS:
            changed = dataclasses.replace(BuildSpec(), **{name: True})
            if canvos.arg_values(changed) != canvos.arg_values(BuildSpec()):
                found.add(name)
            continue
        marker = "zzmarker"
        value: object = (marker,) if name in LIST_FIELDS else marker
        spec = dataclasses.replace(BuildSpec(), **{name: value})
        rendered = [
            *canvos.arg_values(spec).values(),
            *canvos.block_values(spec, spec.bind_mounts, "online", False).values(),
        ]
        if any(marker in text for text in rendered):
            found.add(name)
    return found


def test_the_table_covers_every_knob_that_reaches_arg_or_the_block() -> None:
    assert _reaching_fields() <= set(REACHING), _reaching_fields() - set(REACHING)


def _cases() -> Iterator[tuple[str, str]]:
    for name in REACHING:
        for value in (*INJECTIONS, *BREAKERS):
            yield name, value


def sourced(directory: Path, keys: list[str], how: str) -> tuple[dict[str, str], str]:
    """The variables bash has after reading ``directory/.arg`` ``how``, and its stderr."""
    dump = " ".join(f'printf "%s\\0%s\\0" {key} "${{{key}-<unset>}}";' for key in keys)
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", f"{how} .arg; {dump}"],
        cwd=directory,
        env={"PATH": "/usr/bin:/bin", "HOME": str(directory)},
        capture_output=True,
        check=True,
    )
    parts = done.stdout.decode().split("\0")
    return dict(zip(parts[0::2], parts[1::2], strict=False)), done.stderr.decode()


def assert_only_assigns(directory: Path, expected: dict[str, str]) -> None:
    """Source .arg both ways: nothing runs, every key holds exactly its value."""
    for how in ("source", "set -a; ."):
        values, stderr = sourced(directory, list(expected), how)
        assert not (directory / CANARY).exists(), f"{how} .arg ran a command"
        assert stderr == "", stderr
        assert values == expected


def written(directory: Path) -> dict[str, str]:
    """The KEY='value' lines of ``directory/.arg``, read literally."""
    lines = (directory / ".arg").read_text().splitlines()
    pairs = [line.split("=", 1) for line in lines if not line.startswith("#")]
    assert all(value[0] == value[-1] == "'" for _, value in pairs)
    return {key: value[1:-1] for key, value in pairs}


@pytest.mark.parametrize(("name", "value"), list(_cases()))
def test_hostile_values_are_refused_and_write_nothing(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], name: str, value: str
) -> None:
    out = tmp_path / "out"
    flag = f"--{kebab(name)}"
    args = [f"{flag}={value}"] if name not in BOOL_FIELDS else []
    if name in BOOL_FIELDS:  # a flag takes no value on the command line: use the config file
        config = tmp_path / "build.yaml"
        config.write_text(f"{name}: {json.dumps(value)}\n", encoding="utf-8")
        args = ["--config", str(config)]
    code = render(canvos_tree, out, *args)
    err = capsys.readouterr().err
    if code == 0:  # never expected, but if it renders it must only assign
        assert_only_assigns(out, written(out))
    assert code == 2, err
    assert not out.exists()
    assert err.startswith("canvos-doca: invalid input") and "Traceback" not in err
    assert "\x1b" not in err and "\x00" not in err  # never echoed to the terminal
    assert not (tmp_path / CANARY).exists() and not (canvos_tree / CANARY).exists()


@pytest.mark.parametrize(("name", "value"), TRICKY)
def test_valid_values_shells_would_act_on_are_sourced_exactly(
    canvos_tree: Path, tmp_path: Path, name: str, value: str
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out, f"--{kebab(name)}={value}") == 0
    expected = written(out)
    assert_only_assigns(out, expected)
    if name in ("http_proxy", "https_proxy", "no_proxy", "custom_tag"):
        assert expected[name.upper()] == value


def test_every_rendered_arg_file_only_assigns(canvos_tree: Path, tmp_path: Path) -> None:
    """All knobs at hostile-looking but valid values at once, then the file is sourced."""
    out = tmp_path / "out"
    args = [f"--{kebab(name)}={value}" for name, value in TRICKY if name != "kernel_args"]
    assert render(canvos_tree, out, *args) == 0
    spec = BuildSpec(**{n: v for n, v in TRICKY if n not in LIST_FIELDS})
    expected = canvos.arg_values(spec, earthfile=earthfile.read(EARTHFILE))
    assert written(out) == expected
    assert_only_assigns(out, expected)


# ------------------------------------------- the renderers are safe by themselves


@pytest.mark.parametrize("value", [v for v in INJECTIONS if "'" not in v])
def test_arg_file_of_an_unchecked_spec_still_only_assigns(tmp_path: Path, value: str) -> None:
    """Even a spec that skipped validation renders a .arg that only assigns."""
    spec = BuildSpec(no_proxy=value, custom_tag=value, http_proxy=value)
    (tmp_path / ".arg").write_text(canvos.arg_file(spec))
    assert_only_assigns(tmp_path, canvos.arg_values(spec))


@pytest.mark.parametrize("value", [*BREAKERS, *(v for v in INJECTIONS if "'" in v)])
def test_arg_file_refuses_values_that_could_end_the_quotes(value: str) -> None:
    with pytest.raises(ValueError, match="NO_PROXY"):
        canvos.arg_file(BuildSpec(no_proxy=value))


@pytest.mark.parametrize("value", [*INJECTIONS, *BREAKERS, "3.2.2 DOCA_SOURCE=evil", 'a"b'])
def test_dockerfile_block_refuses_unsafe_values(value: str) -> None:
    spec = BuildSpec(doca_version=value)
    template = "ARG DOCA_VERSION=@@DOCA_VERSION@@\n"
    with pytest.raises(ValueError, match="DOCA_VERSION"):
        canvos.render_doca_block(template, canvos.block_values(spec, (), "online", False))


def test_dockerfile_block_allows_spaces_only_inside_quotes() -> None:
    values = {"A": "x y", "B": "x y"}
    assert 'ARG B="x y"' in canvos.render_doca_block('ARG B="@@B@@"\n', values)
    with pytest.raises(ValueError, match="A"):
        canvos.render_doca_block("ARG A=@@A@@\n", values)
