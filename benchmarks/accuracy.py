"""Accuracy of scores at the shipped thresholds, on the test split (bench and the Tasks checks)."""
from __future__ import annotations

import numpy as np

from edgemod.export.student import TestSet, TrainedStudent
from edgemod.runtime.decision import decide
from edgemod.training.metrics import classification_report


def accuracy_at_thresholds(student: TrainedStudent, test: TestSet, probs: np.ndarray) -> dict:
    labels = student.labels
    if student.recipe.multi_label:
        from sklearn.metrics import f1_score, roc_auc_score

        decisions = decide(probs, labels, student.thresholds)
        return {"macro_f1": round(float(f1_score(test.gold, decisions, average="macro", zero_division=0)), 6),
                "macro_auroc": round(float(roc_auc_score(test.gold, probs, average="macro")), 6)}
    gold = [labels[i] for i in test.gold]
    report = classification_report(gold, probs, labels, predicted=decide(probs, labels, student.thresholds))
    return {k: report[k] for k in ("n", "macro_f1", "accuracy", "macro_auroc", "per_class", "confusion_matrix")}
