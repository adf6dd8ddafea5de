"""Shared fixtures: a tiny recipe on small slices of the real data and a countable test teacher."""
from __future__ import annotations

# TensorFlow (the optional `tf` extra) segfaults later imports of coremltools/torchao unless
# triton is loaded first (see ../shared/notes/stack-probe.md §6).
try:
    import triton  # noqa: F401
except ImportError:
    pass

import contextlib
import hashlib
import os
from pathlib import Path

import numpy as np
import pytest

from edgemod.training.teachers.base import register_teacher

PROJECT = Path(__file__).resolve().parent.parent
os.environ.setdefault("EDGEMOD_CATALOG", str(PROJECT / "datasets.yaml"))

KEYWORDS = {"hatespeech": ("kike", "nigger", "faggot", "muzzie", "raghead", "dyke"),
            "offensive": ("bitch", "fuck", "shit", "ass", "hoe", "retard", "cunt", "whore")}


class KeywordTeacher:
    """Deterministic stand-in teacher for stage tests: keyword hits plus a hash-based jitter.

    `fail_after_calls` raises KeyboardInterrupt on that call, to test resumable labelling.
    """

    calls: list[int] = []

    def __init__(self, labels, fail_after_calls=None, batch_size=64):
        self.labels = list(labels)
        self.multi_label = False
        self.batch_size = batch_size
        self.fail_after_calls = fail_after_calls
        self.parameters = 1000

    def identity(self) -> str:
        return "test-keyword-v1:" + ",".join(self.labels)

    def predict_proba(self, items):
        if self.fail_after_calls is not None and len(KeywordTeacher.calls) >= self.fail_after_calls:
            raise KeyboardInterrupt("simulated interruption")
        KeywordTeacher.calls.append(len(items))
        out = np.zeros((len(items), len(self.labels)), dtype=np.float32)
        for row, item in enumerate(items):
            text = item.text.lower()
            jitter = int(hashlib.sha256(item.text.encode()).hexdigest()[:4], 16) / 65535 * 0.2
            scores = {label: 0.1 + jitter for label in self.labels}
            for label, words in KEYWORDS.items():
                if label in scores and any(w in text for w in words):
                    scores[label] += 2.0
            scores[self.labels[0]] += 1.0
            values = np.array([scores[name] for name in self.labels])
            out[row] = np.exp(values) / np.exp(values).sum()
        return out


@register_teacher("test_keyword")
def _keyword_teacher(spec, context):
    return KeywordTeacher(context.recipe.labels, **spec.options)


@pytest.fixture(autouse=True)
def teacher_calls() -> list[int]:
    """Batch sizes the keyword teacher was called with during this test."""
    KeywordTeacher.calls.clear()
    return KeywordTeacher.calls


@pytest.fixture
def tiny_recipe_dict() -> dict:
    return tiny_text_recipe()


def tiny_text_recipe() -> dict:
    """A real-data text recipe small enough to label and train in seconds."""
    return {
        "name": "tiny-hate",
        "labels": ["normal", "offensive", "hatespeech"],
        "data": {"train": "hatexplain:train", "validation": "hatexplain:validation",
                 "test": "hatexplain:test", "transfer": ["olid:train"], "max_items_per_split": 150},
        "teachers": [{"name": "kw", "kind": "test_keyword"}],
        "student": {"arch": "test_text_tiny", "max_length": 32, "vocab_size": 600},
        "distill": {"epochs": 2, "batch_size": 32, "lr": 0.01, "patience": 2},
        "thresholds": {"policy": "max_f1"},
    }


@pytest.fixture
def tiny_recipe(tiny_recipe_dict):
    from edgemod.recipe import parse_recipe

    return parse_recipe(tiny_recipe_dict)


def tiny_text_export(root, exports: str):
    """label -> train -> export of the tiny text recipe under `root`, with an `export=[...]` override."""
    from edgemod.export import stage
    from edgemod.recipe import parse_recipe
    from edgemod.training import label, train

    label.run(parse_recipe(tiny_text_recipe()), root / "label")
    train.run(root / "label", root / "train")
    stage.run(root / "train", root / "export", [exports])
    return root


WEAPONS = ["none", "firearm", "knife", "other_weapon"]


def tiny_vision_run(root, exports: list[dict], student: dict | None = None):
    """label -> train of a tiny image student on real weapons frames (a scores-file teacher that
    scores the gold label 0.85) under `root`; returns the train folder. `exports` go in the recipe."""
    import pandas as pd

    from edgemod.catalog import load_split
    from edgemod.recipe import parse_recipe
    from edgemod.training import label, train

    rows = []
    for split in ("train", "validation", "test"):
        for _, row in load_split(f"weapons:{split}", max_items=40).iterrows():
            rows.append({"key": row["key"], **{name: 0.85 if name == row["label"] else 0.05 for name in WEAPONS}})
    pd.DataFrame(rows).to_parquet(root / "scores.parquet")
    recipe = {"name": "tiny-weapons", "task": "image-classification", "labels": WEAPONS,
              "data": {"train": "weapons:train", "validation": "weapons:validation", "test": "weapons:test",
                       "calibration": "weapons:validation", "max_items_per_split": 40},
              "teachers": [{"name": "scores", "kind": "scores", "path": str(root / "scores.parquet")}],
              "student": {"arch": "test_vision_tiny", "image_size": 64, **(student or {})},
              "distill": {"epochs": 2, "batch_size": 16, "lr": 0.003, "num_workers": 0},
              "thresholds": {"policy": "max_f1", "benign": "none"}, "export": exports}
    label.run(parse_recipe(recipe), root / "label")
    train.run(root / "label", root / "train")
    return root / "train"


TASKS_TEXT_EXPORTS = "export=[{target: mediapipe}, {target: mediapipe, quant: int8_dynamic}]"
TASKS_VISION_EXPORTS = [{"target": "mediapipe"}, {"target": "mediapipe", "quant": "int8_static", "calibration_items": 16}]


@pytest.fixture(scope="session")
def tasks_text_export(tmp_path_factory):
    """The tiny text recipe with Tasks' own tokenizer, exported fp32 and int8 for MediaPipe Tasks
    (shared by the Python Tasks tests and the browser test)."""
    from edgemod.export import stage
    from edgemod.recipe import parse_recipe
    from edgemod.training import label, train

    root = tmp_path_factory.mktemp("tasks-text")
    recipe = tiny_text_recipe()
    recipe["student"]["tokenizer"] = "mediapipe_tasks"
    label.run(parse_recipe(recipe), root / "label")
    train.run(root / "label", root / "train")
    with _few_latency_runs():
        stage.run(root / "train", root / "export", [TASKS_TEXT_EXPORTS])
    return root / "export"


@pytest.fixture(scope="session")
def tasks_vision_export(tmp_path_factory):
    """The tiny image student exported fp32 and static int8 for MediaPipe Tasks."""
    from edgemod.export import stage

    root = tmp_path_factory.mktemp("tasks-vision")
    train_dir = tiny_vision_run(root, TASKS_VISION_EXPORTS, {"image_preprocessing": "mediapipe_tasks"})
    with _few_latency_runs():
        stage.run(train_dir, root / "export")
    return root / "export"


@contextlib.contextmanager
def _few_latency_runs():
    """These fixtures feed tests of decisions, not latency: a few timed calls per artifact (the
    export's full timing takes a minute for the tiny image model on a busy CI runner)."""
    from edgemod.export import stage

    interleaved = stage.interleaved

    def few_runs(calls, **_):
        return interleaved(calls, rounds=1, runs=3, warmup=1)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stage, "interleaved", few_runs)
        yield
