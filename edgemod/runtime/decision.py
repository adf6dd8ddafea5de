"""The threshold decision rule a phone applies to a model's scores.

Single-label: a non-benign class fires when its score reaches its threshold; the decision is the
firing class with the highest score, else the benign class. Multi-label: each class on its own.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def decide(probs: np.ndarray, labels: Sequence[str], thresholds: dict) -> np.ndarray:
    """Class indices (single-label) or a 0/1 matrix (multi-label) at the shipped thresholds."""
    cuts = np.array([thresholds["per_class"].get(label, {}).get("threshold", np.inf) for label in labels])
    if thresholds["multi_label"]:
        return (probs >= cuts).astype(np.int64)
    if thresholds["policy"] == "argmax" or not thresholds["per_class"]:
        return probs.argmax(axis=1)
    firing = np.where(probs >= cuts, probs, -np.inf)
    benign = list(labels).index(thresholds["benign"])
    return np.where(np.isfinite(firing).any(axis=1), firing.argmax(axis=1), benign)
