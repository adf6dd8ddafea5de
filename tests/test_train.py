import json

import numpy as np
import pytest

from edgemod.errors import EdgemodError
from edgemod.manifest import read_manifest, verify_artifacts
from edgemod.training import label, train


@pytest.fixture
def labelled(tiny_recipe, tmp_path):
    label.run(tiny_recipe, tmp_path / "label")
    return tmp_path / "label"


def test_train_writes_a_complete_run(labelled, tmp_path):
    manifest = train.run(labelled, tmp_path / "train")
    out = tmp_path / "train"
    assert verify_artifacts(out, manifest) == []
    assert read_manifest(out, "train").inputs["labels"].sha256 == read_manifest(labelled).artifacts["labels"].sha256
    test = manifest.metrics["test"]
    assert 0 <= test["student"]["macro_f1"] <= 1 and 0 <= test["teacher"]["macro_f1"] <= 1
    assert set(test["student"]["per_class"]) == {"normal", "offensive", "hatespeech"}
    assert test["student"]["confusion_matrix"] and len(test["student"]["confusion_matrix"]) == 3
    thresholds = json.loads((out / "thresholds.json").read_text())
    assert thresholds["benign"] == "normal" and "offensive" in thresholds["per_class"]
    assert set(test["student_at_thresholds"]["operating_points"]) == set(thresholds["per_class"])
    student = json.loads((out / "student.json").read_text())
    assert student["inputs"]["input_ids"]["shape"] == [1, 32]
    assert manifest.metrics["student_parameters"] > 0 and manifest.metrics["history"]


def test_training_is_deterministic(labelled, tmp_path):
    first = train.run(labelled, tmp_path / "a")
    second = train.run(labelled, tmp_path / "b")
    assert first.artifacts["model.safetensors"].sha256 == second.artifacts["model.safetensors"].sha256
    assert first.metrics["test"] == second.metrics["test"]


def test_rerun_does_nothing_and_override_retrains(labelled, tmp_path):
    first = train.run(labelled, tmp_path / "t")
    again = train.run(labelled, tmp_path / "t")
    assert again.created_at == first.created_at
    changed = train.run(labelled, tmp_path / "t", overrides=["distill.lr=0.02"])
    assert changed.created_at != first.created_at and changed.recipe["distill"]["lr"] == 0.02


def test_interrupted_training_resumes_to_the_same_result(labelled, tmp_path, monkeypatch):
    reference = train.run(labelled, tmp_path / "full", overrides=["distill.epochs=3", "distill.patience=5"])
    calls = {"n": 0}
    real_validate = train._validation_f1

    def interrupt_in_epoch_two(*args):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real_validate(*args)

    monkeypatch.setattr(train, "_validation_f1", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        train.run(labelled, tmp_path / "resumed", overrides=["distill.epochs=3", "distill.patience=5"])
    monkeypatch.setattr(train, "_validation_f1", real_validate)
    resumed = train.run(labelled, tmp_path / "resumed", overrides=["distill.epochs=3", "distill.patience=5"])
    assert [h["epoch"] for h in resumed.metrics["history"]] == [1, 2, 3]
    assert resumed.artifacts["model.safetensors"].sha256 == reference.artifacts["model.safetensors"].sha256


def test_overrides_that_change_the_labels_are_refused(labelled, tmp_path):
    with pytest.raises(EdgemodError, match="re-run `edgemod label`"):
        train.run(labelled, tmp_path / "t", overrides=["data.max_items_per_split=10"])


def test_gold_only_baseline_trains_on_train_split_only(labelled, tmp_path):
    manifest = train.run(labelled, tmp_path / "gold", overrides=["distill.gold_only=true"])
    distilled = train.run(labelled, tmp_path / "kd")
    assert manifest.metrics["test"]["student"]["n"] == distilled.metrics["test"]["student"]["n"] == 150
    assert manifest.artifacts["model.safetensors"].sha256 != distilled.artifacts["model.safetensors"].sha256


def test_missing_label_run(tmp_path):
    with pytest.raises(EdgemodError, match="run `edgemod label` first"):
        train.run(tmp_path / "nothing", tmp_path / "t")


def test_multi_label_recipe_trains(tiny_recipe_dict, tmp_path):
    from edgemod.recipe import parse_recipe

    tiny_recipe_dict.update(multi_label=True)
    tiny_recipe_dict["distill"]["loss"] = "bce"
    recipe = parse_recipe(tiny_recipe_dict)
    label.run(recipe, tmp_path / "label")
    manifest = train.run(tmp_path / "label", tmp_path / "train")
    assert 0 <= manifest.metrics["test"]["student"]["macro_auroc"] <= 1
    assert np.isfinite(manifest.metrics["test"]["teacher"]["macro_f1"])


@pytest.mark.parametrize("balance", ["sampler", "loss_weights"])
def test_class_balancing_options_train_and_differ(labelled, tmp_path, balance):
    plain = train.run(labelled, tmp_path / "plain")
    balanced = train.run(labelled, tmp_path / balance, overrides=[f"distill.balance={balance}"])
    assert balanced.artifacts["model.safetensors"].sha256 != plain.artifacts["model.safetensors"].sha256
    again = train.run(labelled, tmp_path / f"{balance}-again", overrides=[f"distill.balance={balance}"])
    assert again.artifacts["model.safetensors"].sha256 == balanced.artifacts["model.safetensors"].sha256


def test_mediapipe_tasks_tokenizer_with_obfuscation_augment_trains(tiny_recipe_dict, tmp_path):
    from edgemod.recipe import parse_recipe
    from edgemod.runtime.tokenizer import WordPieceTokenizer

    tiny_recipe_dict["student"]["tokenizer"] = "mediapipe_tasks"
    tiny_recipe_dict["distill"]["obfuscation_augment"] = 0.5
    label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")
    manifest = train.run(tmp_path / "label", tmp_path / "train")
    assert 0 <= manifest.metrics["test"]["student"]["macro_f1"] <= 1
    tokenizer = WordPieceTokenizer.load(tmp_path / "train" / "tokenizer")
    assert tokenizer.pre_tokenization == "mediapipe_tasks" and tokenizer.normalizer.name == "mediapipe-bert-v1"
    spec = json.loads((tmp_path / "train" / "tokenizer" / "tokenizer_spec.json").read_text())
    assert spec["pre_tokenization"] == "mediapipe_tasks" and spec["placeholders"] == {}
    # the vocabulary was fitted to obfuscated copies too: their look-alike and invisible characters are in it
    assert {"\u200b", "\u0430", "\u043e"} & set(tokenizer.vocab)
    again = train.run(tmp_path / "label", tmp_path / "again")
    assert again.artifacts["model.safetensors"].sha256 == manifest.artifacts["model.safetensors"].sha256
    clean = train.run(tmp_path / "label", tmp_path / "clean", overrides=["distill.obfuscation_augment=0"])
    assert clean.artifacts["model.safetensors"].sha256 != manifest.artifacts["model.safetensors"].sha256


def test_obfuscation_augment_is_refused_for_image_students():
    from edgemod.recipe import parse_recipe
    from edgemod.training.inputs import ImageInputs

    recipe = parse_recipe({"name": "img", "task": "image-classification", "labels": ["none", "knife"],
                           "data": {"train": "weapons:train", "validation": "weapons:validation", "test": "weapons:test"},
                           "student": {"arch": "test_vision_tiny"},
                           "distill": {"gold_only": True, "obfuscation_augment": 0.5}})
    with pytest.raises(EdgemodError, match="obfuscation_augment rewrites text"):
        ImageInputs(recipe, table=None)
