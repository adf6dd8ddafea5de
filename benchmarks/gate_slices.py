"""The gate's slice checks: identity slices judged against the teacher, with confidence, the
counterfactual score shift, data warnings for large absolute gaps, and obfuscated text.

A small slice's AUC is mostly label noise (115 posts, 23 of them benign: about ±0.07 at 95 %), and
the teacher may be no better there. So a slice fails only when the student is below the teacher by
more than the budget *and* the paired-bootstrap interval of student - teacher lies below zero; the
absolute gap to the overall AUC is a warning about the data, never a failure.
"""
from __future__ import annotations

from edgemod.benchmarks.gate_check import Check
from edgemod.budgets import SliceBudget
from edgemod.recipe import Recipe

STUDENT, TEACHER = "fp32_student", "teacher"
METRICS = {"subgroup_auc": "subgroup AUC", "bpsn_auc": "BPSN AUC", "bnsp_auc": "BNSP AUC"}
REBENCH = "re-run `edgemod bench` on the export (this bench.json predates slice intervals)"


def slice_checks(recipe: Recipe, results: dict) -> list[Check]:
    """Every slice check the recipe's `budgets.slices` asks for, on the fp32 student."""
    budget, slices = recipe.budgets.slices, results.get("slices", {})
    return [*_vs_teacher_checks(budget, slices), *_counterfactual_checks(budget, slices),
            *_gap_warnings(budget, slices), *_obfuscation_checks(budget, results)]


def _interval(pair: list | None) -> str:
    return "[n/a]" if pair is None else f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _auc(entry: dict, metric: str) -> str:
    value = entry.get(metric)
    return "n/a" if value is None else f"{value:.3f} {_interval(entry.get(f'{metric}_interval'))}"


def _gated(slices: dict, model: str) -> dict[str, dict]:
    groups = (slices.get(model, {}).get("identity") or {}).get("groups", {})
    return {name: entry for name, entry in groups.items() if entry.get("gated")}


def _items(entry: dict) -> str:
    return f"n={entry['items']} ({entry.get('positives', '?')} violating, {entry.get('negatives', '?')} not)"


def _vs_teacher_checks(budget: SliceBudget, slices: dict) -> list[Check]:
    limit = budget.max_auc_drop_vs_teacher
    if limit is None:
        return []
    name = "identity slice AUC, student - teacher"
    if "identity" not in slices.get(STUDENT, {}):  # asked for, never measured: that fails, it does not pass by omission
        return [Check(name, STUDENT, None, -limit, False, "no identity slices in this bench: they are measured for "
                      "text recipes only; remove budgets.slices.max_auc_drop_vs_teacher, or " + REBENCH)]
    teacher = _gated(slices, TEACHER)
    checks = []
    for group, entry in _gated(slices, STUDENT).items():
        paired = entry.get(f"vs_{TEACHER}")
        if paired is None or group not in teacher:
            checks.append(Check(name, f"{STUDENT} / {group}", None, -limit, False, f"no paired interval: {REBENCH}"))
            continue
        checks += [_vs_teacher(name, group, metric, entry, teacher[group], paired[metric], limit, budget)
                   for metric in METRICS]
    return checks


def _vs_teacher(name: str, group: str, metric: str, student: dict, teacher: dict, paired: dict, limit: float,
                budget: SliceBudget) -> Check:
    subject = f"{STUDENT} / {group} / {METRICS[metric]}"
    difference, interval = paired["difference"], paired["interval"]
    aucs = f"{_items(student)}; student {_auc(student, metric)}, teacher {_auc(teacher, metric)}"
    if difference is None or interval is None:  # one class only in the slice: nothing to rank
        return Check(name, subject, None, -limit, True, f"{aucs}; AUC undefined on this slice", warning=True)
    failed = difference < -limit and interval[1] < 0
    sure = f"{budget.bootstrap.confidence:.0%} paired bootstrap, {budget.bootstrap.resamples} resamples"
    verdict = ("below the teacher beyond the budget, and the interval excludes 0" if failed else
               "within the budget" if difference >= -limit else "below the budget, but the interval includes 0")
    return Check(name, subject, difference, -limit, not failed,
                 f"{aucs}; student - teacher {difference:+.3f} {_interval(interval)} ({sure}): {verdict}")


def _counterfactual_checks(budget: SliceBudget, slices: dict) -> list[Check]:
    limit = budget.max_counterfactual_shift
    if limit is None:
        return []
    name = "counterfactual score shift, student (absolute)"
    student = slices.get(STUDENT, {}).get("counterfactual")
    if not student or "groups" not in student:
        why = (student or {}).get("not_measured_because", "no counterfactual shifts in this bench (text recipes only)")
        return [Check(name, STUDENT, None, limit, False, f"{why}; {REBENCH}, or remove budgets.slices.max_counterfactual_shift")]
    teacher = slices.get(TEACHER, {}).get("counterfactual") or {}
    checks = []
    for group, shift in student["groups"].items():
        if shift["items"] < budget.min_items:
            continue
        theirs = teacher.get("groups", {}).get(group)
        other = (f"teacher {theirs['mean_shift']:+.3f} {_interval(theirs.get('mean_shift_interval'))}" if theirs
                 else f"teacher not measured: {teacher.get('not_measured_because', 'no shift for this group')}")
        checks.append(Check(name, f"{STUDENT} / {group}", shift["mean_shift"], limit, abs(shift["mean_shift"]) <= limit,
                            f"{shift['items']} posts naming {group}, rewritten to the other groups of its axis; student "
                            f"{shift['mean_shift']:+.3f} {_interval(shift.get('mean_shift_interval'))}; {other}"))
    return checks


def _gap_warnings(budget: SliceBudget, slices: dict) -> list[Check]:
    limit = budget.warn_subgroup_auc_gap
    identity = slices.get(STUDENT, {}).get("identity")
    if limit is None or not identity or identity.get("overall_auc") is None:
        return []
    teacher = _gated(slices, TEACHER)
    checks = []
    for group, entry in _gated(slices, STUDENT).items():
        if entry.get("subgroup_auc") is None or identity["overall_auc"] - entry["subgroup_auc"] <= limit:
            continue
        gap = round(identity["overall_auc"] - entry["subgroup_auc"], 4)
        theirs = f"; teacher subgroup AUC {_auc(teacher[group], 'subgroup_auc')}" if group in teacher else ""
        checks.append(Check("subgroup AUC gap to overall (data warning)", f"{STUDENT} / {group}", gap, limit, True,
                            f"{_items(entry)}; subgroup AUC {_auc(entry, 'subgroup_auc')} vs overall "
                            f"{identity['overall_auc']:.3f}{theirs}; a warning, not a failure: check the slice's "
                            "labels and the student - teacher rows", warning=True))
    return checks


def _obfuscation_checks(budget: SliceBudget, results: dict) -> list[Check]:
    robustness = results.get("robustness", {}).get(STUDENT)
    if budget.max_obfuscation_f1_drop is None or not robustness:
        return []
    styles = {k: v["macro_f1"] for k, v in robustness.items() if isinstance(v, dict)}
    worst = min(styles, key=styles.get)
    drop = round(robustness["clean_macro_f1"] - styles[worst], 6)
    return [Check("macro-F1 drop on obfuscated text", f"{STUDENT} / {worst}", drop,
                  budget.max_obfuscation_f1_drop, drop <= budget.max_obfuscation_f1_drop)]
