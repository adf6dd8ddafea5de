"""`edgemod results compare`: training variants of one recipe side by side, rendered into the README block."""
import json

import pytest

from edgemod.cli import main
from edgemod.errors import EdgemodError
from edgemod.results_compare import collect, readme_tables


def _test_split(macro_f1: float) -> dict:
    per_class = {"none": {"f1": macro_f1 + 0.1}, "knife": {"f1": macro_f1 - 0.1}}
    return {"student": {"macro_f1": macro_f1, "per_class": per_class},
            "student_at_thresholds": {"macro_f1": macro_f1 - 0.01}, "teacher": {"macro_f1": 0.84}}


def _run(root, views: int, macro_f1: float, gold_only: float | None = None):
    (root / "train").mkdir(parents=True)
    (root / "label").mkdir()
    metrics = {"test": _test_split(macro_f1), "train_seconds": 600.0, "history": [{"epoch": 1}, {"epoch": 2}]}
    if gold_only is not None:
        metrics["gold_only"] = {"test": _test_split(gold_only), "train_seconds": 500.0, "history": [{"epoch": 1}]}
    (root / "train" / "manifest.json").write_text(json.dumps({"metrics": metrics, "recipe": {"views": {"per_image": views}}}))
    confidence = {"train": {"mean_entropy": 0.05}, "validation": {"mean_entropy": 0.11}}
    if views:
        confidence["view"] = {"mean_entropy": 0.2}
    (root / "label" / "manifest.json").write_text(json.dumps({"metrics": {"teacher_confidence": confidence, "seconds": 99}}))
    return root


def test_variants_and_the_gold_only_twin_become_one_table(tmp_path):
    fixed = _run(tmp_path / "fixed", 0, 0.80, gold_only=0.81)
    views = _run(tmp_path / "k4", 4, 0.83)
    comparison = collect("Weapons distillation", [f"fixed labels={fixed}", f"views K=4={views}"])
    names = [row["name"] for row in comparison["variants"]]
    assert names == ["fixed labels", "fixed labels, gold labels only", "views K=4"]
    out = tmp_path / "results" / "comparisons" / "weapons.json"
    assert main(["results", "compare", f"fixed labels={fixed}", f"views K=4={views}", "--out", str(out),
                 "--title", "Weapons distillation"]) == 0
    table = readme_tables(tmp_path / "results")[0]
    assert "### Weapons distillation" in table
    assert "| views K=4 | 4 | 0.050 / 0.110 (views 0.200) | 0.8300 | 0.8200 | 0.9300 | 0.7300 | 2 | 600 |" in table
    assert "| fixed labels, gold labels only | – | – | 0.8100 |" in table


def test_a_wrong_variant_names_the_fix(tmp_path):
    with pytest.raises(EdgemodError, match="NAME=RUN_DIR"):
        collect("x", [str(tmp_path)])
    with pytest.raises(EdgemodError, match="no manifest at"):
        collect("x", [f"a={tmp_path}"])


def _slice_run(root, student_fair: bool):
    """A train folder whose test posts name women in 40 of 100; the teacher ranks every post right, the
    student ranks the background right and, unless `student_fair`, the posts naming women backwards."""
    import numpy as np
    import pandas as pd
    from conftest import tiny_text_recipe

    rng = np.random.default_rng(0)
    rows = []
    for i in range(100):
        names_women, violating = i < 40, i % 2 == 0
        teacher = 0.8 + 0.1 * rng.random() if violating else 0.1 + 0.1 * rng.random()
        student = teacher if student_fair or not names_women else 1.0 - teacher
        text = ("the women there " if names_women else "the weather there ") + ("are vile scum" if violating else "are fine")
        rows.append({"key": f"t{i}", "role": "test", "split": "test", "text": text,
                     "label": "hatespeech" if violating else "normal", "violating": np.nan,
                     "p:normal": 1 - teacher, "student:normal": 1 - student})
    for i in range(40):  # out-of-domain posts: the student ranks them as well as the teacher
        violating = i % 2 == 0
        score = 0.9 if violating else 0.2
        rows.append({"key": f"o{i}", "role": "out_of_domain", "split": "test", "text": "x", "label": None,
                     "violating": float(violating), "p:normal": 1 - score, "student:normal": 1 - score})
    (root / "train").mkdir(parents=True)
    pd.DataFrame(rows).to_parquet(root / "train" / "predictions.parquet")
    recipe = tiny_text_recipe()
    recipe["budgets"] = {"slices": {"max_auc_drop_vs_teacher": 0.05, "bootstrap": {"resamples": 200}}}
    return root / "train", recipe


def test_identity_slices_against_the_teacher_follow_the_gates_rule(tmp_path):
    from edgemod.benchmarks.compare_slices import slice_columns, slice_summary
    from edgemod.results_compare import _slices_cell

    biased = slice_summary(*_slice_run(tmp_path / "biased", student_fair=False))
    assert biased["failing"] >= 2 and biased["worst"] < -0.5 and biased["worst_slice"].startswith("women")
    assert biased["out_of_domain_auroc_vs_teacher"] == 1.0
    fair = slice_summary(*_slice_run(tmp_path / "fair", student_fair=True))
    assert fair["failing"] == 0 and fair["worst"] == 0 and fair["checked"] == biased["checked"] > 0
    assert _slices_cell(biased).startswith(f"{biased['failing']}/{biased['checked']} (worst ")
    assert _slices_cell(None) == "–"
    train, recipe = _slice_run(tmp_path / "no-budget", student_fair=False)
    recipe.pop("budgets")
    assert slice_summary(train, recipe) is None and slice_columns(train, recipe) == {}  # no budget, no column
