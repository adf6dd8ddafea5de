"""Slices of the test split: per data source, identity mentions (Jigsaw unintended-bias AUCs) and
obfuscated spellings of the test texts.

Identity slices are small (a group named in 115 test posts, 23 of them benign, gives an AUC whose
95 % interval spans about ±0.07), so every slice metric comes with a percentile-bootstrap interval,
and a student is compared with its teacher by a *paired* bootstrap: both models are scored on the
same resampled test items, so the noise the two share (which posts were drawn) cancels out.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

from edgemod.counterfactual import identity_groups

SLICE_METRICS = ("subgroup_auc", "bpsn_auc", "bnsp_auc")
CHUNK_CELLS = 4_000_000  # resample counts held at once (rows x items): bounds memory on big test splits


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


def resampled_counts(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Bootstrap resamples of `n` items as draw counts, `[rows, n]` per chunk, `resamples` rows in all.

    Counts rather than index lists let every slice and model reuse one resample (paired bootstrap);
    the same (n, resamples, seed) always yields the same resamples."""
    rng = np.random.default_rng(seed)
    rows = max(1, min(resamples, CHUNK_CELLS // max(n, 1)))
    for start in range(0, resamples, rows):
        k = min(rows, resamples - start)
        drawn = rng.integers(0, n, size=(k, n)) + n * np.arange(k)[:, None]
        yield np.bincount(drawn.ravel(), minlength=k * n).reshape(k, n).astype(np.float32)  # exact


def weighted_auc(y: np.ndarray, s: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """ROC AUC (Mann-Whitney, ties count half) of scores `s` for 0/1 labels `y`, once per row of
    `weights` `[rows, n]` (bootstrap draw counts; a row of ones is the plain AUC). NaN where a row
    has no positive or no negative item."""
    order = np.argsort(s, kind="stable")
    s, positive, weights = s[order], y[order].astype(bool), weights[:, order]
    if s.size and np.any(s[1:] == s[:-1]):  # ties: sum each run of tied scores first
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        pos = np.add.reduceat(weights * positive, starts, axis=1)
        neg = np.add.reduceat(weights * ~positive, starts, axis=1)
        wins = (pos * (np.cumsum(neg, axis=1) - 0.5 * neg)).sum(axis=1)
        pairs = pos.sum(axis=1) * neg.sum(axis=1)
    else:  # the common case, and twice as fast: negatives ranked below each positive, by a running sum
        below = np.cumsum(np.where(positive, 0, weights), axis=1)
        wins = np.einsum("ij,ij->i", weights[:, positive], below[:, positive])
        pairs = weights[:, positive].sum(axis=1) * (below[:, -1] if s.size else 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def percentile_interval(draws: np.ndarray, confidence: float) -> list[float] | None:
    """The central `confidence` share of the finite bootstrap draws, rounded; None when there are none."""
    finite = draws[np.isfinite(draws)]
    if finite.size == 0:
        return None
    tail = (1.0 - confidence) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return [round(float(low), 4), round(float(high), 4)]


def _mean_with_interval(values: np.ndarray, resamples: int, confidence: float, seed: int) -> tuple[float, list | None]:
    draws = np.concatenate([counts @ values / len(values) for counts in resampled_counts(len(values), resamples, seed)])
    return float(values.mean()), percentile_interval(draws, confidence)


def agreement_interval(a: np.ndarray, b: np.ndarray, resamples: int = 1000, confidence: float = 0.95,
                       seed: int = 0) -> dict:
    """Share of items on which two decision vectors agree (multi-label: on every label), with a
    percentile-bootstrap interval over items (e.g. an int8 artifact against the fp32 student)."""
    same = np.asarray(a) == np.asarray(b)
    agree = (same.all(axis=1) if same.ndim > 1 else same).astype(np.float64)
    value, interval = _mean_with_interval(agree, resamples, confidence, seed)
    return {"items": int(agree.size), "agreement": round(value, 6), "interval": interval}


def _group_masks(texts: list[str], violating: np.ndarray) -> dict[str, dict[str, np.ndarray]]:
    """Identity group -> metric -> the test items that metric's AUC ranks (Borkan et al. 2019)."""
    lowered = [t.lower() for t in texts]
    out = {}
    for name, pattern in identity_groups().items():
        named = np.array([bool(pattern.search(t)) for t in lowered], dtype=bool)
        if not named.any():
            continue
        background = ~named
        out[name] = {"subgroup_auc": named,
                     "bpsn_auc": (background & (violating == 1)) | (named & (violating == 0)),
                     "bnsp_auc": (background & (violating == 0)) | (named & (violating == 1))}
    return out


def _bootstrap_draws(masks: dict[tuple, np.ndarray], violating: np.ndarray, scores: dict[str, np.ndarray],
                     resamples: int, seed: int) -> dict[tuple, np.ndarray]:
    """(slice, model) -> its AUC on each resample; one resample serves every slice and model."""
    draws: dict[tuple, list] = {(key, model): [] for key in masks for model in scores}
    for counts in resampled_counts(len(violating), resamples, seed):
        for key, mask in masks.items():
            for model, score in scores.items():
                draws[(key, model)].append(weighted_auc(violating[mask], score[mask], counts[:, mask]))
    return {key: np.concatenate(parts) for key, parts in draws.items()}


def identity_slices(texts: list[str], violating: np.ndarray, scores: dict[str, np.ndarray], min_items: int,
                    pairs: dict[str, str] | None = None, resamples: int = 1000, confidence: float = 0.95,
                    seed: int = 0) -> dict[str, dict]:
    """Per model, per identity group: items, subgroup / BPSN / BNSP AUC, each with a bootstrap interval.

    `scores`: model -> violation score per test item. `pairs`: model -> the model it is compared
    with (e.g. `{"fp32_student": "teacher"}`); each such model's groups also get `vs_<other>`: per
    metric the difference model - other and its paired-bootstrap interval."""
    violating = np.asarray(violating).astype(int)
    groups = _group_masks(texts, violating)
    masks = {("overall", "auc"): np.ones(len(violating), dtype=bool),
             **{(g, metric): mask for g, by_metric in groups.items() for metric, mask in by_metric.items()}}
    draws = _bootstrap_draws(masks, violating, scores, resamples, seed)
    spec = {"resamples": resamples, "confidence": confidence, "seed": seed}
    out = {}
    for model, score in scores.items():
        entry = {"overall_auc": _auc(violating, score),
                 "overall_auc_interval": percentile_interval(draws[(("overall", "auc"), model)], confidence),
                 "bootstrap": spec, "groups": {}}
        for group, by_metric in groups.items():
            entry["groups"][group] = _group_entry(group, by_metric, violating, score, draws, model, min_items, confidence)
        out[model] = entry
    for model, other in (pairs or {}).items():
        if model in out and other in out:
            for group in groups:
                out[model]["groups"][group][f"vs_{other}"] = _paired(group, draws, model, other, out, confidence)
    return out


def _group_entry(group: str, by_metric: dict, violating: np.ndarray, score: np.ndarray, draws: dict, model: str,
                 min_items: int, confidence: float) -> dict:
    named = by_metric["subgroup_auc"]
    entry = {"items": int(named.sum()), "positives": int(violating[named].sum()),
             "negatives": int((violating[named] == 0).sum()), "gated": bool(named.sum() >= min_items)}
    for metric, mask in by_metric.items():
        entry[metric] = _auc(violating[mask], score[mask])
        entry[f"{metric}_interval"] = percentile_interval(draws[((group, metric), model)], confidence)
    return entry


def _paired(group: str, draws: dict, model: str, other: str, out: dict, confidence: float) -> dict:
    paired = {}
    for metric in SLICE_METRICS:
        mine, theirs = out[model]["groups"][group][metric], out[other]["groups"][group][metric]
        difference = None if mine is None or theirs is None else round(mine - theirs, 4)
        paired[metric] = {"difference": difference, "interval": percentile_interval(
            draws[((group, metric), model)] - draws[((group, metric), other)], confidence)}
    return paired


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
                               min_items: int = 1, resamples: int | None = None, confidence: float = 0.95,
                               seed: int = 0) -> dict:
    """Per swappable group: how far the violation score moves when only the group a post names changes.

    The groups are those of edgemod/identity_swaps.json; every post naming one is rewritten once per
    other group of its axis that the post does not already name;
    `mean_shift` averages score(post) - mean score(its rewrites) over those posts (Garg et al. 2019,
    counterfactual token fairness). A positive shift: the model scores posts higher *for naming the
    group*. A subgroup AUC gap with a shift near 0 comes from the posts themselves, not the group's name.
    With `resamples`, `mean_shift_interval` is a percentile-bootstrap interval over the posts.
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
        if resamples:
            out[group]["mean_shift_interval"] = _mean_with_interval(shifts.astype(np.float64), resamples, confidence, seed)[1]
    return out
