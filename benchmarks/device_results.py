"""Phone measurements for the gate: the reports `edgemod harness android-bench --report FILE` writes.

Each report is one artifact timed by LiteRT's `benchmark_model` on one phone's CPU; the phone's
model names its device class (`android:<model>`, spaces as dashes). The gate reads them with
`edgemod gate BENCH_DIR --device-result FILE ...`, so a budget under `budgets.devices.android:<model>`
is judged on the phone itself.
"""
from __future__ import annotations

import re
from pathlib import Path

from edgemod.errors import EdgemodError
from edgemod.fsutil import read_json_object

FIX = ("pass the JSON that `edgemod harness android-bench EXPORT_DIR --artifact NAME --report FILE` wrote, "
       "unedited; re-run it with the phone attached if the file is damaged")


def device_class_of(model: str) -> str:
    """`android:<model>` with spaces as dashes and nothing outside [A-Za-z0-9._-]."""
    slug = re.sub(r"[^A-Za-z0-9._-]", "", re.sub(r"\s+", "-", model.strip()))
    if not slug:
        raise EdgemodError(f"the phone model {model!r} gives no usable device class name", FIX)
    return f"android:{slug}"


def load_device_results(paths: list[Path] | None) -> dict[str, dict]:
    """Device class -> `{"class", "kind": "device", "device", "unit": "ms", "threads", "sources",
    "artifacts": {artifact: {"<n>_thread": {"avg_ms", "p50_ms"?, "std_ms"?}}}}`."""
    classes: dict[str, dict] = {}
    for path in paths or []:
        artifact, model, threads, timing = _read_report(Path(path))
        device = device_class_of(model)
        record = classes.setdefault(device, {"class": device, "kind": "device", "device": model, "unit": "ms",
                                             "threads": [], "sources": [], "artifacts": {}})
        record["sources"].append(str(Path(path).resolve()))
        record["threads"] = sorted({*record["threads"], threads})
        record["artifacts"].setdefault(artifact, {})[f"{threads}_thread"] = timing
    return classes


def _read_report(path: Path) -> tuple[str, str, int, dict]:
    report = read_json_object(path, "device result", FIX)
    try:
        artifact, model = str(report["artifact"]), str(report["device"]["model"])
        result = report["result"]
        threads = int(result.get("threads") or report["options"]["num_threads"])
        timing = {"avg_ms": round(float(result["inference_avg_us"]) / 1e3, 4)}
    except (KeyError, TypeError, ValueError) as error:
        raise EdgemodError(f"{path} is not an android-bench report (missing or bad {error})", FIX) from None
    for stat, key in (("p50_ms", "inference_median_us"), ("std_ms", "inference_std_us")):
        if isinstance(result.get(key), int | float):
            timing[stat] = round(float(result[key]) / 1e3, 4)
    return artifact, model, threads, timing
