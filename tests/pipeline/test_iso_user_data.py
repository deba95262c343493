"""The script that writes user-data secrets onto a finished ISO, run for real
with xorriso on a small hybrid ISO laid out like a Kairos installer (El Torito
BIOS and UEFI images, GPT with an appended EFI partition, volume COS_LIVE)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from pipeline import earthly, facts

SCRIPT = Path(earthly.__file__).parent / "iso-user-data.sh"
ISO_PATH = facts.CANVOS_ISO_USER_DATA_PATH
TOKEN = "tok-Sentinel-iso-4411"
PUBLIC = "#cloud-config\nstylus:\n  site:\n    edgeHostToken: placeholder\n"
SECRET = f"#cloud-config\nstylus:\n  site:\n    edgeHostToken: {TOKEN}\n"


@pytest.fixture(scope="module")
def xorriso() -> str:
    found = shutil.which("xorriso")
    if found is None:
        if os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}:
            pytest.fail("CI=true and xorriso is missing (.ci/run installs it)")
        pytest.skip("needs xorriso (apt-get install xorriso)")
    return found


@dataclass
class Iso:
    path: Path
    root: Path


def make_iso(tmp: Path, user_data: str) -> Iso:
    """A hybrid ISO with the user-data CanvOS's +iso would have put on it."""
    root = tmp / "root"
    (root / "boot").mkdir(parents=True)
    (root / Path(ISO_PATH).parent.relative_to("/")).mkdir(parents=True)
    (root / "boot" / "bios.img").write_bytes(os.urandom(2048))
    (root / "boot" / "efi.img").write_bytes(os.urandom(64 * 1024))
    (root / "boot" / "kernel").write_bytes(os.urandom(300 * 1024))
    (root / ISO_PATH.lstrip("/")).write_text(user_data)
    iso = tmp / "palette-edge-installer.iso"
    subprocess.run(
        ["xorriso", "-as", "mkisofs", "-V", "COS_LIVE", "-R", "-J",
         "-b", "boot/bios.img", "-no-emul-boot", "-boot-load-size", "4", "-boot-info-table",
         "-eltorito-alt-boot", "-e", "boot/efi.img", "-no-emul-boot",
         "-append_partition", "2", "0xef", str(root / "boot" / "efi.img"),
         "-appended_part_as_gpt", "-o", str(iso), str(root)],
        check=True, capture_output=True,
    )  # fmt: skip
    return Iso(iso, root)


def boot_report(iso: Path) -> list[str]:
    """What boots the ISO: volume id, El Torito images, the partition table
    kind and the appended EFI partition. Block addresses (a rewrite moves
    them), cylinder alignment and xorriso's "Gap" filler partitions are left
    out: they change with the layout, not with what boots."""
    done = subprocess.run(
        ["xorriso", "-indev", str(iso), "-pvd_info",
         "-report_el_torito", "plain", "-report_system_area", "plain"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    out: list[str] = []
    names: dict[str, str] = {}
    for line in done.stdout.splitlines():
        fields = line.split()
        if line.startswith(("Volume Id", "El Torito img path")):
            out.append(line)
        elif line.startswith("El Torito boot img"):
            out.append(" ".join(fields[:-1]))  # without the LBA
        elif line.startswith("System area summary"):
            out.append(" ".join(f for f in fields if not f.startswith("cyl-align")))
        elif line.startswith("GPT partname local"):
            names[fields[4]] = fields[5]
        elif line.startswith("GPT type GUID") and not names[fields[4]].startswith("Gap"):
            out.append(f"GPT partition {names[fields[4]]} type {fields[5]}")
    return out


def read_back(iso: Path, path: str, into: Path) -> bytes:
    subprocess.run(
        ["xorriso", "-osirrox", "on", "-indev", str(iso), "-extract", path, str(into)],
        check=True, capture_output=True,
    )  # fmt: skip
    return into.read_bytes()


def run(
    tmp: Path, iso: Path, public: str, path: str = ISO_PATH
) -> subprocess.CompletedProcess[str]:
    (tmp / "public").write_text(public)
    (tmp / "secret").write_text(SECRET)
    (tmp / "secret").chmod(0o400)
    (tmp / "tmpfs").mkdir(exist_ok=True)
    return subprocess.run(
        ["bash", str(SCRIPT), str(iso), str(tmp / "public"), str(tmp / "secret"), path,
         str(tmp / "out")],
        capture_output=True, text=True, check=False, timeout=120,
        env={**os.environ, "TMPDIR": str(tmp / "tmpfs")},
    )  # fmt: skip


def test_secrets_are_written_and_the_iso_still_boots_the_same(xorriso: str, tmp_path: Path) -> None:
    made = make_iso(tmp_path, PUBLIC)
    result = run(tmp_path, made.path, PUBLIC)
    assert result.returncode == 0, result.stderr
    new = tmp_path / "out" / made.path.name
    assert read_back(new, ISO_PATH, tmp_path / "got") == SECRET.encode()
    kernel = read_back(new, "/boot/kernel", tmp_path / "kernel")
    assert kernel == (made.root / "boot" / "kernel").read_bytes()
    assert boot_report(new) == boot_report(made.path)
    report = "\n".join(boot_report(new))
    assert "UEFI" in report and "COS_LIVE" in report
    # The appended EFI system partition (type GUID C12A7328-F81F-11D2-BA4B-00A0C93EC93B).
    assert "type 28732ac11ff8d211ba4b00a0c93ec93b" in report
    digest = hashlib.sha256(new.read_bytes()).hexdigest()
    assert (tmp_path / "out" / f"{new.name}.sha256").read_text() == f"{digest}  {new.name}\n"
    # The secret is never printed, and no temporary copy is left behind.
    assert TOKEN not in result.stdout + result.stderr
    assert list((tmp_path / "tmpfs").iterdir()) == []


def test_an_iso_whose_user_data_is_not_the_one_given_is_left_alone(
    xorriso: str, tmp_path: Path
) -> None:
    made = make_iso(tmp_path, "#cloud-config\n# someone else's\n")
    result = run(tmp_path, made.path, PUBLIC)
    assert result.returncode == 66
    assert "is not the user-data +iso was given; nothing was changed" in result.stderr
    assert not (tmp_path / "out" / made.path.name).exists()


def test_an_iso_without_user_data_at_the_path_is_named(xorriso: str, tmp_path: Path) -> None:
    made = make_iso(tmp_path, PUBLIC)
    result = run(tmp_path, made.path, PUBLIC, path="/config.yaml")
    assert result.returncode == 66
    assert "has no /config.yaml" in result.stderr and TOKEN not in result.stderr
