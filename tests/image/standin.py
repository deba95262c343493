# ruff: noqa: E501  (embedded shell scripts and Dockerfile text read better unwrapped)
"""Stand-in DOCA packages and a GPG-signed flat apt repository, built on the host.

The packages are shaped like DOCA's where it matters to the image build:

* profile meta-packages (``doca-ofed``, ``doca-networking`` ... ) at the DOCA version;
* ``mlnx-ofed-kernel-dkms``: a real DKMS package (DKMS name ``mlnx-ofed-kernel``)
  whose two small real kernel modules, ``mlx5_core`` and ``mlx5_ib``, get compiled;
  its postinst is the Debian ``dh_dkms`` one (builds for the running kernel and
  every kernel with headers) and a DKMS ``POST_INSTALL`` fills ``/usr/src/ofa_kernel``;
* ``mlnx-ofed-kernel-utils``: ``/etc/init.d/openibd`` + ``openibd.service``,
  ``ofed_info``, a modprobe options file, a unit under ``/etc/systemd/system``, a
  helper under ``/usr/libexec`` and tools under ``/opt/mellanox``; its postinst
  calls ``systemctl`` the way vendor scripts do (fails without systemd running);
* ``mlnx-fw-updater``: its postinst runs the updater program unconditionally,
  which records that it ran (the build must never let it run);
* ``dkms`` at a higher version than Debian's, which must lose;
* what ``doca-all`` adds for BlueField hosts (the AI-RA-Infra nodeprep checks
  them): ``rshim`` (``rshim.service`` and ``bfb-install``) and ``mft`` (``mst``,
  ``mlxconfig``, ``flint``);
* ``mlnx-nfsrdma-dkms``, in the repository but in no profile (so only the
  ``doca_packages`` knob brings it), a real DKMS package
  (DKMS name ``mlnx-nfsrdma``) whose module ``rpcrdma`` answers to the aliases
  ``xprtrdma`` and ``svcrdma`` and installs under ``updates/dkms``, overriding
  Debian's in-tree ``net/sunrpc/xprtrdma/rpcrdma.ko`` the way NVIDIA's
  package does (an out-of-tree module of the same name wins by depmod's
  ``updates`` priority; a module named ``xprtrdma`` would merely shadow an
  alias of the in-tree one).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import textwrap
from dataclasses import dataclass
from pathlib import Path

from pipeline import doca

# The stand-in repo ships every profile the spec accepts.
PROFILES = doca.PROFILES
KERNEL_PROFILES = doca.KERNEL_PROFILES
OFED_FOR = {"3.2.1": "25.10-1.7.1", "3.3.0": "26.01-0.5.2", "3.1.0": "25.07-0.9.7"}
# DOCA releases whose kernel modules do not compile against the test kernels.
BROKEN = {"3.1.0"}
FW_MARKER = "/var/lib/standin-fw-updater/ran"
# The profile that adds the BlueField host tools and NFS over RDMA.
DOCA_ALL = "doca-all"
# The files of the stand-in packages that stay under Kairos persistent paths
# after the stage's relocation (the hazard report must list exactly these).
EXPECTED_HAZARDS = {"/usr/libexec/mlnx_ofed/mlnx_interface_mgr.sh"}
EXPECTED_LINKS = {"/etc/init.d/openibd", "/opt/mellanox"}


@dataclass(frozen=True)
class Pkg:
    name: str
    version: str
    depends: str = ""
    files: tuple[tuple[str, str, int], ...] = ()  # (path, content, mode)
    postinst: str = ""
    prerm: str = ""
    description: str = "canvos-doca test stand-in"


def _write_deb(pkg: Pkg, out: Path, work: Path) -> Path:
    root = work / f"{pkg.name}_{pkg.version}"
    shutil.rmtree(root, ignore_errors=True)
    (root / "DEBIAN").mkdir(parents=True)
    control = [
        f"Package: {pkg.name}",
        f"Version: {pkg.version}",
        "Architecture: amd64",
        "Maintainer: canvos-doca tests <tests@example.invalid>",
        "Section: kernel",
        "Priority: optional",
    ]
    if pkg.depends:
        control.append(f"Depends: {pkg.depends}")
    control.append(f"Description: {pkg.description}")
    (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    conffiles = []
    for path, content, mode in pkg.files:
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
        target.chmod(mode)
        if path.startswith("/etc/") and not path.startswith("/etc/init.d/"):
            conffiles.append(path)
        if path.startswith("/etc/init.d/"):
            conffiles.append(path)
    if conffiles:
        (root / "DEBIAN" / "conffiles").write_text("\n".join(conffiles) + "\n")
    # What dpkg-gencontrol would add: the unpacked size in KiB.
    kib = sum(
        (f.stat().st_size + 1023) // 1024
        for f in root.rglob("*")
        if f.is_file() and "DEBIAN" not in f.relative_to(root).parts
    )
    control.insert(-1, f"Installed-Size: {max(kib, 1)}")
    (root / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    for script, body in (("postinst", pkg.postinst), ("prerm", pkg.prerm)):
        if body:
            f = root / "DEBIAN" / script
            f.write_text("#!/bin/sh\nset -e\n" + textwrap.dedent(body))
            f.chmod(0o755)
    deb = out / f"{pkg.name}_{pkg.version}_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


_MODULE_C = """\
#include <linux/module.h>
#include <linux/init.h>
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("canvos-doca stand-in for {name}");
MODULE_VERSION("{version}");
static int __init standin_init(void) {{ pr_info("{name} stand-in loaded\\n"); return 0; }}
static void __exit standin_exit(void) {{ }}
module_init(standin_init);
module_exit(standin_exit);
"""


def _kernel_pkgs(doca: str, ofed: str) -> list[Pkg]:
    short = ofed.split("-")[0]  # DKMS version, like DOCA's "25.10"
    src = f"/usr/src/mlnx-ofed-kernel-{short}"
    dkms_conf = textwrap.dedent(
        f"""\
        PACKAGE_NAME="mlnx-ofed-kernel"
        PACKAGE_VERSION="{short}"
        MAKE[0]="make -C ${{kernel_source_dir}} M=${{dkms_tree}}/${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build modules"
        CLEAN="true"
        BUILT_MODULE_NAME[0]="mlx5_core"
        DEST_MODULE_LOCATION[0]="/updates/dkms"
        BUILT_MODULE_NAME[1]="mlx5_ib"
        DEST_MODULE_LOCATION[1]="/updates/dkms"
        POST_INSTALL="ofa-post-install.sh ${{kernelver}} ${{arch}}"
        AUTOINSTALL="yes"
        """
    )
    post_install = textwrap.dedent(
        """\
        #!/bin/sh
        # Like DOCA's: keep a build tree for other out-of-tree builds (nvidia-peermem).
        set -e
        dest="/usr/src/ofa_kernel/$2/$1"
        mkdir -p "$dest/include"
        cp "$(dirname "$0")/Module.symvers" "$dest/" 2>/dev/null || : > "$dest/Module.symvers"
        echo "/* stand-in */" > "$dest/include/standin.h"
        """
    )
    files: list[tuple[str, str, int]] = [
        (f"{src}/dkms.conf", dkms_conf, 0o644),
        (f"{src}/Makefile", "obj-m := mlx5_core.o mlx5_ib.o\n", 0o644),
        (f"{src}/ofa-post-install.sh", post_install, 0o755),
    ]
    for name in ("mlx5_core", "mlx5_ib"):
        code = _MODULE_C.format(name=name, version=short)
        if doca in BROKEN:
            code = '#error "stand-in: this release does not support this kernel"\n' + code
        files.append((f"{src}/{name}.c", code, 0o644))
    dkms_pkg = Pkg(
        name="mlnx-ofed-kernel-dkms",
        version=f"{short}.OFED.{ofed.replace('-', '.')}-1",
        depends="dkms, gcc, make",
        files=tuple(files),
        # What dh_dkms generates: add, then build for the running kernel and
        # every kernel whose headers are installed.
        postinst=f"""\
        if [ "$1" = configure ]; then
          /usr/lib/dkms/common.postinst mlnx-ofed-kernel {short} "" "" "$2"
        fi
        """,
        prerm=f"""\
        dkms remove -m mlnx-ofed-kernel -v {short} --all || true
        """,
    )
    return [dkms_pkg]


def _utils_pkg(doca: str, ofed: str) -> Pkg:
    openibd = textwrap.dedent(
        """\
        #!/bin/sh
        ### BEGIN INIT INFO
        # Provides: openibd
        # Required-Start: $local_fs
        # Required-Stop:
        # Default-Start: 2 3 4 5
        # Default-Stop: 0 1 6
        # Description: stand-in: loads the DOCA kernel stack
        ### END INIT INFO
        case "$1" in
          start) modprobe mlx5_core && modprobe mlx5_ib ;;
          stop) modprobe -r mlx5_ib mlx5_core ;;
          status) lsmod | grep -q mlx5_core ;;
          *) echo "usage: $0 start|stop|status"; exit 2 ;;
        esac
        """
    )
    unit = textwrap.dedent(
        """\
        [Unit]
        Description=stand-in openibd - configure the DOCA kernel stack
        DefaultDependencies=no
        Before=network-pre.target

        [Service]
        Type=oneshot
        RemainAfterExit=yes
        ExecStart=/etc/init.d/openibd start
        ExecStop=/etc/init.d/openibd stop

        [Install]
        WantedBy=sysinit.target
        """
    )
    ifmgr_unit = textwrap.dedent(
        """\
        [Unit]
        Description=stand-in interface manager for %i

        [Service]
        Type=oneshot
        ExecStart=/usr/libexec/mlnx_ofed/mlnx_interface_mgr.sh %i
        """
    )
    ofed_info = textwrap.dedent(
        f"""\
        #!/bin/sh
        if [ "$1" = "-s" ]; then echo "OFED-internal-{ofed}:"; exit 0; fi
        echo "OFED-internal-{ofed} (canvos-doca stand-in for DOCA {doca})"
        """
    )
    info = f"#!/bin/sh\necho 'doca-standin-info DOCA {doca}'\n"
    return Pkg(
        name="mlnx-ofed-kernel-utils",
        version=f"{ofed.split('-')[0]}.OFED.{ofed.replace('-', '.')}-1",
        depends="kmod",
        files=(
            ("/etc/init.d/openibd", openibd, 0o755),
            ("/lib/systemd/system/openibd.service", unit, 0o644),
            ("/etc/systemd/system/mlnx_interface_mgr@.service", ifmgr_unit, 0o644),
            ("/etc/modprobe.d/mlnx.conf", "options mlx5_core prof_sel=2\n", 0o644),
            ("/etc/infiniband/openib.conf", "ONBOOT=yes\nMLX5_LOAD=yes\n", 0o644),
            ("/usr/bin/ofed_info", ofed_info, 0o755),
            ("/usr/libexec/mlnx_ofed/mlnx_interface_mgr.sh", "#!/bin/sh\nexit 0\n", 0o755),
            ("/opt/mellanox/doca/bin/doca-standin-info", info, 0o755),
        ),
        # Vendor scripts talk to systemd directly; without a running systemd
        # daemon-reload fails, which is what a build must survive.
        postinst="""\
        systemctl daemon-reload
        systemctl enable openibd.service
        """,
    )


def _fw_pkg(ofed: str) -> Pkg:
    updater = textwrap.dedent(
        f"""\
        #!/bin/sh
        # Stand-in for mlnx_fw_updater.pl: records that it ran ("flashed" NICs).
        mkdir -p "$(dirname {FW_MARKER})"
        echo "firmware updater ran: $*" >> {FW_MARKER}
        """
    )
    return Pkg(
        name="mlnx-fw-updater",
        version=f"{ofed.split('-')[0]}.{ofed.split('-', 1)[1]}-1",
        files=(("/opt/mellanox/mlnx-fw-updater/mlnx_fw_updater.pl", updater, 0o755),),
        # Like the vendor package: flash on install.
        postinst="""\
        /opt/mellanox/mlnx-fw-updater/mlnx_fw_updater.pl --log /tmp/fw.log
        """,
    )


_NFSRDMA_C = """\
#include <linux/module.h>
#include <linux/init.h>
MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("canvos-doca stand-in for NVIDIA's rpcrdma (NFS over RDMA)");
MODULE_VERSION("{version}");
/* Like the in-tree rpcrdma: one module, loadable by its historical names. */
MODULE_ALIAS("xprtrdma");
MODULE_ALIAS("svcrdma");
static int __init standin_init(void) {{ pr_info("rpcrdma stand-in loaded\\n"); return 0; }}
static void __exit standin_exit(void) {{ }}
module_init(standin_init);
module_exit(standin_exit);
"""


def _nfsrdma_pkg(doca: str, ofed: str, kernel_dkms: Pkg) -> Pkg:
    short = ofed.split("-")[0]
    src = f"/usr/src/mlnx-nfsrdma-{short}"
    dkms_conf = textwrap.dedent(
        f"""\
        PACKAGE_NAME="mlnx-nfsrdma"
        PACKAGE_VERSION="{short}"
        MAKE[0]="make -C ${{kernel_source_dir}} M=${{dkms_tree}}/${{PACKAGE_NAME}}/${{PACKAGE_VERSION}}/build modules"
        CLEAN="true"
        BUILT_MODULE_NAME[0]="rpcrdma"
        DEST_MODULE_LOCATION[0]="/updates/dkms"
        AUTOINSTALL="yes"
        """
    )
    code = _NFSRDMA_C.format(version=short)
    if doca in BROKEN:
        code = '#error "stand-in: this release does not support this kernel"\n' + code
    return Pkg(
        name="mlnx-nfsrdma-dkms",
        version=f"{short}.OFED.{ofed.replace('-', '.')}-1",
        depends=f"dkms, gcc, make, mlnx-ofed-kernel-dkms (= {kernel_dkms.version})",
        files=(
            (f"{src}/dkms.conf", dkms_conf, 0o644),
            (f"{src}/Makefile", "obj-m := rpcrdma.o\n", 0o644),
            (f"{src}/rpcrdma.c", code, 0o644),
        ),
        postinst=f"""\
        if [ "$1" = configure ]; then
          /usr/lib/dkms/common.postinst mlnx-nfsrdma {short} "" "" "$2"
        fi
        """,
        prerm=f"""\
        dkms remove -m mlnx-nfsrdma -v {short} --all || true
        """,
        description="NFS over RDMA modules (stand-in)",
    )


def _tool(name: str, what: str) -> str:
    return f"#!/bin/sh\necho '{name}: canvos-doca stand-in ({what}); no hardware touched'\n"


def _rshim_pkg() -> Pkg:
    unit = textwrap.dedent(
        """\
        [Unit]
        Description=stand-in rshim driver for BlueField SoC
        After=network.target

        [Service]
        ExecStart=/usr/sbin/rshim -f

        [Install]
        WantedBy=multi-user.target
        """
    )
    return Pkg(
        name="rshim",
        version="2.1.5-1",
        files=(
            ("/lib/systemd/system/rshim.service", unit, 0o644),
            ("/usr/sbin/rshim", _tool("rshim", "BlueField rshim driver"), 0o755),
            ("/usr/sbin/bfb-install", _tool("bfb-install", "flashes a BFB"), 0o755),
        ),
        description="BlueField rshim driver and bfb-install (stand-in)",
    )


def _mft_pkg() -> Pkg:
    return Pkg(
        name="mft",
        version="4.34.0-145",
        files=tuple(
            (f"/usr/bin/{tool}", _tool(tool, "NVIDIA Firmware Tools"), 0o755)
            for tool in ("mst", "mlxconfig", "flint")
        ),
        description="NVIDIA Firmware Tools (stand-in)",
    )


def _doca_dkms() -> Pkg:
    fake = "#!/bin/sh\necho 'DOCA dkms stand-in: must never be installed' >&2\nexit 1\n"
    return Pkg(
        name="dkms",
        version="3.9.9-doca1",
        files=(("/usr/sbin/dkms", fake, 0o755),),
        description="DOCA's own dkms (stand-in): the distribution's must win",
    )


def packages(doca: str) -> list[Pkg]:
    ofed = OFED_FOR.get(doca, "25.10-1.7.1")
    meta_version = f"{doca}-1"
    kernel = _kernel_pkgs(doca, ofed)
    utils = _utils_pkg(doca, ofed)
    fw = _fw_pkg(ofed)
    nfsrdma = _nfsrdma_pkg(doca, ofed, kernel[0])
    rshim, mft = _rshim_pkg(), _mft_pkg()
    pkgs: list[Pkg] = [*kernel, utils, fw, _doca_dkms(), nfsrdma, rshim, mft]
    for profile in PROFILES:
        if profile in KERNEL_PROFILES:
            deps = f"mlnx-ofed-kernel-dkms (= {kernel[0].version}), {utils.name}, {fw.name}"
        else:
            deps = utils.name
        if profile == DOCA_ALL:
            deps += f", {rshim.name}, {mft.name}"
        pkgs.append(Pkg(name=profile, version=meta_version, depends=deps))
    return pkgs


# ------------------------------------------------------------------ signing


@dataclass(frozen=True)
class Signer:
    home: Path
    fingerprint: str
    public_key: str  # ASCII-armored


def make_signer(home: Path, name: str) -> Signer:
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg",
            "--batch",
            "--pinentry-mode",
            "loopback",
            "--passphrase",
            "",
            "--quick-gen-key",
            f"{name} <{name}@example.invalid>",
            "ed25519",
            "sign",
            "never",
        ],
        check=True,
        capture_output=True,
        env=env,
    )
    out = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-keys"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    fpr = next(line.split(":")[9] for line in out.splitlines() if line.startswith("fpr:"))
    pub = subprocess.run(
        ["gpg", "--batch", "--armor", "--export", fpr],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout
    return Signer(home=home, fingerprint=fpr, public_key=pub)


def stop_agent(signer: Signer) -> None:
    """gpg starts an agent per GNUPGHOME; stop it so the directory can go away."""
    subprocess.run(
        ["gpgconf", "--kill", "gpg-agent"],
        check=False,
        capture_output=True,
        env={**os.environ, "GNUPGHOME": str(signer.home)},
    )


def write_repo(repo: Path, pkgs: list[Pkg], signer: Signer, work: Path, key: Signer) -> None:
    """A flat repository (``deb URL ./``) signed by ``signer``; ``key``'s public
    key is shipped in it as GPG-KEY-Mellanox.pub (like DOCA's)."""
    repo.mkdir(parents=True, exist_ok=True)
    for pkg in pkgs:
        _write_deb(pkg, repo, work)
    packages_txt = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (repo / "Packages").write_text(packages_txt)
    with gzip.open(repo / "Packages.gz", "wt") as f:
        f.write(packages_txt)
    release = subprocess.run(
        [
            "apt-ftparchive",
            "-o",
            "APT::FTPArchive::Release::Origin=Canvos-doca-standin",
            "-o",
            "APT::FTPArchive::Release::Label=DOCA-HOST standin",
            "-o",
            "APT::FTPArchive::Release::Suite=./",
            "release",
            ".",
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (repo / "Release").write_text(release)
    env = {**os.environ, "GNUPGHOME": str(signer.home)}
    for args, out in (
        (["--clearsign", "-o", "InRelease"], "InRelease"),
        (["--armor", "--detach-sign", "-o", "Release.gpg"], "Release.gpg"),
    ):
        (repo / out).unlink(missing_ok=True)
        subprocess.run(
            ["gpg", "--batch", "--yes", "--local-user", signer.fingerprint, *args, "Release"],
            cwd=repo,
            check=True,
            capture_output=True,
            env=env,
        )
    (repo / "GPG-KEY-Mellanox.pub").write_text(key.public_key)


def write_local_repo_deb(out_dir: Path, repo: Path, doca: str, work: Path) -> Path:
    """A ``doca-host_<ver>-...`` local-repo package carrying ``repo`` as its pool."""
    root = work / "doca-host-root"
    shutil.rmtree(root, ignore_errors=True)
    pool = root / f"usr/share/doca-host-{doca}-standin/repo"
    shutil.copytree(repo, pool)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: doca-host\nVersion: {doca}-standin\nArchitecture: amd64\n"
        "Maintainer: canvos-doca tests <tests@example.invalid>\n"
        "Description: local DOCA repository (stand-in)\n"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    deb = out_dir / f"doca-host_{doca}-0.0.1-25.10-debian12_amd64.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
        check=True,
        capture_output=True,
    )
    return deb


def installed_size_kib(pkgs: list[Pkg], repo: Path) -> int:
    """Sum of Installed-Size (KiB) of the given packages in ``repo``'s index."""
    names = {p.name for p in pkgs}
    total = 0
    current = ""
    for line in (repo / "Packages").read_text().splitlines():
        if line.startswith("Package: "):
            current = line.split(": ", 1)[1]
        elif line.startswith("Installed-Size: ") and current in names:
            total += int(line.split(": ", 1)[1])
    return total
