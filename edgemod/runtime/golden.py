"""Golden-vector replay: the stored model inputs of real items through a runner, checked against
the scores and decisions the artifact must reproduce (what the iOS and Android unit tests do).

A golden record (written by `edgemod export`) holds `labels`, `thresholds`, a tolerance and
`items`, each with its raw payload, its exact model `inputs` (`encode_tensor` form), the
`expected_scores`, the `expected_decision` and its `threshold_margin`.
"""
from __future__ import annotations

import base64

import numpy as np

from edgemod.runtime.decision import decide


def encode_tensor(array: np.ndarray) -> dict:
    """Token ids as plain lists; float tensors as base64 little-endian bytes (JSON stays small)."""
    array = np.ascontiguousarray(array)
    if np.issubdtype(array.dtype, np.integer):
        return {"shape": list(array.shape), "dtype": array.dtype.name, "data": array.ravel().tolist()}
    little = array.astype(array.dtype.newbyteorder("<"))
    return {"shape": list(array.shape), "dtype": array.dtype.name, "encoding": "base64-le",
            "data": base64.b64encode(little.tobytes()).decode("ascii")}


def decode_tensor(record: dict) -> np.ndarray:
    """Inverse of `encode_tensor`: the exact array, in native byte order."""
    if record.get("encoding") == "base64-le":
        data = np.frombuffer(base64.b64decode(record["data"]), dtype=np.dtype(record["dtype"]).newbyteorder("<"))
    else:
        data = np.asarray(record["data"], dtype=record["dtype"])
    return data.astype(record["dtype"]).reshape(record["shape"])


def threshold_margins(scores: np.ndarray, labels: list[str], thresholds: dict) -> np.ndarray:
    """Per item, the smallest distance of any class score to its threshold (inf without thresholds)."""
    cuts = np.array([thresholds["per_class"].get(label, {}).get("threshold", np.nan) for label in labels])
    return np.nan_to_num(np.abs(scores - cuts), nan=np.inf).min(axis=1)


def decision_label(scores: np.ndarray, labels: list[str], thresholds: dict) -> str | list[str]:
    """The decision for scores [1, C] as golden files write it: a label, or a list when multi-label."""
    decision = decide(np.asarray(scores).reshape(1, -1), labels, thresholds)[0]
    return [labels[c] for c in np.flatnonzero(decision)] if thresholds.get("multi_label") else labels[int(decision)]


def check_golden(record: dict, runner) -> dict:
    """Run every golden item's stored inputs through `runner`; worst score diff and decision mismatches.

    A decision may differ only for items whose threshold margin is within the tolerance.
    """
    labels, thresholds = record["labels"], record["thresholds"]
    worst, mismatched = 0.0, []
    for item in record["items"]:
        scores = runner({n: decode_tensor(t) for n, t in item["inputs"].items()})
        worst = max(worst, float(np.abs(scores[0] - np.asarray(item["expected_scores"])).max()))
        got = decision_label(scores, labels, thresholds)
        near = item.get("threshold_margin", np.inf) <= record["tolerance"]["max_abs_score_diff"]
        if got != item["expected_decision"] and not near:
            mismatched.append(item["key"])
    limit = record["tolerance"]["max_abs_score_diff"]
    return {"items": len(record["items"]), "max_abs_score_diff": round(worst, 6),
            "decision_mismatches": mismatched, "passed": worst <= limit and not mismatched}
