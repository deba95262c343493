"""Secrets never in messages, plans or records: every channel through which a
password could be shown, with the value that used to leak as the example."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline import artifacts, context, kinds
from pipeline.errors import InvalidInput
from pipeline.spec import BuildSpec, as_dict, build_spec, shown_text
from tests.unit.conftest import run

SECRET = "S3ntinel"  # every password below contains it


def config_file(tmp_path: Path, text: str) -> str:
    path = tmp_path / "build.yaml"
    path.write_text(text)
    return str(path)


# Each: (argv builder, the words the message must have). The secret may not appear.
@pytest.mark.parametrize(
    ("case", "words"),
    [
        # the unsafe-character check printed the proxy URL raw: now redacted
        (["--http-proxy", f"http://u:{SECRET}$'\"\\ x@proxy:3128"], "'http://***@proxy:3128'"),
        # a proxy with credentials is refused (image history), the password not shown
        (["--https-proxy", f"http://u:{SECRET}@proxy:3128"], "'http://***@proxy:3128'"),
        (["--https-proxy", f"http://u:{SECRET} @proxy:3128"], "space"),
        # not a URL at all: not shown, not even redacted
        (["--http-proxy", f"u:{SECRET}"], "http_proxy: is not a valid URL"),
        # a password holding '@' or '/' (redact_url used to cut at the first '@')
        (["--http-proxy", f"http://u:p@{SECRET}/x@proxy:3128"], "http_proxy"),
        # credentials in the DOCA repository URL are refused, not echoed
        (
            ["--doca-repo-url", f"https://u:{SECRET}@mirror.example.com/doca"],
            "user name or password",
        ),
        # a control character in a secret: neither the value nor the character
        (["--http-proxy", f"http://u:{SECRET}\x1b@proxy:3128"], "control character"),
    ],
)
def test_flag_values_with_credentials_are_never_shown(case: list[str], words: str) -> None:
    code, _, err = run("plan", *case)
    assert code == 2
    assert SECRET not in err and "\x1b" not in err
    assert words in err


@pytest.mark.parametrize(
    ("text", "words"),
    [
        # a typo in a key: the value is never shown
        (f"http_proxi: http://u:{SECRET}@proxy:3128\n", "did you mean http_proxy?"),
        # a proxy given as a list or a map
        (f"http_proxy: [http://u:{SECRET}@proxy:3128]\n", "is a list"),
        (f"https_proxy: {{url: http://u:{SECRET}@proxy:3128}}\n", "is a mapping"),
        # a URL given to a boolean knob
        (f"fips_enabled: http://u:{SECRET}@proxy:3128\n", "is a text value that is not a boolean"),
        # YAML read a proxy as a number: neither the text nor the number is shown
        ("http_proxy: 3128.10\n", "was read by YAML as the number"),
        # a file input named in the config
        (f"user_data: {SECRET}\n", "file input"),
    ],
)
def test_config_values_are_never_echoed(tmp_path: Path, text: str, words: str) -> None:
    code, _, err = run("plan", "--config", config_file(tmp_path, text))
    assert code == 2
    assert SECRET not in err and "3128.1" not in err
    assert words in err


def test_redact_url_hides_passwords_with_at_and_slash() -> None:
    assert kinds.redact_url(f"http://u:p@{SECRET}@proxy:3128") == "http://***@proxy:3128"
    # an unencoded '/' ends the host part for every URL parser: then nothing is shown
    assert kinds.redact_url(f"http://u:p/{SECRET}@proxy:3128") is None
    assert kinds.redact_url(f"https://{SECRET}@github.com/org/CanvOS.git?t={SECRET}") == (
        "https://***@github.com/org/CanvOS.git?***"
    )
    assert kinds.redact_url(f"u:{SECRET}") is None  # no scheme: could be anything
    assert kinds.redact_url("git@github.com:org/CanvOS.git") == "git@github.com:org/CanvOS.git"


CANVOS_URL = f"https://deploy:{SECRET}@git.example.com/mirror/CanvOS.git"
PROXY = f"http://build:{SECRET}@proxy.example.com:3128"


def test_canvos_url_credentials_are_redacted_in_the_plan() -> None:
    code, out, err = run("plan", "--canvos-url", CANVOS_URL)
    assert code == 0, err
    assert SECRET not in out
    assert "https://***@git.example.com/mirror/CanvOS.git" in out


def test_records_carry_no_credentials() -> None:
    """canvos-doca.json and manifest.json are made from the description."""
    spec = build_spec({}, {"canvos_url": CANVOS_URL})
    description = context.describe_ref(spec)
    record = description.to_json()
    manifest = artifacts.render(
        artifacts.manifest(artifacts.Inputs(description, "0" * 64), None, [])
    )
    for text in (record, manifest):
        assert SECRET not in text
        assert "https://***@git.example.com/mirror/CanvOS.git" in text
    assert json.loads(record)["canvos"]["url"] == "https://***@git.example.com/mirror/CanvOS.git"


@pytest.mark.parametrize("flag", ["--http-proxy", "--https-proxy"])
def test_a_proxy_with_credentials_is_refused_without_showing_them(
    canvos_tree: Path, tmp_path: Path, flag: str
) -> None:
    """CanvOS hands the proxies to its Dockerfile as build args, which BuildKit
    keeps in the image history: render writes nothing and names the way out."""
    out = tmp_path / "out"
    code, stdout, err = run("render", "--canvos", str(canvos_tree), "--out", str(out), flag, PROXY)
    assert code == 2
    assert not out.exists()
    assert SECRET not in stdout + err and "build:" not in err
    field = flag.removeprefix("--").replace("-", "_")
    assert f"{field}='http://***@proxy.example.com:3128'" in err
    assert "image history" in err and "source address" in err and "forwarding proxy" in err


def test_doca_repo_credentials_never_reach_the_dockerfile() -> None:
    """The repository URL is an ARG default of the DOCA block, so it would be in
    the image history: a URL with credentials is refused before rendering."""
    with pytest.raises(InvalidInput) as caught:
        build_spec({}, {"doca_repo_url": f"https://u:{SECRET}@mirror.example.com/doca"})
    (problem,) = caught.value.problems
    assert problem.field == "doca_repo_url" and "image history" in problem.fix
    assert SECRET not in caught.value.render()


def test_every_secret_field_is_shown_redacted() -> None:
    spec = BuildSpec(
        canvos_url=CANVOS_URL,
        http_proxy=PROXY,
        https_proxy=PROXY,
        doca_repo_url=f"https://u:{SECRET}@m.example.com/doca",
    )
    assert SECRET not in json.dumps(as_dict(spec))
    assert shown_text("http_proxy", f"u:{SECRET}") == "(not shown)"


def test_canvos_url_with_a_local_checkout_is_refused_unshown(canvos_tree: Path) -> None:
    code, _, err = run("plan", "--canvos", str(canvos_tree), "--canvos-url", CANVOS_URL)
    assert code == 2
    assert SECRET not in err and "cannot be used with --canvos" in err
