"""Slices of the test split: per data source, identity mentions (Jigsaw unintended-bias AUCs) and
obfuscated spellings of the test texts."""
from __future__ import annotations

import numpy as np

from edgemod.counterfactual import identity_groups


def violation_scores(scores: np.ndarray, labels: list[str], benign: str | None) -> np.ndarray:
    """One 'is violating' score per item: 1 - p(benign), or the highest class score."""
    if benign in labels:
        return 1.0 - scores[:, labels.index(benign)]
    return scores.max(axis=1)


def _auc(y: np.ndarray, s: np.ndarray) -> float | None:
    from sklearn.metrics import roc_auc_score

    if len(np.unique(y)) < 2:
        return None
    return round(float(roc_auc_score(y, s)), 6)


def identity_slices(texts: list[str], violating: np.ndarray, score: np.ndarray, min_items: int) -> dict:
    """Per identity group: items, subgroup AUC, BPSN AUC, BNSP AUC (Borkan et al. 2019)."""
    lowered = [t.lower() for t in texts]
    out = {"overall_auc": _auc(violating, score), "groups": {}}
    for name, pattern in identity_groups().items():
        mentions = np.array([bool(pattern.search(t)) for t in lowered])
        if mentions.sum() == 0:
            continue
        background = ~mentions
        bpsn = (background & (violating == 1)) | (mentions & (violating == 0))
        bnsp = (background & (violating == 0)) | (mentions & (violating == 1))
        out["groups"][name] = {
            "items": int(mentions.sum()), "gated": bool(mentions.sum() >= min_items),
            "subgroup_auc": _auc(violating[mentions], score[mentions]),
            "bpsn_auc": _auc(violating[bpsn], score[bpsn]), "bnsp_auc": _auc(violating[bnsp], score[bnsp])}
    return out


def source_slices(datasets: list[str], gold: np.ndarray, decisions: np.ndarray, violating: np.ndarray,
                  score: np.ndarray) -> dict:
    from sklearn.metrics import f1_score

    out = {}
    for source in sorted(set(datasets)):
        rows = np.array([d == source for d in datasets])
        out[source] = {"items": int(rows.sum()),
                       "macro_f1": round(float(f1_score(gold[rows], decisions[rows], average="macro", zero_division=0)), 6),
                       "violation_auc": _auc(violating[rows], score[rows])}
    return out
