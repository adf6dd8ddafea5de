"""Peak resident memory of loading one artifact and running it, in a fresh process (so the
numbers are not polluted by the benchmark's own imports). `python -m benchmarks.rss TARGET PATH NAMES`"""
from __future__ import annotations

import json
import resource
import sys


def _status_mb(field: str) -> float:
    """VmRSS (now) or VmHWM (peak since exec). ru_maxrss would include the forking parent's peak."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_mb() -> float:
    return _status_mb("VmRSS")


def main(target: str, path: str, names: str, inputs_npz: str) -> dict:
    import numpy as np

    from edgemod.runtime.runners import load_runner

    feed = dict(np.load(inputs_npz))
    before = _rss_mb()
    runner = load_runner(target, path, tuple(names.split(",")))
    for _ in range(20):
        runner(feed)
    peak = _status_mb("VmHWM")
    return {"rss_before_load_mb": round(before, 1), "peak_rss_mb": round(peak, 1),
            "model_rss_mb": round(max(_rss_mb() - before, 0.0), 1)}


if __name__ == "__main__":
    print(json.dumps(main(*sys.argv[1:5])))
