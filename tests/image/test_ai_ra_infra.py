# ruff: noqa: E501  (embedded shell scripts read better unwrapped)
"""The ai-ra-infra preset in real container builds: everything the AI-RA-Infra
nodeprep checks on an immutable root is in the image, verify proves it, and a
new BFB or host file never re-runs the DOCA install."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from pipeline import facts, hostitems
from pipeline.spec import PlacedFile

from . import harness
from .conftest import AiRaStage, Stage, ai_ra_context, require_success, write_bfb

pytestmark = pytest.mark.docker

CHECKER = Path(__file__).with_name("nodeprep-check.sh")
# The settings the cluster profile's env file would carry: VFs and NFS over RDMA on.
NODEPREP_ENV = ("NUM_VFS=4", "NFSORDMA=yes")
# Every check of the checker on a host with VFs and NFS over RDMA.
CHECKS = 26


def nodeprep(image: str, bfb_name: str, *, mark_kairos: bool = False) -> str:
    """The checker's output in a fresh container of image (exit 0 asserted)."""
    env = " ".join(f"'{line}'" for line in (f"BFB_FILE={bfb_name}", *NODEPREP_ENV))
    script = f"""
    {"mkdir -p /etc/kairos" if mark_kairos else ""}
    mkdir -p /opt/spectrocloud
    printf '%s\\n' {env} > /opt/spectrocloud/nodeprep-env.sh
    bash /checks/nodeprep-check.sh
    """
    code, out = harness.run_in(image, script, volumes=(f"{CHECKER}:/checks/nodeprep-check.sh:ro",))
    assert code == 0, out
    return out


def lines(out: str, word: str) -> list[str]:
    return [line[len(word) + 1 :] for line in out.splitlines() if line.startswith(f"{word} ")]


def manifest(image: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(
        harness.run_in(image, "cat /usr/share/canvos-doca/manifest.json", check=True)[1]
    )
    return data


# ------------------------------------------------------------------ nodeprep


def test_nodeprep_finds_everything_in_the_ai_ra_image(ai_ra_stage: AiRaStage) -> None:
    assert ai_ra_stage.bfb is not None
    out = nodeprep(ai_ra_stage.image, ai_ra_stage.bfb.name)
    print(f"\n--- nodeprep-check.sh in the ai-ra-infra image ---\n{out}")
    assert "INFO /etc/kairos present" in out
    assert lines(out, "WARN") == []
    assert len(lines(out, "OK")) == CHECKS, out
    assert f"SUMMARY {CHECKS} OK, 0 WARN" in out


def test_nodeprep_warns_on_a_plain_doca_ofed_image(stage: Stage) -> None:
    out = nodeprep(stage.image, "bf-bundle-3.2.1-standin_prod.bfb", mark_kairos=True)
    print(f"\n--- nodeprep-check.sh in the doca-ofed image ---\n{out}")
    warns = lines(out, "WARN")
    for expected in (
        "package doca-all installed",
        "BFB /opt/spectrocloud/spcx/bfb/bf-bundle-3.2.1-standin_prod.bfb present",
        "package lldpd installed",
        "systemctl enable lldpd (unit present and enabled for boot)",
        "IOMMU switched on (intel_iommu=on or amd_iommu=on) in the Kairos boot arguments",
        "modprobe config has 'options ib_core netns_mode=0'",
        "package mlnx-nfsrdma-dkms installed",
        "rpcrdma xprtrdma svcrdma pre-staged to load at boot (modules-load.d)",
        "systemctl enable rshim (unit present and enabled for boot)",
        "bfb-install on PATH",
        "mst on PATH",
        "package mft installed",
    ):
        assert expected in warns, out
    assert len(warns) + len(lines(out, "OK")) == CHECKS


def test_nodeprep_checker_only_checks_on_an_immutable_root(base_image: str) -> None:
    code, out = harness.run_in(
        base_image,
        "bash /checks/nodeprep-check.sh",
        volumes=(f"{CHECKER}:/checks/nodeprep-check.sh:ro",),
    )
    assert code == 2, out
    assert "not an immutable root" in out


# ------------------------------------------------------------------ the image


def test_host_items_placed_where_an_upgrade_replaces_them(ai_ra_stage: AiRaStage) -> None:
    assert ai_ra_stage.bfb is not None
    name = ai_ra_stage.bfb.name
    out = harness.run_in(
        ai_ra_stage.image,
        f"""
        stat -c '%a %n' /etc/lldpd.d/rcp-lldpd.conf
        cat {facts.HOST_MODPROBE_FILE} {facts.HOST_MODULES_LOAD_FILE}
        find /usr/lib/systemd/system -path '*.wants/lldpd.service' -o -path '*.wants/rshim.service' | sort
        echo "etc-links: $(find /etc/systemd/system -name lldpd.service -o -name rshim.service | wc -l)"
        readlink {facts.NODEPREP_BFB_DIR}/{name}
        modinfo -k "$(ls /lib/modules | sort -V | tail -n 1)" -n xprtrdma
        command -v gcc-12
        """,
        check=True,
    )[1]
    assert "644 /etc/lldpd.d/rcp-lldpd.conf" in out
    assert re.search(r"^options ib_core netns_mode=0$", out, re.M)
    assert re.search(r"^rpcrdma\nxprtrdma\nsvcrdma$", out, re.M)
    assert "/usr/lib/systemd/system/multi-user.target.wants/lldpd.service" in out
    assert "/usr/lib/systemd/system/multi-user.target.wants/rshim.service" in out
    assert "etc-links: 0" in out
    assert f"/usr/share/canvos-doca/bfb/{name}" in out
    # The stand-in's rpcrdma (aliases xprtrdma, svcrdma) overrides the in-tree one.
    assert re.search(r"/updates/dkms/rpcrdma\.ko", out), out
    assert "/usr/bin/gcc-12" in out


def test_manifest_records_host_items_and_the_bfb(ai_ra_stage: AiRaStage) -> None:
    assert ai_ra_stage.bfb is not None and ai_ra_stage.spec is not None
    m = manifest(ai_ra_stage.image)
    bfb_sha = hashlib.sha256(ai_ra_stage.bfb.read_bytes()).hexdigest()
    items = hostitems.from_spec(ai_ra_stage.spec)
    assert m["profile"] == "doca-all"
    assert m["bfb"] == {
        "name": ai_ra_stage.bfb.name,
        "sha256": bfb_sha,
        "size": ai_ra_stage.bfb.stat().st_size,
        "path": f"{facts.NODEPREP_BFB_DIR}/{ai_ra_stage.bfb.name}",
        "content": f"/usr/share/canvos-doca/bfb/{ai_ra_stage.bfb.name}",
    }
    assert m["host_items"] == {
        "files": [
            {"mode": f"{f.mode:04o}", "sha256": f.sha256, "path": f.path} for f in items.files
        ],
        "units": list(items.units),
        "modprobe_options": list(items.modprobe_options),
        "modules_load": list(items.modules_load),
    }
    assert set(ai_ra_stage.spec.extra_packages) <= set(m["extra_packages"])
    # doca_packages came with the profile in the DOCA step (the stand-in
    # doca-all does not depend on mlnx-nfsrdma-dkms): held DOCA packages.
    assert m["doca_packages"] == list(ai_ra_stage.spec.doca_packages) == ["mlnx-nfsrdma-dkms"]
    held = {p["name"]: p["held"] for p in m["packages"]}
    assert held["mlnx-nfsrdma-dkms"] is True
    assert "mlnx-nfsrdma-dkms" not in m["extra_packages"]
    assert {"mlnx-ofed-kernel", "mlnx-nfsrdma"} == {d["module"] for d in m["dkms"]}
    links = {link["path"]: link for link in m["persistence"]["stable_links"]}
    assert links[m["bfb"]["path"]]["target"] == m["bfb"]["content"]


def test_verify_ran_the_host_item_checks_in_the_build(ai_ra_stage: AiRaStage) -> None:
    log = ai_ra_stage.result.log
    for line in (
        "ok    host file /etc/lldpd.d/rcp-lldpd.conf mode 0644",
        "ok    host unit lldpd.service enabled for boot by /usr/lib/systemd/system/multi-user.target.wants/lldpd.service",
        "ok    modprobe -c shows 'options ib_core netns_mode=0'",
        "ok    boot argument intel_iommu=on in /etc/cos/bootargs.cfg",
        "ok    DOCA package mlnx-nfsrdma-dkms",
        "ok    package mlnx-nfsrdma-dkms held",
    ):
        assert line in log, line
    assert re.search(
        r"DOCA package mlnx-nfsrdma-dkms: DKMS module mlnx-nfsrdma/\S+ installed for kernel \S+",
        log,
    )
    assert re.search(
        r"ok    module xprtrdma to load at boot for \S+: \S+/updates/dkms/rpcrdma\.ko\S* \(DKMS\)",
        log,
    )
    assert re.search(r"ok    BFB \S+\.bfb sha256 [0-9a-f]{64}", log)
    assert "canvos-doca: verify passed" in log


def test_verify_names_each_broken_host_item(ai_ra_stage: AiRaStage) -> None:
    assert ai_ra_stage.bfb is not None
    code, out = harness.run_in(
        ai_ra_stage.image,
        f"""
        echo extra >> /etc/lldpd.d/rcp-lldpd.conf
        rm {facts.HOST_MODPROBE_FILE}
        rm /usr/lib/systemd/system/multi-user.target.wants/rshim.service
        echo corrupt >> /usr/share/canvos-doca/bfb/{ai_ra_stage.bfb.name}
        sed -i 's/ intel_iommu=on//' /etc/cos/bootargs.cfg
        dpkg --purge --force-depends pv >/dev/null 2>&1
        canvos-doca-verify
        """,
    )
    assert code == 1, out
    fails = lines(out, "FAIL ")
    for needle in (
        "host file /etc/lldpd.d/rcp-lldpd.conf sha256",
        "modprobe -c shows 'options ib_core netns_mode=0'",
        "host unit rshim.service enabled for boot",
        f"BFB {facts.NODEPREP_BFB_DIR}/{ai_ra_stage.bfb.name} sha256",
        "boot argument intel_iommu=on",
        "extra package pv",
    ):
        assert any(f.lstrip().startswith(needle) for f in fails), (needle, out)
    assert len(fails) == 6, out


# ------------------------------------------------------------------ cache


def test_a_new_bfb_or_host_file_keeps_the_doca_install_cached(
    ai_ra_stage: AiRaStage, tmp_path: Path
) -> None:
    assert ai_ra_stage.spec is not None and ai_ra_stage.bfb is not None
    items = hostitems.from_spec(ai_ra_stage.spec)
    changed = PlacedFile(items.files[0].path, "configure system hostname .\n", 0o600)
    bfb = write_bfb(tmp_path / "bfb", ai_ra_stage.bfb.name, b"two")
    ctx, _ = ai_ra_context(
        tmp_path / "ctx",
        ai_ra_stage.spec,
        bfb,
        host=dataclasses.replace(items, files=(changed,)),
    )
    result = harness.build(ctx, harness.stage_tag("ai-ra-infra-new-bfb"), ai_ra_stage.base)
    require_success(result, "the rebuild with a new BFB and host file")
    assert result.step_states("doca-install.sh") == ["CACHED"]
    assert result.step_states("customize.sh extra-packages") == ["CACHED"]
    assert result.step_states("customize.sh host-items") == ["RAN"]
    m = manifest(result.tag)
    assert m["bfb"]["sha256"] == hashlib.sha256(bfb.read_bytes()).hexdigest()
    assert m["host_items"]["files"][0] == {
        "mode": "0600",
        "sha256": changed.sha256,
        "path": changed.path,
    }
    print(f"\nrebuild with a new BFB and host file: {result.seconds:.0f} s")


# ------------------------------------------------------------------ size


def test_size_the_preset_adds_over_doca_ofed(ai_ra_stage: AiRaStage, stage: Stage) -> None:
    def size(image: str) -> int:
        return int(harness.docker("image", "inspect", "-f", "{{.Size}}", image).stdout.strip())

    base, ai_ra = size(stage.image), size(ai_ra_stage.image)
    print(
        f"\nimage size: doca-ofed {base} B, ai-ra-infra {ai_ra} B, "
        f"ratio {ai_ra / base:.3f} (+{(ai_ra - base) / 1e6:.1f} MB)"
    )
    assert ai_ra > base


# ------------------------------------------------------------------ bad items


@pytest.mark.parametrize(
    ("case", "error"),
    [
        ("checksum", "host file /etc/x.conf: content SHA-256 "),
        ("unit", "unit nope.service to enable is not in the image: add the package"),
        (
            "etc-unit",
            "unit etc-only.service is only under /etc/systemd/system, a Kairos persistent path",
        ),
        ("module", "module nosuchmod to load at boot is not available for kernel "),
        ("two-bfbs", "more than one BFB in the build context"),
    ],
)
def test_a_bad_host_item_fails_the_step_with_one_line(
    ai_ra_stage: AiRaStage, tmp_path: Path, case: str, error: str
) -> None:
    host = tmp_path / "host"
    items = hostitems.HostItems(
        files=(PlacedFile("/etc/x.conf", "x\n"),),
        units=("nope.service",)
        if case == "unit"
        else ("etc-only.service",)
        if case == "etc-unit"
        else (),
        modules_load=("nosuchmod",) if case == "module" else (),
    )
    for rel, text in hostitems.context_files(items).items():
        path = tmp_path / rel.removeprefix(f"{hostitems.HOST_DIR.rsplit('/', 1)[0]}/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if case == "checksum":
        (host / "files" / items.files[0].sha256).write_text("tampered\n")
    if case == "two-bfbs":
        for name in ("a.bfb", "b.bfb"):
            (host / "bfb" / name).write_text(name)
    facts_env = tmp_path / "facts.env"
    facts_env.write_text(harness.shell_facts())
    doca = harness.OVERLAYS / "doca"
    code, out = harness.run_in(
        ai_ra_stage.image,
        "mkdir -p /etc/systemd/system && touch /etc/systemd/system/etc-only.service && bash /run/canvos-doca/tools/customize.sh host-items",
        volumes=(
            f"{doca / 'install'}:/run/canvos-doca/install:ro",
            f"{doca / 'tools'}:/run/canvos-doca/tools:ro",
            f"{facts_env}:/run/canvos-doca/facts.env:ro",
            f"{host}:/run/canvos-doca/host:ro",
        ),
    )
    assert code == 1, out
    errors = re.findall(r"canvos-doca: ERROR: (.*)", out)
    assert len(errors) == 1 and errors[0].startswith(error), out
