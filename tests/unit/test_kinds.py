"""What each kind of knob value accepts, and how a URL is shown."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from pipeline import kinds

Check = Callable[[str], "str | None"]


def _proxy(value: str) -> str | None:
    return kinds.http_url(value, credentials=True, path=False)


def _repo(value: str) -> str | None:
    return kinds.http_url(value, credentials=False, path=True)


CASES: list[tuple[Check, list[str], list[str]]] = [
    (
        kinds.image_reference,
        [
            "ubuntu",
            "quay.io/kairos/ubuntu:22.04-core-amd64-generic-v3.1.3",
            "localhost:5000/a/b@sha256:" + "a" * 64,
            "[fd00::1]:5000/kairos/ubuntu:24.04",
        ],
        ["Ubuntu", "x;id", "a b", "reg.io/a:", "reg.io/a:-tag", "a/" + "b" * 260],
    ),
    (
        kinds.registry_path,
        ["us-docker.pkg.dev/palette-images", "registry.example.com:5000/edge", "localhost"],
        ["https://ghcr.io/acme", "ghcr.io/Acme", "ghcr.io/acme/", "a$(id)"],
    ),
    (
        kinds.host_list,
        ["localhost", "*", ".example.com,*.corp,10.0.0.0/8,fd00::/8,[::1]:8080,host:3128"],
        ["localhost;id", "a,,b", "host:port", "a b", ".", "*."],
    ),
    (
        _proxy,
        ["http://proxy:3128", "https://u:p%40ss@proxy.example.com:3128/", "http://[::1]:3128"],
        [
            "proxy:3128",
            "ftp://proxy",
            "http://u:p@ss/w@proxy",
            "http://u:p;id@proxy",
            "http://proxy:3128/path",
            "http://proxy:99999",
            "http://proxy?x=1",
            "http://pr;oxy:3128",
        ],
    ),
    (
        _repo,
        ["https://linux.mellanox.com/public/repo/doca", "http://127.0.0.1:8080/doca/"],
        [
            "https://u:p@mirror/doca",
            "https://mirror/doca$(id)",
            "https://mirror/a b",
            "mirror/doca",
        ],
    ),
    (
        kinds.git_url,
        [
            "https://github.com/spectrocloud/CanvOS.git",
            "git@github.com:spectrocloud/CanvOS.git",
            "ssh://git@github.com/spectrocloud/CanvOS.git",
            "https://x-access-token:abc@github.com/o/r.git",
        ],
        ["github.com/o/r", "https://github.com/o/r.git;id", "file:///etc", "-uhttps://x"],
    ),
    (
        kinds.git_ref,
        ["v4.9.38", "main", "release/4.10", "a" * 40],
        ["-x", "a..b", "a/", "a.lock", "a b", "refs//x", "$(id)", ".hidden"],
    ),
    (kinds.file_name, ["palette-edge-installer", "a" * 244], ["dir/name", ".x", "a" * 245]),
]


@pytest.mark.parametrize(("check", "good", "bad"), CASES)
def test_each_kind_accepts_what_it_is_and_nothing_else(
    check: Check, good: list[str], bad: list[str]
) -> None:
    assert {v: check(v) for v in good} == {v: None for v in good}
    assert [v for v in bad if check(v) is None] == []


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("1.\u0663\u0664.6", "non-ASCII character (U+0663) at position 3"),
        ("a\x1bb", "control character (U+001B) at position 2"),
        ("a b", "a space (U+0020) at position 2"),
        ("a\x00", "control character (U+0000)"),
    ],
)
def test_text_names_the_character_unless_secret(value: str, words: str) -> None:
    assert words in (kinds.text(value) or "")
    secret = kinds.text(value, secret=True) or ""
    assert "position" not in secret and "U+" not in secret
