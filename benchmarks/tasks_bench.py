"""MediaPipe Tasks on the raw test split, for every Tasks-ready (`mediapipe`) artifact.

Tasks does its own pre-processing (tokenizer, or image decoding and resizing), so its decisions
are compared with edgemod's own pipeline on the same artifact; for text, the obfuscated copies
of the test split go through Tasks too, with no normalizer anywhere.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemod.benchmarks.accuracy import accuracy_at_thresholds
from edgemod.console import activity, progress
from edgemod.export.student import TestSet, TrainedStudent
from edgemod.obfuscation import OBFUSCATIONS, obfuscate
from edgemod.runtime.decision import decide
from edgemod.runtime.tasks_check import tasks_scores

MAX_LISTED = 20


def tasks_results(student: TrainedStudent, export_dir: Path, artifacts: dict, test: TestSet, scores: dict,
                  console) -> dict:
    """Per artifact: Tasks vs edgemod decisions on the test split and, for text, obfuscated macro-F1."""
    payloads = test.table[student.payload_column].tolist()
    task = "text" if student.is_text else "image"
    crop_pct = None if student.is_text else student.encoder.config.crop_pct
    out = {}
    for name, record in artifacts.items():
        path = export_dir / record["file"]
        with progress(f"bench MediaPipe Tasks ({task}) {name}", len(payloads), console) as bar:
            tasks = tasks_scores(path, task, student.labels, payloads, crop_pct, progress=lambda _: bar.advance())
        entry = _agreement(student, test, tasks, scores[name])
        if student.is_text:
            with activity(f"bench MediaPipe Tasks {name} on obfuscated texts", console):
                entry["obfuscation"] = _obfuscation(student, test, path, payloads, entry["macro_f1"])
        out[name] = entry
    return out


def _macro_f1(student: TrainedStudent, test: TestSet, probs: np.ndarray) -> float:
    return accuracy_at_thresholds(student, test, probs)["macro_f1"]


def _agreement(student: TrainedStudent, test: TestSet, tasks: np.ndarray, ours: np.ndarray) -> dict:
    labels, thresholds = student.labels, student.thresholds
    differ = decide(tasks, labels, thresholds) != decide(ours, labels, thresholds)
    differ = differ.any(axis=1) if differ.ndim > 1 else differ
    keys = test.table["key"].to_numpy()
    return {"items": int(len(differ)), "decision_agreement_vs_edgemod": round(float(1 - differ.mean()), 6),
            "disagreements": int(differ.sum()), "disagreeing_keys": keys[differ][:MAX_LISTED].tolist(),
            "max_abs_score_diff": round(float(np.abs(tasks - ours).max()), 6) if len(tasks) else 0.0,
            "macro_f1": _macro_f1(student, test, tasks)}


def _obfuscation(student: TrainedStudent, test: TestSet, path: Path, payloads: list[str], clean: float) -> dict:
    out = {"clean_macro_f1": clean}
    for style in OBFUSCATIONS:
        probs = tasks_scores(path, "text", student.labels, [obfuscate(t, style) for t in payloads])
        out[style] = {"macro_f1": _macro_f1(student, test, probs)}
    worst = min(OBFUSCATIONS, key=lambda s: out[s]["macro_f1"])
    out["worst"] = {"style": worst, "macro_f1_drop": round(clean - out[worst]["macro_f1"], 6)}
    return out
