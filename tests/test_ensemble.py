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
