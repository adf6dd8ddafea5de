"""Classification metrics (scikit-learn) shared by training, thresholds and benchmarks."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def label_indices(gold: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    index = {label: i for i, label in enumerate(labels)}
    return np.array([index[g] for g in gold], dtype=np.int64)


def _safe(metric, *args, **kwargs) -> float | None:
    try:
        value = float(metric(*args, **kwargs))
    except ValueError:  # a class absent from the gold labels has no AUROC
        return None
    return None if np.isnan(value) else round(value, 6)


def classification_report(gold: Sequence[str], probs: np.ndarray, labels: Sequence[str],
                          predicted: np.ndarray | None = None) -> dict:
    """Macro-F1, accuracy, per-class precision/recall/F1/AUROC/AP and the confusion matrix.

    `predicted` holds class indices (e.g. from thresholds); argmax of `probs` when omitted.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
        roc_auc_score,
    )

    y = label_indices(gold, labels)
    pred = probs.argmax(axis=1) if predicted is None else predicted
    classes = list(range(len(labels)))
    precision, recall, f1, support = precision_recall_fscore_support(
        y, pred, labels=classes, zero_division=0)
    per_class = {}
    for i, label in enumerate(labels):
        positive = (y == i).astype(int)
        per_class[label] = {
            "precision": round(float(precision[i]), 6), "recall": round(float(recall[i]), 6),
            "f1": round(float(f1[i]), 6), "support": int(support[i]),
            "auroc": _safe(roc_auc_score, positive, probs[:, i]),
            "average_precision": _safe(average_precision_score, positive, probs[:, i]),
        }
    aurocs = [c["auroc"] for c in per_class.values() if c["auroc"] is not None]
    return {
        "n": int(len(y)),
        "macro_f1": round(float(f1_score(y, pred, labels=classes, average="macro", zero_division=0)), 6),
        "accuracy": round(float(accuracy_score(y, pred)), 6),
        "macro_auroc": round(float(np.mean(aurocs)), 6) if aurocs else None,
        "per_class": per_class,
        "confusion_matrix": confusion_matrix(y, pred, labels=classes).tolist(),
    }


def teacher_member_reports(table, labels: Sequence[str], splits: dict) -> dict:
    """Each teacher's own macro-F1 and macro-AUROC on the validation and test items, beside the
    ensemble's (`p:` columns), from the label table's `t:<teacher>:<label>` columns."""
    members = sorted({column.split(":")[1] for column in table if column.startswith("t:")})
    if len(members) < 2:
        return {}
    indexed = table.set_index("key")
    reports = {}
    for member in [*members, "ensemble"]:
        columns = [f"p:{label}" if member == "ensemble" else f"t:{member}:{label}" for label in labels]
        reports[member] = {}
        for name in ("validation", "test"):
            split = splits[name]
            probs = indexed.loc[split.keys, columns].to_numpy(np.float64)
            report = classification_report([labels[i] for i in split.gold], probs, labels)
            reports[member][name] = {"macro_f1": report["macro_f1"], "macro_auroc": report.get("macro_auroc")}
    return reports
