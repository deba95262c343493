"""A DOCA mirror that needs a login, for real: the stand-in repository served on
127.0.0.1 behind HTTP Basic auth.

* The whole DOCA stage with the auth.conf as a build secret (the mount text
  the renderer writes): apt reads the key, the index and the packages with
  its own auth.conf.d lookup, and neither ``docker history`` nor any image
  layer holds the password; the file is gone after the step (about 110 s here).
* The real DOCA install step without the secret, and with a wrong login:
  it stops at the repository's 401 with one line saying what to do.
"""

from __future__ import annotations

import base64
import http.server
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import buildsecrets, canvos

from . import harness

USER = "builder"
PASSWORD = "apt-Sentinel-c4f09e"
VERSION = "3.2.1"


@dataclass
class AuthServer:
    url: str
    authorized: list[str]  # paths served to a request with the right login
    refused: list[str]  # paths answered 401


@pytest.fixture(scope="module")
def auth_repo(repos: harness.RepoServer) -> Iterator[AuthServer]:
    """The stand-in repositories again, behind Basic auth (USER:PASSWORD)."""
    expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    root = str(repos.root)
    state = AuthServer("", [], [])

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=root, **kw)  # type: ignore[arg-type]

        def send_head(self):  # type: ignore[no-untyped-def]
            if self.headers.get("Authorization") != expected:
                state.refused.append(self.path)
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="doca mirror"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            state.authorized.append(self.path)
            return super().send_head()

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}/good/doca"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()


def auth_conf(tmp_path: Path, password: str = PASSWORD) -> Path:
    path = tmp_path / "auth.conf"
    # Plain http: apt sends the login only to a machine written with its protocol.
    path.write_text(f"# the mirror\nmachine http://127.0.0.1 login {USER} password {password}\n")
    path.chmod(0o600)
    return path


def rendered_mount() -> str:
    """The auth.conf mount line exactly as the renderer writes it into the block."""
    fragment = (harness.OVERLAYS / canvos.FRAGMENT).read_text()
    values = harness.block_values(repo_url="http://127.0.0.1/doca", repo_auth=True)
    block = canvos.render_doca_block(fragment, values)
    (line,) = [line for line in block.splitlines() if buildsecrets.DOCA_REPO_AUTH.id in line]
    return line.strip().rstrip("\\").strip()


def test_the_login_reaches_apt_and_no_layer(
    auth_repo: AuthServer, base_image: str, tmp_path: Path
) -> None:
    assert rendered_mount() == buildsecrets.DOCA_REPO_AUTH.mount
    values = harness.block_values(repo_url=auth_repo.url, repo_auth=True)
    ctx = harness.make_context(tmp_path / "ctx", values)
    secrets = {buildsecrets.DOCA_REPO_AUTH.id: auth_conf(tmp_path)}
    result = harness.build(ctx, harness.stage_tag("repo-auth"), base_image, secrets=secrets)
    assert result.returncode == 0, result.log[-5000:]
    assert "canvos-doca: verify passed" in result.log
    # apt used the login for the key, the index and the packages.
    fetched = {path.rsplit("/", 1)[-1] for path in auth_repo.authorized}
    assert {"GPG-KEY-Mellanox.pub", "InRelease", "Packages.gz"} <= fetched
    assert any(name.startswith("doca-ofed_") for name in fetched)

    history = harness.docker("history", "--no-trunc", result.tag).stdout
    assert PASSWORD not in history and USER not in history
    saved = subprocess.run(
        [harness.DOCKER, "save", result.tag],
        capture_output=True,
        check=True,
        env=harness.docker_env(),
    ).stdout
    assert PASSWORD.encode() not in saved
    # The file existed only while the step ran; the image's verify agrees.
    _, out = harness.run_in(
        result.tag, "ls -A /etc/apt/auth.conf.d/; canvos-doca-verify | grep 'apt login'"
    )
    assert out.split() == ["ok", "no", "apt", "login", "(auth.conf)", "in", "the", "image"], out


@pytest.mark.parametrize("login", ["none", "wrong"])
def test_the_install_step_explains_a_401(
    auth_repo: AuthServer, base_image: str, tmp_path: Path, login: str
) -> None:
    values = harness.block_values(repo_url=auth_repo.url, repo_auth=login != "none")
    ctx = harness.make_context(tmp_path / "ctx", values)
    secrets = {}
    if login == "wrong":
        secrets[buildsecrets.DOCA_REPO_AUTH.id] = auth_conf(tmp_path, "not-the-password")
    # A build secret is not part of BuildKit's cache key (a new password does
    # not re-run the DOCA install): without --no-cache the wrong login would
    # reuse the step the right one built.
    result = harness.build(
        ctx, harness.stage_tag(f"repo-auth-{login}"), base_image, secrets=secrets, no_cache=True
    )
    assert result.returncode != 0
    (line,) = result.error_lines()
    if login == "none":
        assert "asks for a login (HTTP 401)" in line and "--doca-repo-auth" in line
    else:
        assert "refused the login" in line and "not-the-password" not in result.log
