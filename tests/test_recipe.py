from pathlib import Path

import pytest

from edgemod.errors import EdgemodError
from edgemod.recipe import load_recipe, override_section, parse_recipe, split_overrides

RECIPES = sorted((Path(__file__).parent.parent / "recipes").glob("*.yaml"))


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.name)
def test_every_shipped_recipe_validates(path):
    recipe = load_recipe(path)
    assert recipe.labels and recipe.student.arch


def test_shipped_recipes_exist():
    assert {"text-hate.yaml", "text-spam.yaml", "quickstart.yaml"} <= {p.name for p in RECIPES}


def test_unknown_top_level_key_suggests_the_right_one(tiny_recipe_dict):
    tiny_recipe_dict["studnet"] = tiny_recipe_dict.pop("student")
    with pytest.raises(EdgemodError) as error:
        parse_recipe(tiny_recipe_dict)
    assert "unknown key 'studnet'" in str(error.value)
    assert "did you mean 'student'" in str(error.value)


def test_unknown_nested_key_suggests_the_right_one(tiny_recipe_dict):
    tiny_recipe_dict["distill"]["temprature"] = 3.0
    with pytest.raises(EdgemodError, match=r"distill\.temprature.*did you mean 'temperature'"):
        parse_recipe(tiny_recipe_dict)


def test_unknown_key_in_a_list_item(tiny_recipe_dict):
    tiny_recipe_dict["teachers"][0]["wieght"] = 2
    with pytest.raises(EdgemodError, match="did you mean 'weight'"):
        parse_recipe(tiny_recipe_dict)


def test_teacher_map_onto_unknown_label(tiny_recipe_dict):
    tiny_recipe_dict["teachers"][0]["map"] = {"toxic": "hatespeach"}
    with pytest.raises(EdgemodError, match="did you mean 'hatespeech'"):
        parse_recipe(tiny_recipe_dict)


def test_precision_policy_needs_a_target(tiny_recipe_dict):
    tiny_recipe_dict["thresholds"] = {"policy": "precision_at"}
    with pytest.raises(EdgemodError, match="needs 'precision"):
        parse_recipe(tiny_recipe_dict)


def test_benign_label_must_exist(tiny_recipe_dict):
    tiny_recipe_dict["thresholds"]["benign"] = "nromal"
    with pytest.raises(EdgemodError, match="did you mean 'normal'"):
        parse_recipe(tiny_recipe_dict)


def test_no_teacher_needs_gold_only(tiny_recipe_dict):
    tiny_recipe_dict["teachers"] = []
    with pytest.raises(EdgemodError, match="gold_only"):
        parse_recipe(tiny_recipe_dict)
    tiny_recipe_dict["distill"]["gold_only"] = True
    assert parse_recipe(tiny_recipe_dict).distill.gold_only


def test_mediapipe_tasks_tokenizer_picks_its_normalizer(tiny_recipe_dict):
    assert parse_recipe(tiny_recipe_dict).student.normalizer == "moderation-v1"
    tiny_recipe_dict["student"]["tokenizer"] = "mediapipe_tasks"
    recipe = parse_recipe(tiny_recipe_dict)
    assert recipe.student.normalizer == "mediapipe-bert-v1"
    assert parse_recipe(recipe.model_dump(mode="json")).student.normalizer == "mediapipe-bert-v1"  # as stages re-read it
    tiny_recipe_dict["student"]["normalizer"] = "mediapipe-bert-v1"
    assert parse_recipe(tiny_recipe_dict).student.normalizer == "mediapipe-bert-v1"


def test_mediapipe_tasks_tokenizer_refuses_another_normalizer(tiny_recipe_dict):
    tiny_recipe_dict["student"].update(tokenizer="mediapipe_tasks", normalizer="moderation-v1")
    with pytest.raises(EdgemodError, match="needs student.normalizer 'mediapipe-bert-v1'.*remove the key"):
        parse_recipe(tiny_recipe_dict)


def test_tokenizer_and_augmentation_keys_are_checked(tiny_recipe_dict):
    tiny_recipe_dict["student"]["tokenizer"] = "mediapipe"
    with pytest.raises(EdgemodError, match="student.tokenizer: Input should be 'bert' or 'mediapipe_tasks'"):
        parse_recipe(tiny_recipe_dict)
    tiny_recipe_dict["student"]["tokenizer"] = "bert"
    tiny_recipe_dict["distill"]["obfuscation_augmnt"] = 0.5
    with pytest.raises(EdgemodError, match="did you mean 'obfuscation_augment'"):
        parse_recipe(tiny_recipe_dict)
    del tiny_recipe_dict["distill"]["obfuscation_augmnt"]
    tiny_recipe_dict["distill"]["obfuscation_augment"] = 1.5
    with pytest.raises(EdgemodError, match="distill.obfuscation_augment"):
        parse_recipe(tiny_recipe_dict)
    tiny_recipe_dict["distill"].update(obfuscation_augment=0.5, obfuscation_copies=3)
    assert parse_recipe(tiny_recipe_dict).distill.obfuscation_copies == 3


def test_overrides_parse_yaml_values(tmp_path):
    recipe = load_recipe(RECIPES[0], ["distill.epochs=1", "student.options={embed_dim: 32}"])
    assert recipe.distill.epochs == 1 and recipe.student.options == {"embed_dim": 32}


def test_override_without_equals_is_an_error():
    with pytest.raises(EdgemodError, match="has no '='"):
        load_recipe(RECIPES[0], ["distill.epochs"])


def test_missing_and_malformed_recipe_files(tmp_path):
    with pytest.raises(EdgemodError, match="recipe not found"):
        load_recipe(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(EdgemodError, match="not valid YAML"):
        load_recipe(bad)


def test_fingerprint_changes_with_content(tiny_recipe_dict):
    first = parse_recipe(tiny_recipe_dict).fingerprint()
    tiny_recipe_dict["distill"]["epochs"] = 3
    assert parse_recipe(tiny_recipe_dict).fingerprint() != first


def test_overrides_split_into_training_and_post_training():
    overrides = ["distill.lr=0.01", "export=[{target: onnx}]", " budgets.size_mb.onnx = 2", "student.arch=text_cnn_small"]
    assert [override_section(o) for o in overrides] == ["distill", "export", "budgets", "student"]
    assert split_overrides(overrides) == (["distill.lr=0.01", "student.arch=text_cnn_small"],
                                          ["export=[{target: onnx}]", " budgets.size_mb.onnx = 2"])
