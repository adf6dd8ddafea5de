"""Slices of the test split: per data source, identity mentions (Jigsaw unintended-bias AUCs) and
obfuscated spellings of the test texts."""
from __future__ import annotations

from collections.abc import Callable

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


def counterfactual_sensitivity(texts: list[str], score: Callable[[list[str]], np.ndarray],
                               min_items: int = 1) -> dict:
    """Per swappable group: how far the violation score moves when only the group a post names changes.

    The groups are those of edgemod/identity_swaps.json; every post naming one is rewritten once per
    other group of its axis that the post does not already name;
    `mean_shift` averages score(post) - mean score(its rewrites) over those posts (Garg et al. 2019,
    counterfactual token fairness). A positive shift: the model scores posts higher *for naming the
    group*. A subgroup AUC gap with a shift near 0 comes from the posts themselves, not the group's name.
    """
    from edgemod.counterfactual import counterfactuals, swap_table

    out = {}
    for group in [group for groups in swap_table().values() for group in groups]:
        pairs = [(text, [copy for tag, copy in counterfactuals(text, "sensitivity", 99, 0) if tag.startswith(f"{group}>")])
                 for text in texts]
        pairs = [(text, copies) for text, copies in pairs if copies]
        if len(pairs) < min_items:
            continue
        originals = score([text for text, _ in pairs])
        rewritten = score([copy for _, copies in pairs for copy in copies])
        ends = np.cumsum([len(copies) for _, copies in pairs])
        shifts = originals - np.array([chunk.mean() for chunk in np.split(rewritten, ends[:-1])])
        out[group] = {"items": len(pairs), "mean_shift": round(float(shifts.mean()), 4),
                      "mean_abs_shift": round(float(np.abs(shifts).mean()), 4)}
    return out
