"""The device class of a measurement: what decides whether int8 runs faster than fp32 there.

XNNPACK's int8 kernels beat fp32 only where the CPU has int8 dot-product instructions (x86 VNNI
or AMX, ARM SDOT/UDOT or I8MM). A latency figure therefore says little unless it says which
class of CPU gave it; `host_device()` reads that from the CPU's feature flags.
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

X86_INT8_FEATURES = ("avx2", "avx512_vnni", "avx_vnni", "amx_int8")
ARM_INT8_FEATURES = ("asimddp", "i8mm", "sve")


def _cpuinfo(path: Path = Path("/proc/cpuinfo")) -> tuple[str, set[str]]:
    """CPU model name and feature flags (first processor; Linux only, empty elsewhere)."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return platform.processor() or "unknown", set()
    model, flags = "unknown", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip().lower()
        if key in ("model name", "hardware", "cpu model") and model == "unknown":
            model = value.strip()
        elif key in ("flags", "features") and not flags:
            flags = set(value.split())
    return model, flags


def classify(arch: str, flags: set[str]) -> str:
    """The class name budgets use for a CPU of this architecture and these feature flags."""
    if arch in ("x86_64", "amd64", "AMD64"):
        if "amx_int8" in flags:
            return "x86-amx"
        if {"avx512_vnni", "avx_vnni"} & flags:
            return "x86-vnni"
        return "x86-avx2" if "avx2" in flags else "x86"
    if arch in ("aarch64", "arm64"):
        if "i8mm" in flags:
            return "arm64-i8mm"
        return "arm64-dotprod" if "asimddp" in flags else "arm64"
    return arch or "unknown"


def host_device(threads: tuple[int, ...] | list[int] = (1, 2), cpuinfo: Path = Path("/proc/cpuinfo")) -> dict:
    """The class record of this machine: `host` plus its CPU class, with the facts behind it."""
    arch = platform.machine()
    model, flags = _cpuinfo(cpuinfo)
    features = X86_INT8_FEATURES if arch in ("x86_64", "amd64", "AMD64") else ARM_INT8_FEATURES
    cpu_class = classify(arch, flags)
    return {"class": cpu_class, "classes": ["host", cpu_class], "kind": "measured", "arch": arch, "cpu_model": model,
            "isa": {feature: feature in flags for feature in features}, "cores": os.cpu_count(),
            "threads": list(threads), "unit": "ms"}


def describe(record: dict) -> str:
    """One line for reports: `x86-avx2 (AMD EPYC 7B13; avx2, no avx512_vnni, ...), 1-2 threads`."""
    isa = ", ".join(name if present else f"no {name}" for name, present in record.get("isa", {}).items())
    where = record.get("cpu_model") or record.get("cpu") or record.get("device") or "?"
    extra = f"; {isa}" if isa else ""
    threads = "-".join(str(t) for t in record.get("threads", []))
    return f"{record['class']} ({where}{extra}), {record.get('kind', 'measured')}, {threads} thread(s)"
