"""Parity of an artifact against the fp32 student on real items: do they decide the same?

Export records it per artifact; the gate and the report read it from there.
"""
from __future__ import annotations

import numpy as np

from edgemod.runtime.decision import decide

# Log-score noise levels at which the fp32 student's own decisions are probed. Measured on the weapons
# student: int8 weights alone move log-scores by ~0.03 (median), static int8 activations by 0.1-0.6.
NOISE_LEVELS = (0.01, 0.02, 0.05, 0.1, 0.2)


def _log_scores(scores: np.ndarray) -> np.ndarray:
    return np.log(np.clip(scores, 1e-12, None))


def _same_decisions(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a == b).all(axis=1) if a.ndim == 2 else a == b


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
    same = _same_decisions(ref_decisions, cand_decisions)
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
        "median_abs_log_score_diff": round(float(np.median(np.abs(_log_scores(candidate) - _log_scores(reference)))), 6),
    }


def noise_tolerance(reference: np.ndarray, labels: list[str], thresholds: dict,
                    levels: tuple[float, ...] = NOISE_LEVELS, draws: int = 20, seed: int = 0) -> dict[str, float]:
    """Expected decision agreement of the fp32 student with itself when Gaussian noise of standard
    deviation `level` is added to its log-scores, for each level.

    It says how much score error any artifact may add before the agreement budget breaks, whatever
    the quantization scheme: compare it with an artifact's `median_abs_log_score_diff`. A model whose
    items sit close to its thresholds (or to ties between firing classes) tolerates little.
    """
    rng = np.random.default_rng(seed)
    base, logs = decide(reference, labels, thresholds), _log_scores(reference)
    tolerance = {}
    for level in levels:
        agreement = [_same_decisions(base, decide(np.exp(logs + rng.normal(0.0, level, logs.shape)), labels, thresholds)).mean()
                     for _ in range(draws)]
        tolerance[f"{level:g}"] = round(float(np.mean(agreement)), 6)
    return tolerance
