"""Parity of an artifact against the fp32 student on real items: do they decide the same?"""
from __future__ import annotations

import numpy as np

from training.thresholds import decide


def _aurocs(scores: np.ndarray, gold: np.ndarray, labels: list[str], multi_label: bool) -> dict[str, float]:
    from sklearn.metrics import roc_auc_score

    out = {}
    for i, label in enumerate(labels):
        positive = gold[:, i] if multi_label else (gold == i).astype(int)
        if 0 < positive.sum() < len(positive):
            out[label] = float(roc_auc_score(positive, scores[:, i]))
    return out


def parity_report(reference: np.ndarray, candidate: np.ndarray, gold: np.ndarray, labels: list[str],
                  thresholds: dict) -> dict:
    """Decision agreement at the shipped thresholds, per-class AUROC delta, max |score diff|.

    Args:
        reference: fp32 student scores [N, C]; candidate: the artifact's scores on the same items.
        gold: class indices [N] (or a multi-hot matrix for multi-label recipes).
    """
    multi_label = bool(thresholds.get("multi_label"))
    ref_decisions, cand_decisions = decide(reference, labels, thresholds), decide(candidate, labels, thresholds)
    same = (ref_decisions == cand_decisions).all(axis=1) if multi_label else ref_decisions == cand_decisions
    ref_auc, cand_auc = _aurocs(reference, gold, labels, multi_label), _aurocs(candidate, gold, labels, multi_label)
    delta = {label: round(cand_auc[label] - ref_auc[label], 6) for label in ref_auc}
    diff = np.abs(candidate - reference)
    return {
        "items": int(len(reference)),
        "decision_agreement": round(float(same.mean()), 6),
        "decision_flips": int((~same).sum()),
        "argmax_agreement": round(float((reference.argmax(1) == candidate.argmax(1)).mean()), 6),
        "macro_auroc_reference": round(float(np.mean(list(ref_auc.values()))), 6) if ref_auc else None,
        "macro_auroc": round(float(np.mean(list(cand_auc.values()))), 6) if cand_auc else None,
        "macro_auroc_drop": round(float(np.mean(list(ref_auc.values())) - np.mean(list(cand_auc.values()))), 6)
        if ref_auc else None,
        "auroc_delta_per_class": delta,
        "max_abs_score_diff": round(float(diff.max()), 6),
        "mean_abs_score_diff": round(float(diff.mean()), 6),
    }
