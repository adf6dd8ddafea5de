"""One encoder from a raw payload to model inputs (`edgemod.runtime.encoder`): export, bench,
golden vectors and the mobile harness build bit-identical arrays from the same texts and image
files, and the on-device contract imports no training framework and no stage."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from edgemod.catalog import load_split
from edgemod.export import stage
from edgemod.export import student as export_student
from edgemod.export.golden import GoldenItem, golden_record
from edgemod.export.student import load_trained_student
from edgemod.mobile_harness.device_pipeline import DevicePipeline
from edgemod.runtime.golden import decode_tensor

ARTIFACT = "onnx_fp32"
RUNTIME = Path(__file__).resolve().parent.parent / "edgemod" / "runtime"
FORBIDDEN = ("torch", "torchvision", "timm", "transformers", "sklearn")
STAGES = tuple(f"edgemod.{s}" for s in ("training", "export", "quantization", "benchmarks", "mobile_harness"))


@pytest.fixture(scope="module")
def text_root(tmp_path_factory) -> Path:
    """The tiny text student (trained in seconds) and its ONNX export: root/train, root/export."""
    from conftest import tiny_text_export

    return tiny_text_export(tmp_path_factory.mktemp("runtime-text"), "export=[{target: onnx}]")


@pytest.fixture(scope="module")
def vision_root(tmp_path_factory) -> Path:
    """The tiny weapons student and its ONNX export: root/train, root/export."""
    from conftest import tiny_vision_run

    root = tmp_path_factory.mktemp("runtime-vision")
    stage.run(tiny_vision_run(root, [{"target": "onnx"}]), root / "export")
    return root


@pytest.fixture(scope="module")
def sms_texts() -> list[str]:
    texts = load_split("sms_spam:test", max_items=6)["text"].tolist()
    # plus the edges: empty, longer than max_length, obfuscated
    return [*texts, "", " ".join(texts) * 3, "FR33 m0ney!!! cl\u200bick h e r e https://x.co/a"]


@pytest.fixture(scope="module")
def transparent_png(tmp_path_factory) -> str:
    """RGBA: a fully transparent left half over garbage green, a half-transparent band, opaque blue."""
    pixels = np.zeros((60, 80, 4), dtype=np.uint8)
    pixels[:, :40] = (0, 255, 0, 0)
    pixels[:, 40:50] = (200, 30, 30, 128)
    pixels[:, 50:] = (20, 40, 220, 255)
    path = tmp_path_factory.mktemp("png") / "transparent.png"
    Image.fromarray(pixels, "RGBA").save(path)
    return str(path)


@pytest.fixture(scope="module")
def frames(transparent_png) -> list[str]:
    return [*load_split("weapons:test", max_items=4)["path"].tolist(), transparent_png]


def _harness(export_dir: Path, payloads: list[str]) -> dict[str, np.ndarray]:
    """The harness path, item by item: prepare (decode) then encode, as a stream does."""
    pipeline = DevicePipeline.from_export(export_dir, ARTIFACT, load_model=False)
    built = [pipeline.inputs(p) for p in payloads]
    return {name: np.concatenate([b[name] for b in built]) for name in pipeline.input_names}


def _golden_inputs(student, payloads: list[str]) -> dict[str, np.ndarray]:
    """The golden-vector path: the export stage's inputs, through the golden file's tensor encoding."""
    items = [GoldenItem(f"k{i}", "test", p) for i, p in enumerate(payloads)]
    inputs = student.encode([item.payload for item in items])
    scores = np.full((len(items), len(student.labels)), 1 / len(student.labels), dtype=np.float32)
    record = json.loads(json.dumps(golden_record(items, inputs, scores, scores, student.labels, student.thresholds,
                                                 1e-3, {})))
    return {name: np.concatenate([decode_tensor(item["inputs"][name]) for item in record["items"]])
            for name in inputs}


def _assert_identical(paths: dict[str, dict[str, np.ndarray]]) -> None:
    (first_name, first), *others = paths.items()
    for name, inputs in others:
        assert inputs.keys() == first.keys(), (name, first_name)
        for key in first:
            assert inputs[key].dtype == first[key].dtype, (name, key)
            assert inputs[key].shape == first[key].shape, (name, key)
            assert inputs[key].tobytes() == first[key].tobytes(), f"{name} differs from {first_name} on {key}"


def _all_paths(root: Path, payloads: list[str]) -> dict[str, dict[str, np.ndarray]]:
    exported = load_trained_student(root / "train")  # what `edgemod export` encodes with
    benched = load_trained_student(root / "export", stage="export")  # what `edgemod bench` encodes with
    return {"export": exported.encode(payloads), "bench": benched.encode(payloads),
            "golden": _golden_inputs(exported, payloads), "harness": _harness(root / "export", payloads)}


def test_text_paths_are_bit_identical(text_root, sms_texts):
    paths = _all_paths(text_root, sms_texts)
    _assert_identical(paths)
    ids = paths["harness"]["input_ids"]
    assert ids.dtype == np.int32 and ids.shape == (len(sms_texts), 32)
    assert paths["harness"]["attention_mask"][-3].sum() == 2  # the empty text: [CLS] [SEP]
    assert paths["harness"]["attention_mask"][-2].all()  # the long text fills the row


def test_image_paths_are_bit_identical(vision_root, frames):
    paths = _all_paths(vision_root, frames)
    _assert_identical(paths)
    image = paths["harness"]["image"]
    assert image.dtype == np.float32 and image.shape == (len(frames), 3, 64, 64)


def test_transparent_pixels_use_the_configured_background(vision_root, transparent_png, tmp_path):
    """Export, bench, golden and harness all composite over preprocess.json's alpha_background."""
    export = tmp_path / "export"
    shutil.copytree(vision_root / "export", export)
    preprocess = json.loads((export / "preprocess.json").read_text())
    (export / "preprocess.json").write_text(json.dumps({**preprocess, "alpha_background": [255, 0, 0]}))
    student = load_trained_student(export, stage="export")
    paths = {"bench": student.encode([transparent_png]), "golden": _golden_inputs(student, [transparent_png]),
             "harness": _harness(export, [transparent_png])}
    _assert_identical(paths)
    grey = load_trained_student(vision_root / "export", stage="export").encode([transparent_png])["image"]
    red = paths["harness"]["image"]
    mean, std = np.asarray(preprocess["mean"]), np.asarray(preprocess["std"])
    corner = red[0, :, 32, 2]  # inside the transparent half after resize and crop
    np.testing.assert_allclose(corner, (np.array([1.0, 0.0, 0.0]) - mean) / std, atol=1e-6)
    assert not np.allclose(grey[0, :, 32, 2], corner)


def test_stored_golden_and_bench_test_inputs_match_the_harness(text_root, vision_root):
    """The golden file and the test split bench scores were built by the encoder the harness uses."""
    for root in (text_root, vision_root):
        golden = json.loads((root / "export" / "golden" / f"{ARTIFACT}.json").read_text())
        stored = {name: np.concatenate([decode_tensor(item["inputs"][name]) for item in golden["items"]])
                  for name in golden["input_names"]}
        harness = _harness(root / "export", [item["payload"] for item in golden["items"]])
        _assert_identical({"golden file": stored, "harness": harness})
        student = load_trained_student(root / "export", stage="export")
        test = export_student.TestSet.load(student)
        _assert_identical({"bench": test.inputs,
                           "harness": _harness(root / "export", test.table[student.payload_column].tolist())})


def test_stream_steps_equal_the_batch(text_root, frames, vision_root):
    """prepare + encode_prepared per item (what a stream does) equals one batch `encode`."""
    from edgemod.runtime.encoder import load_encoder

    for root, payloads in ((text_root, ["hello there", "win a free prize now"]), (vision_root, frames)):
        encoder = load_encoder(root / "export")
        single = [encoder.encode_prepared(encoder.prepare(p)) for p in payloads]
        _assert_identical({"batch": encoder.encode(payloads),
                           "stream": {n: np.concatenate([s[n] for s in single]) for n in encoder.input_names}})


@pytest.mark.parametrize("module", sorted(p.stem for p in RUNTIME.glob("*.py")))
def test_runtime_imports_no_framework_and_no_stage(module):
    probe = (f"import sys, edgemod.runtime.{module}\n"
             f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r} or m.startswith({STAGES!r}))\n"
             "print(','.join(bad))")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"edgemod.runtime.{module} imports {result.stdout.strip()}"
