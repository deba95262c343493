"""An air-gapped doca-host .deb: its version is read at render time, a mismatch refused."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pipeline import airgap, canvos
from tests.unit.conftest import render, run


def doca_host_deb(directory: Path, version: str, compression: str = "xz") -> Path:
    """A real doca-host local-repo package, built with dpkg-deb (``compression``: -Z value)."""
    root = directory / f"root-{version}-{compression}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: doca-host\nVersion: {version}\nArchitecture: amd64\n"
        "Maintainer: test <t@example.com>\nDescription: stand-in local repo\n"
    )
    pool = root / "usr" / "share" / "doca-host" / "repo"
    pool.mkdir(parents=True)
    (pool / "Packages").write_text("")
    deb = directory / f"doca-host_{version}_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", f"-Z{compression}", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def test_a_deb_of_another_doca_version_is_refused_at_render_time(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example: a 2.9.1 doca-host .deb with --doca-version 3.2.2 failed only in the image build.
    deb = doca_host_deb(tmp_path, "2.9.1-018000-24.10-ubuntu2204")
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--doca-airgap", str(deb), "--doca-version", "3.2.2") == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1
    assert "holds DOCA-Host 2.9.1" in err and "doca_version is 3.2.2" in err
    assert "--doca-version 2.9.1" in err
    assert not out.exists()


@pytest.mark.parametrize("checkout", [False, True])
def test_plan_refuses_a_deb_of_another_doca_version_like_render(
    canvos_tree: Path, tmp_path: Path, checkout: bool
) -> None:
    # The example: plan --doca-airgap doca-host_3.2.1...deb exited 0 where render refused it.
    deb = doca_host_deb(tmp_path, "3.2.1-044000-25.07-ubuntu2204")
    where = ["--canvos", str(canvos_tree)] if checkout else []
    code, out, err = run("plan", *where, "--doca-airgap", str(deb), "--doca-version", "3.2.2")
    assert code == 2 and out == ""
    assert "holds DOCA-Host 3.2.1" in err and "doca_version is 3.2.2" in err


def test_a_matching_deb_is_copied_where_the_stage_finds_it(
    canvos_tree: Path, tmp_path: Path
) -> None:
    deb = doca_host_deb(tmp_path, "3.2.2-034000-25.10-ubuntu2204")
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--doca-airgap", str(deb), "--doca-version", "3.2.2") == 0
    assert (out / canvos.AIRGAP_DIR / deb.name).read_bytes() == deb.read_bytes()


def test_a_directory_holding_a_deb_is_checked_too(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    doca_host_deb(mirror, "2.9.1-018000-24.10-ubuntu2204")
    assert render(canvos_tree, tmp_path / "out", "--doca-airgap", str(mirror)) == 2
    assert "holds DOCA-Host 2.9.1" in capsys.readouterr().err
    doca_host_deb(mirror, "3.2.2-034000-25.10-ubuntu2204")
    assert render(canvos_tree, tmp_path / "out", "--doca-airgap", str(mirror)) == 2
    assert "holds 2 doca-host packages" in capsys.readouterr().err


def test_a_file_that_is_not_a_package_is_named(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fake = tmp_path / "doca-host_3.2.2-1_amd64.deb"
    fake.write_bytes(b"<html>404 Not Found</html>\n")
    assert render(canvos_tree, tmp_path / "out", "--doca-airgap", str(fake)) == 2
    err = capsys.readouterr().err
    assert "is not a readable Debian package" in err and str(fake) in err


@pytest.mark.parametrize("compression", ["gzip", "xz", "none"])
def test_the_standard_library_reader_agrees_with_dpkg_deb(tmp_path: Path, compression: str) -> None:
    deb = doca_host_deb(tmp_path, "3.2.2-034000-25.10-ubuntu2204", compression)
    by_dpkg = airgap.control_fields(deb, use_dpkg=True)
    assert by_dpkg == {"Package": "doca-host", "Version": "3.2.2-034000-25.10-ubuntu2204"}
    assert airgap.control_fields(deb, use_dpkg=False) == by_dpkg


def test_a_zstd_control_member_needs_dpkg_deb_before_python_3_14(tmp_path: Path) -> None:
    deb = doca_host_deb(tmp_path, "3.2.2-1", "zstd")
    assert airgap.control_fields(deb, use_dpkg=True)["Version"] == "3.2.2-1"
    if sys.version_info >= (3, 14):
        assert airgap.control_fields(deb, use_dpkg=False)["Version"] == "3.2.2-1"
    else:
        with pytest.raises(airgap.NotADeb, match="needs dpkg-deb"):
            airgap.control_fields(deb, use_dpkg=False)


@pytest.mark.parametrize(
    ("version", "doca"),
    [("3.2.2-034000-25.10-ubuntu2204", "3.2.2"), ("1:2.9.1-1", "2.9.1"), ("3.3.0", "3.3.0")],
)
def test_doca_version_of_a_package_version(version: str, doca: str) -> None:
    assert airgap.doca_version_of(version) == doca
