"""Turn a failed build step into a message a user can act on. Pure.

Dagger reports a failed exec as ``ExecError`` with the whole output; users need
the failing target, the cause when it is a known one (privileges, disk), and
the last lines of the log, not a Python traceback.
"""

from __future__ import annotations

import re

from pipeline import disk

TAIL_LINES = 40

PRIVILEGED_HELP = (
    "Earthly's embedded BuildKit and the docker daemon need root capabilities "
    "(insecureRootCapabilities, like `docker run --privileged`). Run the build on a "
    "Dagger engine that allows privileged execution (the default engine started by "
    "the dagger CLI does; a locked-down remote or rootless engine may not)."
)
_ONE = disk.total_gb(1, user_data_secrets=False)
DISK_HELP = (
    "The Dagger engine ran out of disk space. `dagger call ... plan` states what this "
    f"build needs on the engine host (about {_ONE} GB for one K8s version on a cold "
    f"engine, +{disk.total_gb(2, user_data_secrets=False) - _ONE} GB per extra version). "
    "Free space on the engine host, or prune old cache: "
    "`dagger core engine local-cache prune`, then run again."
)

_PRIVILEGE_MARKERS = (
    "appears to be running unprivileged",
    "privileged mode is required",
    "insecure root capabilities",
    "insecurerootcapabilities",
    "entitlement",
)
_DISK_MARKERS = ("no space left on device", "disk quota exceeded", "enospc")
_ERROR_LINE = re.compile(r"(?i)\b(error|failed|canvos-doca:)\b")


def tail(text: str, lines: int = TAIL_LINES) -> list[str]:
    """The last non-empty lines of a log."""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()]
    return kept[-lines:]


def cause(output: str) -> str:
    """A known cause's advice found in the output, or an empty string."""
    lowered = output.lower()
    if any(marker in lowered for marker in _DISK_MARKERS):
        return "Disk exhausted. " + DISK_HELP
    if any(marker in lowered for marker in _PRIVILEGE_MARKERS):
        return "Privileged execution refused. " + PRIVILEGED_HELP
    return ""


def explain(step: str, exit_code: int | None, stdout: str, stderr: str) -> str:
    """The message for a failed step: what failed, the likely cause, the log tail."""
    output = f"{stdout}\n{stderr}"
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    lines = [f"{step} failed{code}."]
    advice = cause(output)
    if advice:
        lines.append(advice)
    errors = [line for line in tail(output, 400) if _ERROR_LINE.search(line)][-5:]
    if errors:
        lines.append("Error lines:")
        lines += [f"  {line}" for line in errors]
    last = tail(output)
    if last:
        lines.append(f"Last {len(last)} lines of the log:")
        lines += [f"  {line}" for line in last]
    return "\n".join(lines)


def explain_query(step: str, message: str) -> str:
    """The message for an engine-side error (no exec output to show)."""
    lines = [f"{step} failed: {message.strip()}"]
    advice = cause(message)
    if advice:
        lines.append(advice)
    return "\n".join(lines)
