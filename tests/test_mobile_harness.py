"""mobile_harness: golden vectors replayed from raw payloads, stream replay, and the Android/iOS
drivers (commands built and outputs parsed from recorded samples; no phone needed)."""
import json
import platform
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from edgemod.errors import EdgemodError
from edgemod.mobile_harness import android, ios
from edgemod.mobile_harness.cli import harness_app
from edgemod.mobile_harness.device_pipeline import DevicePipeline
from edgemod.mobile_harness.golden_check import check_artifact, compare_inputs
from edgemod.mobile_harness.stream import StreamConfig, _BoundedQueue, _Item, replay

DATA = Path(__file__).parent / "data"
PACKAGE = Path(__file__).resolve().parent.parent / "mobile_harness"
EXPORTS = "export=[{target: tflite, quant: int8_dynamic}, {target: onnx}, {target: coreml}]"
OFF_MAC = pytest.mark.skipif(platform.system() == "Darwin", reason="on macOS Core ML runs instead of being skipped")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory) -> Path:
    """A tiny real export: text student trained in seconds, tflite int8 + onnx + coreml fp16."""
    from conftest import tiny_text_export

    return tiny_text_export(tmp_path_factory.mktemp("harness"), EXPORTS) / "export"


@pytest.fixture
def tampered(export_dir, tmp_path) -> Path:
    """A copy of the export whose tokenizer.json maps the first golden word piece to another id."""
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    golden = json.loads((copy / "golden/tflite_int8_dynamic.json").read_text())
    first_piece = golden["items"][0]["inputs"]["input_ids"]["data"][1]
    path = copy / "tokenizer/tokenizer.json"
    spec = json.loads(path.read_text())
    vocab = spec["model"]["vocab"]
    by_id = {i: token for token, i in vocab.items()}
    other = first_piece + 1 if first_piece + 1 in by_id else first_piece - 1
    vocab[by_id[first_piece]], vocab[by_id[other]] = other, first_piece
    path.write_text(json.dumps(spec))
    return copy


# ----------------------------------------------------------------------------------- golden


@pytest.mark.parametrize("artifact", ["tflite_int8_dynamic", "onnx_fp32"])
def test_golden_vectors_pass_from_raw_payloads(export_dir, artifact):
    report = check_artifact(export_dir, artifact, threads=1)
    assert report["passed"] is True, report
    assert report["items"] > 0 and report["inputs_match"] and report["changed_files"] == []
    assert report["max_abs_score_diff"] <= report["tolerance"]
    assert report["runtime_only"]["passed"] and report["skipped"] is None


def test_pipeline_predicts_like_the_golden_file(export_dir):
    pipeline = DevicePipeline.from_export(export_dir, "tflite_int8_dynamic", threads=2)
    item = json.loads((export_dir / "golden/tflite_int8_dynamic.json").read_text())["items"][0]
    scores, decision = pipeline.predict(item["payload"])
    assert scores.shape == (len(pipeline.labels),)
    np.testing.assert_allclose(scores, item["expected_scores"], atol=1e-3)
    assert decision == item["expected_decision"]
    assert pipeline.inputs(item["payload"])["input_ids"].dtype == np.int32


def test_tampered_tokenizer_fails_with_an_input_mismatch(tampered):
    report = check_artifact(tampered, "onnx_fp32")
    assert report["passed"] is False
    assert report["inputs_match"] is False
    assert report["input_mismatches"][0]["input"] == "input_ids"
    assert report["input_mismatches"][0]["differing_positions"] >= 1
    assert "tokenizer/tokenizer.json" in report["changed_files"]
    assert report["runtime_only"]["passed"]  # the runtime is fine: the pre-processing is not


def test_edited_vocab_is_reported_not_raised(export_dir, tmp_path):
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    (copy / "tokenizer/vocab.txt").write_text("[PAD]\n")
    report = check_artifact(copy, "tflite_int8_dynamic")
    assert report["passed"] is False and "vocab.txt" in report["error"] and report["hint"]


VISION_EXPORT = Path(__file__).resolve().parent.parent / "runs/vision-weapons/export"


@pytest.mark.skipif(not VISION_EXPORT.is_dir(), reason="needs the vision-weapons export run (runs/ is not in git)")
def test_image_inputs_are_rebuilt_from_image_files():
    report = check_artifact(VISION_EXPORT, "tflite_fp32")
    assert report["passed"] is True, report
    assert report["max_abs_input_diff"] is not None and report["max_abs_input_diff"] <= 1e-5


@OFF_MAC
def test_coreml_is_skipped_off_macos_but_its_inputs_are_checked(export_dir):
    report = check_artifact(export_dir, "coreml_fp16")
    assert report["passed"] is None and "macOS" in report["skipped"]
    assert report["max_abs_score_diff"] is None and "runtime_only" not in report
    assert report["inputs_match"] is True
    with pytest.raises(EdgemodError, match="macOS"):
        DevicePipeline.from_export(export_dir, "coreml_fp16")


def test_compare_inputs_is_exact_for_ids_and_tolerant_for_floats():
    ids = np.array([[2, 5, 3, 0]], dtype=np.int32)
    image = np.zeros((1, 3, 2, 2), dtype=np.float32)
    same = compare_inputs({"input_ids": ids, "image": image + 5e-6}, {"input_ids": ids, "image": image})
    assert same["input_ids"]["match"] and same["image"]["match"]
    diff = compare_inputs({"input_ids": ids + 1, "image": image + 1e-3}, {"input_ids": ids, "image": image})
    assert diff["input_ids"]["differing_positions"] == 4 and not diff["image"]["match"]
    assert not compare_inputs({"input_ids": ids[:, :2]}, {"input_ids": ids})["input_ids"]["match"]


def test_unknown_artifact_names_the_known_ones(export_dir):
    with pytest.raises(EdgemodError, match="tflite_int8_dyanmic") as error:
        check_artifact(export_dir, "tflite_int8_dyanmic")
    assert "tflite_int8_dynamic" in error.value.hint


# ----------------------------------------------------------------------------------- stream


def test_stream_keeps_up_at_a_low_rate(export_dir):
    result = replay(export_dir, "tflite_int8_dynamic", StreamConfig(rate=10, seconds=1, budget_ms=200))
    assert result["keeps_up"] is True, result
    assert result["produced"] == result["completed"] == 10 and result["dropped"] == 0
    assert result["queueing_delay"]["p95_ms"] < 200 and result["end_to_end_latency"]["p50_ms"] > 0


def test_stream_drops_at_an_absurd_rate_with_a_tiny_queue(export_dir):
    config = StreamConfig(rate=20000, seconds=0.5, max_queue=1, threads=2, drop_policy="drop_new")
    result = replay(export_dir, "onnx_fp32", config, payloads=["you are all idiots", "have a nice day"])
    assert result["keeps_up"] is False and result["dropped"] > 0
    assert result["completed"] + result["dropped"] == result["produced"] == 10000
    assert result["workers"] == 2 and result["peak_queue"] == 1


def test_bounded_queue_policies():
    oldest, newest = _BoundedQueue(2, "drop_oldest"), _BoundedQueue(2, "drop_new")
    for i in range(4):
        oldest.put(_Item(i, None, 0.0))
        newest.put(_Item(i, None, 0.0))
    assert [it.index for it in oldest.items] == [2, 3] and [it.index for it in newest.items] == [0, 1]
    assert oldest.dropped == newest.dropped == 2
    assert newest.close() == 2 and newest.get().index == 0


# ----------------------------------------------------------------------------------- android


def test_parse_benchmark_model_sample():
    result = android.parse_benchmark_model((DATA / "benchmark_model_sample.txt").read_text())
    assert result["init_us"] == 9412 and result["first_inference_us"] == 1187
    assert result["warmup_avg_us"] == 381.6 and result["inference_avg_us"] == 357.4
    assert result["inference_std_us"] == 21 and result["runs"] == 2741 and result["inference_p95_us"] == 388
    assert result["threads"] == 1 and result["model_size_mb"] == 1.39566
    assert result["delegate"] == {"name": "TfLiteXNNPackDelegate", "nodes_delegated": 14, "nodes_total": 17,
                                  "partitions": 2}
    assert result["memory"]["peak_overall_mb"] == 9.83594
    top = result["top_ops"][0]
    assert top["node_type"] == "Convolution (NHWC, QD8, F32, QC8W) IGEMM"
    assert (top["avg_ms"], top["percent"], top["times_called"]) == (0.097, 28.28, 3)
    assert len(result["top_ops"]) == 10 and len(result["op_types"]) == 12


def test_parse_benchmark_model_older_format_and_failure():
    old = ("count=1 curr=3512391\n\ncount=50 first=2990275 curr=2913402 min=2727568 max=3189954 avg=2.95034e+06 "
           "std=109798\n\nInference timings in us: Init: 17187, First inference: 3512391, Warmup (avg): 3.51239e+06, "
           "Inference (avg): 2.95034e+06\n")
    result = android.parse_benchmark_model(old)
    assert result["inference_avg_us"] == 2950340.0 and result["inference_std_us"] == 109798 and "top_ops" not in result
    with pytest.raises(EdgemodError, match="no timing summary"):
        android.parse_benchmark_model("ERROR: Could not open '/data/local/tmp/x.tflite'.\n")


ADB_DEVICES = """* daemon not running; starting now at tcp:5037
* daemon started successfully
List of devices attached
R5CT20ABCDE            device usb:1-1 product:a53xnaeea model:SM_A536B device:a53x transport_id:2
emulator-5554\tdevice
0123456789ABCDEF       unauthorized usb:1-2 transport_id:3

"""


def test_parse_adb_devices():
    devices = android.parse_adb_devices(ADB_DEVICES)
    assert [(d["serial"], d["state"]) for d in devices] == [
        ("R5CT20ABCDE", "device"), ("emulator-5554", "device"), ("0123456789ABCDEF", "unauthorized")]
    assert devices[0]["model"] == "SM_A536B"


class FakeShell:
    """Stands in for subprocess.run: answers adb, and 'pulls' the recorded benchmark output."""

    def __init__(self, devices: str = ADB_DEVICES, instrument: str = "OK (1 test)\n"):
        self.calls, self.devices, self.instrument = [], devices, instrument

    def __call__(self, argv, **kwargs):
        self.calls.append(argv)
        stdout = ""
        if argv[1:] == ["devices", "-l"]:
            stdout = self.devices
        elif "pull" in argv:
            shutil.copy(DATA / "benchmark_model_sample.txt", argv[-1])
        elif "getprop" in argv:
            stdout = "SM-A536B\n"
        elif "instrument" in argv:
            stdout = self.instrument
        return subprocess.CompletedProcess(argv, 0, stdout, "")


def _device(shell, serial="R5CT20ABCDE"):
    return android.AndroidDevice(serial, runner=shell, which=lambda name: f"/opt/sdk/platform-tools/{name}")


def test_android_benchmark_commands_and_result(export_dir, tmp_path):
    shell = FakeShell()
    options = android.BenchmarkOptions(num_threads=2, enable_op_profiling=True)
    result = android.benchmark(_device(shell), export_dir, "tflite_int8_dynamic", options, tmp_path / "out")
    pushes = [c for c in shell.calls if "push" in c]
    assert pushes[0][:4] == ["adb", "-s", "R5CT20ABCDE", "push"]
    assert pushes[0][-1] == "/data/local/tmp/edgemod/model_int8_dynamic.tflite"
    assert pushes[1][-1].endswith("tflite_int8_dynamic.json")
    run = next(c for c in shell.calls if any("benchmark_model --graph" in a for a in c))[-1]
    for flag in ("--graph=/data/local/tmp/edgemod/model_int8_dynamic.tflite", "--num_threads=2",
                 "--use_xnnpack=true", "--num_runs=50", "--warmup_runs=5", "--enable_op_profiling=true"):
        assert flag in run
    assert "pull" in shell.calls[-2]  # then getprop for the device model
    assert result["device"] == {"serial": "R5CT20ABCDE", "model": "SM-A536B"}
    assert result["result"]["inference_avg_us"] == 357.4


def test_android_refuses_onnx_and_picks_or_asks_for_a_device(export_dir):
    with pytest.raises(EdgemodError, match="benchmark_model runs .tflite"):
        android.tflite_artifact(export_dir, "onnx_fp32")
    with pytest.raises(EdgemodError, match="2 devices") as many:
        _device(FakeShell(), serial=None).select()
    assert "--serial" in many.value.hint
    with pytest.raises(EdgemodError, match="unauthorized") as locked:
        _device(FakeShell(), serial="0123456789ABCDEF").select()
    assert "Allow USB debugging" in locked.value.hint
    with pytest.raises(EdgemodError, match="no Android device"):
        _device(FakeShell(devices="List of devices attached\n\n"), serial=None).select()
    assert _device(FakeShell(devices="List of devices attached\nemulator-5554\tdevice\n"), None).select() == "emulator-5554"


def test_missing_adb_names_the_fix():
    device = android.AndroidDevice(adb="adb-that-is-not-installed")
    with pytest.raises(EdgemodError, match="adb not found") as error:
        device.devices()
    assert "platform-tools" in error.value.hint and "--adb" in error.value.hint


def test_android_golden_test_and_instrument_output(export_dir):
    shell = FakeShell()
    result = android.golden_test(_device(shell), export_dir, "tflite_int8_dynamic", threads=4)
    instrument = shell.calls[-1]
    assert instrument[3:7] == ["shell", "am", "instrument", "-w"]
    assert instrument[-1].endswith("/androidx.test.runner.AndroidJUnitRunner")
    assert "/sdcard/Android/data/ai.edgemod.golden/files/edgemod/tflite_int8_dynamic.json" in instrument
    assert result["passed"] and result["tests_run"] == 1
    failed = android.parse_instrument_output(
        "ai.edgemod.golden.GoldenVectorsTest:\nError in goldenVectors(ai.edgemod.golden.GoldenVectorsTest):\n"
        "java.lang.AssertionError: hatexplain:test:1: score of 'offensive' is 0.41, expected 0.9 ± 0.02\n"
        "\tat org.junit.Assert.fail(Assert.java:89)\n\nTime: 0.61\n\nFAILURES!!!\nTests run: 1,  Failures: 1\n")
    assert failed == {"passed": False, "tests_run": 1, "failures": 1,
                      "messages": ["hatexplain:test:1: score of 'offensive' is 0.41, expected 0.9 ± 0.02"]}


# ----------------------------------------------------------------------------------- ios

SIMCTL = json.dumps({"devices": {
    "com.apple.CoreSimulator.SimRuntime.iOS-16-4": [
        {"udid": "A1", "isAvailable": True, "state": "Shutdown", "name": "iPhone 14"}],
    "com.apple.CoreSimulator.SimRuntime.iOS-17-2": [
        {"udid": "B2", "isAvailable": True, "state": "Shutdown", "name": "iPhone 15"},
        {"udid": "C3", "isAvailable": False, "state": "Shutdown", "name": "iPhone 15 Pro"},
        {"udid": "D4", "isAvailable": True, "state": "Shutdown", "name": "iPad Air (5th generation)"}],
    "com.apple.CoreSimulator.SimRuntime.watchOS-10-2": [
        {"udid": "E5", "isAvailable": True, "state": "Booted", "name": "Apple Watch Series 9 (45mm)"}]}})

XCODEBUILD_PASSED = """Test Suite 'Selected tests' started at 2025-03-01 10:00:00.000.
Test Suite 'EdgemodGoldenTests.xctest' started at 2025-03-01 10:00:00.001.
Test Case '-[EdgemodGoldenTests.EdgemodGoldenTests testGoldenVectors]' started.
Test Case '-[EdgemodGoldenTests.EdgemodGoldenTests testGoldenVectors]' passed (0.123 seconds).
Executed 1 test, with 0 failures (0 unexpected) in 0.123 (0.125) seconds
** TEST SUCCEEDED **
"""
XCODEBUILD_FAILED = """Test Case '-[EdgemodGoldenTests testGoldenVectors]' started.
/Users/ci/EdgemodGolden/EdgemodGoldenTests.swift:42: error: \
-[EdgemodGoldenTests testGoldenVectors] : XCTAssertLessThanOrEqual failed: \
("0.05") is greater than ("0.02") - hatexplain:test:7: score of 'hatespeech' is 0.61, expected 0.56 ± 0.02
Test Case '-[EdgemodGoldenTests testGoldenVectors]' failed (0.456 seconds).
Executed 1 test, with 1 failure (0 unexpected) in 0.456 (0.460) seconds
** TEST FAILED **
"""


def test_simulators_are_parsed_and_picked():
    devices = ios.parse_simctl_devices(SIMCTL)
    assert {d["udid"] for d in devices} == {"A1", "B2", "C3", "D4"}  # watchOS left out
    assert ios.pick_simulator(devices)["udid"] == "B2"  # newest iPhone runtime, available only
    assert ios.pick_simulator(devices, "iPhone 14")["runtime"] == "iOS 16.4"
    with pytest.raises(EdgemodError, match="iPhone 99") as error:
        ios.pick_simulator(devices, "iPhone 99")
    assert "iPhone 15" in error.value.hint
    assert ios.list_simulators_command().argv == ["xcrun", "simctl", "list", "devices", "--json"]


def test_xcodebuild_output_is_parsed():
    passed = ios.parse_xcodebuild_test(XCODEBUILD_PASSED)
    assert passed["succeeded"] is True and passed["executed"] == 1 and passed["failed"] == 0
    assert passed["cases"] == [{"suite": "EdgemodGoldenTests", "test": "testGoldenVectors", "status": "passed",
                                "seconds": 0.123}]
    failed = ios.parse_xcodebuild_test(XCODEBUILD_FAILED)
    assert failed["succeeded"] is False and failed["cases"][0]["status"] == "failed"
    assert failed["failures"][0]["line"] == 42 and "hatexplain:test:7" in failed["failures"][0]["message"]
    assert ios.parse_xcodebuild_test("error: Scheme EdgemodGolden is not currently configured")["succeeded"] is None


def test_ios_commands_and_a_faked_mac_run(export_dir, tmp_path):
    package = export_dir / "coreml/model_fp16.mlpackage"
    assert ios.compile_command(package, tmp_path).argv == ["xcrun", "coremlcompiler", "compile", str(package), str(tmp_path)]
    calls = []

    def fake_run(argv, **kwargs):
        calls.append((argv, kwargs.get("env") or {}))
        stdout = SIMCTL if "simctl" in argv else XCODEBUILD_PASSED if argv[0] == "xcodebuild" else ""
        return subprocess.CompletedProcess(argv, 65 if argv[0] == "xcodebuild" and "FAILED" in stdout else 0, stdout, "")

    driver = ios.XcodeDriver(runner=fake_run, which=lambda name: f"/usr/bin/{name}", system=lambda: "Darwin")
    result = ios.ios_test(driver, export_dir, "coreml_fp16", tmp_path, project=Path("Golden.xcodeproj"))
    assert result["succeeded"] is True and result["simulator"]["name"] == "iPhone 15"
    test_argv, env = calls[-1]
    assert test_argv[:2] == ["xcodebuild", "test"] and "-scheme" in test_argv and "EdgemodGolden" in test_argv
    assert "platform=iOS Simulator,id=B2" in test_argv and "-project" in test_argv
    assert env["TEST_RUNNER_EDGEMOD_GOLDEN"].endswith("golden/coreml_fp16.json")
    assert env["TEST_RUNNER_EDGEMOD_MODEL"].endswith("model_fp16.mlmodelc")
    with pytest.raises(EdgemodError, match="macOS") as error:
        ios.XcodeDriver(system=lambda: "Linux").check_tools()
    assert "--dry-run" in error.value.hint


def test_templates_match_the_commands_that_run_them():
    swift = (PACKAGE / "ios/EdgemodGoldenTests.swift").read_text()
    kotlin = (PACKAGE / "android/GoldenVectorsTest.kt").read_text()
    assert f"final class {ios.TEST_CLASS}: XCTestCase" in swift and "func testGoldenVectors()" in swift
    for variable in ios.test_environment(Path("m"), Path("g")):
        assert f'"{variable.removeprefix("TEST_RUNNER_")}"' in swift
    package, cls = android.TEST_CLASS.rsplit(".", 1)
    assert f"package {package}" in kotlin and f"class {cls}" in kotlin
    for argument in ('getString("threads")', '"model"', '"golden"'):
        assert argument in kotlin


# ----------------------------------------------------------------------------------- cli


def test_cli_golden_exit_codes(export_dir, tampered):
    runner = CliRunner()
    ok = runner.invoke(harness_app, ["golden", str(export_dir), "-a", "tflite_int8_dynamic", "-a", "coreml_fp16"])
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(harness_app, ["golden", str(tampered), "--artifact", "onnx_fp32"])
    assert bad.exit_code == 1 and "FAILED" in bad.output


def test_cli_dry_runs_print_the_commands(export_dir):
    runner = CliRunner()
    bench = runner.invoke(harness_app, ["android-bench", str(export_dir), "--artifact", "tflite_int8_dynamic",
                                        "--serial", "R5CT20ABCDE", "--dry-run", "--profile"])
    assert bench.exit_code == 0, bench.output
    assert "adb -s R5CT20ABCDE push" in bench.output and "--enable_op_profiling=true" in bench.output
    golden = runner.invoke(harness_app, ["android-golden", str(export_dir), "--artifact", "tflite_int8_dynamic",
                                         "--serial", "R5CT20ABCDE", "--package", "com.example.app", "--dry-run"])
    assert golden.exit_code == 0, golden.output
    assert "/sdcard/Android/data/com.example.app/files/edgemod" in golden.output
    assert "com.example.app.test/" in golden.output
    ios_run = runner.invoke(harness_app, ["ios-test", str(export_dir), "--artifact", "coreml_fp16", "--dry-run"])
    assert ios_run.exit_code == 0, ios_run.output
    assert "xcrun coremlcompiler compile" in ios_run.output and "TEST_RUNNER_EDGEMOD_GOLDEN=" in ios_run.output
