"""Several teachers in one recipe: the label table keeps each member's scores beside the ensemble,
and the train manifest reports every member's own validation and test figures next to the ensemble's."""
from edgemod.recipe import parse_recipe
from edgemod.training import label, train


def test_each_member_is_reported_beside_the_ensemble(tmp_path, tiny_recipe_dict):
    recipe = {**tiny_recipe_dict,
              "teachers": [{"name": "kw", "kind": "test_keyword"},
                           {"name": "swapped", "kind": "test_keyword", "weight": 3.0,
                            "map": {"offensive": "hatespeech", "hatespeech": "offensive"}}]}
    label.run(parse_recipe(recipe), tmp_path / "label")
    metrics = train.run(tmp_path / "label", tmp_path / "train").metrics
    members = metrics["teacher_members"]
    assert set(members) == {"kw", "swapped", "ensemble"}
    for report in members.values():
        assert set(report) == {"validation", "test"} and 0 <= report["test"]["macro_f1"] <= 1
    assert members["ensemble"]["test"]["macro_f1"] == metrics["test"]["teacher"]["macro_f1"]
    assert members["kw"]["test"] != members["swapped"]["test"]  # the map made them differ


def test_a_single_teacher_adds_no_member_table(tmp_path, tiny_recipe_dict):
    label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")
    assert "teacher_members" not in train.run(tmp_path / "label", tmp_path / "train").metrics


def test_validation_weights_favour_the_better_member(tmp_path, tiny_recipe_dict):
    """A member whose labels are swapped is worse on validation: the fitted weights say so."""
    recipe = {**tiny_recipe_dict, "ensemble": {"weights": "validation"},
              "teachers": [{"name": "kw", "kind": "test_keyword"},
                           {"name": "swapped", "kind": "test_keyword",
                            "map": {"normal": "hatespeech", "hatespeech": "normal"}}]}
    manifest = label.run(parse_recipe(recipe), tmp_path / "label")
    chosen = manifest.details["ensemble"]["chosen"]
    assert manifest.details["ensemble"]["weights"] == "validation"
    assert abs(sum(chosen.values()) - 1) < 1e-6 and chosen["kw"] > chosen["swapped"]
    import numpy as np
    import pandas as pd

    table = pd.read_parquet(tmp_path / "label" / "labels.parquet")
    mixed = chosen["kw"] * table["t:kw:normal"] + chosen["swapped"] * table["t:swapped:normal"]
    assert np.allclose(mixed, table["p:normal"], atol=1e-5)


def test_results_tables_name_each_member_and_its_weight():
    from edgemod.results import _member_lines

    teacher = {"test_macro_f1": 0.71, "ensemble_weights": {"minilm": 0.4, "mpnet": 0.6},
               "members": {"minilm": {"test_macro_f1": 0.686, "validation_macro_f1": 0.684},
                           "mpnet": {"test_macro_f1": 0.70, "validation_macro_f1": 0.69}}}
    lines = _member_lines(teacher)
    assert lines == ["| teacher member `minilm` (weight 0.400), validation 0.6840 | 0.6860 |",
                     "| teacher member `mpnet` (weight 0.600), validation 0.6900 | 0.7000 |"]
    assert _member_lines({"test_macro_f1": 0.7}) == []
