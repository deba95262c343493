"""The free-disk-space action's script, run with every system command stubbed.

Nothing is deleted or mounted: `sudo`, `df`, `mountpoint` and the LVM tools
are stand-ins on PATH that log what they were asked. The checks are on the
decisions: how much of / and /mnt goes into the pool, that Docker's existing
daemon.json settings survive, and that a runner without /mnt is left alone.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).parents[2]
ACTION = ROOT / ".github" / "actions" / "free-disk-space" / "action.yml"
GIB_KB = 1048576

STUBS = {
    "sudo": """#!/usr/bin/env bash
echo "sudo $*" >> "$STUB_LOG"
case "$1" in
  cat) cat "$2" ;;
  tee) cat > "$STUB_DIR/tee.out" ;;
  losetup) echo "/dev/loop$(grep -c '^sudo losetup' "$STUB_LOG")" ;;
  docker) [ "${2:-}" = info ] && echo /build-pool/docker ;;
esac
exit 0
""",
    "df": """#!/usr/bin/env bash
for last; do :; done
case "$last" in
  /) avail=$STUB_ROOT_KB ;;
  /mnt) avail=$STUB_MNT_KB ;;
  *) avail=0 ;;
esac
if [[ "$*" == *--output=avail* ]]; then printf 'Avail\\n%s\\n' "$avail"; else echo "df $*"; fi
""",
    "mountpoint": '#!/usr/bin/env bash\n[ "$STUB_HAS_MNT" = yes ]\n',
    "vgcreate": "#!/bin/sh\nexit 0\n",
}


def run_action(tmp_path: Path, root_gb: int, mnt_gb: int, has_mnt: bool) -> list[str]:
    if not has_jq():
        (pytest.fail if os.environ.get("CI") == "true" else pytest.skip)("jq not installed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in STUBS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    daemon = tmp_path / "daemon.json"
    daemon.write_text(json.dumps({"exec-opts": ["native.cgroupdriver=cgroupfs"]}))
    log = tmp_path / "log"
    log.write_text("")
    script = yaml.safe_load(ACTION.read_text())["runs"]["steps"][0]["run"]
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "STUB_LOG": str(log),
        "STUB_DIR": str(tmp_path),
        "STUB_ROOT_KB": str(root_gb * GIB_KB),
        "STUB_MNT_KB": str(mnt_gb * GIB_KB),
        "STUB_HAS_MNT": "yes" if has_mnt else "no",
        "DOCKER_DAEMON_CONFIG": str(daemon),
    }
    result = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return log.read_text().splitlines()


def has_jq() -> bool:
    return any((Path(p) / "jq").exists() for p in os.environ["PATH"].split(os.pathsep))


def test_pools_root_and_mnt_for_docker(tmp_path: Path) -> None:
    log = run_action(tmp_path, root_gb=54, mnt_gb=66, has_mnt=True)
    # 10 GB of / stay for the checkout and the exported ISO; 1 GB of /mnt spare.
    assert "sudo fallocate -l 44G /build-pool-root.img" in log
    assert "sudo fallocate -l 65G /mnt/build-pool-mnt.img" in log
    assert "sudo vgcreate -qq buildpool /dev/loop1 /dev/loop2" in log
    assert "sudo mount /dev/buildpool/docker /build-pool" in log
    # Docker is stopped before its data root moves and started after.
    stop = log.index("sudo systemctl stop docker.socket docker.service")
    start = log.index("sudo systemctl start docker.service")
    assert stop < log.index("sudo mount /dev/buildpool/docker /build-pool") < start
    # The runner's own daemon settings are kept.
    written = json.loads((tmp_path / "tee.out").read_text())
    assert written == {
        "exec-opts": ["native.cgroupdriver=cgroupfs"],
        "data-root": "/build-pool/docker",
    }
    # Toolchains the build never uses are removed first.
    assert any(line.startswith("sudo rm -rf /usr/local/lib/android") for line in log)


def test_single_disk_runner_keeps_docker_where_it_is(tmp_path: Path) -> None:
    log = run_action(tmp_path, root_gb=120, mnt_gb=0, has_mnt=False)
    assert not any("fallocate" in line or "systemctl" in line for line in log)
    assert any(line.startswith("sudo docker image prune") for line in log)
