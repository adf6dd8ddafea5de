"""Gate checks that hold per device class: latency, speed, ARM instruction counts, and which
classes a release must be measured on.

A budget is checked only against a measurement of its class. A required class that was not
measured fails with the command that measures it; an optional one is listed as not measured.
Host classes are timed in milliseconds (ratios from one interleaved run); emulated ARM classes
are counted in instructions per inference: a deterministic cost proxy, not milliseconds.
"""
from __future__ import annotations

import re

from edgemod.benchmarks.device_class import describe
from edgemod.benchmarks.gate_check import Check
from edgemod.budgets import EMULATED_CLASSES, DeviceBudget
from edgemod.errors import EdgemodError
from edgemod.recipe import Recipe

LATENCY_KEY = re.compile(r"^(?P<subject>.+)_(?P<stat>p50|p90|p99|avg)_(?P<threads>\d+)threads?$")
COUNT_NOTE = "instructions per inference under qemu-aarch64: a cost proxy, not milliseconds"


def measured_classes(results: dict) -> dict[str, dict]:
    """Device class -> the record of what measured it (host timing or ARM emulation)."""
    host = results.get("device") or {"class": "host", "classes": ["host"], "kind": "measured", "threads": [1, 2]}
    classes = {name: host for name in host["classes"]}
    classes.update((results.get("arm") or {}).get("classes", {}))
    classes.update(results.get("devices") or {})  # phones: `edgemod gate --device-result`
    return classes


def how_to_measure(device: str, results: dict) -> str:
    """The `fix:` of a class that was not measured."""
    if device in EMULATED_CLASSES:
        reason = (results.get("arm") or {}).get("not_measured_because", "")
        return (f"run `bash scripts/setup_arm.sh` (qemu-aarch64 + an arm64 LiteRT), then re-run `edgemod bench` or "
                f"`edgemod run`{f' ({reason})' if reason else ''}")
    if device.startswith("android"):
        return (f"{device} is a phone: with it attached, run `edgemod harness android-bench EXPORT_DIR --artifact NAME "
                "--report R.json` for each artifact the budgets name, then `edgemod gate BENCH_DIR --device-result "
                "R.json ...`")
    if device.startswith("ios"):
        return (f"{device} is an iPhone: the gate does not read iOS timings yet (the iOS harness runs golden tests); "
                "list this class as optional")
    host = results.get("device", {}).get("class", "unknown")
    return f"bench on a machine of class {device} (this bench ran on {host}), or drop the class from required_devices"


def device_checks(recipe: Recipe, results: dict, shipped: set[str], subjects) -> list[Check]:
    """Required classes, then every class budget against its own measurement."""
    budgets, measured = recipe.budgets, measured_classes(results)
    checks = []
    for device in budgets.required_devices:
        found = measured.get(device)
        checks.append(Check("device class measured (required)", device, describe(found) if found else "not measured",
                            "measured", found is not None, "" if found else f"fix: {how_to_measure(device, results)}",
                            device=device))
    for device, budget in budgets.devices.items():
        if device not in measured:
            if device not in budgets.required_devices:
                checks.append(Check("device class budgets (optional)", device, "not measured", "-", True,
                                    f"not judged: {how_to_measure(device, results)}", not_measured=True, device=device))
            continue
        if device in EMULATED_CLASSES:
            checks += _arm_checks(device, budget, results, shipped, subjects)
        elif measured[device].get("kind") == "device":
            checks += _phone_checks(device, budget, measured[device], results, shipped, subjects)
        else:
            checks += _host_latency_checks(device, budget, results, shipped, subjects)
            checks += _host_speed_checks(device, budget, results, shipped)
    return checks + _arm_replay_checks(results, shipped)


def _host_latency_checks(device: str, budget: DeviceBudget, results: dict, shipped: set[str], subjects) -> list[Check]:
    checks = []
    for key, limit in budget.latency_ms.items():
        match = LATENCY_KEY.match(key)
        if not match:
            raise EdgemodError(f"latency budget key '{key}' is not <artifact or target>_<p50|p90|p99>_<n>thread(s)",
                               "e.g. tflite_int8_static_p50_1thread: 1.0")
        column = f"{match['threads']}_thread"
        for name in subjects(match["subject"], results, shipped):
            measured = results["latency"].get(name, {}).get(column, {}).get(f"{match['stat']}_ms")
            checks.append(Check(f"latency {match['stat']} {match['threads']} thread(s) (ms)", name, measured, limit,
                                measured is not None and measured <= limit,
                                "" if measured is not None else "not measured on this platform", device=device))
    return checks


def _phone_checks(device: str, budget: DeviceBudget, record: dict, results: dict, shipped: set[str],
                  subjects) -> list[Check]:
    """A phone's `benchmark_model` timings (avg, and p50 where that LiteRT prints the median)."""
    checks, timed = [], record["artifacts"]
    for key, limit in budget.latency_ms.items():
        match = LATENCY_KEY.match(key)
        if not match:
            raise EdgemodError(f"latency budget key '{key}' is not <artifact or target>_<p50|p90|p99|avg>_<n>thread(s)",
                               "e.g. tflite_int8_static_avg_1thread: 5.0")
        for name in subjects(match["subject"], results, shipped):
            value = timed.get(name, {}).get(f"{match['threads']}_thread", {}).get(f"{match['stat']}_ms")
            checks.append(Check(f"latency {match['stat']} {match['threads']} thread(s) (ms)", name, value, limit,
                                value is not None and value <= limit,
                                "benchmark_model on the phone" if value is not None else
                                f"not in the device results for {device}: {how_to_measure(device, results)}",
                                device=device))
    limit = budget.min_quantized_speedup_vs_float
    for name in _quantized_in(results, shipped, budget.targets) if limit is not None else []:
        float_name = _float_twin(results, name)
        own, other = (timed.get(n, {}).get("1_thread", {}).get("avg_ms") for n in (name, float_name))
        ratio = round(other / own, 3) if own and other else None
        checks.append(Check(f"speed-up vs {float_name} (avg, 1 thread, on the phone)", name, ratio, limit,
                            ratio is not None and ratio >= limit,
                            "" if ratio else f"time both {name} and {float_name} at 1 thread on {device}", device=device))
    return checks


def p50(results: dict, name: str | None, threads: int = 1) -> float | None:
    return results["latency"].get(name, {}).get(f"{threads}_thread", {}).get("p50_ms") if name else None


def _float_twin(results: dict, name: str) -> str | None:
    target = results["artifacts"][name]["target"]
    return next((n for n, a in results["artifacts"].items() if a["target"] == target and not a["quantized"]), None)


def _quantized_in(results: dict, shipped: set[str], targets: list[str]) -> list[str]:
    return [n for n, a in results["artifacts"].items() if a["quantized"] and n in shipped and a["target"] in targets]


def _host_speed_checks(device: str, budget: DeviceBudget, results: dict, shipped: set[str]) -> list[Check]:
    checks, torch_p50 = [], p50(results, "torch_eager_fp32")
    for name in _quantized_in(results, shipped, budget.targets):
        own, float_name = p50(results, name), _float_twin(results, name)
        if own is None:
            continue
        if budget.min_quantized_speedup_vs_float is not None and p50(results, float_name) is not None:
            ratio = round(p50(results, float_name) / own, 3)
            checks.append(Check(f"speed-up vs {float_name} (p50, 1 thread, same run)", name, ratio,
                                budget.min_quantized_speedup_vs_float, ratio >= budget.min_quantized_speedup_vs_float,
                                device=device))
        if budget.min_speedup_vs_torch_eager is not None and torch_p50:
            ratio = round(torch_p50 / own, 3)
            checks.append(Check("speed-up vs torch eager fp32 (p50, 1 thread, same run)", name, ratio,
                                budget.min_speedup_vs_torch_eager, ratio >= budget.min_speedup_vs_torch_eager,
                                device=device))
    return checks


def arm_counts(results: dict, device: str) -> dict[str, int]:
    """Artifact -> instructions per steady inference on an emulated class."""
    artifacts = (results.get("arm") or {}).get("classes", {}).get(device, {}).get("artifacts", {})
    return {name: entry["instructions_per_inference"] for name, entry in artifacts.items()
            if entry.get("instructions_per_inference")}


def _arm_checks(device: str, budget: DeviceBudget, results: dict, shipped: set[str], subjects) -> list[Check]:
    counts, checks = arm_counts(results, device), []
    limit = budget.min_quantized_speedup_vs_float
    for name in _quantized_in(results, shipped, budget.targets) if limit is not None else []:
        float_name = _float_twin(results, name)
        if name not in counts or float_name not in counts:
            checks.append(Check(f"instruction ratio {float_name} / int8", name, None, limit, False,
                                f"not counted on {device}: {how_to_measure(device, results)}", device=device))
            continue
        ratio = round(counts[float_name] / counts[name], 3)
        checks.append(Check(f"instruction ratio {float_name} / int8 (1 thread)", name, ratio, limit, ratio >= limit,
                            f"{counts[float_name]:,} / {counts[name]:,} {COUNT_NOTE}", device=device))
    for selector, limit in budget.max_instructions_m.items():
        for name in subjects(selector, results, shipped):
            value = round(counts[name] / 1e6, 3) if name in counts else None
            checks.append(Check("instructions per inference (M)", name, value, limit, value is not None and value <= limit,
                                COUNT_NOTE if value is not None else f"not counted on {device}", device=device))
    return checks


def _arm_replay_checks(results: dict, shipped: set[str]) -> list[Check]:
    """Every counted artifact's golden items give the same decisions on the ARM kernels as on x86."""
    checks = []
    for device, record in (results.get("arm") or {}).get("classes", {}).items():
        for name, entry in record.get("artifacts", {}).items():
            replay = entry.get("golden")
            if name not in shipped or not replay:
                continue
            checks.append(Check("ARM decisions = x86 on golden items", name, replay["decision_mismatches"], 0,
                                replay["decision_mismatches"] == 0,
                                f"{replay['items']} items, max |Δscore| {replay['max_abs_score_diff']:.3g}", device=device))
    return checks


def regression_checks(recipe: Recipe, results: dict, previous: dict, name: str) -> list[Check]:
    """Latency against the last release: host p50 / torch eager; ARM instruction counts per class."""
    budget, checks = recipe.budgets.regression, []
    relative_now, relative_before = _relative_latency(results, name), _relative_latency(previous, name)
    if relative_now and relative_before:
        host = results.get("device", {}).get("class", "host")
        growth = round(relative_now / relative_before - 1, 4)
        checks.append(Check("latency increase vs baseline (p50 / torch eager, each run)", name, growth,
                            budget.max_latency_increase, growth <= budget.max_latency_increase, device=host))
    for device in EMULATED_CLASSES:
        now, before = arm_counts(results, device).get(name), arm_counts(previous, device).get(name)
        if now and before:
            growth = round(now / before - 1, 5)
            checks.append(Check("instructions increase vs baseline", name, growth, budget.max_instructions_increase,
                                growth <= budget.max_instructions_increase, f"{before:,} -> {now:,} ({COUNT_NOTE})",
                                device=device))
    return checks


def _relative_latency(results: dict, name: str) -> float | None:
    own, torch_p50 = p50(results, name), p50(results, "torch_eager_fp32")
    return own / torch_p50 if own and torch_p50 else None
