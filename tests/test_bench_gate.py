"""Bench and gate on a tiny real export: the gate passes generous budgets and fails on each kind of
breach (latency, int8 flips, size, regression, missing or corrupt artifact)."""
import json
import shutil
import xml.etree.ElementTree as ElementTree

import pytest

from edgemod.benchmarks import bench, gate
from edgemod.cli import main
from edgemod.manifest import read_manifest, write_manifest

EXPORTS = "export=[{target: tflite, quant: int8_dynamic}, {target: onnx, quant: int8_dynamic}]"
GENEROUS = ["budgets.size_mb={tflite: 50}", "budgets.devices.host.latency_ms={tflite_p50_1thread: 1000}",
            "budgets.parity.min_decision_agreement=0.5", "budgets.devices.host.min_speedup_vs_torch_eager=0.01"]


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    from conftest import tiny_text_export

    return tiny_text_export(tmp_path_factory.mktemp("bench"), EXPORTS)


@pytest.fixture(scope="module")
def benched(exported):
    bench.run(exported / "export", exported / "bench", quick=True)
    return exported / "bench"


def _copy(exported, tmp_path):
    """An export + bench pair that a test may damage without touching the shared one."""
    shutil.copytree(exported / "export", tmp_path / "export")
    bench.run(tmp_path / "export", tmp_path / "bench", quick=True)
    return tmp_path / "bench"


def _failed(result) -> set[str]:
    return {c["name"] for c in result["checks"] if not c["passed"]}


def test_bench_measures_every_artifact_beside_student_and_teacher(benched):
    results = json.loads((benched / "bench.json").read_text())
    assert set(results["reference"]) == {"fp32_student", "teacher"}
    for name in ("tflite_fp32", "tflite_int8_dynamic", "onnx_fp32", "onnx_int8_dynamic"):
        artifact = results["artifacts"][name]
        assert artifact["measured"] and artifact["integrity"] == "ok"
        assert artifact["accuracy_at_thresholds"]["n"] == 150
        assert artifact["cold_start_ms"] > 0 and artifact["memory"]["peak_rss_mb"] > 0
        for threads in ("1_thread", "2_thread"):
            latency = results["latency"][name][threads]
            assert latency["p50_ms"] <= latency["p90_ms"] <= latency["p99_ms"]
            assert len(latency["p50_per_pass"]) == 2 and latency["p50_pass_spread"] >= 0
    assert "torch_eager_fp32" in results["latency"]
    assert {"leetspeak", "homoglyph", "zero_width", "spacing"} <= set(results["robustness"]["fp32_student"])
    assert "identity" in results["slices"]["fp32_student"] and "by_source" in results["slices"]["teacher"]


def test_bench_rerun_does_nothing(exported, benched):
    before = read_manifest(benched, "bench").created_at
    assert bench.run(exported / "export", benched, quick=True).created_at == before


def test_gate_passes_generous_budgets_and_writes_reports(benched, tmp_path):
    result = gate.run(benched, tmp_path / "gate", overrides=GENEROUS)
    assert result["verdict"] == "pass", result["checks"]
    names = {c["name"] for c in result["checks"]}
    assert {"artifact integrity", "size (MB)", "decision agreement vs fp32"} <= names
    assert "PASS" in (tmp_path / "gate" / "gate.md").read_text()
    suite = ElementTree.parse(tmp_path / "gate" / "junit.xml").getroot()
    assert suite.get("failures") == "0" and int(suite.get("tests")) == len(result["checks"])
    assert read_manifest(tmp_path / "gate", "gate").metrics["verdict"] == "pass"


def test_gate_fails_on_latency_over_budget(benched, tmp_path):
    tight = "budgets.devices.host.latency_ms={tflite_p50_1thread: 0.00001}"
    result = gate.run(benched, tmp_path / "gate", overrides=[*GENEROUS, tight])
    assert result["verdict"] == "fail" and _failed(result) == {"latency p50 1 thread(s) (ms)"}
    assert {c["device"] for c in result["checks"] if c["name"].startswith("latency")} == {"host"}
    assert "| host |" in (tmp_path / "gate" / "gate.md").read_text()


def test_gate_fails_on_size_over_budget(benched, tmp_path):
    result = gate.run(benched, tmp_path / "gate", overrides=[*GENEROUS, "budgets.size_mb={tflite_int8_dynamic: 0.0001}"])
    assert _failed(result) == {"size (MB)"}


def test_gate_fails_on_int8_decision_flips(benched, tmp_path):
    flipped = tmp_path / "flipped"
    shutil.copytree(benched, flipped)
    manifest = read_manifest(flipped, "bench")
    manifest.metrics["artifacts"]["tflite_int8_dynamic"]["decision_flip_rate"] = 0.02  # 3 of 150 decisions changed
    manifest.metrics["artifacts"]["onnx_int8_dynamic"]["decision_flip_rate"] = 0.0
    write_manifest(flipped, manifest)
    result = gate.run(flipped, tmp_path / "gate", overrides=[*GENEROUS, "budgets.parity.min_decision_agreement=0.995"])
    failed = [c for c in result["checks"] if not c["passed"]]
    assert [(c["name"], c["subject"]) for c in failed] == [("decision agreement vs fp32", "tflite_int8_dynamic")]
    assert result["checks"][0]["passed"] is False  # failures are listed first


def test_gate_fails_on_regression_against_the_baseline(benched, tmp_path):
    better = tmp_path / "baseline"
    shutil.copytree(benched, better)
    manifest = read_manifest(better, "bench")
    artifact = manifest.metrics["artifacts"]["tflite_int8_dynamic"]
    artifact["size_mb"] /= 2
    artifact["accuracy_at_thresholds"]["macro_f1"] += 0.1
    manifest.metrics["latency"]["tflite_int8_dynamic"]["1_thread"]["p50_ms"] /= 3
    write_manifest(better, manifest)
    result = gate.run(benched, tmp_path / "gate", baseline=better, overrides=GENEROUS)
    assert {("size increase vs baseline", "tflite_int8_dynamic"), ("macro-F1 drop vs baseline", "tflite_int8_dynamic"),
            ("latency increase vs baseline (p50 / torch eager, each run)", "tflite_int8_dynamic")} <= \
        {(c["name"], c["subject"]) for c in result["checks"] if not c["passed"]}
    assert gate.run(benched, tmp_path / "same", baseline=benched, overrides=GENEROUS)["verdict"] == "pass"


def test_gate_fails_on_a_missing_artifact(exported, tmp_path):
    bench_dir = _copy(exported, tmp_path)
    (tmp_path / "export" / "onnx" / "model_int8_dynamic.onnx").unlink()
    result = gate.run(bench_dir, tmp_path / "gate", overrides=GENEROUS)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert [(c["subject"], c["value"]) for c in failed] == [("onnx_int8_dynamic", "missing")]


def test_gate_fails_on_a_corrupt_artifact(exported, tmp_path):
    bench_dir = _copy(exported, tmp_path)
    model = tmp_path / "export" / "tflite" / "model_int8_dynamic.tflite"
    model.write_bytes(model.read_bytes()[:-16] + b"\0" * 16)
    result = gate.run(bench_dir, tmp_path / "gate", overrides=GENEROUS)
    failed = [c for c in result["checks"] if not c["passed"]]
    assert [(c["subject"], c["value"]) for c in failed] == [("tflite_int8_dynamic", "sha256 mismatch")]


def test_gate_cli_exit_codes(benched, tmp_path):
    sets = [arg for budget in GENEROUS for arg in ("--set", budget)]
    assert main(["gate", str(benched), "--out", str(tmp_path / "a"), *sets]) == 0
    assert main(["gate", str(benched), "--out", str(tmp_path / "b"), *sets,
                 "--set", "budgets.size_mb={tflite: 0.0001}"]) == 1
    assert main(["gate", str(benched), "--out", str(tmp_path / "c"), "--set", "budgets.devices.host.latency_ms={fast: 1}"]) == 2
    assert main(["gate", str(tmp_path / "nothing"), "--out", str(tmp_path / "d")]) == 2


def test_bench_records_the_device_class_of_its_timings(benched):
    device = json.loads((benched / "bench.json").read_text())["device"]
    assert device["classes"][0] == "host" and device["class"] in device["classes"]
    assert device["unit"] == "ms" and device["threads"] == [1, 2] and device["isa"]


def test_a_required_class_that_was_not_measured_fails_with_a_fix(benched, tmp_path):
    result = gate.run(benched, tmp_path / "gate", overrides=[
        *GENEROUS, "budgets.required_devices=[host, arm64-a76, x86-amx]",
        "budgets.devices.arm64-a76={min_quantized_speedup_vs_float: 1.3}"])
    failed = {c["subject"]: c for c in result["checks"] if not c["passed"]}
    if "arm64-a76" not in json.loads((benched / "bench.json").read_text()).get("arm", {}).get("classes", {}):
        assert failed["arm64-a76"]["detail"].startswith("fix:") and "setup_arm.sh" in failed["arm64-a76"]["detail"]
    assert failed["x86-amx"]["detail"].startswith("fix:") and result["verdict"] == "fail"


def test_an_optional_class_that_was_not_measured_is_listed_not_passed(benched, tmp_path):
    phone = "budgets.devices.ios:iphone15={latency_ms: {tflite_p50_1thread: 1}}"
    result = gate.run(benched, tmp_path / "gate", overrides=[*GENEROUS, phone])
    row = next(c for c in result["checks"] if c["subject"] == "ios:iphone15")
    assert row["status"] == "not measured" and result["verdict"] == "pass"
    assert "⏭ not measured" in (tmp_path / "gate" / "gate.md").read_text()
    assert ElementTree.parse(tmp_path / "gate" / "junit.xml").getroot().find(".//skipped") is not None


def test_old_latency_budget_keys_say_where_they_moved(benched, tmp_path):
    from edgemod.errors import EdgemodError

    with pytest.raises(EdgemodError, match="devices.<class>.latency_ms"):
        gate.run(benched, tmp_path / "gate", overrides=["budgets.latency_ms={tflite_p50_1thread: 1}"])


def _forge_pass(gate_dir, flip: set[tuple[str, str]] | None = None) -> None:
    """Edit a failing gate folder by hand: its failed checks (or only `flip`) passed and, once none
    fails, verdict pass in gate.json; then the gate manifest's sha256 and size of gate.json and its
    metrics, so that every file matches the manifest again."""
    from edgemod.manifest import file_ref

    path = gate_dir / "gate.json"
    result = json.loads(path.read_text())
    for check in result["checks"]:
        if not check["passed"] and (flip is None or (check["name"], check["subject"]) in flip):
            check.update(passed=True, status="pass")
    failed = sum(not c["passed"] for c in result["checks"])
    result["verdict"] = "fail" if failed else "pass"
    path.write_text(json.dumps(result, indent=2) + "\n")
    manifest = read_manifest(gate_dir, "gate")
    manifest.artifacts["gate.json"] = file_ref(path, gate_dir)
    manifest.metrics.update(verdict=result["verdict"], failed=failed)
    write_manifest(gate_dir, manifest)


def test_publish_recomputes_the_gate_and_refuses_a_hand_edited_verdict(benched, tmp_path):
    """Issue 27: gate.json's verdict and checks, the gate manifest's sha256/size of it and
    metrics.verdict, all edited together, made `publish` sign a model whose gate failed."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    from edgemod.errors import EdgemodError
    from edgemod.pipeline_publish import verify_gate
    from edgemod.registry.release import assemble
    from edgemod.registry.signing import generate_keypair

    tight = "budgets.size_mb={tflite: 0.0001, onnx: 0.0001}"
    failing = gate.run(benched, tmp_path / "gate", overrides=[*GENEROUS, tight])
    assert failing["verdict"] == "fail" and len([c for c in failing["checks"] if not c["passed"]]) == 2
    # The in-memory gate is the written one, check for check (ARM counts and integrity included).
    assert gate.evaluate(benched, overrides=[*GENEROUS, tight]) == json.loads((tmp_path / "gate" / "gate.json").read_text())
    verify_gate(tmp_path / "gate")  # an honest failing gate is re-checked fine (the registry then refuses it)

    one_flipped = tmp_path / "one-flipped"
    shutil.copytree(tmp_path / "gate", one_flipped)
    _forge_pass(one_flipped, flip={("size (MB)", "onnx_int8_dynamic")})
    with pytest.raises(EdgemodError, match="now failing, recorded as passed: size .MB. on onnx_int8_dynamic"):
        verify_gate(one_flipped)  # still "fail", but not the failures on file

    _forge_pass(tmp_path / "gate")
    assemble(tmp_path / "gate", "qs", "1.0.0", "tests")  # the forgery passes every file check of the registry
    private, _ = generate_keypair(tmp_path / "keys")
    registry = tmp_path / "registry"
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMOD_")}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(Path(__file__).resolve().parent.parent), env.get("PYTHONPATH")]))
    done = subprocess.run([sys.executable, "-m", "edgemod.cli", "publish", str(tmp_path / "gate"), "--name", "qs",
                           "--version", "1.0.0", "--channel", "stable", "--registry", str(registry), "--key", str(private)],
                          capture_output=True, text=True, env=env, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output, output
    assert "records the verdict pass with 0 failed" in output and "give fail with 2 failed" in output
    assert "\nfix: re-run `edgemod gate`" in "\n" + output
    assert not registry.exists()  # nothing published, nothing half-written


def _phone_report(path, artifact: str, avg_us: float, median_us: float | None = None):
    result = {"inference_avg_us": avg_us, "threads": 1, **({"inference_median_us": median_us} if median_us else {})}
    path.write_text(json.dumps({"artifact": artifact, "device": {"serial": "R5CT", "model": "Pixel 7"},
                                "options": {"num_threads": 1}, "result": result}))
    return path


PHONE = ["budgets.required_devices=[host, android:Pixel-7]",
         "budgets.devices.android:Pixel-7={latency_ms: {tflite_int8_dynamic_avg_1thread: 1.0, "
         "tflite_int8_dynamic_p50_1thread: 1.0}, min_quantized_speedup_vs_float: 1.5}"]


def test_a_phone_budget_is_judged_on_the_phone_report(benched, tmp_path):
    from edgemod.pipeline_publish import verify_gate

    reports = [_phone_report(tmp_path / "int8.json", "tflite_int8_dynamic", 850.0, 800.0),
               _phone_report(tmp_path / "fp32.json", "tflite_fp32", 1700.0)]
    result = gate.run(benched, tmp_path / "gate", overrides=[*GENEROUS, *PHONE], device_results=reports)
    rows = {(c["name"], c["subject"]): c for c in result["checks"] if c["device"] == "android:Pixel-7"}
    assert rows[("latency avg 1 thread(s) (ms)", "tflite_int8_dynamic")]["value"] == 0.85
    assert rows[("latency p50 1 thread(s) (ms)", "tflite_int8_dynamic")]["value"] == 0.8
    assert rows[("speed-up vs tflite_fp32 (avg, 1 thread, on the phone)", "tflite_int8_dynamic")]["value"] == 2.0
    assert result["verdict"] == "pass", [c for c in result["checks"] if not c["passed"]]
    verify_gate(tmp_path / "gate")  # publish re-reads the same reports and agrees

    slow = [_phone_report(tmp_path / "slow.json", "tflite_int8_dynamic", 1500.0), reports[1]]
    failed = gate.run(benched, tmp_path / "slow", overrides=[*GENEROUS, *PHONE], device_results=slow)
    assert {c["name"] for c in failed["checks"] if not c["passed"]} == {  # 1.5 ms; no median in this report
        "latency avg 1 thread(s) (ms)", "latency p50 1 thread(s) (ms)", "speed-up vs tflite_fp32 (avg, 1 thread, on the phone)"}

    unmeasured = gate.run(benched, tmp_path / "none", overrides=[*GENEROUS, *PHONE])
    row = next(c for c in unmeasured["checks"] if c["subject"] == "android:Pixel-7")
    assert not row["passed"] and "--device-result" in row["detail"] and row["detail"].startswith("fix:")


def test_a_damaged_phone_report_is_a_user_error(benched, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"artifact": "tflite_int8_dynamic"}')
    sets = [arg for budget in GENEROUS for arg in ("--set", budget)]
    assert main(["gate", str(benched), "--out", str(tmp_path / "g"), *sets, "--device-result", str(bad)]) == 2
    assert not (tmp_path / "g").exists()
