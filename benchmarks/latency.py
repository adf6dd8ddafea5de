"""Latency of one call, measured the way a device calls a model: batch 1, after warm-up."""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np


def measure(call: Callable[[], object], runs: int = 200, warmup: int = 20) -> dict:
    """p50/p90/p99/mean in milliseconds over `runs` timed calls."""
    for _ in range(warmup):
        call()
    times = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        times[i] = time.perf_counter() - start
    times *= 1e3
    return {"p50_ms": round(float(np.percentile(times, 50)), 4), "p90_ms": round(float(np.percentile(times, 90)), 4),
            "p99_ms": round(float(np.percentile(times, 99)), 4), "mean_ms": round(float(times.mean()), 4),
            "runs": runs}


def interleaved(calls: dict[str, Callable[[], object]], rounds: int = 5, runs: int = 100,
                warmup: int = 20, keep_samples: bool = False) -> dict[str, dict]:
    """Measure several calls in alternating rounds so a noisy neighbour hits them all alike;
    each call's p50 is the median of its per-round medians."""
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
