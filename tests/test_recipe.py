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


def _set(path: str, value):
    """An edit of the recipe dict: `path` is dotted, list items by index (`teachers.0.map`)."""
    def edit(recipe: dict) -> None:
        *parents, key = path.split(".")
        node = recipe
        for part in parents:
            node = node[int(part)] if isinstance(node, list) else node[part]
        node[key] = value
    return edit


def _rename(old: str, new: str):
    return lambda recipe: recipe.__setitem__(new, recipe.pop(old))


# (edit of the tiny recipe, what the error must say: the fault and, where one exists, the fix)
REFUSED = {
    "top-level typo": (_rename("student", "studnet"), "(?s)unknown key 'studnet'.*did you mean 'student'"),
    "nested typo": (_set("distill.temprature", 3.0), r"distill\.temprature.*did you mean 'temperature'"),
    "typo in a list item": (_set("teachers.0.wieght", 2), "did you mean 'weight'"),
    "teacher map onto an unknown label": (_set("teachers.0.map", {"toxic": "hatespeach"}), "did you mean 'hatespeech'"),
    "precision policy without a target": (_set("thresholds", {"policy": "precision_at"}), "needs 'precision"),
    "unknown benign label": (_set("thresholds.benign", "nromal"), "did you mean 'normal'"),
    "no teacher without gold_only": (_set("teachers", []), "gold_only"),
    "tokenizer typo": (_set("student.tokenizer", "mediapipe"),
                       "student.tokenizer: Input should be 'bert' or 'mediapipe_tasks'"),
    "mediapipe_tasks with another normalizer": (
        lambda recipe: recipe["student"].update(tokenizer="mediapipe_tasks", normalizer="moderation-v1"),
        "needs student.normalizer 'mediapipe-bert-v1'.*remove the key"),
    "augmentation key typo": (_set("distill.obfuscation_augmnt", 0.5), "did you mean 'obfuscation_augment'"),
    "augmentation rate over 1": (_set("distill.obfuscation_augment", 1.5), "distill.obfuscation_augment"),
}


@pytest.mark.parametrize("edit, says", REFUSED.values(), ids=REFUSED.keys())
def test_a_bad_recipe_is_refused_naming_the_fault(tiny_recipe_dict, edit, says):
    edit(tiny_recipe_dict)
    with pytest.raises(EdgemodError, match=says):
        parse_recipe(tiny_recipe_dict)


def test_the_keys_those_refusals_guard_parse_when_right(tiny_recipe_dict):
    tiny_recipe_dict["teachers"] = []
    tiny_recipe_dict["distill"].update(gold_only=True, obfuscation_augment=0.5, obfuscation_copies=3)
    recipe = parse_recipe(tiny_recipe_dict)
    assert recipe.distill.gold_only and recipe.distill.obfuscation_copies == 3


def test_mediapipe_tasks_tokenizer_picks_its_normalizer(tiny_recipe_dict):
    assert parse_recipe(tiny_recipe_dict).student.normalizer == "moderation-v1"
    tiny_recipe_dict["student"]["tokenizer"] = "mediapipe_tasks"
    recipe = parse_recipe(tiny_recipe_dict)
    assert recipe.student.normalizer == "mediapipe-bert-v1"
    assert parse_recipe(recipe.model_dump(mode="json")).student.normalizer == "mediapipe-bert-v1"  # as stages re-read it
    tiny_recipe_dict["student"]["normalizer"] = "mediapipe-bert-v1"
    assert parse_recipe(tiny_recipe_dict).student.normalizer == "mediapipe-bert-v1"


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
