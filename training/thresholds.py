"""Per-class operating points chosen on validation (the rule that applies them: edgemod.runtime.decision)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemod.recipe import ClassThresholdSpec, ThresholdSpec


def _pick(scores: np.ndarray, positive: np.ndarray, spec: ClassThresholdSpec) -> tuple[float, bool]:
    """Threshold for one class (one-vs-rest) and whether the policy's target was met."""
    from sklearn.metrics import precision_recall_curve

    precision, recall, cuts = precision_recall_curve(positive, scores)
    precision, recall = precision[:-1], recall[:-1]  # the last point has no threshold
    if spec.policy == "max_f1":
        f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
        return float(cuts[int(np.argmax(f1))]), True
    if spec.policy == "precision_at":
        ok = np.flatnonzero(precision >= spec.precision)
        if len(ok) == 0:
            return float(cuts[int(np.argmax(precision))]), False
        return float(cuts[ok[np.argmax(recall[ok])]]), True
    ok = np.flatnonzero(recall >= spec.recall)  # recall_at: the highest cut that keeps the recall
    if len(ok) == 0:
        return float(cuts[0]), False
    return float(cuts[ok[-1]]), True


def choose_thresholds(probs: np.ndarray, gold: np.ndarray, labels: Sequence[str], spec: ThresholdSpec,
                      benign: str | None, multi_label: bool) -> dict:
    """Thresholds per class from validation scores. `gold` holds class indices (or a multi-hot matrix)."""
    per_class = {}
    for i, label in enumerate(labels):
        if spec.policy == "argmax" or (label == benign and not multi_label):
            continue
        positive = gold[:, i] if multi_label else (gold == i).astype(int)
        if positive.sum() == 0:
            continue
        rule = spec.for_class(label)
        threshold, met = _pick(probs[:, i], positive, rule)
        per_class[label] = {"threshold": threshold, "target_met_on_validation": met}
        if label in spec.per_class:
            per_class[label]["rule"] = rule.model_dump(exclude_none=True)
    return {"policy": spec.policy, "target_precision": spec.precision, "target_recall": spec.recall,
            "benign": benign, "multi_label": multi_label, "per_class": per_class}


def operating_points(probs: np.ndarray, gold: np.ndarray, labels: Sequence[str], thresholds: dict) -> dict:
    """Precision and recall of each thresholded class (one-vs-rest), e.g. on test."""
    from sklearn.metrics import precision_score, recall_score

    report = {}
    for label, entry in thresholds["per_class"].items():
        i = labels.index(label)
        positive = gold[:, i] if thresholds["multi_label"] else (gold == i).astype(int)
        fired = (probs[:, i] >= entry["threshold"]).astype(int)
        report[label] = {"threshold": entry["threshold"],
                         "precision": round(float(precision_score(positive, fired, zero_division=0)), 6),
                         "recall": round(float(recall_score(positive, fired, zero_division=0)), 6)}
    return report
