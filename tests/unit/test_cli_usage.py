"""Command-line mistakes a new user makes: abbreviated flags, flags of the
Dagger module or of another sub-command, and what the error then says (flag
names only, never a value: a value may be a secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline import cli, doca, facts, spec
from pipeline.daggeronly import DAGGER_ONLY
from tests.unit.conftest import run

SENTINEL = "eyJSENTINEL-do-not-print-4b1f"


def refused(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    """stderr of ``canvos-doca ARGV``, which must exit 2 before doing anything."""
    with pytest.raises(SystemExit) as exited:
        cli.main(list(argv))
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    return captured.err


@pytest.mark.parametrize(
    ("argv", "abbreviation"),
    [
        (["plan", "--force"], "--force"),  # not --force-interactive-install
        (["render", "--canvos", "c", "--out", "o", "--fips"], "--fips"),
        (["plan", "--opens"], "--opens"),  # not --opensm
    ],
)
def test_an_abbreviated_flag_is_refused_by_name(
    capsys: pytest.CaptureFixture[str], argv: list[str], abbreviation: str
) -> None:
    err = refused(capsys, *argv)
    assert f"unrecognized arguments: {abbreviation}" in err


@pytest.mark.parametrize("name", sorted(DAGGER_ONLY))
@pytest.mark.parametrize("form", ["separate", "equals"])
def test_a_dagger_only_flag_is_explained_and_its_value_never_printed(
    capsys: pytest.CaptureFixture[str], name: str, form: str
) -> None:
    flag = "--" + name.replace("_", "-")
    given = [flag, SENTINEL] if form == "separate" else [f"{flag}={SENTINEL}"]
    err = refused(capsys, "render", "--canvos", "c", "--out", "o", *given)
    assert SENTINEL not in err
    explained = f"{flag} is an argument of the Dagger module only; on the CLI: {DAGGER_ONLY[name]}"
    assert explained in err
    assert "did you mean" not in err


def test_a_stray_value_is_counted_not_printed(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "plan", SENTINEL)
    assert SENTINEL not in err and "1 value, not shown" in err


def test_a_flag_of_another_sub_command_is_named_as_such(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(capsys, "plan", "--out", "./x")
    assert "--out is a flag of render, not plan" in err
    assert "did you mean" not in err
    assert err.splitlines()[0].startswith("usage: canvos-doca plan ")


def test_host_files_is_named_a_config_key(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "plan", "--host-files", "/etc/x")
    assert "host_files is set in --config only" in err and "/etc/x" not in err


def test_an_underscored_flag_gets_the_dashed_one(capsys: pytest.CaptureFixture[str]) -> None:
    err = refused(capsys, "plan", "--k8s_version", "1.33.5")
    assert "did you mean --k8s-version" in err


def test_suggestions_come_from_the_sub_command_in_use(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(capsys, "plan", "--outt", "x")
    assert "--out" not in err.replace("--outt", "")


def test_render_without_canvos_is_one_error_and_the_usage_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    err = refused(capsys, "render", "--out", "x")
    lines = err.splitlines()
    assert len(lines) == 2, err
    assert lines[0].startswith("usage: canvos-doca render --canvos DIR --out DIR")
    assert lines[1] == "canvos-doca render: error: the following arguments are required: --canvos"


@pytest.mark.parametrize("flag", ["--canvos-ref", "--canvos-url"])
def test_render_offers_no_ref_flags(capsys: pytest.CaptureFixture[str], flag: str) -> None:
    with pytest.raises(SystemExit):
        cli.main(["render", "--help"])
    assert flag not in capsys.readouterr().out
    err = refused(capsys, "render", "--canvos", "c", "--out", "o", flag, "v4.9.38")
    assert "render builds the --canvos checkout as it is" in err


def test_file_inputs_are_named_by_the_flag_and_the_path_typed(tmp_path: Path) -> None:
    repo = tmp_path / "mirror"
    repo.mkdir()
    (repo / "Packages").write_text("")
    user_data = tmp_path / "ud.yaml"
    user_data.write_text("install:\n  poweroff: true\n")
    code, _, err = run(
        "plan",
        "--doca-airgap",
        str(repo),
        "--doca-repo-url",
        "https://mirror.corp/doca",
        "--user-data",
        str(user_data),
    )
    assert code == 2
    assert f"--doca-airgap='{repo}': and doca_repo_url are both set" in err
    assert f"--user-data='{user_data}': does not start" in err
    assert "repo-dir" not in err and "user_data" not in err


def test_os_version_help_names_only_aliases_of_supported_releases(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The example: the help said "20 means 20.04" although 20.04 is refused.
    with pytest.raises(SystemExit):
        cli.main(["plan", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    supported = doca.SUPPORTED_OS[spec.default("os_distribution")]
    for alias, release in facts.CANVOS_OS_VERSION_ALIASES.items():
        assert (f"{alias} means {release}" in text) == (release in supported)


def test_docs_name_plans_bind_mount_heading_and_count_no_inputs() -> None:
    root = Path(__file__).resolve().parents[2]
    persistence = " ".join((root / "docs" / "persistence.md").read_text().split())
    assert "under `persistence.bind_mounts`" not in persistence
    assert '"Persistent paths added (install.bind_mounts)"' in persistence
    readme = (root / "README.md").read_text()
    assert "Three inputs are files" not in readme
    for flag in ("--bfb", "--module-signing-cert", "--module-signing-key", "--host-files-dir"):
        assert flag in readme.split("Only what you pass is read from your machine", 1)[1][:600]


@pytest.mark.parametrize(
    "argv",
    [
        ["render", "--canvos", "c", "--out", "o", f"--force={SENTINEL}"],
        ["plan", f"--fips-enabled={SENTINEL}"],
        [SENTINEL],  # typed where the sub-command goes
    ],
)
def test_argparse_errors_never_quote_the_value(
    capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert SENTINEL not in refused(capsys, *argv)
