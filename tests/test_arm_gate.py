"""Bench's ARM step and the gate's ARM budgets on real tiny exports: counts per class that repeat,
golden decisions identical to x86, an int8/fp32 instruction ratio judged on the class it names, and a
student with twice the channels failing the instruction regression budget against the baseline.

Skipped when `bash scripts/setup_arm.sh` has not run; EDGEMOD_REQUIRE_ARM=1 (CI) fails instead.
"""
from __future__ import annotations

import json
import os

import pytest

from edgemod.benchmarks import arm_cost, bench, gate

EXPORTS = "export=[{target: tflite, quant: int8_dynamic}]"
OPEN = ["budgets.size_mb={tflite: 50}", "budgets.parity.min_decision_agreement=0.5",
        "budgets.required_devices=[host, arm64-a76, arm64-a53]"]


def _tiny_bench(root, student_options: dict | None = None):
    from conftest import tiny_text_recipe

    from edgemod.export import stage
    from edgemod.recipe import parse_recipe
    from edgemod.training import label, train

    recipe = tiny_text_recipe()
    recipe["student"]["options"] = student_options or {}
    label.run(parse_recipe(recipe), root / "label")
    train.run(root / "label", root / "train")
    stage.run(root / "train", root / "export", [EXPORTS])
    bench.run(root / "export", root / "bench", quick=True)
    return root / "bench"


@pytest.fixture(scope="module")
def arm_benches(tmp_path_factory):
    if arm_cost.find_setup() is None:
        message = "the ARM cost tools are not set up; run `bash scripts/setup_arm.sh`"
        if os.environ.get("EDGEMOD_REQUIRE_ARM") == "1":
            pytest.fail(f"EDGEMOD_REQUIRE_ARM=1 but {message}")
        pytest.skip(message)
    root = tmp_path_factory.mktemp("arm")
    return _tiny_bench(root / "base"), _tiny_bench(root / "wide", {"embed_dim": 32, "hidden": 32})


def _arm(bench_dir) -> dict:
    return json.loads((bench_dir / "bench.json").read_text())["arm"]


def test_bench_counts_every_tflite_artifact_on_each_arm_class(arm_benches):
    arm = _arm(arm_benches[0])
    assert set(arm["classes"]) == {"arm64-a76", "arm64-a53"}
    for record in arm["classes"].values():
        assert record["unit"] == "instructions" and record["threads"] == [1]
        for entry in record["artifacts"].values():
            _, second, third = entry["counted_invokes"]  # the first after warm-up runs ~90 more
            assert abs(second - third) / min(second, third) < 1e-4  # two steady inferences agree within 0.01 %
            assert entry["golden"]["decision_mismatches"] == 0 and entry["golden"]["items"] > 0


def test_arm_speed_budget_is_judged_on_counts_of_its_class(arm_benches, tmp_path):
    base = arm_benches[0]
    impossible = "budgets.devices.arm64-a53={min_quantized_speedup_vs_float: 1000}"
    result = gate.run(base, tmp_path / "gate", overrides=[*OPEN, impossible])
    failed = [c for c in result["checks"] if not c["passed"]]
    assert [(c["device"], c["subject"]) for c in failed] == [("arm64-a53", "tflite_int8_dynamic")]
    assert "not milliseconds" in failed[0]["detail"]
    replay = [c for c in result["checks"] if c["name"] == "ARM decisions = x86 on golden items"]
    assert {c["device"] for c in replay} == {"arm64-a76", "arm64-a53"} and all(c["passed"] for c in replay)


def test_twice_the_channels_fails_the_instruction_regression_budget(arm_benches, tmp_path):
    base, wide = arm_benches
    result = gate.run(wide, tmp_path / "gate", baseline=base, overrides=OPEN)
    grown = [c for c in result["checks"] if c["name"] == "instructions increase vs baseline"]
    assert {c["device"] for c in grown} == {"arm64-a76", "arm64-a53"}
    assert grown and all(not c["passed"] and c["value"] > 0.03 for c in grown)
    same = gate.run(base, tmp_path / "same", baseline=base, overrides=OPEN)
    assert all(c["passed"] for c in same["checks"] if c["name"] == "instructions increase vs baseline")
