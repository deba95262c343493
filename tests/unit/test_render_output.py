"""Writing the rendered output: never outside --out, secrets 0600, user outputs kept."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path

import pytest

from pipeline import canvos, cli, output
from tests.unit.conftest import one_error_line, render

TOKEN = "edge-host-t0ken-5ENTINEL"
# No user:password (the spec refuses it): a sentinel host name marks the value.
PROXY = "http://pr0xy-5entinel.example.com:3128"


def user_data(tmp_path: Path, mode: int = 0o600) -> Path:
    path = tmp_path / "site-user-data.yaml"
    path.write_text(f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}\n")
    path.chmod(mode)
    return path


def secret_args(tmp_path: Path) -> list[str]:
    return ["--user-data", str(user_data(tmp_path)), "--https-proxy", PROXY]


# ---------------------------------------------- 15.2: never write outside --out


@pytest.mark.parametrize("name", [".arg", "user-data", "canvos-doca.json"])
def test_a_linked_file_in_the_checkout_is_replaced_not_written_through(
    canvos_tree: Path, tmp_path: Path, name: str
) -> None:
    canary = tmp_path / "outside" / f"canary-{name}"
    canary.parent.mkdir()
    canary.write_text("canary: untouched\n")
    os.symlink(canary, canvos_tree / name)
    out = tmp_path / "out"
    assert render(canvos_tree, out, *secret_args(tmp_path)) == 0
    assert canary.read_text() == "canary: untouched\n"
    assert not (out / name).is_symlink() and (out / name).is_file()


def test_in_place_replaces_linked_files_instead_of_following_them(
    canvos_tree: Path, tmp_path: Path
) -> None:
    canaries = {}
    for name in (".arg", canvos.DESCRIPTION_FILE):
        canaries[name] = tmp_path / f"canary-{name}"
        canaries[name].write_text("canary: untouched\n")
        os.symlink(canaries[name], canvos_tree / name)
    assert render(canvos_tree, canvos_tree, "--force", "--https-proxy", PROXY) == 0
    for name, canary in canaries.items():
        assert canary.read_text() == "canary: untouched\n", name
        assert not (canvos_tree / name).is_symlink(), name
    assert "pr0xy-5entinel" in (canvos_tree / ".arg").read_text()


def test_a_linked_canvos_doca_directory_is_not_written_into(
    canvos_tree: Path, tmp_path: Path
) -> None:
    elsewhere = tmp_path / "outside-dir"
    elsewhere.mkdir()
    (elsewhere / "keep").write_text("canary\n")
    os.symlink(elsewhere, canvos_tree / canvos.CONTEXT_DIR)
    out = tmp_path / "out"
    assert render(canvos_tree, out, *secret_args(tmp_path)) == 0
    assert sorted(p.name for p in elsewhere.iterdir()) == ["keep"]
    assert (out / canvos.CONTEXT_DIR).is_dir() and not (out / canvos.CONTEXT_DIR).is_symlink()
    assert (out / canvos.CONTEXT_DIR / canvos.FRAGMENT).is_file()


def test_a_dockerfile_linked_outside_the_checkout_is_refused(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    canary = tmp_path / "canary-Dockerfile"
    canary.write_text((canvos_tree / "Dockerfile").read_text())
    (canvos_tree / "Dockerfile").unlink()
    os.symlink(canary, canvos_tree / "Dockerfile")
    before = canary.read_text()
    assert render(canvos_tree, tmp_path / "out", *secret_args(tmp_path)) == 2
    assert "outside the checkout" in one_error_line(capsys)
    assert canary.read_text() == before


def test_a_dockerfile_linked_inside_the_checkout_is_replaced_in_the_output(
    canvos_tree: Path, tmp_path: Path
) -> None:
    (canvos_tree / "dockerfiles").mkdir()
    (canvos_tree / "Dockerfile").rename(canvos_tree / "dockerfiles" / "ubuntu")
    os.symlink("dockerfiles/ubuntu", canvos_tree / "Dockerfile")
    original = (canvos_tree / "dockerfiles" / "ubuntu").read_text()
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    assert not (out / "Dockerfile").is_symlink()
    assert canvos.BLOCK_BEGIN in (out / "Dockerfile").read_text()
    assert (out / "dockerfiles" / "ubuntu").read_text() == original


def test_links_are_copied_as_links_checkout_and_airgap_alike(
    canvos_tree: Path, tmp_path: Path
) -> None:
    secret = tmp_path / "host-secret.pem"
    secret.write_text("PRIVATE 5ENTINEL\n")
    os.symlink(secret, canvos_tree / "certs" / "ca.pem")
    os.symlink("../Earthfile", canvos_tree / "certs" / "inside")
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "Packages").write_text("")
    (mirror / "Release").write_text("")
    os.symlink(secret, mirror / "GPG-KEY-Mellanox.pub")
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--doca-airgap", str(mirror)) == 0
    assert os.readlink(out / "certs" / "ca.pem") == str(secret)
    assert os.readlink(out / "certs" / "inside") == "../Earthfile"
    assert os.readlink(out / canvos.AIRGAP_DIR / "GPG-KEY-Mellanox.pub") == str(secret)
    assert secret.read_text() == "PRIVATE 5ENTINEL\n"


# ------------------------------------------------- 15.5: secrets not readable


def test_secret_files_are_0600_and_the_output_0700(canvos_tree: Path, tmp_path: Path) -> None:
    source = user_data(tmp_path, mode=0o644)  # a world-readable source must not leak its mode
    out = tmp_path / "out"
    previous = os.umask(0o022)
    try:
        args = ["--user-data", str(source), "--https-proxy", PROXY]
        assert render(canvos_tree, out, *args) == 0
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        for name in (".arg", "user-data"):
            assert stat.S_IMODE((out / name).stat().st_mode) == 0o600, name
        assert TOKEN in (out / "user-data").read_text()
        assert "pr0xy-5entinel" in (out / ".arg").read_text()
        assert stat.S_IMODE((out / "Dockerfile").stat().st_mode) == 0o644
        (out / "extra").write_text("x")
        (out / "extra").chmod(0o755)
        assert render(canvos_tree, out, *args, "--force") == 0  # replace keeps the modes
        assert stat.S_IMODE(out.stat().st_mode) == 0o700
        assert stat.S_IMODE((out / "user-data").stat().st_mode) == 0o600
    finally:
        os.umask(previous)


# ---------------------------------------------------------- 12.4 next steps


def test_every_k8s_version_gets_its_own_earthly_line(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out, "--k8s-version", "1.33.10,1.34.6") == 0
    steps = [line.strip() for line in capsys.readouterr().out.splitlines() if "earthly.sh" in line]
    assert len(steps) == 2
    assert steps[0].startswith("./earthly.sh +build-all-images")
    assert "K8s 1.33.10" in steps[0]
    assert steps[1].startswith("./earthly.sh +build-provider-images --K8S_VERSION=1.34.6")
    assert "K8S_VERSION='1.33.10'" in (out / ".arg").read_text().splitlines()


def test_next_steps_quote_the_output_path() -> None:
    text = output.next_steps(Path("/tmp/my builds/out"), ["1.34.6"])
    assert "cd '/tmp/my builds/out'" in text and text.count("earthly.sh") == 1


# ----------------------------------------------- 12.5 --out inside --canvos


def test_out_inside_the_checkout_is_refused_at_once(
    canvos_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = sorted(p.name for p in canvos_tree.iterdir())
    assert render(canvos_tree, canvos_tree / "out") == 2
    assert "is inside the --canvos checkout" in one_error_line(capsys)
    assert sorted(p.name for p in canvos_tree.iterdir()) == before


def test_out_containing_the_checkout_is_refused(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(canvos_tree, tmp_path, "--force") == 2
    assert "contains the --canvos checkout" in one_error_line(capsys)


# ---------------------------------------- 12.6 --force never deletes outputs


def test_in_place_with_force_keeps_build_and_everything_else(
    canvos_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The example: render --canvos X --out X --force deleted X/build/ and hack/build/.
    (canvos_tree / "build").mkdir()
    (canvos_tree / "build" / "palette-edge-installer.iso").write_bytes(b"ISO")
    (canvos_tree / "hack" / "build").mkdir(parents=True)
    (canvos_tree / "hack" / "build" / ".keep").write_text("")
    (canvos_tree / "notes.txt").write_text("mine\n")
    assert render(canvos_tree, canvos_tree) == 2  # in place needs --force
    assert "pass --force to render in place" in one_error_line(capsys)
    assert render(canvos_tree, canvos_tree, "--force") == 0
    assert (canvos_tree / "build" / "palette-edge-installer.iso").read_bytes() == b"ISO"
    assert (canvos_tree / "hack" / "build" / ".keep").exists()
    assert (canvos_tree / "notes.txt").read_text() == "mine\n"
    assert canvos.BLOCK_BEGIN in (canvos_tree / "Dockerfile").read_text()
    assert (canvos_tree / canvos.DESCRIPTION_FILE).is_file()
    assert render(canvos_tree, canvos_tree, "--force") == 0  # again: still one block
    assert (canvos_tree / "Dockerfile").read_text().count(canvos.BLOCK_BEGIN) == 1


def test_in_place_never_replaces_the_checkouts_own_user_data_silently(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    own = canvos_tree / "user-data"
    own.write_text(f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}\n")
    assert render(canvos_tree, canvos_tree, "--force") == 2
    assert "--user-data" in one_error_line(capsys)
    assert TOKEN in own.read_text()
    args = ["--force", "--user-data", str(own), "--bind-mounts", "/var/lib/nv"]
    assert render(canvos_tree, canvos_tree, *args) == 0
    assert TOKEN in own.read_text() and "/var/lib/nv" in own.read_text()


def test_force_over_an_earlier_render_keeps_its_build_directory(
    canvos_tree: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    (out / "build").mkdir()
    (out / "build" / "palette-edge-installer.iso").write_bytes(b"ISO")
    (out / "stale.txt").write_text("from an old render")
    assert render(canvos_tree, out, "--force", "--doca-version", "2.9.3") == 0
    assert (out / "build" / "palette-edge-installer.iso").read_bytes() == b"ISO"
    assert not (out / "stale.txt").exists()
    assert "2.9.3" in (out / "Dockerfile").read_text()


def test_force_refuses_a_directory_that_is_not_an_earlier_render(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / "thesis.tex").write_text("years of work\n")
    assert render(canvos_tree, home, "--force") == 2
    assert "not an earlier canvos-doca output" in one_error_line(capsys)
    assert (home / "thesis.tex").read_text() == "years of work\n"


def test_force_never_deletes_an_input_kept_in_the_old_output(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    config = out / "build.yaml"
    config.write_text("doca_profile: doca-all\n")
    assert cli.main(["render", "--canvos", str(canvos_tree), "--out", str(out),
                     "--force", "--config", str(config)]) == 2  # fmt: skip
    assert "--force would delete" in one_error_line(capsys)
    assert config.is_file()


def test_force_from_inside_the_output_with_out_dot(
    canvos_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    monkeypatch.chdir(out)
    assert render(canvos_tree, Path("."), "--force", "--doca-version", "2.9.3") == 0
    assert Path.cwd() == out and Path("Dockerfile").is_file()  # the shell's directory survives
    assert "2.9.3" in Path("Dockerfile").read_text()


def test_an_empty_directory_is_a_new_output(canvos_tree: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    assert render(canvos_tree, out) == 0
    assert (out / "Dockerfile").is_file()


# ------------------------------------- 12.18 special files, 12.19 build dirs


@pytest.mark.usefixtures("alarm")
def test_a_fifo_in_the_tree_is_refused_without_blocking(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    fifo = canvos_tree / "overlay" / "files" / "pipe"
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 2
    line = one_error_line(capsys)
    assert "is a FIFO" in line and str(fifo) in line
    assert not out.exists()


@pytest.mark.usefixtures("alarm")
def test_a_link_to_a_device_is_copied_as_a_link_never_read(
    canvos_tree: Path, tmp_path: Path
) -> None:
    os.symlink("/dev/zero", canvos_tree / "zero")
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    assert os.readlink(out / "zero") == "/dev/zero"


def test_a_socket_in_the_tree_is_refused(
    canvos_tree: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = canvos_tree / "s"  # short: socket paths are limited to ~100 bytes
    server = socket.socket(socket.AF_UNIX)
    old = Path.cwd()
    os.chdir(canvos_tree)
    try:
        server.bind("s")
    finally:
        os.chdir(old)
    try:
        assert render(canvos_tree, tmp_path / "out") == 2
        assert "is a socket" in one_error_line(capsys)
    finally:
        server.close()
        path.unlink()


def test_only_the_top_level_build_directory_is_left_out(canvos_tree: Path, tmp_path: Path) -> None:
    # The example: overlay/files/opt/tool/build and overlay/files/srv/build/ were dropped.
    tool = canvos_tree / "overlay" / "files" / "opt" / "tool" / "build"
    tool.parent.mkdir(parents=True)
    tool.write_text("#!/bin/sh\n")
    srv = canvos_tree / "overlay" / "files" / "srv" / "build"
    srv.mkdir(parents=True)
    (srv / "index.html").write_text("<html/>")
    (canvos_tree / "build").mkdir()
    (canvos_tree / "build" / "old.iso").write_bytes(b"ISO")
    out = tmp_path / "out"
    assert render(canvos_tree, out) == 0
    assert (out / "overlay" / "files" / "opt" / "tool" / "build").read_text() == "#!/bin/sh\n"
    assert (out / "overlay" / "files" / "srv" / "build" / "index.html").is_file()
    assert not (out / "build").exists()


def test_the_checkouts_old_canvos_doca_directory_is_regenerated(
    canvos_tree: Path, tmp_path: Path
) -> None:
    first = tmp_path / "first"
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "Packages").write_text("")
    (mirror / "Release").write_text("")
    assert render(canvos_tree, first, "--doca-airgap", str(mirror)) == 0
    assert (first / canvos.AIRGAP_DIR / "Packages").is_file()
    second = tmp_path / "second"
    assert render(first, second) == 0  # online now: the old air-gapped copy is gone
    assert not (second / canvos.AIRGAP_DIR / "Packages").exists()


# ------------------------------------- re-rendering in place: render's own lines


def test_in_place_re_render_replaces_the_lines_it_added_before(canvos_tree: Path) -> None:
    """Switching preset and profile in place: the checkout's user-data that
    render wrote is not the user's file, and its old bind mounts go."""
    template = (output.package_overlays() / canvos.DEFAULT_USER_DATA).read_text()
    user_data = canvos_tree / "user-data"
    assert render(canvos_tree, canvos_tree, "--force") == 0
    assert render(canvos_tree, canvos_tree, "--force", "--preset", "ai-ra-infra") == 0
    assert "- /etc/openvswitch  # added by canvos-doca" in user_data.read_text()
    assert render(canvos_tree, canvos_tree, "--force", "--doca-profile", "doca-ofed") == 0
    assert user_data.read_text() == template
    # the same when the checkout's file is passed as --user-data
    assert render(canvos_tree, canvos_tree, "--force", "--preset", "ai-ra-infra") == 0
    args = ("--force", "--user-data", str(user_data), "--doca-profile", "doca-ofed")
    assert render(canvos_tree, canvos_tree, *args) == 0
    assert user_data.read_text() == template
    assert "openvswitch" not in (canvos_tree / canvos.DESCRIPTION_FILE).read_text()


def test_in_place_keeps_refusing_a_user_data_the_user_changed(
    canvos_tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert render(canvos_tree, canvos_tree, "--force", "--preset", "ai-ra-infra") == 0
    user_data = canvos_tree / "user-data"
    edited = user_data.read_text() + f"stylus:\n  site:\n    edgeHostToken: {TOKEN}\n"
    user_data.write_text(edited)
    capsys.readouterr()
    assert render(canvos_tree, canvos_tree, "--force") == 2
    assert "has its own user-data" in one_error_line(capsys)
    assert user_data.read_text() == edited
