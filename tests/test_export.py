"""Export and quantization of tiny trained students (real data) through every target and scheme."""
import json
from types import SimpleNamespace

import numpy as np
import pytest

from edgemod.errors import EdgemodError
from edgemod.export import stage
from edgemod.manifest import read_manifest, verify_artifacts
from edgemod.recipe import parse_recipe
from edgemod.runtime.golden import check_golden, decode_tensor, encode_tensor
from edgemod.runtime.runners import coreml_can_predict, load_runner
from edgemod.training import label, train

TEXT_EXPORTS = [{"target": "tflite", "quant": "int8_dynamic"}, {"target": "tflite", "quant": "int8_weight_only"},
                {"target": "coreml", "quant": "w8"}, {"target": "coreml", "quant": "palettize", "palettize_bits": 4},
                {"target": "onnx", "quant": "int8_dynamic"},
                {"target": "onnx", "quant": "int8_static", "calibration_items": 32}]
VISION_EXPORTS = [{"target": "tflite", "quant": "int8_static", "calibration_items": 24},
                  {"target": "tflite", "quant": "int8_dynamic"},
                  {"target": "coreml", "quant": "w8"}, {"target": "coreml", "quant": "w8a8", "calibration_items": 24},
                  {"target": "onnx", "quant": "int8_static", "calibration_items": 24}]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory):
    from conftest import tiny_text_recipe

    recipe = tiny_text_recipe()
    recipe["export"] = TEXT_EXPORTS
    root = tmp_path_factory.mktemp("text")
    label.run(parse_recipe(recipe), root / "label")
    train.run(root / "label", root / "train")
    return root / "train"


@pytest.fixture(scope="module")
def text_export(text_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("text-export") / "export"
    return out, stage.run(text_run, out)


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory):
    """A tiny image student distilled from a scores-file teacher on real weapons frames."""
    from conftest import tiny_vision_run

    return tiny_vision_run(tmp_path_factory.mktemp("vision"), VISION_EXPORTS)


def _artifacts(manifest):
    return manifest.details["artifacts"]


def _assert_readme_io_names(path, inputs: set[str]) -> None:
    """The README's names, in the signature and on the IO tensors, so apps never guess the order."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(path))
    assert {d["name"] for d in interpreter.get_input_details()} == inputs, path.name
    assert [d["name"] for d in interpreter.get_output_details()] == ["scores"], path.name
    signature = interpreter.get_signature_list()["serving_default"]
    assert set(signature["inputs"]) == inputs and signature["outputs"] == ["scores"], path.name


def test_text_student_goes_through_every_target(text_export):
    out, manifest = text_export
    artifacts = _artifacts(manifest)
    expected = {"tflite_fp32", "tflite_int8_dynamic", "tflite_int8_weight_only", "coreml_fp16",
                "coreml_w8", "coreml_palettize", "onnx_fp32", "onnx_int8_dynamic", "onnx_int8_static"}
    assert set(artifacts) == expected
    assert verify_artifacts(out, manifest) == []
    for name, record in artifacts.items():
        assert (out / record["file"]).exists(), name
        parity = record["parity"]
        assert parity["items"] == manifest.details["student_metrics"]["test"]["student"]["n"]
        assert 0.0 <= parity["decision_agreement"] <= 1.0
    # float artifacts decide exactly like the student
    for name in ("tflite_fp32", "onnx_fp32"):
        assert artifacts[name]["parity"]["decision_agreement"] == 1.0
        assert artifacts[name]["parity"]["max_abs_score_diff"] < 1e-4
        assert artifacts[name]["parity"]["median_abs_log_score_diff"] < 1e-3
    tolerance = manifest.metrics["summary"]["reference_noise_tolerance"]
    assert list(tolerance) == ["0.01", "0.02", "0.05", "0.1", "0.2"]
    assert all(0.0 <= v <= 1.0 for v in tolerance.values()) and tolerance["0.2"] <= tolerance["0.01"]
    tflite_inputs = artifacts["tflite_fp32"]["interface"]["runtime"]["inputs"]
    assert {n: d["dtype"] for n, d in tflite_inputs.items()} == {"input_ids": "int32", "attention_mask": "int32"}
    assert artifacts["tflite_int8_dynamic"]["bytes"] < artifacts["tflite_fp32"]["bytes"] * 0.7
    for name in ("tflite_fp32", "tflite_int8_dynamic", "tflite_int8_weight_only"):
        _assert_readme_io_names(out / artifacts[name]["file"], {"input_ids", "attention_mask"})
    for file in ("tokenizer/tokenizer.json", "thresholds.json", "student.json"):
        assert (out / file).exists()


def test_core_ml_parity_says_how_it_was_obtained(text_export):
    _, manifest = text_export
    record = _artifacts(manifest)["coreml_w8"]
    assert record["interface"]["program"]["inputs"] == ["input_ids", "attention_mask"]
    if coreml_can_predict():
        assert record["parity_mode"].startswith("measured")
    else:
        assert "need macOS, not run" in record["parity_mode"] and "coremltools.optimize.torch" in record["parity_mode"]
        assert "macOS" in manifest.details["coreml_predictions"]


def test_manifest_records_quantization_and_calibration(text_export):
    _, manifest = text_export
    artifacts = _artifacts(manifest)
    static = artifacts["onnx_int8_static"]["quantization"]
    assert len(static["calibration_sha256"]) == 64 and static["calibration_source"] == "validation split of the training run"
    assert static["calibration_items"] == static["calibration_items_asked"] == 32
    assert static["mode"] == "static QDQ" and static["per_channel"]
    assert "Softmax" not in static["op_types"] and "Add" in static["op_types"]  # scores stay float
    assert "calibration_sha256" not in artifacts["tflite_int8_dynamic"]["quantization"]
    assert manifest.details["teachers"] and manifest.tool_versions["litert-torch"]
    latency = manifest.metrics["latency"]
    assert {"1_thread", "2_thread"} <= set(latency)
    assert "torch_eager_fp32" in latency["1_thread"] and "tflite_int8_dynamic" in latency["1_thread"]


def test_golden_vectors_replay_through_fresh_runners(text_export):
    out, manifest = text_export
    for name in ("tflite_int8_dynamic", "onnx_fp32"):
        record = json.loads((out / _artifacts(manifest)[name]["golden"]["file"]).read_text())
        kinds = {item["kind"].split(":")[0] for item in record["items"]}
        assert {"violating", "obfuscated"} <= kinds  # benign kinds need a model that clears the thresholds
        target = record["target"]
        runner = load_runner(target, out / record["artifact"], tuple(record["input_names"]))
        result = check_golden(record, runner)
        assert result["passed"], result


def test_golden_vectors_catch_a_different_model(text_export):
    out, manifest = text_export
    record = json.loads((out / _artifacts(manifest)["tflite_fp32"]["golden"]["file"]).read_text())
    for item in record["items"]:
        item["expected_scores"] = list(reversed(item["expected_scores"]))
    runner = load_runner("tflite", out / record["artifact"], tuple(record["input_names"]))
    assert not check_golden(record, runner)["passed"]


def test_rerun_does_nothing(text_run, text_export):
    out, manifest = text_export
    again = stage.run(text_run, out)
    assert again.created_at == manifest.created_at


def test_overrides_may_only_touch_export_and_budgets(text_run, tmp_path):
    with pytest.raises(EdgemodError, match="changes training"):
        stage.run(text_run, tmp_path / "x", ["distill.epochs=9"])


def test_vision_student_goes_through_every_target(vision_run, tmp_path):
    manifest = stage.run(vision_run, tmp_path / "export")
    artifacts = _artifacts(manifest)
    assert set(artifacts) == {"tflite_fp32", "tflite_int8_static", "tflite_int8_dynamic", "coreml_fp16", "coreml_w8",
                              "coreml_w8a8", "onnx_fp32", "onnx_int8_static"}
    assert artifacts["tflite_fp32"]["parity"]["max_abs_score_diff"] < 1e-4
    static = artifacts["tflite_int8_static"]
    # MobileNetV3's int8 HARD_SWISH is not run by XNNPACK: kept float, the graph stays one partition
    assert static["interface"]["runtime"]["xnnpack_partitions"] == 1
    assert static["interface"]["runtime"]["inputs"]["image"]["shape"] == [1, 3, 64, 64]
    # same float interface as fp32, and scores not rounded to int8 steps of 1/256
    assert static["interface"]["runtime"]["inputs"]["image"]["dtype"] == "float32"
    assert static["interface"]["runtime"]["outputs"]["scores"]["dtype"] == "float32"
    assert artifacts["coreml_w8a8"]["quantization"]["activations"].startswith("int8")
    static_names = ("tflite_int8_static", "coreml_w8a8", "onnx_int8_static")  # all ask 24 items: one set, built once
    assert len({artifacts[n]["quantization"]["calibration_sha256"] for n in static_names}) == 1
    from ai_edge_litert.interpreter import Interpreter

    for name in ("tflite_fp32", "tflite_int8_static"):  # module paths, not Python class paths
        tensors = [t["name"] for t in Interpreter(str(tmp_path / "export" / artifacts[name]["file"])).get_tensor_details()]
        assert len(set(tensors)) == len(tensors) and not any("timm.models" in t for t in tensors)
        assert any(t.startswith("model.inner.blocks.") for t in tensors)
    for name in ("tflite_fp32", "tflite_int8_static", "tflite_int8_dynamic"):
        _assert_readme_io_names(tmp_path / "export" / artifacts[name]["file"], {"image"})
    preprocess = json.loads((tmp_path / "export" / "preprocess.json").read_text())
    assert preprocess["input_size"] == [3, 64, 64]
    golden = json.loads((tmp_path / "export" / static["golden"]["file"]).read_text())
    image = decode_tensor(golden["items"][0]["inputs"]["image"])
    assert image.shape == (1, 3, 64, 64) and image.dtype == np.float32


def test_unsupported_op_is_named_with_its_module():
    import torch

    from edgemod.export.coreml import convert_coreml
    from edgemod.export.tflite import export_tflite

    class Special(torch.nn.Module):
        def forward(self, x):
            return torch.special.bessel_j0(x)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.body, self.odd = torch.nn.Linear(4, 4), Special()

        def forward(self, x):
            return self.odd(self.body(x))

    sample = {"image": np.ones((1, 4), np.float32)}
    with pytest.raises(EdgemodError, match=r"cannot convert op '.*bessel_j0.*' in module 'odd'"):
        convert_coreml(Net().eval(), sample, ("image",), labels=list("abcd"), multi_label=False, precision="fp16",
                       target="iOS17", metadata={})
    with pytest.raises(EdgemodError, match=r"tflite cannot convert op 'aten.special_bessel_j0.*' in module 'odd'"):
        export_tflite(Net().eval(), sample, ("image",), __import__("pathlib").Path("/nonexistent/never.tflite"))


def test_exports_from_before_named_signatures_are_bound_by_argument_order(tmp_path):
    """Registries hold artifacts whose signature says args_0, args_1 and output_0: the runner binds
    those by the module's argument order, and new artifacts by name, to the same scores."""
    import litert_torch
    import torch

    from edgemod.export.tflite import export_tflite, torch_sample
    from edgemod.runtime.runners import TFLiteRunner

    class OrderSensitive(torch.nn.Module):
        def forward(self, input_ids, attention_mask):
            return torch.softmax(torch.stack([input_ids.sum(1), 3 * attention_mask.sum(1)], 1).float(), -1)

    names = ("input_ids", "attention_mask")
    sample = {"input_ids": np.array([[2, 1, 0, 0]], np.int32), "attention_mask": np.array([[1, 1, 0, 0]], np.int32)}
    old = tmp_path / "old.tflite"
    litert_torch.convert(OrderSensitive().eval(), torch_sample(sample, names)).export(str(old))
    new = export_tflite(OrderSensitive().eval(), sample, names, tmp_path / "new.tflite")
    _assert_readme_io_names(new, set(names))
    expected = OrderSensitive()(*torch_sample(sample, names)).numpy()
    for path in (old, new):
        assert np.allclose(TFLiteRunner(path, names)(sample), expected, atol=1e-6), path.name


def test_int8_failure_at_run_time_names_the_op(tmp_path, monkeypatch):
    """Some int8 models convert, then fail inside the runtime (efficientvit's DIV under static int8):
    the smoke test removes the file and names the op and the fix."""
    from edgemod.quantization import tflite

    class FailingRunner:
        def __init__(self, *args, **kwargs):
            raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.Node number 62 (DIV) "
                               "failed to invoke.")

    monkeypatch.setattr("edgemod.runtime.runners.TFLiteRunner", FailingRunner)
    model = tmp_path / "model_int8_static.tflite"
    model.write_bytes(b"not really a model")
    with pytest.raises(EdgemodError, match=r"fails at run time in op DIV") as failure:
        tflite.smoke_test(model, ("image",), None)
    assert "add DIV to this export's float_ops" in failure.value.hint
    assert not model.exists()


def test_calibration_set_per_item_count_and_the_core_ml_w8a8_cap_is_said(monkeypatch):
    """Each static export gets the items it asks for (equal counts share one set); Core ML w8a8 is
    capped, and says so in the console and in its quantization record."""
    from edgemod.export import targets
    from edgemod.quantization.calibration import CalibrationSet
    from edgemod.recipe import ExportSpec

    built_for = []

    def fake_set(student, items):
        built_for.append(items)
        inputs = {"image": np.zeros((items, 3, 4, 4), np.float32)}
        return CalibrationSet(inputs=inputs, sha256=f"sha-{items}", source="weapons:validation", items=items)

    monkeypatch.setattr(stage, "calibration_set", fake_set)
    specs = [ExportSpec(target="tflite", quant="int8_static", calibration_items=256),
             ExportSpec(target="onnx", quant="int8_static", calibration_items=256),
             ExportSpec(target="coreml", quant="w8a8", calibration_items=256),
             ExportSpec(target="onnx", quant="int8_dynamic")]
    lines, cache = [], {}
    console = SimpleNamespace(print=lines.append)
    sets = [stage._calibration(None, spec, cache, console) for spec in specs]
    assert built_for == [256, targets.COREML_W8A8_CALIBRATION_ITEMS] and sets[0] is sets[1] and sets[3] is None
    assert any("64 of the 256 items asked" in line for line in lines)
    assert sets[2].record(asked=256) == {"calibration_sha256": "sha-64", "calibration_source": "weapons:validation",
                                         "calibration_items": 64, "calibration_items_asked": 256}
    assert [len(list(s.rows())) for s in sets[:3]] == [256, 256, 64]


def test_unknown_scheme_is_refused_with_a_suggestion():
    from edgemod.recipe import ExportSpec

    with pytest.raises(ValueError, match="did you mean 'int8_static'"):
        ExportSpec(target="tflite", quant="int8_statik")


def test_tensor_encoding_round_trips():
    images = np.random.default_rng(0).normal(size=(1, 3, 8, 8)).astype(np.float32)
    ids = np.arange(12, dtype=np.int32).reshape(1, 12)
    assert np.array_equal(decode_tensor(json.loads(json.dumps(encode_tensor(images)))), images)
    assert np.array_equal(decode_tensor(json.loads(json.dumps(encode_tensor(ids)))), ids)


def test_parity_counts_flips_at_the_shipped_thresholds():
    from edgemod.runtime.parity import parity_report

    thresholds = {"policy": "max_f1", "benign": "ok", "multi_label": False, "per_class": {"bad": {"threshold": 0.5}}}
    reference = np.array([[0.9, 0.1], [0.4, 0.6], [0.7, 0.3], [0.2, 0.8]])
    candidate = reference.copy()
    candidate[1] = [0.52, 0.48]  # crosses the threshold: one flip
    report = parity_report(reference, candidate, np.array([0, 1, 0, 1]), ["ok", "bad"], thresholds)
    assert report["decision_flips"] == 1 and report["decision_agreement"] == 0.75
    assert report["max_abs_score_diff"] == pytest.approx(0.12)
    assert report["median_abs_log_score_diff"] == pytest.approx(0.0)  # three of four items unchanged


def test_noise_tolerance_tells_how_close_decisions_sit_to_the_thresholds():
    from edgemod.runtime.parity import noise_tolerance

    thresholds = {"policy": "max_f1", "benign": "ok", "multi_label": False, "per_class": {"bad": {"threshold": 0.5}}}
    far = np.array([[0.99, 0.01], [0.01, 0.99]] * 50)
    assert set(noise_tolerance(far, ["ok", "bad"], thresholds).values()) == {1.0}
    # half of the items score exactly at the threshold: any noise flips about half of those
    near = np.array([[0.99, 0.01], [0.5, 0.5]] * 50)
    tolerance = noise_tolerance(near, ["ok", "bad"], thresholds)
    assert all(0.65 < v < 0.85 for v in tolerance.values())


def test_edited_recipe_brings_new_exports_but_not_new_training(text_run, tmp_path):
    import yaml
    from conftest import tiny_text_recipe

    recipe = tiny_text_recipe()
    recipe["export"] = [{"target": "onnx", "quant": "int8_dynamic"}]
    path = tmp_path / "edited.yaml"
    path.write_text(yaml.safe_dump(recipe))
    manifest = stage.run(text_run, tmp_path / "export", recipe_path=path)
    assert set(_artifacts(manifest)) == {"onnx_fp32", "onnx_int8_dynamic"}
    recipe["distill"]["epochs"] = 7
    path.write_text(yaml.safe_dump(recipe))
    with pytest.raises(EdgemodError, match="differs from the recipe the student was trained with in: distill"):
        stage.run(text_run, tmp_path / "again", recipe_path=path)


def test_int8_weight_grid_makes_weight_compression_lossless(vision_run, tmp_path):
    """A student trained with distill.int8_weights: Core ML w8 and TFLite int8 weights change no score,
    where the same compression of the plain student does."""
    grid_train = tmp_path / "grid-train"
    train.run(vision_run.parent / "label", grid_train, overrides=["distill.int8_weights=true"])
    assert read_manifest(grid_train, "train").metrics["int8_weights_off_grid"] == []
    exports = ["export=[{target: coreml, quant: w8}, {target: tflite, quant: int8_weight_only}]"]
    grid = _artifacts(stage.run(grid_train, tmp_path / "grid-export", overrides=exports))
    plain = _artifacts(stage.run(vision_run, tmp_path / "plain-export", overrides=exports))
    for name in ("coreml_w8", "tflite_int8_weight_only"):
        assert grid[name]["parity"]["max_abs_score_diff"] < 1e-4, name
        assert plain[name]["parity"]["max_abs_score_diff"] > 10 * grid[name]["parity"]["max_abs_score_diff"], name


def _dequantize_feeds(path) -> list[str]:
    """What the ops reading a DEQUANTIZE output write: the ops computing in float from int8 weights."""
    from ai_edge_litert import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    names = {value: key for key, value in vars(schema.BuiltinOperator).items() if key.isupper()}
    graph = model.subgraphs[0]
    kind = [names[max(model.operatorCodes[op.opcodeIndex].builtinCode,
                      model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode)] for op in graph.operators]
    dequantized = {int(op.outputs[0]) for op, k in zip(graph.operators, kind) if k == "DEQUANTIZE"}
    return [graph.tensors[op.outputs[0]].name.decode() for op in graph.operators if dequantized & {int(i) for i in op.inputs}]


def test_float_first_layers_computes_only_the_first_weighted_layer_in_float(text_export, tmp_path):
    """int8_dynamic with float_first_layers: 1: the first weighted op reads int8 weights through a
    DEQUANTIZE and computes in float; every later weighted op keeps int8 compute."""
    from edgemod.litert_flatbuffer import op_outputs
    from edgemod.quantization.tflite import WEIGHTED_OPS, quantize_tflite

    out, manifest = text_export
    fp32 = out / _artifacts(manifest)["tflite_fp32"]["file"]
    weighted = op_outputs(fp32, WEIGHTED_OPS)
    assert len(weighted) >= 2
    names = ("input_ids", "attention_mask")
    plain, first_float = tmp_path / "plain.tflite", tmp_path / "first_float.tflite"
    quantize_tflite(fp32, plain, "int8_dynamic", None, names, [])
    details = quantize_tflite(fp32, first_float, "int8_dynamic", None, names, [], float_first_layers=1)
    assert _dequantize_feeds(plain) == []
    assert _dequantize_feeds(first_float) == [op_outputs(first_float, WEIGHTED_OPS)[0]]
    assert details["recipe"][-1]["op_config"]["compute_precision"] == "FLOAT"
    with pytest.raises(EdgemodError, match=f"has {len(weighted)} conv/fully-connected layers") as too_many:
        quantize_tflite(fp32, tmp_path / "x.tflite", "int8_dynamic", None, names, [], float_first_layers=99)
    assert f"at most {len(weighted)}" in too_many.value.hint


def test_float_first_layers_is_refused_where_it_means_nothing():
    from pydantic import ValidationError

    from edgemod.recipe import ExportSpec

    for spec in ({"target": "coreml", "quant": "w8"}, {"target": "tflite"}, {"target": "onnx"}):
        with pytest.raises(ValidationError, match="float_first_layers applies to int8 tflite, mediapipe and onnx"):
            ExportSpec(**spec, float_first_layers=1)
    assert ExportSpec(target="onnx", quant="int8_dynamic", float_first_layers=1).float_first_layers == 1


def test_onnx_float_first_layers_keeps_only_the_first_weighted_node_float(tmp_path):
    """A text CNN's convolutions become ConvInteger under dynamic int8, except the first one."""
    import onnx
    import torch

    from edgemod.export.onnx_export import export_onnx
    from edgemod.quantization.onnx import first_weighted_nodes, quantize_onnx
    from edgemod.training.students.registry import build_student

    torch.manual_seed(0)
    model = build_student("text_cnn_small", 3, vocab_size=50, embed_dim=16).eval()
    sample = {"input_ids": np.ones((2, 8), np.int32), "attention_mask": np.ones((2, 8), np.int32)}
    fp32 = export_onnx(model, sample, ("input_ids", "attention_mask"), tmp_path / "fp32.onnx", {})

    def ops(path):
        return [n.op_type for n in onnx.load(str(path)).graph.node if "Conv" in n.op_type]

    plain, first_float = tmp_path / "plain.onnx", tmp_path / "first.onnx"
    quantize_onnx(fp32, plain, "int8_dynamic", None, [], [])
    details = quantize_onnx(fp32, first_float, "int8_dynamic", None, [], [], float_first_layers=1)
    assert ops(plain) == ["ConvInteger"] * 3
    assert ops(first_float) == ["Conv", "ConvInteger", "ConvInteger"]
    assert len(details["float_nodes"]) == 1 and first_weighted_nodes(fp32, 1)
    # the float conv reads int8 weights: no float weight tensor is stored, the size stays int8's
    graph = onnx.load(str(first_float)).graph
    assert not [i for i in graph.initializer if i.data_type == onnx.TensorProto.FLOAT and len(i.dims) == 3]
    assert abs(first_float.stat().st_size - plain.stat().st_size) < 2_000
    import onnxruntime as ort

    ids = np.random.default_rng(0).integers(1, 50, (2, 8)).astype(np.int32)
    feeds = {"input_ids": ids, "attention_mask": np.ones_like(ids)}
    scores = {p.name: ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0]
              for p in (fp32, plain, first_float)}
    assert np.abs(scores["first.onnx"] - scores["fp32.onnx"]).max() < 0.05
    with pytest.raises(EdgemodError, match="weighted layers") as too_many:
        quantize_onnx(fp32, tmp_path / "x.onnx", "int8_dynamic", None, [], [], float_first_layers=99)
    assert "at most" in too_many.value.hint


def test_dilated_text_cnn_converts_to_tflite_and_onnx_with_its_padding_mask(tmp_path):
    """text_cnn_dilated's dilated convolutions (padding = dilation) keep every position, and the
    converted models score a padded post like the torch student."""
    import onnxruntime as ort
    import torch

    from edgemod.export.onnx_export import export_onnx
    from edgemod.export.tflite import export_tflite, torch_sample
    from edgemod.runtime.runners import TFLiteRunner
    from edgemod.training.students.registry import build_student

    torch.manual_seed(0)
    model = build_student("text_cnn_dilated", 3, vocab_size=50, embed_dim=16, max_length=40).eval()
    assert [conv.dilation[0] for conv in model.convs] == [1, 2, 4, 8, 1]
    names = ("input_ids", "attention_mask")
    ids = np.random.default_rng(1).integers(1, 50, (1, 40)).astype(np.int32)
    mask = np.ones_like(ids)
    ids[0, 25:], mask[0, 25:] = 0, 0
    sample = {"input_ids": ids, "attention_mask": mask}
    expected = model(*torch_sample(sample, names)).detach().numpy()
    tflite = export_tflite(model, sample, names, tmp_path / "dilated.tflite")
    np.testing.assert_allclose(TFLiteRunner(tflite, names)(sample), expected, atol=1e-4)
    onnx_path = export_onnx(model, sample, names, tmp_path / "dilated.onnx", {})
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, sample)[0], expected, atol=1e-4)
