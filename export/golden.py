"""Golden vectors: real test items with the exact model inputs and the scores and decisions the
artifact must reproduce, for the iOS and Android unit tests (and `mobile_harness`). This module
picks the items and writes the record; replaying it is `edgemod.runtime.golden`.

Items: for every non-benign class the most confident correct hits, confidently benign items,
hard negatives (benign items the student scores highest on a violating class) and, for text,
obfuscated spellings of violating items. Items whose score sits within a few tolerances of a
threshold are skipped, so a device passing within tolerance also reproduces the decisions.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.obfuscation import obfuscate
from edgemod.runtime.decision import decide
from edgemod.runtime.golden import encode_tensor, threshold_margins

PER_KIND = 2


@dataclass
class GoldenItem:
    key: str
    kind: str
    payload: str


def _stable(scores: np.ndarray, labels: list[str], thresholds: dict, margin: float) -> np.ndarray:
    """Items whose every score sits at least `margin` from its threshold."""
    return threshold_margins(scores, labels, thresholds) >= margin


def select_items(table, reference: np.ndarray, labels: list[str], thresholds: dict, payload: str,
                 margin: float, is_text: bool) -> list[GoldenItem]:
    """Pick golden items from the test split (`table` rows align with `reference` scores)."""
    decisions = decide(reference, labels, thresholds)
    multi_label = bool(thresholds.get("multi_label"))
    # Prefer items three tolerances from every threshold; a weak model may need one tolerance.
    stable, fallback = _stable(reference, labels, thresholds, margin), _stable(reference, labels, thresholds, margin / 3)
    gold = table["label"].tolist()
    benign = thresholds.get("benign")
    items: list[GoldenItem] = []

    def take(kind: str, mask: np.ndarray, score: np.ndarray, count: int = PER_KIND) -> list[int]:
        order = np.argsort(-score)
        chosen = ([int(i) for i in order if mask[i] and stable[i]][:count]
                  or [int(i) for i in order if mask[i] and fallback[i]][:count]
                  or [int(i) for i in order if mask[i]][:1])
        items.extend(GoldenItem(str(table["key"].iloc[i]), kind, str(table[payload].iloc[i])) for i in chosen)
        return chosen

    violating_rows = []
    for c, label in enumerate(labels):
        if label == benign:
            continue
        hit = decisions[:, c] == 1 if multi_label else decisions == c
        is_gold = np.array([label in str(g).split("|") if multi_label else g == label for g in gold])
        violating_rows += take(f"violating:{label}", hit & is_gold, reference[:, c])
    if benign is not None and not multi_label:
        b = labels.index(benign)
        is_benign = np.array([g == benign for g in gold])
        take("benign", is_benign & (decisions == b), reference[:, b])
        others = np.delete(reference, b, axis=1).max(axis=1)
        take("hard_negative", is_benign & (decisions == b), others)
    if not items:
        raise EdgemodError("no test item qualifies as a golden vector", "check the test split has labelled items")
    if is_text:
        for row, style in zip(violating_rows, ("leetspeak", "zero_width", "spacing")):
            items.append(GoldenItem(f"{table['key'].iloc[row]}#{style}", f"obfuscated:{style}",
                                    obfuscate(str(table[payload].iloc[row]), style)))
    return items


def golden_record(items: list[GoldenItem], inputs: dict[str, np.ndarray], expected: np.ndarray,
                  student_scores: np.ndarray, labels: list[str], thresholds: dict, tolerance: float,
                  header: dict) -> dict:
    """The golden file of one artifact: each item's payload, exact inputs, expected scores and decision."""
    decisions = decide(expected, labels, thresholds)
    multi_label = bool(thresholds.get("multi_label"))
    margins = threshold_margins(expected, labels, thresholds)
    rows = []
    for i, item in enumerate(items):
        decision = [labels[c] for c in np.flatnonzero(decisions[i])] if multi_label else labels[int(decisions[i])]
        rows.append({"key": item.key, "kind": item.kind, "payload": item.payload,
                     "inputs": {name: encode_tensor(array[i:i + 1]) for name, array in inputs.items()},
                     "expected_scores": [round(float(x), 6) for x in expected[i]],
                     "expected_decision": decision, "threshold_margin": round(float(margins[i]), 6),
                     "fp32_student_scores": [round(float(x), 6) for x in student_scores[i]]})
    return {**header, "labels": labels, "thresholds": thresholds, "output": "scores",
            "tolerance": {"max_abs_score_diff": tolerance,
                          "decisions": "exact for items whose threshold_margin exceeds max_abs_score_diff"},
            "items": rows}
