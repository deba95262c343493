# ruff: noqa: E501  (embedded shell scripts and Dockerfile text read better unwrapped)
"""Real container builds of the DOCA stage (shared by the tests and scripts/bench-doca-stage).

* a base image like a Kairos one: ``debootstrap --variant=minbase bookworm`` +
  ``docker import``, then systemd, dracut and two real kernels (bookworm's and
  bookworm-backports'), no kernel headers, and a Kairos ``/etc/cos/bootargs.cfg``;
  both images are tagged by a hash of their recipe so reruns reuse them;
* a GPG-signed flat apt repository of stand-in packages, served on 127.0.0.1;
* a CanvOS-like build context: CanvOS's Dockerfile head, the marker, the
  rendered block (the project's real renderer), CanvOS's own bootargs edit after
  it, and the project's overlays/ copied to ``canvos-doca/``; built with exactly
  the build args Earthly passes (BASE, OS_DISTRIBUTION, OS_VERSION, proxies).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeline import buildsecrets, canvos, hostitems, persistence

from . import standin

ROOT = Path(__file__).resolve().parents[2]
OVERLAYS = ROOT / "overlays"
DOCKER = os.environ.get("DOCKER", "/usr/bin/docker")
SUITE = "bookworm"
# Tag namespace of the stage images a test run builds; set CANVOS_DOCA_TEST_PREFIX
# to keep concurrent runs (e.g. two checkouts) from replacing each other's tags.
PREFIX = os.environ.get("CANVOS_DOCA_TEST_PREFIX", "canvos-doca-test")
MIRROR = "http://deb.debian.org/debian"
# The module-signing key's build secret, as the renderer mounts it
# (pipeline/canvos.py); test builds pass it with `docker build --secret`.
SIGNING_SECRET_ID = canvos.MODULE_SIGNING_SECRET_ID
SIGNING_MOUNT = canvos.MODULE_SIGNING_MOUNT
# The DOCA repository auth.conf's build secret, as the renderer mounts it.
REPO_AUTH_SECRET_ID = buildsecrets.DOCA_REPO_AUTH.id
REPO_AUTH_MOUNT = buildsecrets.DOCA_REPO_AUTH.mount
SIGNING_CERT = "keys/module-signing.crt"

BASE_DOCKERFILE = """\
FROM {rootfs}
ARG DEBIAN_FRONTEND=noninteractive
RUN echo 'deb http://deb.debian.org/debian bookworm-backports main' \\
      > /etc/apt/sources.list.d/backports.list \\
 && apt-get update \\
 && apt-get install -y --no-install-recommends systemd systemd-sysv kmod dracut \\
      ca-certificates linux-image-amd64 \\
 && apt-get install -y --no-install-recommends -t bookworm-backports linux-image-amd64 \\
 && apt-get clean && rm -rf /var/lib/apt/lists/*
# What Kairos' GRUB config sources (abridged): the shared kernel command line.
RUN mkdir -p /etc/cos && printf '%s\\n' \\
      'function setKernelCmd {{' \\
      '    set baseCmd="console=tty1 net.ifnames=1 rd.cos.oemlabel=COS_OEM panic=5"' \\
      '    set kernelcmd="$baseCmd $baseRootCmd"' \\
      '}}' > /etc/cos/bootargs.cfg
"""

# CanvOS's Dockerfile around the marker (abridged, same shape and build args).
CANVOS_HEAD = """\
ARG BASE
FROM $BASE

ARG OS_DISTRIBUTION
ARG PROXY_CERT_PATH
ARG HTTP_PROXY
ARG HTTPS_PROXY
ARG NO_PROXY

RUN echo "CanvOS customizations for ${OS_DISTRIBUTION}"

########################### Add any other image customizations here #######################

"""
CANVOS_TAIL = """
# CanvOS's own edit of the boot arguments, after the customizations.
RUN if [ -f /etc/cos/bootargs.cfg ] && ! grep -Fq "systemd.unified_cgroup_hierarchy=1" /etc/cos/bootargs.cfg; then \\
        sed -i 's|\\(set baseCmd="[^"]*\\)"|\\1 systemd.unified_cgroup_hierarchy=1"|' /etc/cos/bootargs.cfg; \\
    fi
"""


def docker_env() -> dict[str, str]:
    return {**os.environ, "DOCKER_BUILDKIT": "1"}


def docker(
    *args: str, check: bool = True, input_bytes: bytes | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args],
        check=check,
        capture_output=True,
        text=input_bytes is None,
        input=input_bytes,
        env=docker_env(),
    )  # type: ignore[call-overload, no-any-return]


def engine_problem() -> str | None:
    """None when a Docker engine answers, else why not."""
    if not Path(DOCKER).exists():
        return f"{DOCKER} not found (install Debian's docker.io)"
    try:
        proc = subprocess.run(
            [DOCKER, "info", "--format", "{{.ServerVersion}}"],
            capture_output=True,
            text=True,
            timeout=30,
            env=docker_env(),
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"docker info failed: {exc}"
    if proc.returncode != 0:
        return f"no Docker engine answers: {proc.stderr.strip()[:200]}"
    return None


def stage_tag(name: str) -> str:
    """The tag of a stage image this run builds, e.g. ``canvos-doca-test/stage:default``."""
    return f"{PREFIX}/stage:{name}"


def image_exists(tag: str) -> bool:
    return docker("image", "inspect", tag, check=False).returncode == 0


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


def rootfs_image() -> str:
    tag = f"canvos-doca-test/rootfs:{SUITE}-minbase-{_digest(SUITE, MIRROR, 'minbase-v1')}"
    if image_exists(tag):
        return tag
    with tempfile.TemporaryDirectory(prefix="canvos-doca-rootfs-") as tmp:
        target = Path(tmp) / "root"
        subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, str(target), MIRROR],
            check=True,
            capture_output=True,
        )
        tar = subprocess.Popen(["tar", "-C", str(target), "-c", "."], stdout=subprocess.PIPE)
        assert tar.stdout is not None
        subprocess.run(
            [DOCKER, "import", "-", tag], stdin=tar.stdout, check=True, capture_output=True
        )
        tar.stdout.close()
        if tar.wait() != 0:
            raise RuntimeError("tar of the debootstrap tree failed")
    return tag


def base_image() -> str:
    rootfs = rootfs_image()
    dockerfile = BASE_DOCKERFILE.format(rootfs=rootfs)
    tag = f"canvos-doca-test/base:{_digest(dockerfile)}"
    if image_exists(tag):
        if _headers_published(tag):
            return tag
        # Debian dropped this kernel ABI from the archive since the image was
        # cached: rebuild it with the current kernels.
        docker("image", "rm", "-f", tag, check=False)
    with tempfile.TemporaryDirectory(prefix="canvos-doca-base-") as tmp:
        Path(tmp, "Dockerfile").write_text(dockerfile)
        build = subprocess.run(
            [DOCKER, "build", "--network=host", "--progress=plain", "-t", tag, tmp],
            capture_output=True,
            text=True,
            env=docker_env(),
        )
        if build.returncode != 0:
            raise RuntimeError(f"base image build failed:\n{build.stdout[-4000:]}")
    return tag


def _headers_published(image: str) -> bool:
    """Whether the archive still has linux-headers for the image's newest kernel."""
    code, _ = run_in(
        image,
        "apt-get update -qq >/dev/null 2>&1;"
        ' k="$(ls /lib/modules | sort -V | tail -n 1)";'
        ' apt-cache show "linux-headers-$k" >/dev/null 2>&1',
        network="host",
    )
    return code == 0


# ------------------------------------------------------------------ repo server


@dataclass
class RepoServer:
    """Stand-in DOCA repositories under http://127.0.0.1:PORT/.

    Layout: ``good/doca/<ver>/debian12/x86_64/`` (signed by the key published at
    ``good/doca/GPG-KEY-Mellanox.pub``) and ``wrongsig/doca/<ver>/...`` (signed by
    another key while the published key is the good one).
    """

    root: Path
    port: int = 0
    good_key: str = ""
    versions: tuple[str, ...] = ("3.2.1", "3.3.0", "3.1.0")
    _server: http.server.ThreadingHTTPServer | None = field(default=None, repr=False)

    def url(self, tree: str = "good") -> str:
        return f"http://127.0.0.1:{self.port}/{tree}/doca"

    def repo_dir(self, version: str, tree: str = "good") -> Path:
        return self.root / tree / "doca" / version / "debian12" / "x86_64"


def build_repos(root: Path) -> RepoServer:
    work = root / "_work"
    good = standin.make_signer(root / "_gnupg-good", "doca-standin")
    other = standin.make_signer(root / "_gnupg-other", "somebody-else")
    server = RepoServer(root=root, good_key=good.public_key)
    for version in server.versions:
        standin.write_repo(
            server.repo_dir(version), standin.packages(version), good, work, key=good
        )
    standin.write_repo(
        server.repo_dir("3.2.1", "wrongsig"), standin.packages("3.2.1"), other, work, key=good
    )
    for tree in ("good", "wrongsig"):
        (root / tree / "doca" / "GPG-KEY-Mellanox.pub").write_text(good.public_key)
    standin.stop_agent(good)
    standin.stop_agent(other)
    return server


@contextlib.contextmanager
def serve(server: RepoServer) -> Iterator[RepoServer]:
    directory = str(server.root)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=directory, **kw)  # type: ignore[arg-type]

        def log_message(self, format: str, *args: object) -> None:
            return

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.port = httpd.server_address[1]
    server._server = httpd
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ------------------------------------------------------------------ contexts


def render_block(values: Mapping[str, str]) -> str:
    template = (OVERLAYS / "doca" / "Dockerfile.fragment").read_text()
    return canvos.render_doca_block(template, values)


def insert_block(dockerfile: str, block: str) -> str:
    return canvos.insert_block(dockerfile, block)


def persistent_paths() -> list[str]:
    return list(persistence.persistent_paths("ubuntu"))


def shell_facts() -> str:
    """facts.env as the renderer writes it, for stand-in builds on Debian 12.

    The stand-in repository has a ``debian12`` OS directory, so the test
    builds accept that OS next to the supported ones.
    """
    text = canvos.facts_env()
    return re.sub(r"^(DOCA_SUPPORTED_OS=.*)$", r"\1 debian12", text, count=1, flags=re.M)


def block_values(
    *,
    version: str = "3.2.1",
    profile: str = "doca-ofed",
    repo_url: str,
    source: str = "online",
    key_file: str = "",
    doca_packages: str = "",
    extra_packages: str = "",
    kernel_args: str = "",
    bind_mounts: str = "",
    signing: bool = False,
    repo_auth: bool = False,
) -> dict[str, str]:
    return {
        "CONTEXT_DIR": "canvos-doca",
        "DOCA_VERSION": version,
        "DOCA_PROFILE": profile,
        "DOCA_REPO_URL": repo_url,
        "DOCA_SOURCE": source,
        "DOCA_KEY_FILE": key_file,
        "DOCA_PACKAGES": doca_packages,
        "EXTRA_PACKAGES": extra_packages,
        "KERNEL_ARGS": kernel_args,
        "BIND_MOUNTS": bind_mounts,
        "REBUILD": "",
        "MODULE_SIGNING_MOUNT": SIGNING_MOUNT if signing else "",
        "DOCA_REPO_AUTH_MOUNT": REPO_AUTH_MOUNT if repo_auth else "",
    }


def make_context(
    ctx: Path,
    values: Mapping[str, str],
    *,
    user_data: str = "#cloud-config\n",
    airgap: Mapping[str, Path] | None = None,
    key_text: str | None = None,
    signing_cert: Path | None = None,
    host: hostitems.HostItems | None = None,
    bfb: Path | None = None,
) -> Path:
    """A CanvOS-like build context with the rendered block (rewritten in place).

    ``host``: the host items written by the project's own writer
    (``pipeline.hostitems``, none when omitted); ``bfb``: a BFB file copied
    into the host items' BFB directory.
    """
    ctx.mkdir(parents=True, exist_ok=True)
    dest = ctx / "canvos-doca"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(
        OVERLAYS, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "README.md")
    )
    (dest / "doca" / "persistent-paths.txt").write_text("\n".join(persistent_paths()) + "\n")
    (dest / "doca" / "facts.env").write_text(shell_facts())
    air = dest / "airgap"
    air.mkdir(exist_ok=True)
    (air / ".keep").write_text("")
    for name, src in (airgap or {}).items():
        if src.is_dir():
            shutil.copytree(src, air / name, dirs_exist_ok=True)
        else:
            shutil.copy2(src, air / name)
    for rel, text in hostitems.context_files(host or hostitems.HostItems()).items():
        path = ctx / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if bfb is not None:
        shutil.copy2(bfb, ctx / hostitems.BFB_DIR / bfb.name)
    if key_text is not None:
        (dest / "keys" / "doca.pub").write_text(key_text)
    if signing_cert is not None:
        shutil.copy2(signing_cert, dest / SIGNING_CERT)
    dockerfile = insert_block(CANVOS_HEAD, render_block(values)) + CANVOS_TAIL
    (ctx / "Dockerfile").write_text(dockerfile)
    (ctx / "user-data").write_text(user_data)
    (ctx / "Earthfile").write_text("VERSION 0.6\n# stand-in: not used by docker build\n")
    return ctx


@dataclass
class BuildResult:
    returncode: int
    log: str
    tag: str
    seconds: float

    def error_lines(self) -> list[str]:
        """The one-line causes the stage printed (``canvos-doca: ERROR: ...``)."""
        return re.findall(r"canvos-doca: ERROR: (.*)", self.log)

    def step_states(self, needle: str) -> list[str]:
        """'CACHED' or 'RAN' for every build step whose command contains needle."""
        ids = {
            m.group(1)
            for m in re.finditer(r"^#(\d+) \[[^\]]*\] RUN .*$", self.log, re.M)
            if needle in m.group(0)
        }
        states = []
        for step in sorted(ids, key=int):
            cached = re.search(rf"^#{step} CACHED$", self.log, re.M) is not None
            states.append("CACHED" if cached else "RAN")
        return states


def build(
    ctx: Path,
    tag: str,
    base: str,
    *,
    no_cache: bool = False,
    proxies: Mapping[str, str] | None = None,
    secrets: Mapping[str, Path] | None = None,
) -> BuildResult:
    """``docker build`` with exactly the build args CanvOS's Earthfile passes."""
    import time

    args = [
        "build",
        "--network=host",
        "--progress=plain",
        "-t",
        tag,
        "--build-arg",
        f"BASE={base}",
        "--build-arg",
        "OS_DISTRIBUTION=debian",
        "--build-arg",
        "OS_VERSION=12",
    ]
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        args += ["--build-arg", f"{name}={(proxies or {}).get(name, '')}"]
    for secret_id, src in (secrets or {}).items():
        args += ["--secret", f"id={secret_id},src={src}"]
    if no_cache:
        args.append("--no-cache")
    started = time.monotonic()
    proc = subprocess.run(
        [DOCKER, *args, str(ctx)],
        capture_output=True,
        text=True,
        env=docker_env(),
    )
    return BuildResult(
        returncode=proc.returncode,
        log=proc.stdout + proc.stderr,
        tag=tag,
        seconds=time.monotonic() - started,
    )


def run_in(
    image: str,
    script: str,
    *,
    network: str = "none",
    check: bool = False,
    volumes: tuple[str, ...] = (),
    caps: tuple[str, ...] = (),
) -> tuple[int, str]:
    """Run a bash script in a fresh container of ``image``; (exit code, stdout+stderr)."""
    args = [DOCKER, "run", "--rm", f"--network={network}"]
    for cap in caps:
        args += ["--cap-add", cap]
    for volume in volumes:
        args += ["-v", volume]
    proc = subprocess.run(
        [*args, image, "bash", "-c", script],
        capture_output=True,
        text=True,
        env=docker_env(),
    )
    out = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"container script failed ({proc.returncode}):\n{script}\n{out}")
    return proc.returncode, out
