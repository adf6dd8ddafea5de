"""Tasks-ready artifacts (export target `mediapipe`): MediaPipe Tasks in Python runs them on raw
payloads with its own pre-processing, and decides like edgemod's pipeline."""
import json

import numpy as np
import pytest

from edgemod.manifest import read_manifest
from edgemod.runtime.runners import load_runner
from edgemod.runtime.tasks_layout import read_layout


@pytest.fixture
def text_export(tasks_text_export):
    return tasks_text_export


@pytest.fixture
def vision_export(tasks_vision_export):
    return tasks_vision_export


def _record(export_dir, name):
    return read_manifest(export_dir, "export").details["artifacts"][name]


def test_text_artifact_carries_tasks_metadata_and_named_inputs(text_export):
    from edgemod.optional import mediapipe_metadata_writers

    mediapipe_metadata_writers()  # installs the parser-version port the 1.2.x wheels lack
    from mediapipe.tasks.python.metadata import metadata

    path = text_export / _record(text_export, "mediapipe_int8_dynamic")["file"]
    shown = json.loads(metadata.MetadataDisplayer.with_model_file(str(path)).get_metadata_json())
    subgraph = shown["subgraph_metadata"][0]
    assert [t["name"] for t in subgraph["input_tensor_metadata"]] == ["ids", "mask", "segment_ids"]
    assert subgraph["input_process_units"][0]["options_type"] == "BertTokenizerOptions"
    assert shown["min_parser_version"] == "1.1.0"
    files = metadata.MetadataDisplayer.with_model_file(str(path)).get_packed_associated_file_list()
    assert sorted(files) == ["labels.txt", "vocab.txt"]
    layout = read_layout(path)
    assert layout["task"] == "text" and layout["inputs"] == ["input_ids", "attention_mask", "token_type_ids"]
    interface = _record(text_export, "mediapipe_int8_dynamic")["interface"]["runtime"]
    assert set(interface["inputs"]) == {"input_ids", "attention_mask", "token_type_ids"}
    assert [d["tensor"] for d in interface["inputs"].values()] == ["input_ids", "attention_mask", "token_type_ids"]


def test_tasks_decides_like_edgemod_on_raw_text(text_export):
    """Tasks' own tokenizer (no normalizer) vs edgemod's encoder, on the whole tiny test split."""
    import pandas as pd

    from edgemod.runtime.decision import decide
    from edgemod.runtime.encoder import load_encoder
    from edgemod.runtime.runners import run_all
    from edgemod.runtime.tasks_check import tasks_scores

    manifest = read_manifest(text_export, "export")
    labels, thresholds = manifest.details["labels"], manifest.details["thresholds"]
    test = pd.read_parquet(text_export / "predictions.parquet").query("role == 'test'")
    texts = test["text"].tolist()
    encoder = load_encoder(text_export)
    for name in ("mediapipe_fp32", "mediapipe_int8_dynamic"):
        path = text_export / _record(text_export, name)["file"]
        ours = run_all(load_runner("mediapipe", path, encoder.input_names), encoder.encode(texts))
        tasks = tasks_scores(path, "text", labels, texts)
        assert np.abs(ours - tasks).max() < 1e-4, name
        assert (decide(ours, labels, thresholds) == decide(tasks, labels, thresholds)).all(), name


def test_tasks_decides_like_edgemod_on_raw_image_files(vision_export):
    """Tasks decodes and resizes the files itself; the student was trained with
    `image_preprocessing: mediapipe_tasks`, so edgemod's eval pipeline builds the same pixels."""
    import pandas as pd

    from edgemod.runtime.decision import decide
    from edgemod.runtime.encoder import load_encoder
    from edgemod.runtime.runners import run_all
    from edgemod.runtime.tasks_check import tasks_scores

    manifest = read_manifest(vision_export, "export")
    labels, thresholds = manifest.details["labels"], manifest.details["thresholds"]
    paths = pd.read_parquet(vision_export / "predictions.parquet").query("role == 'test'")["path"].tolist()
    encoder = load_encoder(vision_export)
    assert encoder.config.resize == "mediapipe_tasks_roi"
    for name in ("mediapipe_fp32", "mediapipe_int8_static"):
        path = vision_export / _record(vision_export, name)["file"]
        ours = run_all(load_runner("mediapipe", path, encoder.input_names), encoder.encode(paths))
        tasks = tasks_scores(path, "image", labels, paths, encoder.config.crop_pct)
        assert np.median(np.abs(ours - tasks)) < 0.01, name
        assert (decide(ours, labels, thresholds) == decide(tasks, labels, thresholds)).mean() >= 0.95, name


def test_harness_golden_runs_tasks_on_the_golden_payloads(text_export, vision_export):
    from edgemod.mobile_harness.golden_check import check_export

    for export_dir in (text_export, vision_export):
        for report in check_export(export_dir):
            assert report["passed"], report
            if report["target"] == "mediapipe":
                assert report["mediapipe_tasks"]["items"] == report["items"] > 0
                assert report["mediapipe_tasks"]["decision_mismatches"] == []


def test_image_artifact_is_nhwc_with_one_normalization_and_folded_channels(vision_export):
    from edgemod.optional import mediapipe_metadata_writers

    mediapipe_metadata_writers()
    from mediapipe.tasks.python.metadata import metadata

    record = _record(vision_export, "mediapipe_int8_static")
    path = vision_export / record["file"]
    shown = json.loads(metadata.MetadataDisplayer.with_model_file(str(path)).get_metadata_json())
    tensor = shown["subgraph_metadata"][0]["input_tensor_metadata"][0]
    normalization = tensor["process_units"][0]["options"]
    assert normalization == {"mean": [0.0], "std": [255.0]}
    image = record["interface"]["runtime"]["inputs"]["image"]
    assert image["shape"] == [1, 64, 64, 3] and image["dtype"] == "float32"
    preprocess = json.loads((vision_export / "preprocess.json").read_text())
    layout = read_layout(path)
    assert layout["folded_mean"] == pytest.approx(preprocess["mean"]) and layout["folded_std"] == pytest.approx(preprocess["std"])


def test_tasks_layout_round_trips_edgemod_images():
    from edgemod.runtime.tasks_layout import image_layout, to_tasks_inputs

    rng = np.random.default_rng(0)
    unit = rng.random((2, 8, 8, 3), dtype=np.float32)
    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    normalized = (unit.transpose(0, 3, 1, 2) - np.reshape(mean, (1, 3, 1, 1))) / np.reshape(std, (1, 3, 1, 1))
    back = to_tasks_inputs({"image": normalized.astype(np.float32)}, image_layout(mean, std))["image"]
    assert back.shape == unit.shape and np.abs(back - unit).max() < 1e-6


def test_center_crop_roi_is_the_eval_crop():
    from edgemod.runtime.tasks_check import center_crop_roi

    left, top, right, bottom = center_crop_roi(400, 200, 0.875)  # keeps a 175 x 175 square in the middle
    assert (left * 400, top * 200, right * 400, bottom * 200) == pytest.approx((112.5, 12.5, 287.5, 187.5))


def test_metadata_parser_version_follows_mediapipe_rules():
    from edgemod.optional import mediapipe_metadata_writers, metadata_parser_version

    mediapipe_metadata_writers()
    from mediapipe.tasks.metadata import metadata_schema_py_generated as schema

    def packed(metadata) -> bytes:
        import flatbuffers

        builder = flatbuffers.Builder(0)
        builder.Finish(metadata.Pack(builder), b"M001")
        return bytes(builder.Output())

    bare = schema.ModelMetadataT()
    assert metadata_parser_version(packed(bare)) == "1.0.0"
    vocab = schema.AssociatedFileT()
    vocab.name, vocab.type = "vocab.txt", schema.AssociatedFileType.VOCABULARY
    bare.associatedFiles = [vocab]
    assert metadata_parser_version(packed(bare)) == "1.0.1"
    unit = schema.ProcessUnitT()
    unit.optionsType, unit.options = schema.ProcessUnitOptions.RegexTokenizerOptions, schema.RegexTokenizerOptionsT()
    subgraph = schema.SubGraphMetadataT()
    subgraph.inputProcessUnits = [unit]
    bare.subgraphMetadata = [subgraph]
    assert metadata_parser_version(packed(bare)) == "1.2.1"


def test_docs_show_the_javascript_rule_the_page_runs():
    """docs/mobile.md quotes mobile_harness/web/decision.js verbatim: the browser test checks that code."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    code = (root / "mobile_harness/web/decision.js").read_text().strip()
    assert f"```javascript\n{code}\n```" in (root / "docs/mobile.md").read_text()


def test_a_tasks_ready_export_needs_a_student_trained_for_tasks_preprocessing():
    from conftest import WEAPONS, tiny_text_recipe

    from edgemod.errors import EdgemodError
    from edgemod.recipe import parse_recipe

    text = tiny_text_recipe()
    text["export"] = [{"target": "mediapipe"}]
    with pytest.raises(EdgemodError, match="needs student.tokenizer: mediapipe_tasks"):
        parse_recipe(text)
    text["student"]["tokenizer"] = "mediapipe_tasks"
    assert parse_recipe(text).student.normalizer == "mediapipe-bert-v1"
    splits = {"train": "weapons:train", "validation": "weapons:validation", "test": "weapons:test"}
    image = {"name": "w", "task": "image-classification", "labels": WEAPONS, "data": splits,
             "teachers": [{"kind": "scores", "path": "s.parquet"}], "student": {"arch": "test_vision_tiny"},
             "export": [{"target": "mediapipe", "quant": "int8_static"}]}
    with pytest.raises(EdgemodError, match="needs student.image_preprocessing: mediapipe_tasks"):
        parse_recipe(image)
    image["student"]["image_preprocessing"] = "mediapipe_tasks"
    assert parse_recipe(image).export[0].target == "mediapipe"
