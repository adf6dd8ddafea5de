"""Identity fairness in `edgemod bench` (text recipes): slice AUCs with bootstrap intervals, the
students paired against the teacher, and the counterfactual score shift per identity group.

A slice AUC alone cannot say whether the student is worse than it should be: the teacher (and the
labels) may be no better on that slice. So every student is compared with the teacher on the same
resampled test items, and the counterfactual shift (the same post naming another group) isolates
what the model makes of the group's *name* from what the posts themselves say.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from edgemod.console import say
from edgemod.export.student import TestSet, TrainedStudent, torch_scores

TEACHER, STUDENT = "teacher", "fp32_student"
PAIRED = (STUDENT, "unmitigated_student")  # compared with the teacher, per slice and metric
# Teachers that cannot score rewritten posts: a lookup table has no rows for them, and an API
# would be paid per rewrite (score the rewrites into a scores file and use a local teacher instead).
NOT_RESCORED = {"scores": "a scores-file teacher has no scores for rewritten posts",
                "openai": "an HTTP teacher: scoring the rewritten posts would call the API",
                "anthropic": "an HTTP teacher: scoring the rewritten posts would call the API",
                "hive": "an HTTP teacher: scoring the rewritten posts would call the API"}


def identity_by_model(student: TrainedStudent, test: TestSet, scores: dict[str, np.ndarray],
                      violating: np.ndarray) -> dict[str, dict]:
    """Model -> identity slices with intervals; the students' groups carry `vs_teacher`."""
    from edgemod.benchmarks.slices import identity_slices, violation_scores

    budget = student.recipe.budgets.slices
    benign = student.thresholds.get("benign")
    by_model = {name: violation_scores(probs, student.labels, benign) for name, probs in scores.items()}
    pairs = {name: TEACHER for name in PAIRED if name in scores and TEACHER in scores}
    return identity_slices(test.table["text"].tolist(), violating, by_model, budget.min_items, pairs,
                           budget.bootstrap.resamples, budget.bootstrap.confidence, budget.bootstrap.seed)


def counterfactual_by_model(student: TrainedStudent, test: TestSet, console=None) -> dict[str, dict]:
    """Teacher and fp32 student: `{"groups": {group: shift}}`, or `{"not_measured_because": why}`."""
    from edgemod.benchmarks.slices import counterfactual_sensitivity

    bootstrap = student.recipe.budgets.slices.bootstrap
    texts = test.table["text"].tolist()
    teacher, why = _teacher_scorer(student)
    out = {}
    for name, score in ((TEACHER, teacher), (STUDENT, _student_scorer(student))):
        if score is None:
            out[name] = {"not_measured_because": why}
            continue
        say(console, f"counterfactual shift: {name} on identity-swapped test posts")
        out[name] = {"groups": counterfactual_sensitivity(texts, _memo(score), 1, bootstrap.resamples,
                                                          bootstrap.confidence, bootstrap.seed)}
    return out


def _student_scorer(student: TrainedStudent) -> Callable[[list[str]], np.ndarray]:
    from edgemod.benchmarks.slices import violation_scores

    def score(texts: list[str]) -> np.ndarray:
        probs = torch_scores(student.module, student.encode(texts), student.input_names)
        return violation_scores(probs, student.labels, student.thresholds.get("benign"))

    return score


def _teacher_scorer(student: TrainedStudent) -> tuple[Callable[[list[str]], np.ndarray] | None, str]:
    """The recipe's teachers, built and combined as `edgemod label` does, or None and why not."""
    from edgemod.benchmarks.slices import violation_scores
    from edgemod.errors import EdgemodError
    from edgemod.training.teachers.base import Item, TeacherContext, build_teacher, teacher_name
    from edgemod.training.teachers.mapping import combine, map_scores

    recipe = student.recipe
    for spec in recipe.teachers:
        if spec.kind in NOT_RESCORED:
            return None, f"teacher '{spec.name or spec.kind}' is not re-scored: {NOT_RESCORED[spec.kind]}"
    if not recipe.teachers:
        return None, "the recipe has no teacher"
    try:
        teachers = [build_teacher(spec, TeacherContext(recipe=recipe)) for spec in recipe.teachers]
    except (EdgemodError, OSError, ImportError, ValueError) as error:  # e.g. the checkpoint is not on this machine
        return None, f"the teacher could not be loaded here ({str(error).splitlines()[0]}); run the bench where it is"
    names = [teacher_name(spec, i) for i, spec in enumerate(recipe.teachers)]

    def score(texts: list[str]) -> np.ndarray:
        items = [Item(key=f"counterfactual:{i}", text=text) for i, text in enumerate(texts)]
        mapped = [map_scores(t.predict_proba(items), t.labels, t.multi_label, spec.map, recipe.labels,
                             recipe.multi_label, teacher=name)
                  for spec, t, name in zip(recipe.teachers, teachers, names)]
        combined = combine(mapped, [spec.weight for spec in recipe.teachers])
        return violation_scores(combined, recipe.labels, student.thresholds.get("benign"))

    return score, ""


def _memo(score: Callable[[list[str]], np.ndarray]) -> Callable[[list[str]], np.ndarray]:
    """Each distinct text scored once: a post naming several groups is an original for each of them."""
    seen: dict[str, float] = {}

    def scored(texts: list[str]) -> np.ndarray:
        new = list(dict.fromkeys(t for t in texts if t not in seen))
        if new:
            seen.update(zip(new, np.asarray(score(new), dtype=np.float64).tolist()))
        return np.array([seen[t] for t in texts], dtype=np.float64)

    return scored
