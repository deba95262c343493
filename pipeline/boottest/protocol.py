"""The serial protocol between the booted host and the harness. Pure.

The guest side (``overlays/boottest/canvos-doca-boot-report``, started by a
Kairos cloud-config stage at every boot) writes one block per boot to the
serial console. Every line carries ``TAG`` so kernel messages interleaved on
the same console are ignored::

    CANVOS-DOCA-BOOT-TEST BEGIN v1
    CANVOS-DOCA-BOOT-TEST key=value          (repeatable keys: mount, error)
    CANVOS-DOCA-BOOT-TEST END lines=N sha256=HEX

``N`` and ``HEX`` cover the ``key=value`` lines (each ending in a newline), so
a block with a lost or garbled line is detected instead of misread. Keys:
``boot`` (count since install, kept on the persistent partition), ``kernel``,
``cmdline``, ``system_state``, ``detect_exit`` and ``detect`` (the exit code
and the ``--json`` line of ``canvos-doca-detect``), ``persistent`` and
``mount`` (``PATH DEVICE ROOT`` from ``/proc/self/mountinfo``, ``-`` when not a
mount point), ``marker`` and ``marker_written`` / ``marker_expected`` /
``marker_found``, ``mlx5_core`` (``loaded|not-loaded DEVICES``), ``next``
(``reboot|poweroff``), ``error``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

TAG = "CANVOS-DOCA-BOOT-TEST"
PROTOCOL = "v1"
# Boots after the install: the first writes the marker and reboots, the
# second finds it and powers off.
BOOTS = 2
# The marker's file name under the chosen persistent path, and the guest
# script's state directory on the persistent partition.
MARKER_NAME = ".canvos-doca-boot-test"
STATE_DIR_NAME = ".canvos-doca-boot-test"


@dataclass(frozen=True)
class Expectation:
    """What the booted host must show (the same values reach the guest config).

    ``paths``: the DOCA persistent paths, each a bind mount from the persistent
    state (or the persistent partition itself); ``marker_dir``: the one the
    marker goes under; ``kernel_args``: words the kernel command line must hold.
    """

    paths: tuple[str, ...]
    marker_dir: str
    # The persistent partition's mount point and immucore's state directory on it.
    persistent: str
    state_dir: str
    kernel_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.paths:
            raise ValueError("Expectation needs at least one persistent path")
        if self.marker_dir not in self.paths:
            raise ValueError(f"marker_dir {self.marker_dir} is not one of the paths")
        for path in (*self.paths, self.persistent, self.state_dir):
            if not path.startswith("/") or any(c.isspace() for c in path):
                raise ValueError(f"{path!r} is not an absolute path without whitespace")
        if not self.state_dir.startswith(self.persistent.rstrip("/") + "/"):
            raise ValueError(f"state_dir {self.state_dir} is not under {self.persistent}")
        if any(not arg or any(c.isspace() for c in arg) for arg in self.kernel_args):
            raise ValueError("kernel_args must be single words")

    def state_root(self, path: str) -> str:
        """The mountinfo root a persistent ``path`` shows when it is mounted right.

        immucore ``pkg/op/fs.go`` ``MountBind``: ``<state_dir>/<path with '/' as
        '-'>.bind`` is bind-mounted onto the path, so with the state directory
        ``/usr/local/.state`` its root inside the persistent filesystem is
        ``/.state/<name>.bind``; the persistent partition itself shows ``/``.
        """
        if path == self.persistent:
            return "/"
        relative = self.state_dir.removeprefix(self.persistent)
        return f"{relative}/{path.strip('/').replace('/', '-')}.bind"

    @property
    def harness_dir(self) -> str:
        return f"{self.persistent.rstrip('/')}/{STATE_DIR_NAME}"


@dataclass(frozen=True)
class GuestCommands:
    """How the guest script acts on the host it runs on (see its header).

    ``console``: the device the block goes to; ``run_dir``: this boot's
    scratch directory (tmpfs); ``require``: a file that must exist for a
    report (empty: always); ``wait``: a command that returns once the boot has
    settled (empty: none), bounded by ``wait_timeout_s``.
    """

    console: str
    run_dir: str
    require: str
    wait: str
    wait_timeout_s: int
    detect: str
    reboot: str
    poweroff: str


def guest_config(expect: Expectation, commands: GuestCommands) -> str:
    """The guest script's config file: ``KEY=value`` lines (read, never sourced)."""
    values = {
        "TAG": TAG,
        "PROTOCOL": PROTOCOL,
        "BOOTS": str(BOOTS),
        "PATHS": " ".join(expect.paths),
        "PERSISTENT": expect.persistent,
        "KERNEL_ARGS": " ".join(expect.kernel_args),
        "MARKER": f"{expect.marker_dir.rstrip('/')}/{MARKER_NAME}",
        "STATE_DIR": expect.harness_dir,
        "CONSOLE": commands.console,
        "RUN_DIR": commands.run_dir,
        "REQUIRE": commands.require,
        "WAIT": commands.wait,
        "WAIT_TIMEOUT": str(commands.wait_timeout_s),
        "DETECT": commands.detect,
        "REBOOT": commands.reboot,
        "POWEROFF": commands.poweroff,
    }
    for key, value in values.items():
        if "\n" in value:
            raise ValueError(f"guest config {key} must be one line")
    return "".join(f"{key}={value}\n" for key, value in values.items())


# ------------------------------------------------------------------ blocks


@dataclass(frozen=True)
class Block:
    """One report block: its ``key=value`` lines, and what is wrong with it."""

    fields: tuple[tuple[str, str], ...]
    problem: str = ""


def block_text(fields: Iterable[tuple[str, str]]) -> str:
    """A block as the guest writes it (used by tests and documentation)."""
    body = "".join(f"{key}={value}\n" for key, value in fields)
    digest = hashlib.sha256(body.encode()).hexdigest()
    lines = [f"{TAG} BEGIN {PROTOCOL}"]
    lines += [f"{TAG} {line}" for line in body.splitlines()]
    lines.append(f"{TAG} END lines={len(body.splitlines())} sha256={digest}")
    return "\n".join(lines) + "\n"


class SerialParser:
    """Finds report blocks in a serial stream fed in arbitrary chunks.

    Only lines holding ``TAG`` count; text before the tag on the same line
    (a console prompt, a partial kernel message) is ignored. A BEGIN inside an
    open block closes the open one as truncated.
    """

    def __init__(self) -> None:
        self._partial = b""
        self._open: list[str] | None = None
        self._version = ""

    def feed(self, data: bytes) -> list[Block]:
        found: list[Block] = []
        lines = (self._partial + data).split(b"\n")
        self._partial = lines.pop()
        for raw in lines:
            block = self._line(raw.decode("utf-8", "replace").replace("\r", ""))
            if block is not None:
                found.append(block)
        return found

    def finish(self) -> list[Block]:
        """End of stream: a block still open is truncated."""
        found = self.feed(b"\n") if self._partial else []
        if self._open is not None:
            found.append(Block(_fields(self._open), "the block ended without its END line"))
            self._open = None
        return found

    def _line(self, line: str) -> Block | None:
        at = line.find(TAG + " ")
        if at < 0:
            return None
        content = line[at + len(TAG) + 1 :].rstrip()
        if content.startswith("BEGIN "):
            closed = None
            if self._open is not None:
                closed = Block(_fields(self._open), "a new block began before this one's END line")
            self._open, self._version = [], content.removeprefix("BEGIN ").strip()
            return closed
        if self._open is None:
            return None
        if content.startswith("END ") or content == "END":
            lines, self._open = self._open, None
            return Block(_fields(lines), self._check(lines, content))
        self._open.append(content)
        return None

    def _check(self, lines: list[str], end: str) -> str:
        if self._version != PROTOCOL:
            return f"protocol {self._version!r} is not {PROTOCOL!r}"
        attrs = dict(part.split("=", 1) for part in end.split()[1:] if "=" in part)
        body = "".join(f"{line}\n" for line in lines)
        if attrs.get("lines") != str(len(lines)):
            return f"END says lines={attrs.get('lines')}, {len(lines)} arrived"
        if attrs.get("sha256") != hashlib.sha256(body.encode()).hexdigest():
            return "the lines do not match the END line's sha256 (garbled on the console)"
        if any("=" not in line for line in lines):
            return "a line is not key=value"
        return ""


def _fields(lines: Sequence[str]) -> tuple[tuple[str, str], ...]:
    pairs = (line.split("=", 1) for line in lines if "=" in line)
    return tuple((key, value) for key, value in pairs)


# ------------------------------------------------------------------ reports


@dataclass(frozen=True)
class MountFact:
    """A path as ``/proc/self/mountinfo`` shows it (``-`` when not a mount point)."""

    path: str
    device: str = "-"
    root: str = "-"

    @property
    def mounted(self) -> bool:
        return self.device != "-"


@dataclass(frozen=True)
class BootReport:
    """One boot's report block, typed. ``problem``: why the block is unusable."""

    boot: int | None = None
    kernel: str = ""
    cmdline: str = ""
    system_state: str = ""
    detect_exit: int | None = None
    detect: Mapping[str, Any] = field(default_factory=dict)
    persistent: MountFact | None = None
    mounts: tuple[MountFact, ...] = ()
    marker: str = ""
    marker_written: str = ""
    marker_expected: str = ""
    marker_found: str = ""
    mlx5_core: str = ""
    next: str = ""
    errors: tuple[str, ...] = ()
    problem: str = ""


def _int(value: str) -> int | None:
    try:
        return int(value)
    except ValueError:
        return None


def _mount(value: str) -> MountFact:
    parts = value.split()
    parts += ["-"] * (3 - len(parts))
    return MountFact(parts[0], parts[1], parts[2])


def parse_report(block: Block) -> BootReport:
    """A ``BootReport`` from a block; unknown keys are ignored (forward compatible)."""
    if block.problem:
        return BootReport(problem=block.problem)
    values: dict[str, str] = {}
    mounts: list[MountFact] = []
    errors: list[str] = []
    for key, value in block.fields:
        if key == "mount":
            mounts.append(_mount(value))
        elif key == "error":
            errors.append(value)
        else:
            values.setdefault(key, value)
    detect: dict[str, Any] = {}
    if values.get("detect"):
        try:
            loaded = json.loads(values["detect"])
            detect = loaded if isinstance(loaded, dict) else {}
        except json.JSONDecodeError:
            errors.append("canvos-doca-detect --json printed no valid JSON object")
    return BootReport(
        boot=_int(values.get("boot", "")),
        kernel=values.get("kernel", ""),
        cmdline=values.get("cmdline", ""),
        system_state=values.get("system_state", ""),
        detect_exit=_int(values.get("detect_exit", "")),
        detect=detect,
        persistent=_mount(values["persistent"]) if "persistent" in values else None,
        mounts=tuple(mounts),
        marker=values.get("marker", ""),
        marker_written=values.get("marker_written", ""),
        marker_expected=values.get("marker_expected", ""),
        marker_found=values.get("marker_found", ""),
        mlx5_core=values.get("mlx5_core", ""),
        next=values.get("next", ""),
        errors=tuple(errors),
    )
