"""Who holds a claim, an intent or a temp file, and whether that writer is still alive.

Every record a writer leaves in the registry (upload claims, pending intents, lock files, temp file
names) names its holder: host, pid, the process's start time and when it began. On the same host a
holder whose pid is gone (or reused by a newer process) is dead at once, so a crashed writer's
leftovers are taken over by the next writer without a fixed wait. A holder on another host cannot
be probed; it counts as alive until `stale_after_s` has passed since it began.
"""
from __future__ import annotations

import os
import socket
import time
from typing import Any


def process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot, from /proc), or None where unknown.
    Tells a live holder from a newer process that reuses its pid."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            stat = handle.read()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[-1].split()  # the command name in (...) may contain spaces
    return fields[19] if len(fields) > 19 else None


def this_holder() -> dict[str, Any]:
    """The holder fields every record of this process carries."""
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "process_start": process_start(pid), "started_unix": time.time()}


def is_alive(record: dict[str, Any], stale_after_s: float) -> bool:
    """Whether the writer that left `record` (holder fields as `this_holder` writes them) may still be working."""
    if record.get("host") != socket.gethostname():
        try:
            started = float(record.get("started_unix", 0))
        except (TypeError, ValueError):
            return False
        return time.time() - started < stale_after_s
    pid = record.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    return pid_alive(pid, record.get("process_start"))


def pid_alive(pid: int, started: str | None = None) -> bool:
    """Whether process `pid` on this host exists (and, when `started` is known, is the same process)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    current = process_start(pid)
    return not (started and current and started != current)


def describe(record: dict[str, Any]) -> str:
    """`pid 123 on host` for messages."""
    return f"pid {record.get('pid')} on {record.get('host')}"
