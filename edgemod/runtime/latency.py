"""Latency measured the way a device calls a model: batch 1, after warm-up.

Export and bench both time artifacts with `interleaved`, so their numbers are comparable.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def interleaved(calls: dict[str, Callable[[], object]], rounds: int = 5, runs: int = 100,
                warmup: int = 20, keep_samples: bool = False,
                advance: Callable[[int], None] | None = None) -> dict[str, dict]:
    """Time several calls in alternating rounds, so a noisy neighbour hits them all alike.

    Args:
        calls: name -> a call without arguments (one batch-1 inference).
        rounds: how many times the calls take turns; `runs` timed calls each per round.
        warmup: untimed calls per call before the first round.
        keep_samples: also return every timed call in milliseconds.
        advance: called with `runs` after each call's turn in a round (a progress report; the
            timed calls in all are `rounds * runs * len(calls)`).

    Returns:
        name -> p50/p90/p99/mean in milliseconds, the spread of the per-round medians relative to
        the p50 (how much the machine drifted), and the number of timed runs.
    """
    for call in calls.values():
        for _ in range(warmup):
            call()
    samples: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(rounds):
        for name, call in calls.items():
            for _ in range(runs):
                start = time.perf_counter()
                call()
                samples[name].append((time.perf_counter() - start) * 1e3)
            if advance is not None:
                advance(runs)
    out = {}
    for name, values in samples.items():
        values = np.asarray(values)
        rounds_p50 = [float(np.median(chunk)) for chunk in np.array_split(values, rounds)]
        out[name] = {"p50_ms": round(float(np.median(values)), 4), "p90_ms": round(float(np.percentile(values, 90)), 4),
                     "p99_ms": round(float(np.percentile(values, 99)), 4), "mean_ms": round(float(values.mean()), 4),
                     "round_p50_spread": round((max(rounds_p50) - min(rounds_p50)) / max(np.median(values), 1e-9), 4),
                     "runs": int(len(values))}
        if keep_samples:
            out[name]["samples"] = [round(float(v), 4) for v in values]
    return out
