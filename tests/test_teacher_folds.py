"""Out-of-fold image teachers (`edgemod teacher train --folds K`): each train image, and each of its
views, is scored by the one teacher that never trained on it; everything else by the average."""
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from edgemod.cli import main
from edgemod.errors import EdgemodError
from edgemod.training.teachers.base import Item
from tests.test_vision_pipeline import TINY


def test_fold_assignment_is_stable_and_balanced():
    from edgemod.training.teachers.folds import fold_of

    keys = [f"weapons:train:{i}" for i in range(2000)]
    folds = fold_of(keys, 3)
    assert np.array_equal(folds, fold_of(keys, 3)) and set(folds) == {0, 1, 2}
    assert np.bincount(folds).min() > 550


def test_out_of_fold_teachers_label_each_train_image_with_the_one_that_held_it_out(tmp_path):
    from edgemod.recipe import load_recipe
    from edgemod.training.teachers.base import TeacherContext, build_teacher

    out = tmp_path / "oof"
    assert main(["teacher", "train", "recipes/vision-weapons.yaml", "--arch", "test_vision_tiny", "--out", str(out),
                 "--image-size", "64", "--epochs", "1", "--folds", "2", *TINY]) == 0
    spec = json.loads((out / "folds.json").read_text())
    held = {int(fold): set(keys) for fold, keys in spec["held_out"].items()}
    assert spec["members"] == ["fold-0", "fold-1"] and held[0] and held[1] and not held[0] & held[1]
    for fold in (0, 1):
        manifest = json.loads((out / f"fold-{fold}" / "manifest.json").read_text())
        assert manifest["details"]["hold_out"] == [fold, 2]
        assert manifest["details"]["train_images"] == len(held[1 - fold])  # trained on the other fold only

    recipe = load_recipe("recipes/vision-weapons.yaml", [*TINY[1::2], f"teachers=[{{kind: timm, path: '{out}'}}]"])
    teacher = build_teacher(recipe.teachers[0], TeacherContext(recipe=recipe, cache_dir=tmp_path / "cache"))
    members = teacher.members
    key0, key1 = sorted(held[0])[0], sorted(held[1])[0]
    frames = pd.read_csv("../shared/data/vision/weapons/labels.csv").head(1)  # any image: only the key routes
    path = str(Path("../shared/data/vision/weapons") / frames["path"].iloc[0])
    view = json.dumps({"box": [0, 0, 1, 1], "flip": True})
    items = [Item(key0, path=path), Item(f"{key1}~view:0", path=path, view=view), Item("weapons:test:x", path=path)]
    scores = teacher.predict_proba(items)
    assert np.allclose(scores[0], members[0].predict_proba(items[:1])[0])
    assert np.allclose(scores[1], members[1].predict_proba(items[1:2])[0])
    average = (members[0].predict_proba(items[2:]) + members[1].predict_proba(items[2:])) / 2
    assert np.allclose(scores[2], average[0])
    assert "timm-out-of-fold" in teacher.identity()

    (out / "folds.json").write_text("{")
    with pytest.raises(EdgemodError, match="--folds"):
        build_teacher(recipe.teachers[0], TeacherContext(recipe=recipe, cache_dir=tmp_path / "cache"))
