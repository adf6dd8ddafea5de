"""The identity-slice side of a training comparison (text recipes with `budgets.slices`): from a train
run's own test predictions, how many gated slice AUCs of the fp32 student lie below the teacher's by
more than the budget with the paired bootstrap interval below zero (the gate's rule), the worst
gap, and the out-of-domain AUROC as a fraction of the teacher's.

It reads only `train/predictions.parquet` (seconds, no export or bench), so a sweep of students can
be judged on the checks that decide the gate before any of them is exported. `edgemod results
compare` adds it to each variant's row (key `identity_slices_vs_teacher`).
"""
from __future__ import annotations

from pathlib import Path

from edgemod.recipe import parse_recipe

STUDENT, TEACHER = "student", "p"  # column prefixes in predictions.parquet


def slice_summary(train_dir: Path, recipe_dict: dict) -> dict | None:
    """`{"failing", "checked", "worst", "worst_slice", "budget", "out_of_domain_auroc_vs_teacher"}`,
    or None when the recipe has no slice budget or the run no test text."""
    import pandas as pd

    if not ((recipe_dict.get("budgets") or {}).get("slices") or {}).get("max_auc_drop_vs_teacher"):
        return None
    recipe = parse_recipe(recipe_dict)
    budget = recipe.budgets.slices
    path = Path(train_dir) / "predictions.parquet"
    if budget.max_auc_drop_vs_teacher is None or recipe.benign_label is None or not path.exists():
        return None
    table = pd.read_parquet(path)
    test = table[table["role"] == "test"] if "role" in table else table[table["split"] == "test"]
    if "text" not in test or test.empty:
        return None
    summary = _vs_teacher(test, recipe, budget)
    summary["out_of_domain_auroc_vs_teacher"] = _out_of_domain_ratio(table, recipe.benign_label)
    return summary


def _vs_teacher(test, recipe, budget) -> dict:
    from edgemod.benchmarks.slices import identity_slices

    benign = recipe.benign_label
    violating = (test["label"] != benign).astype(int).to_numpy()
    scores = {name: 1.0 - test[f"{prefix}:{benign}"].to_numpy() for name, prefix in (("fp32_student", STUDENT),
                                                                                    ("teacher", TEACHER))}
    slices = identity_slices(test["text"].tolist(), violating, scores, budget.min_items, {"fp32_student": "teacher"},
                             budget.bootstrap.resamples, budget.bootstrap.confidence, budget.bootstrap.seed)
    failing, checked, worst = 0, 0, (0.0, None)
    for group, entry in slices["fp32_student"]["groups"].items():
        if not entry["gated"]:
            continue
        for metric, paired in entry["vs_teacher"].items():
            difference, interval = paired["difference"], paired["interval"]
            if difference is None:
                continue
            checked += 1
            failing += bool(difference < -budget.max_auc_drop_vs_teacher and interval and interval[1] < 0)
            if difference < worst[0]:
                worst = (difference, f"{group} {metric.removesuffix('_auc')}")
    return {"failing": failing, "checked": checked, "worst": round(worst[0], 4), "worst_slice": worst[1],
            "budget": budget.max_auc_drop_vs_teacher,
            "overall_auc": {name: round(slices[name]["overall_auc"], 4) for name in ("fp32_student", "teacher")}}


def _out_of_domain_ratio(table, benign: str) -> float | None:
    from sklearn.metrics import roc_auc_score

    if "role" not in table or "violating" not in table:
        return None
    ood = table[table["role"] == "out_of_domain"]
    if ood.empty or ood["violating"].nunique() < 2:
        return None
    violating = ood["violating"].astype(int).to_numpy()
    auroc = {prefix: roc_auc_score(violating, 1.0 - ood[f"{prefix}:{benign}"].to_numpy()) for prefix in (STUDENT, TEACHER)}
    return round(float(auroc[STUDENT] / auroc[TEACHER]), 4)


def slice_columns(train_dir: Path, recipe_dict: dict) -> dict:
    """The row fields `edgemod results compare` adds: nothing when there is no slice summary."""
    summary = slice_summary(train_dir, recipe_dict)
    return {"identity_slices_vs_teacher": summary} if summary else {}
