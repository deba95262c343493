"""YAML alias bombs are refused before expansion, wherever YAML is read."""

from __future__ import annotations

import ast
import time
from pathlib import Path

import pytest

from pipeline import credentials, safeyaml
from pipeline.errors import InvalidInput
from tests.unit.conftest import run

PIPELINE = Path(__file__).resolve().parents[2] / "pipeline"


def laughs(levels: int = 9) -> str:
    """A "billion laughs" document: ``levels`` anchors of nine aliases each
    (9**9 = 387 million strings once expanded, under 500 bytes)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for n in range(1, levels):
        aliases = ", ".join([f"*l{n - 1}"] * 9)
        lines.append(f"l{n}: &l{n} [{aliases}]")
    return "\n".join(lines) + "\n"


def test_the_bomb_is_small_and_refused_at_once() -> None:
    text = laughs()
    assert len(text) < 600
    started = time.monotonic()
    with pytest.raises(InvalidInput) as caught:
        safeyaml.compose(text, "user_data", "site/user-data.yaml")
    assert time.monotonic() - started < 1.0
    (problem,) = caught.value.problems
    assert problem.value == "site/user-data.yaml"
    assert "billion laughs" in problem.message


def test_merge_key_bombs_are_refused_too() -> None:
    lines = ["m0: &m0 {a: 1, b: 2}"]
    lines += [f"m{n}: &m{n} {{<<: [*m{n - 1}, *m{n - 1}, *m{n - 1}]}}" for n in range(1, 20)]
    with pytest.raises(InvalidInput, match="billion laughs"):
        safeyaml.load("\n".join(lines), "config", "build.yaml")


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("a: &a [*a]\n", "recursive alias"),
        ("a: " + "[" * 300 + "]" * 300 + "\n", "nests deeper"),
        ("a: 1\n---\nb: 2\n", "not valid YAML"),
    ],
)
def test_other_documents_no_loader_should_take(text: str, words: str) -> None:
    with pytest.raises(InvalidInput, match=words):
        safeyaml.compose(text, "config", "build.yaml")


def test_ordinary_anchors_and_merge_keys_still_load() -> None:
    text = "base: &b {device: auto, poweroff: true}\ninstall:\n  <<: *b\n  reboot: false\n"
    data = safeyaml.load(text, "user_data", "ud")
    assert data == {
        "base": {"device": "auto", "poweroff": True},
        "install": {"device": "auto", "poweroff": True, "reboot": False},
    }


def test_a_bomb_in_the_config_file_even_under_an_unknown_key(tmp_path: Path) -> None:
    config = tmp_path / "build.yaml"
    config.write_text("doca_profile: doca-ofed\n" + laughs())  # l0..l8 are unknown keys
    started = time.monotonic()
    code, _, err = run("plan", "--config", str(config))
    assert time.monotonic() - started < 5.0
    assert code == 2 and str(config) in err and "billion laughs" in err
    assert len(err.splitlines()) == 1


def test_a_bomb_in_user_data_is_refused_naming_the_file(canvos_tree: Path, tmp_path: Path) -> None:
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("#cloud-config\n" + laughs())
    out = tmp_path / "out"
    for argv in (
        ["plan", "--user-data", str(user_data)],
        ["render", "--canvos", str(canvos_tree), "--out", str(out), "--user-data", str(user_data)],
    ):
        code, _, err = run(*argv)
        assert code == 2 and str(user_data) in err and "billion laughs" in err
    assert not out.exists()


def test_the_edge_host_token_merge_reads_yaml_safely() -> None:
    with pytest.raises(InvalidInput, match="billion laughs"):
        credentials.with_edge_host_token("#cloud-config\n" + laughs(), "token")


def _yaml_reads(path: Path) -> list[str]:
    """Calls of PyYAML's readers in a module."""
    readers = {"load", "safe_load", "full_load", "unsafe_load", "load_all", "safe_load_all",
               "compose", "compose_all", "SafeLoader", "Loader", "FullLoader", "CSafeLoader",
               "BaseLoader", "UnsafeLoader"}  # fmt: skip
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if (
            isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "yaml"
            and node.attr in readers
        ):
            found.append(f"{path.name}:{node.lineno} yaml.{node.attr}")
    return found


def test_every_yaml_read_goes_through_the_safe_loader() -> None:
    modules = sorted(PIPELINE.rglob("*.py"))
    assert len(modules) > 20
    found = [
        hit for module in modules if module.name != "safeyaml.py" for hit in _yaml_reads(module)
    ]
    assert found == []
    assert _yaml_reads(PIPELINE / "safeyaml.py")  # the check sees real calls
