import pandas as pd
import pytest

from edgemod.errors import EdgemodError
from edgemod.manifest import read_manifest
from edgemod.recipe import parse_recipe
from edgemod.training import label


def test_label_writes_scores_for_every_role(tiny_recipe, tmp_path):
    manifest = label.run(tiny_recipe, tmp_path / "label")
    table = pd.read_parquet(tmp_path / "label" / "labels.parquet")
    assert set(table["role"]) == {"train", "validation", "test", "transfer"}
    assert len(table) == manifest.metrics["items"] == 4 * 150
    assert table.loc[table.role == "transfer", "label"].isna().all()
    probs = table[[f"p:{name}" for name in tiny_recipe.labels]].to_numpy()
    assert abs(probs.sum(axis=1) - 1).max() < 1e-5
    assert {"t:kw:normal", "t:kw:hatespeech"} <= set(table.columns)
    assert read_manifest(tmp_path / "label", "label").inputs["dataset:hatexplain"].sha256


def test_rerun_with_same_inputs_does_nothing(tiny_recipe, tmp_path, teacher_calls):
    label.run(tiny_recipe, tmp_path / "label")
    calls = len(teacher_calls)
    again = label.run(tiny_recipe, tmp_path / "label")
    assert len(teacher_calls) == calls
    assert again.details.get("skipped") is True


def test_interrupted_labelling_resumes_without_rescoring(tiny_recipe_dict, tmp_path, teacher_calls):
    tiny_recipe_dict["teachers"][0]["options"] = {"fail_after_calls": 2}
    interrupted = parse_recipe(tiny_recipe_dict)
    with pytest.raises(KeyboardInterrupt):
        label.run(interrupted, tmp_path / "label", chunk_size=100)
    scored_before = sum(teacher_calls)
    assert scored_before == 200 and not (tmp_path / "label" / "labels.parquet").exists()
    teacher_calls.clear()
    # Same teacher identity (options do not change the scores), so the shards are reused.
    tiny_recipe_dict["teachers"][0]["options"] = {}
    label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label", chunk_size=100)
    assert sum(teacher_calls) == 600 - scored_before
    assert len(pd.read_parquet(tmp_path / "label" / "labels.parquet")) == 600


def test_corrupt_cache_shard_is_set_aside_and_rescored(tiny_recipe, tmp_path, caplog, teacher_calls):
    label.run(tiny_recipe, tmp_path / "label", chunk_size=100)
    shard = sorted((tmp_path / "label" / "shards").rglob("part-00001.parquet"))[0]
    shard.write_bytes(b"not a parquet file")
    (tmp_path / "label" / "manifest.json").unlink()
    teacher_calls.clear()
    label.run(tiny_recipe, tmp_path / "label", chunk_size=100)
    assert sum(teacher_calls) == 100
    assert shard.with_suffix(".corrupt").exists()
    assert "unreadable" in caplog.text


def test_gold_label_outside_the_recipe_is_an_error(tiny_recipe_dict, tmp_path):
    tiny_recipe_dict["labels"] = ["normal", "offensive"]
    with pytest.raises(EdgemodError, match=r"hatespeech.*not among the recipe's labels"):
        label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")


def test_unknown_teacher_kind(tiny_recipe_dict, tmp_path):
    tiny_recipe_dict["teachers"][0]["kind"] = "hff"
    with pytest.raises(EdgemodError, match="unknown teacher kind 'hff'"):
        label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")


def test_recipe_change_outside_labels_is_recorded_without_rescoring(tiny_recipe_dict, tmp_path, teacher_calls):
    label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")
    scored = sum(teacher_calls)
    tiny_recipe_dict["student"]["arch"] = "text_bag_tiny"
    manifest = label.run(parse_recipe(tiny_recipe_dict), tmp_path / "label")
    assert sum(teacher_calls) == scored
    assert read_manifest(tmp_path / "label").recipe["student"]["arch"] == "text_bag_tiny"
    assert manifest.details["skipped"]
