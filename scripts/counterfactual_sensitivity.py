"""Does a model score posts higher for *naming* a group? Teacher and student, side by side.

Rewrites every test post that names an identity group into each other group of its axis
(edgemod/identity_swaps.json) and prints, per group, the mean violation-score shift
score(post) - mean score(rewrites) (`benchmarks.slices.counterfactual_sensitivity`). The teachers are
the recipe's own, built and mapped as `edgemod label` does; the student is the export's fp32
reference. Use it when a subgroup AUC gap survives mitigation: a shift near 0 says the gap comes
from the posts (or their labels), and no identity-invariance method will move it.

    .venv/bin/python scripts/counterfactual_sensitivity.py runs/text-hate/export [--min-items 30] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def _student_scorer(student):
    from edgemod.benchmarks.slices import violation_scores
    from edgemod.export.student import torch_scores

    def score(texts: list[str]) -> np.ndarray:
        probs = torch_scores(student.module, student.encode(texts), student.input_names)
        return violation_scores(probs, student.labels, student.recipe.benign_label)

    return score


def _teacher_scorer(recipe):
    from edgemod.benchmarks.slices import violation_scores
    from edgemod.training.teachers import Item, TeacherContext, build_teacher
    from edgemod.training.teachers.mapping import combine, map_scores

    context = TeacherContext(recipe=recipe)
    teachers = [build_teacher(spec, context) for spec in recipe.teachers]

    def score(texts: list[str]) -> np.ndarray:
        items = [Item(key=f"sensitivity:{i}", text=text) for i, text in enumerate(texts)]
        mapped = [map_scores(teacher.predict_proba(items), teacher.labels, teacher.multi_label, spec.map,
                             recipe.labels, recipe.multi_label, teacher=spec.name or spec.kind)
                  for spec, teacher in zip(recipe.teachers, teachers)]
        return violation_scores(combine(mapped, [s.weight for s in recipe.teachers]), recipe.labels, recipe.benign_label)

    return score


def main() -> None:
    from rich.console import Console
    from rich.table import Table

    from edgemod.benchmarks.slices import counterfactual_sensitivity
    from edgemod.export.student import load_trained_student

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("export_dir", type=Path, help="an `edgemod export` folder of a text recipe")
    parser.add_argument("--min-items", type=int, default=30, help="skip groups named by fewer test posts")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    student = load_trained_student(args.export_dir, stage="export")
    texts = student.split("test")["text"].tolist()
    results = {"teacher": counterfactual_sensitivity(texts, _teacher_scorer(student.recipe), args.min_items),
               "student": counterfactual_sensitivity(texts, _student_scorer(student), args.min_items)}
    table = Table("group", "posts", "teacher shift (|shift|)", "student shift (|shift|)",
                  title="violation score(post) - score(same post naming another group)")
    for group, entry in results["student"].items():
        teacher = results["teacher"][group]
        table.add_row(group, str(entry["items"]), f"{teacher['mean_shift']:+.3f} ({teacher['mean_abs_shift']:.3f})",
                      f"{entry['mean_shift']:+.3f} ({entry['mean_abs_shift']:.3f})")
    Console().print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
