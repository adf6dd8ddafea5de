"""Put a teacher's scores onto the recipe's labels (taxonomy mapping) and combine teachers."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from edgemod.errors import EdgemodError, did_you_mean


def resolve_map(teacher_labels: Sequence[str], mapping: dict[str, str | None],
                recipe_labels: Sequence[str], teacher: str) -> dict[str, str | None]:
    """Teacher label -> recipe label (or None to drop). Unmapped labels map to the same name."""
    unknown = [k for k in mapping if k not in teacher_labels]
    if unknown:
        raise EdgemodError(
            f"teacher '{teacher}' has no label '{unknown[0]}'{did_you_mean(unknown[0], teacher_labels)}",
            f"its labels are: {', '.join(teacher_labels)}",
        )
    resolved = {}
    for label in teacher_labels:
        target = mapping.get(label, label if label in recipe_labels else None)
        resolved[label] = target
    if not any(resolved.values()):
        raise EdgemodError(
            f"none of teacher '{teacher}' labels ({', '.join(teacher_labels)}) map onto the recipe's "
            f"labels ({', '.join(recipe_labels)})",
            "add a 'map:' from teacher labels to recipe labels in the recipe",
        )
    return resolved


def map_scores(scores: np.ndarray, teacher_labels: Sequence[str], teacher_multi_label: bool,
               mapping: dict[str, str | None], recipe_labels: Sequence[str], recipe_multi_label: bool,
               teacher: str = "teacher") -> np.ndarray:
    """Scores [n, len(teacher_labels)] -> [n, len(recipe_labels)].

    Distributions add up over labels mapped to the same target; independent (multi-label) scores
    take the max. A multi-label teacher feeding a single-label recipe must leave exactly one recipe
    label unmapped (the benign one, e.g. `normal`): it gets 1 - max(other scores), then rows are
    renormalised.
    """
    resolved = resolve_map(teacher_labels, mapping, recipe_labels, teacher)
    out = np.zeros((scores.shape[0], len(recipe_labels)), dtype=np.float32)
    covered = np.zeros(len(recipe_labels), dtype=bool)
    for t_index, target in enumerate(resolved.values()):
        if target is None:
            continue
        r_index = recipe_labels.index(target)
        column = scores[:, t_index]
        out[:, r_index] = np.maximum(out[:, r_index], column) if teacher_multi_label else out[:, r_index] + column
        covered[r_index] = True
    if recipe_multi_label:
        return np.clip(out, 0.0, 1.0)
    if teacher_multi_label:
        out = _complement_background(out, covered, recipe_labels, teacher)
    total = out.sum(axis=1, keepdims=True)
    return np.where(total > 0, out / np.maximum(total, 1e-12), 1.0 / len(recipe_labels)).astype(np.float32)


def _complement_background(out: np.ndarray, covered: np.ndarray, recipe_labels, teacher) -> np.ndarray:
    missing = [recipe_labels[i] for i in np.flatnonzero(~covered)]
    if len(missing) != 1:
        raise EdgemodError(
            f"teacher '{teacher}' gives independent scores but the recipe is single-label; exactly one "
            f"recipe label must be left unmapped as the benign class, got {missing or 'none'}",
            "map the teacher's categories onto every recipe label except the benign one",
        )
    background = recipe_labels.index(missing[0])
    out[:, background] = 1.0 - out.max(axis=1)
    return out


def combine(mapped: Sequence[np.ndarray], weights: Sequence[float]) -> np.ndarray:
    """Weighted average of teachers' mapped probabilities."""
    weights = np.asarray(weights, dtype=np.float64)
    stacked = np.stack(mapped).astype(np.float64)
    return (np.tensordot(weights, stacked, axes=1) / weights.sum()).astype(np.float32)


def fit_weights(mapped: Sequence[np.ndarray], table, recipe) -> list[float]:
    """Teacher weights (>= 0, summing to 1) minimising the ensemble's log-loss on the validation
    rows' gold labels (single-label) or its binary cross-entropy (multi-label)."""
    from scipy.optimize import minimize

    from edgemod.errors import EdgemodError

    rows = np.flatnonzero((table["role"] == "validation").to_numpy())
    if not len(rows):
        raise EdgemodError("ensemble.weights: validation needs labelled validation items",
                           "give the recipe a validation split, or use ensemble.weights: recipe")
    stacked = np.stack([m[rows] for m in mapped]).astype(np.float64)
    index = {label: i for i, label in enumerate(recipe.labels)}
    gold = table["label"].iloc[rows].tolist()
    if recipe.multi_label:
        target = np.zeros(stacked.shape[1:])
        for row, value in enumerate(gold):
            for part in filter(None, str(value).split("|")):
                target[row, index[part]] = 1
    else:
        target = np.eye(len(recipe.labels))[[index[g] for g in gold]]

    def loss(logits: np.ndarray) -> float:
        weights = np.exp(logits - logits.max())
        probs = np.clip(np.tensordot(weights / weights.sum(), stacked, axes=1), 1e-7, 1 - 1e-7)
        if recipe.multi_label:
            return float(-(target * np.log(probs) + (1 - target) * np.log(1 - probs)).mean())
        return float(-(target * np.log(probs)).sum(1).mean())

    found = minimize(loss, np.zeros(len(mapped)), method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-7})
    weights = np.exp(found.x - found.x.max())
    return (weights / weights.sum()).tolist()
