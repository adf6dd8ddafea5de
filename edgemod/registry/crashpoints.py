"""Named crash points of the registry's commit protocol: a testing aid for fault injection.

Writers call `crash_point("publish:after-release-written")` between the steps of the protocol (see
edgemod/registry/__init__.py), and a pull between the steps of its own (edgemod/registry/pull.py).
It does nothing unless the environment variable `EDGEMOD_CRASH_AT` names that step; then the
process sends itself `EDGEMOD_CRASH_SIGNAL` (KILL, the default, or INT) right there. Only the
fault-injection tests (tests/test_registry_crash.py) and scripts/registry_kill_loop.py set these
variables, in the subprocesses they kill.
"""
from __future__ import annotations

import os
import signal

CRASH_AT = "EDGEMOD_CRASH_AT"
CRASH_SIGNAL = "EDGEMOD_CRASH_SIGNAL"

# Every step named in the registry's code, in protocol order (the tests kill a writer at each one).
CRASH_POINTS = (
    "publish:after-intent",
    "publish:after-claim",
    "publish:during-upload",
    "publish:after-files",
    "publish:after-signature",
    "publish:after-release-written",
    "publish:after-claim-committed",
    "publish:after-history",
    "publish:after-promote-event",
    "publish:after-channels",
    "publish:after-index",
    "promote:after-intent",
    "promote:after-history",
    "promote:after-channels",
    "promote:after-index",
    "rollback:after-intent",
    "rollback:after-history",
    "rollback:after-channels",
    "rollback:after-index",
    "prune:after-intent",
    "prune:after-history",
    "prune:after-uncommit",
    "prune:after-files",
    "prune:after-channels",
    "prune:after-index",
    "lock:held",
    # A local folder's writer killed after a compare-and-swap wrote its key, before it removed the key's
    # lock file (one point per key: a kill is taken at the first write of that key).
    "lock:wrote-history",
    "lock:wrote-channels",
    "lock:wrote-index",
    "pull:after-staging",
    "pull:during-download",
    "pull:after-file",
    "pull:after-files",
    "pull:after-records",
    "pull:before-swap",
    "pull:after-swap",
)


def crash_point(step: str) -> None:
    """Die here, with the configured signal, when `EDGEMOD_CRASH_AT` names `step`."""
    if os.environ.get(CRASH_AT) != step:
        return
    os.environ.pop(CRASH_AT)  # once per process, as one signal would be: recovery code may pass here again
    name = os.environ.get(CRASH_SIGNAL, "KILL").upper().removeprefix("SIG")
    os.kill(os.getpid(), signal.SIGINT if name == "INT" else signal.SIGKILL)
