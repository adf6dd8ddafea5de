"""The teacher protocol and registry. A teacher scores texts (or images) with its own labels;
`mapping.map_scores` puts those scores onto the recipe's labels."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from edgemod.errors import unknown_choice
from edgemod.recipe import Recipe, TeacherSpec


@dataclass(frozen=True)
class Item:
    """One thing to score: a stable key (`dataset:split:id`) and its text, or its image path (and view)."""

    key: str
    text: str = ""
    path: str | None = None
    view: str | None = None  # an augmented view of the image at `path` (JSON, `training.vision.views`)


@dataclass
class TeacherContext:
    """What a teacher factory may need beyond its own spec."""

    recipe: Recipe
    cache_dir: Path = field(default_factory=lambda: Path(".cache/edgemod"))


@runtime_checkable
class Teacher(Protocol):
    """A scorer with its own label names.

    `labels` are the teacher's native output names; `multi_label` says whether its scores are
    independent probabilities (True) or one distribution per item (False). `identity` must change
    whenever the scores could (model file hash, API model name, prompt): the label cache keys on it.
    """

    labels: list[str]
    multi_label: bool
    batch_size: int

    def identity(self) -> str: ...

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        """Scores of shape [len(items), len(labels)] in [0, 1]."""
        ...


TeacherFactory = Callable[[TeacherSpec, TeacherContext], Teacher]
TEACHERS: dict[str, TeacherFactory] = {}


def register_teacher(kind: str) -> Callable[[TeacherFactory], TeacherFactory]:
    """Register a teacher factory under `kind` (the recipe's `teachers[].kind`)."""

    def decorate(factory: TeacherFactory) -> TeacherFactory:
        TEACHERS[kind] = factory
        return factory

    return decorate


def build_teacher(spec: TeacherSpec, context: TeacherContext) -> Teacher:
    from edgemod.training import teachers as _registered  # noqa: F401  (fills TEACHERS)

    if spec.kind not in TEACHERS:
        raise unknown_choice("teacher kind", spec.kind, TEACHERS)
    return TEACHERS[spec.kind](spec, context)


def teacher_name(spec: TeacherSpec, index: int) -> str:
    return spec.name or f"{spec.kind}{index}"
