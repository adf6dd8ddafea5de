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
