"""The bench's ARM step: every TFLite artifact on emulated phone cores (`edgemod.benchmarks.arm_cost`).

Per device class (cortex-a76, cortex-a53; 1 thread): instructions per steady inference, and the
artifact's golden items replayed on the ARM kernels against this machine's x86 outputs, through
the recipe's own decision rule. Counts are a deterministic cost proxy, not milliseconds.
"""
from __future__ import annotations

import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from edgemod.console import activity, say
from edgemod.errors import EdgemodError

ARM_TARGETS = ("tflite", "mediapipe")  # the artifacts LiteRT runs on a phone
# The first counted invoke after the warm-up runs ~90 instructions more than the next ones; the median
# of three is a steady one.
STEADY_REPEATS = 3
NOT_SET_UP = "scripts/setup_arm.sh has not run on this machine"


def arm_setup_key() -> dict | None:
    """What decides the counts (qemu, plugin, LiteRT versions): part of the bench's input key, so
    setting up ARM, or changing it, re-runs the bench."""
    from edgemod.benchmarks.arm_cost import find_setup

    setup = find_setup()
    return None if setup is None else {k: v for k, v in setup.describe().items() if k != "root"}


def arm_results(student, export_dir: Path, runnable: dict, console=None) -> dict:
    """`bench.json["arm"]`: `{"setup", "classes": {class: {..., "artifacts": {name: counts + golden}}}}`,
    or `{"not_measured_because": ...}` when the emulator is not set up or nothing runs on LiteRT."""
    from edgemod.benchmarks.arm_cost import ARM_CLASSES, find_setup

    setup = find_setup()
    if setup is None:
        say(console, f"ARM cost: not measured ({NOT_SET_UP}; `bash scripts/setup_arm.sh` adds it)")
        return {"not_measured_because": NOT_SET_UP}
    artifacts = {name: record for name, record in runnable.items() if record["target"] in ARM_TARGETS}
    if not artifacts:
        return {"not_measured_because": "no TFLite artifact in this export"}
    jobs = [(device, name) for device in ARM_CLASSES for name in artifacts]
    workers = max(1, min(len(jobs), os.cpu_count() or 1))
    # Each count is its own single-threaded qemu process and instruction counts do not depend on
    # timing, so the counts run side by side, one per core.
    with activity(f"ARM cost: {len(artifacts)} artifact(s) x {len(ARM_CLASSES)} classes, {workers} at a time",
                  console), ThreadPoolExecutor(workers) as pool:
        futures = {job: pool.submit(_count_one, setup, student, export_dir, artifacts[job[1]], job[0])
                   for job in jobs}
        results = {job: future.result() for job, future in futures.items()}
    out = {"setup": setup.describe(), "classes": {}}
    for device, cpu in ARM_CLASSES.items():
        counted = {name: {**results[(device, name)], "float_twin": _float_twin(runnable, record)}
                   for name, record in artifacts.items()}
        out["classes"][device] = {"class": device, "cpu": cpu, "kind": "emulated", "unit": "instructions",
                                  "threads": [1], "emulator": f"qemu-aarch64 {setup.stamp.get('qemu', '')}".strip(),
                                  "artifacts": counted}
    return out


def _float_twin(runnable: dict, record: dict) -> str | None:
    return next((n for n, r in runnable.items() if r["target"] == record["target"] and r["scheme"] in ("fp32", "fp16")),
                None)


def _count_one(setup, student, export_dir: Path, record: dict, device: str) -> dict:
    """Counts and golden replay of one artifact on one class; an error is recorded, not raised, so
    the gate can say which artifact could not be counted."""
    from edgemod.benchmarks.arm_cost import count_tflite, replay_check
    from edgemod.runtime.decision import decide
    from edgemod.runtime.runners import load_runner

    path = export_dir / record["file"]
    items = _golden_items(export_dir, record)
    feeds, names = _feeds(path, record, items, student.input_names)
    try:
        counted = count_tflite(setup, path, feeds, device, input_names=names, repeats=STEADY_REPEATS)
    except EdgemodError as error:
        return {"error": f"{error.message} (fix: {error.hint})" if error.hint else error.message}
    runner = load_runner(record["target"], path, student.input_names, threads=1)
    x86 = [{"scores": runner(item)} for item in items]
    replay = replay_check(counted["outputs"], x86, decide=lambda s: decide(np.asarray(s).reshape(1, -1), student.labels,
                                                                            student.thresholds))
    replay["max_abs_score_diff"] = float(f"{replay['max_abs_score_diff']:.3g}")
    return {"instructions_per_inference": int(counted["instructions_per_inference"]),
            "counted_invokes": counted["counted_invokes"], "marker_overhead": counted["marker_overhead"],
            "delegate_partitions": counted["delegate_partitions"], "wall_s": counted["wall_s"], "golden": replay}


def _golden_items(export_dir: Path, record: dict) -> list[dict[str, np.ndarray]]:
    from edgemod.runtime.golden import decode_tensor

    golden = (record.get("golden") or {}).get("file")
    if not golden:
        raise EdgemodError(f"{record['file']} has no golden vectors", "re-export it: `edgemod export` writes them")
    items = json.loads((export_dir / golden).read_text())["items"]
    return [{name: decode_tensor(tensor) for name, tensor in item["inputs"].items()} for item in items]


def _feeds(path: Path, record: dict, items: list[dict], input_names: tuple[str, ...]) -> tuple[list[dict], tuple[str, ...]]:
    """A Tasks-ready file takes Tasks' input layout: convert edgemod's encoder output the way its x86
    runner does, so both sides run the same tensors."""
    if record["target"] != "mediapipe":
        return items, tuple(input_names)
    from edgemod.runtime.tasks_layout import read_layout, to_tasks_inputs

    layout = read_layout(path)
    return [to_tasks_inputs(item, layout) for item in items], tuple(layout["inputs"])
