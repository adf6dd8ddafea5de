"""The numbers behind the bench report, read or computed from one bench folder: scores, gold
labels and decisions, precision-recall, confusion counts and calibration bins.

Nothing here renders: `report.py` writes the HTML and `plots.py` draws the figures.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass
class BenchRun:
    """Everything the page reads from one bench folder."""

    manifest: dict
    bench: dict
    scores: Any  # pandas.DataFrame, or None when scores.parquet is absent
    samples: dict

    @property
    def recipe(self) -> dict:
        return self.manifest.get("recipe", {})

    @property
    def labels(self) -> list[str]:
        return list(self.manifest.get("details", {}).get("labels") or self.recipe.get("labels", []))

    @property
    def thresholds(self) -> dict:
        return self.manifest.get("details", {}).get("thresholds", {})

    @property
    def multi_label(self) -> bool:
        return bool(self.thresholds.get("multi_label", self.recipe.get("multi_label", False)))

    @property
    def artifacts(self) -> dict:
        return self.bench.get("artifacts", {})


def load_run(bench_dir: Path) -> BenchRun:
    """Read a finished bench folder; scores.parquet and latency_samples.json may be missing.

    Raises:
        FileNotFoundError: the folder has no manifest.json.
    """
    manifest_path = bench_dir / "manifest.json"
    if not manifest_path.exists():
        raise FileNotFoundError(f"{manifest_path} not found: pass a folder written by `edgemod bench`")
    manifest = json.loads(manifest_path.read_text())
    bench_path = bench_dir / "bench.json"
    bench = json.loads(bench_path.read_text()) if bench_path.exists() else manifest.get("metrics", {})
    samples_path = bench_dir / "latency_samples.json"
    samples = json.loads(samples_path.read_text()) if samples_path.exists() else {}
    return BenchRun(manifest, bench, _read_scores(bench_dir / "scores.parquet"), samples)


def _read_scores(path: Path):
    if not path.exists():
        return None
    import pandas as pd

    return pd.read_parquet(path)


def p50(run: BenchRun, name: str | None, threads: str) -> float | None:
    """Median latency of model `name` at `threads` ("1_thread" or "2_thread"); None if not measured."""
    return run.bench.get("latency", {}).get(name or "", {}).get(threads, {}).get("p50_ms")


def scored(run: BenchRun, names: list[str]) -> list[str]:
    """The models in `names` that have score columns in scores.parquet."""
    if run.scores is None or not run.labels:
        return []
    return [n for n in names if f"{n}:{run.labels[0]}" in run.scores.columns]


def probs(run: BenchRun, name: str) -> np.ndarray:
    """Model `name`'s scores on the test split, [items, labels]."""
    return run.scores[[f"{name}:{label}" for label in run.labels]].to_numpy(dtype=float)


def gold(run: BenchRun) -> np.ndarray:
    """Class indices (-1 for a label outside the recipe), or a multi-hot matrix for multi-label."""
    values = [str(v) for v in run.scores["label"]]
    if run.multi_label:
        return np.array([[int(label in v.split("|")) for label in run.labels] for v in values], dtype=int)
    return np.array([run.labels.index(v) if v in run.labels else -1 for v in values], dtype=int)


def quantized_measured(run: BenchRun) -> list[str]:
    """Artifacts that changed the weights (so differ from the fp32 student) and ran here."""
    return [n for n, a in run.artifacts.items() if a.get("measured") and a.get("quantized")]


def decisions(run: BenchRun, models: list[str]) -> dict[str, np.ndarray]:
    """What the app would do with each model's scores: the shipped decision rule at the shipped thresholds."""
    from edgemod.runtime.decision import decide

    return {n: decide(probs(run, n), run.labels, run.thresholds) for n in models}


# ---------------------------------------------------------------- precision-recall

def one_vs_rest(run: BenchRun, gold_labels: np.ndarray, index: int) -> np.ndarray:
    """0/1 per item: is class `index` gold."""
    return gold_labels[:, index] if run.multi_label else (gold_labels == index).astype(int)


def pr_curve(positive: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """(precision, recall, average precision) of `scores` against the 0/1 `positive`."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    precision, recall, _ = precision_recall_curve(positive, scores)
    return precision, recall, average_precision_score(positive, scores)


def threshold_point(run: BenchRun, positive: np.ndarray, label: str, index: int) -> tuple[float, float, float] | None:
    """(threshold, precision, recall) of the fp32 student at `label`'s shipped threshold; None without one."""
    entry = run.thresholds.get("per_class", {}).get(label)
    if not entry:
        return None
    fired = probs(run, "fp32_student")[:, index] >= entry["threshold"]
    tp = int((fired & (positive == 1)).sum())
    precision, recall = tp / max(int(fired.sum()), 1), tp / max(int(positive.sum()), 1)
    return entry["threshold"], precision, recall


# ---------------------------------------------------------------- confusion

def confusion(gold_labels: np.ndarray, decided: np.ndarray, n_labels: int) -> np.ndarray:
    """Gold (rows) vs decision (columns) counts; items whose gold label is outside the recipe are left out."""
    from sklearn.metrics import confusion_matrix

    known = gold_labels >= 0
    return confusion_matrix(gold_labels[known], decided[known], labels=list(range(n_labels)))


def multilabel_counts(gold_labels: np.ndarray, decided: np.ndarray, index: int) -> list[int]:
    """[TP, FP, FN, TN] of class `index` for multi-hot gold and decisions."""
    g, d = gold_labels[:, index] == 1, decided[:, index] == 1
    return [(g & d).sum(), (~g & d).sum(), (g & ~d).sum(), (~g & ~d).sum()]


# ---------------------------------------------------------------- calibration

@dataclass
class Reliability:
    """Ten equal-width confidence bins: the filled bins' mean confidence and accuracy, every bin's
    item count, and the expected calibration error."""

    edges: np.ndarray
    counts: np.ndarray
    mean_confidence: np.ndarray
    accuracy: np.ndarray
    ece: float


def confidence(run: BenchRun, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) pairs: the top class for single-label runs, every (item, class) for multi-label."""
    scores, gold_labels = probs(run, name), gold(run)
    if run.multi_label:
        return scores.ravel(), gold_labels.ravel().astype(bool)
    known = gold_labels >= 0
    return scores[known].max(axis=1), scores[known].argmax(axis=1) == gold_labels[known]


def reliability(confidence_values: np.ndarray, correct: np.ndarray) -> Reliability:
    """Bin confidences into tenths and compare each bin's mean confidence with its accuracy."""
    edges = np.linspace(0, 1, 11)
    which = np.clip(np.digitize(confidence_values, edges[1:-1]), 0, 9)
    counts = np.bincount(which, minlength=10)
    filled = counts > 0
    mean_conf = np.bincount(which, weights=confidence_values, minlength=10)[filled] / counts[filled]
    accuracy = np.bincount(which, weights=correct.astype(float), minlength=10)[filled] / counts[filled]
    ece = float(np.sum(counts[filled] * np.abs(accuracy - mean_conf)) / max(counts.sum(), 1))
    return Reliability(edges, counts, mean_conf, accuracy, ece)


# ---------------------------------------------------------------- slices

def worst_group(groups: dict, key: str) -> str | None:
    """The gated identity group with the lowest `key` AUC; None when no group is gated."""
    gated = {g: v[key] for g, v in groups.items() if v.get("gated", True) and v.get(key) is not None}
    return min(gated, key=gated.get) if gated else None
