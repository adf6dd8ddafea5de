import numpy as np
import pytest
import torch

from edgemod.errors import EdgemodError
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, build_teacher
from edgemod.training.teachers.finetune import FinetuneConfig, minilm_base_dir

TEXTS = ["have a lovely day", "you are a complete idiot", "", "a" * 2000]


@pytest.fixture
def tiny_checkpoint(tmp_path):
    """A small random BERT classifier saved like any local transformers checkpoint."""
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=3,
                        id2label={0: "normal", 1: "offensive", 2: "hatespeech"},
                        label2id={"normal": 0, "offensive": 1, "hatespeech": 2})
    model = BertForSequenceClassification(config).eval()
    model.save_pretrained(tmp_path / "ckpt")
    AutoTokenizer.from_pretrained(minilm_base_dir()).save_pretrained(tmp_path / "ckpt")
    return tmp_path / "ckpt", model


def test_hf_teacher_matches_the_model(tiny_checkpoint, tiny_recipe):
    path, model = tiny_checkpoint
    teacher = build_teacher(TeacherSpec(kind="hf", path=str(path), options={"max_length": 16, "batch_size": 2}),
                            TeacherContext(tiny_recipe))
    assert teacher.labels == ["normal", "offensive", "hatespeech"] and not teacher.multi_label
    probs = teacher.predict_proba([Item(str(i), t) for i, t in enumerate(TEXTS)])
    from transformers import AutoTokenizer

    enc = AutoTokenizer.from_pretrained(path)(TEXTS, truncation=True, max_length=16, padding=True, return_tensors="pt")
    with torch.inference_mode():
        expected = torch.softmax(model(**enc).logits, -1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert teacher.identity().startswith("hf:ckpt:")


def test_hf_teacher_errors_name_the_fix(tmp_path, tiny_recipe):
    with pytest.raises(EdgemodError, match="edgemod teacher finetune"):
        build_teacher(TeacherSpec(kind="hf", path=str(tmp_path)), TeacherContext(tiny_recipe))
    with pytest.raises(EdgemodError, match="unknown hf teacher option"):
        build_teacher(TeacherSpec(kind="hf", path=str(tmp_path), options={"max_len": 3}), TeacherContext(tiny_recipe))


def test_finetune_smoke_produces_a_usable_teacher(tiny_recipe, tmp_path):
    from edgemod.training.teachers.finetune import run

    manifest = run(tiny_recipe, tmp_path / "teacher", FinetuneConfig(epochs=1, max_items=24, batch_size=8))
    assert manifest.stage == "teacher" and manifest.metrics["parameters"] > 20_000_000
    assert 0 <= manifest.metrics["test"]["macro_f1"] <= 1
    teacher = build_teacher(TeacherSpec(kind="hf", path=str(tmp_path / "teacher")), TeacherContext(tiny_recipe))
    assert teacher.predict_proba([Item("a", "hello there")]).shape == (1, 3)


def _teacher(path, tmp_path, tiny_recipe, **options):
    spec = TeacherSpec(kind="hf", path=str(path), options={"max_length": 16, "batch_size": 2, **options})
    return build_teacher(spec, TeacherContext(tiny_recipe, cache_dir=tmp_path / "cache"))


@pytest.mark.parametrize("engine", ["onnxruntime", "onnxruntime-int8"])
def test_onnx_engines_score_like_torch_and_report_their_speed(tiny_checkpoint, tmp_path, tiny_recipe, engine):
    path, _ = tiny_checkpoint
    teacher = _teacher(path, tmp_path, tiny_recipe, engine=engine, engine_min_agreement=0.5)
    items = [Item(str(i), t) for i, t in enumerate(TEXTS * 3)]
    check = teacher.check_engine(items)
    assert check["engine"] == engine and check["items"] == len(items)
    assert set(check["views_per_s"]) == {"torch", engine}
    torch_scores = _teacher(path, tmp_path, tiny_recipe).predict_proba(items)
    tolerance = 1e-5 if engine == "onnxruntime" else 0.1
    np.testing.assert_allclose(teacher.predict_proba(items), torch_scores, atol=tolerance)
    # the label cache keys on the engine: int8 scores never pass for torch's
    assert teacher.identity().startswith(_teacher(path, tmp_path, tiny_recipe).identity() + f":{engine}")
    if engine.endswith("int8"):  # which MatMuls stay float changes the scores, so the cache key too
        other = _teacher(path, tmp_path, tiny_recipe, engine=engine, engine_float_matmuls=[])
        assert other.identity() != teacher.identity()
    assert list((tmp_path / "cache" / "teacher-onnx").glob("*.onnx"))


def test_an_int8_export_below_its_agreement_budget_stops_the_run(tiny_checkpoint, tmp_path, tiny_recipe, monkeypatch):
    path, _ = tiny_checkpoint
    teacher = _teacher(path, tmp_path, tiny_recipe, engine="onnxruntime-int8", engine_min_agreement=0.99)
    real = teacher.score

    def flipped(items, engine):  # an export that reverses every decision
        scores = real(items, engine)
        return scores[:, ::-1].copy() if engine != "torch" else scores

    monkeypatch.setattr(teacher, "score", flipped)
    with pytest.raises(EdgemodError, match="disagrees with torch") as raised:
        teacher.check_engine([Item(str(i), t) for i, t in enumerate(["good day", "you idiot", "ok then"])])
    assert "options.engine" in str(raised.value)


def test_an_unknown_engine_names_the_known_ones(tiny_checkpoint, tmp_path, tiny_recipe):
    path, _ = tiny_checkpoint
    with pytest.raises(EdgemodError, match="onnxruntime-int8"):
        _teacher(path, tmp_path, tiny_recipe, engine="tensorrt")
