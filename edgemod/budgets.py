"""Budgets: what the gate holds a release to. A recipe's `budgets:` section, validated.

Latency and speed budgets hold for a *device class*, because int8 speed depends on the CPU: on
an x86 CPU without int8 dot products XNNPACK's int8 kernels are no faster than fp32, while on a
phone CPU with them they do 2-3x less work. A budget names the class it holds for and the gate
checks it only against a measurement of that class; `required_devices` lists the classes a
release must be measured on.

Device classes:
- `host`: whatever machine ran `edgemod bench` (milliseconds, interleaved with torch eager).
- `x86-avx2`, `x86-vnni`, `x86-amx`, `arm64`, `arm64-dotprod`, `arm64-i8mm`: the host, when its CPU
  is of that class (the bench records which; see `edgemod.benchmarks.device_class`).
- `arm64-a76`, `arm64-a53`: TFLite artifacts emulated on that ARM core under qemu-aarch64,
  counted in instructions per inference (a deterministic cost proxy, not milliseconds).
- `android:<model>`: a real phone, timed by `edgemod harness android-bench --report R.json` and read by
  `edgemod gate --device-result R.json`; `ios:<model>`: accepted, not yet measurable by the gate.
"""
from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from edgemod.strict_model import StrictModel

DEVICE_CLASS = re.compile(r"^(host|x86(-[a-z0-9]+)?|arm64(-[a-z0-9]+)?|android:[A-Za-z0-9._-]+|ios(:[A-Za-z0-9._,-]+)?)$")
EMULATED_CLASSES = {"arm64-a76": "cortex-a76", "arm64-a53": "cortex-a53"}  # class -> qemu -cpu model
MOVED_KEYS = {
    "latency_ms": "budgets.devices.<class>.latency_ms (e.g. devices: {host: {latency_ms: {tflite_p50_1thread: 1.0}}})",
    "speed": "budgets.devices.<class> (e.g. devices: {arm64-a76: {min_quantized_speedup_vs_float: 1.3}})",
}


class AccuracyBudget(StrictModel):
    min_macro_f1: float | None = None
    max_macro_f1_drop_vs_teacher: float | None = None
    max_auc_drop_int8: float | None = None
    min_out_of_domain_auroc_vs_teacher: float | None = Field(
        None, gt=0, description="student AUROC / teacher AUROC on every data.out_of_domain set")


class ParityBudget(StrictModel):
    min_decision_agreement: float | None = None
    min_tasks_decision_agreement: float | None = Field(
        None, ge=0, le=1, description="MediaPipe Tasks on raw test payloads (its own pre-processing) vs edgemod's "
                                      "pipeline on the same `mediapipe` artifact")


class DeviceBudget(StrictModel):
    """Budgets that hold on one device class (`budgets.devices.<class>`).

    Ratios are measured side by side in one run: milliseconds on measured classes, instructions per
    inference on emulated ARM classes.
    """

    latency_ms: dict[str, float] = Field(
        default_factory=dict, description="`<artifact or target>_<p50|p90|p99|avg>_<n>thread(s)`: ms; classes timed in ms "
                                          "only (phones: avg, and p50 where benchmark_model prints the median)")
    min_quantized_speedup_vs_float: float | None = Field(
        None, gt=0, description="the same target's float artifact / the int8 one (1 thread)")
    min_speedup_vs_torch_eager: float | None = Field(None, gt=0, description="host classes: torch eager fp32 / artifact")
    max_instructions_m: dict[str, float] = Field(
        default_factory=dict, description="emulated ARM classes: millions of instructions per inference, by artifact or target")
    targets: list[Literal["tflite", "mediapipe", "coreml", "onnx"]] = Field(
        default_factory=lambda: ["tflite"], description="runtimes the speed budgets apply to (ONNX is the server fallback)")


class BootstrapSpec(StrictModel):
    """Confidence intervals by resampling test items (percentile bootstrap, fixed seed)."""

    resamples: int = Field(1000, ge=100)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    seed: int = 0


class SliceBudget(StrictModel):
    max_auc_drop_vs_teacher: float | None = Field(
        None, ge=0, description="identity slices (subgroup, BPSN, BNSP AUC): fail when the student is below the teacher "
                                "by more than this and the bootstrap interval of student - teacher lies below zero")
    max_counterfactual_shift: float | None = Field(
        None, ge=0, description="student: |mean score shift| when only the identity group a test post names changes")
    warn_subgroup_auc_gap: float | None = Field(
        None, ge=0, description="overall AUC minus a subgroup AUC: a data warning naming the slice, never a failure")
    max_obfuscation_f1_drop: float | None = Field(None, ge=0, description="macro-F1 on obfuscated test text vs clean")
    min_items: int = Field(30, gt=0, description="smaller slices are reported, not gated")
    bootstrap: BootstrapSpec = Field(default_factory=BootstrapSpec)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict) and "max_subgroup_auc_gap" in data:
            raise ValueError("budgets.slices.max_subgroup_auc_gap was replaced: gate the student against the teacher "
                             "per slice with max_auc_drop_vs_teacher, and report the absolute gap with "
                             "warn_subgroup_auc_gap (a data warning: a small slice's AUC is mostly label noise)")
        return data


class RegressionBudget(StrictModel):
    """Against the previous release's bench (`edgemod gate --baseline`)."""

    max_latency_increase: float = Field(0.15, ge=0, description="host classes: relative, on p50 normalised by torch eager")
    max_instructions_increase: float = Field(
        0.03, ge=0, description="emulated ARM classes: relative, on instructions per inference (deterministic)")
    max_macro_f1_drop: float = Field(0.01, ge=0)
    max_size_increase: float = Field(0.10, ge=0, description="relative")


class Budgets(StrictModel):
    """`size_mb` keys: an artifact name or a target. Latency and speed: per device class (`devices`)."""

    accuracy: AccuracyBudget = Field(default_factory=AccuracyBudget)
    parity: ParityBudget = Field(default_factory=ParityBudget)
    size_mb: dict[str, float] = Field(default_factory=dict)
    required_devices: list[str] = Field(
        default_factory=lambda: ["host"], description="device classes a release must be measured on")
    devices: dict[str, DeviceBudget] = Field(default_factory=dict, description="device class -> its budgets")
    slices: SliceBudget = Field(default_factory=SliceBudget)
    regression: RegressionBudget = Field(default_factory=RegressionBudget)

    @model_validator(mode="before")
    @classmethod
    def _moved(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key, where in MOVED_KEYS.items():
                if key in data:
                    raise ValueError(f"budgets.{key} now names the device class it holds for: move it to {where}")
        return data

    @field_validator("required_devices")
    @classmethod
    def _known_required(cls, classes: list[str]) -> list[str]:
        for name in classes:
            _check_class(name)
        return classes

    @field_validator("devices")
    @classmethod
    def _known_classes(cls, devices: dict[str, DeviceBudget]) -> dict[str, DeviceBudget]:
        for name, budget in devices.items():
            _check_class(name)
            if name in EMULATED_CLASSES and budget.latency_ms:
                raise ValueError(f"budgets.devices.{name}.latency_ms: {name} is emulated and counted in instructions, "
                                 "not timed; use max_instructions_m there, or a latency_ms budget on a timed class")
            if name.startswith(("android", "ios")) and (budget.min_speedup_vs_torch_eager is not None
                                                         or budget.max_instructions_m):
                raise ValueError(f"budgets.devices.{name}: a phone is timed by benchmark_model, with no torch eager "
                                 "and no instruction counts; use latency_ms and min_quantized_speedup_vs_float")
            if name in EMULATED_CLASSES and budget.min_speedup_vs_torch_eager is not None:
                raise ValueError(f"budgets.devices.{name}.min_speedup_vs_torch_eager: torch eager is timed on the host "
                                 "only; use min_quantized_speedup_vs_float on emulated classes")
        return devices


def _check_class(name: str) -> None:
    if not DEVICE_CLASS.match(name):
        raise ValueError(f"unknown device class '{name}'; known: host, x86-avx2, x86-vnni, x86-amx, arm64-dotprod, "
                         f"arm64-i8mm, {', '.join(EMULATED_CLASSES)} (emulated), android:<model>, ios:<model>")
