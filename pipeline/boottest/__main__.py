"""``python3 -m boottest run --config FILE --out DIR`` (inside the QEMU container)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from .harness import RunConfig, run
from .qemu import KVM_DEVICE


def main(argv: Sequence[str] | None = None) -> int:
    """``run --config FILE --out DIR``: exit 0 passed, 1 failed, 2 unusable input."""
    parser = argparse.ArgumentParser(prog="python3 -m boottest", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run_cmd = commands.add_parser("run", help="install, boot twice, write report.json")
    run_cmd.add_argument("--config", required=True, type=Path, help="RunConfig JSON file")
    run_cmd.add_argument("--out", required=True, type=Path, help="output directory")
    run_cmd.add_argument("--kvm-device", default=KVM_DEVICE, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    try:
        config = RunConfig.from_json(args.config.read_text())
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"boot-test: unusable config {args.config}: {exc}", file=sys.stderr)
        return 2
    try:
        report = run(config, args.out, kvm_device=args.kvm_device)
    except RuntimeError as exc:
        print(f"boot-test: {exc}", file=sys.stderr)
        return 2
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
