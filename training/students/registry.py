"""`@register_student` registry, timm-style: one obvious way to add a model."""
from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgemod.errors import EdgemodError, unknown_choice


@dataclass(frozen=True)
class StudentEntry:
    name: str
    factory: Callable[..., Any]
    task: str
    description: str


STUDENTS: dict[str, StudentEntry] = {}


def register_student(name: str, task: str = "text-classification", description: str = ""):
    """Register a model factory `factory(num_labels, **options) -> torch.nn.Module`."""

    def decorate(factory):
        STUDENTS[name] = StudentEntry(name, factory, task, description or (factory.__doc__ or "").strip())
        return factory

    return decorate


def list_students(pattern: str = "*") -> list[str]:
    return sorted(n for n in STUDENTS if fnmatch.fnmatch(n, pattern))


def build_student(name: str, num_labels: int, **options):
    import edgemod.training.students  # noqa: F401  (registers the built-in students)

    if name not in STUDENTS:
        raise unknown_choice("student arch", name, STUDENTS)
    try:
        return STUDENTS[name].factory(num_labels=num_labels, **options)
    except TypeError as error:
        raise EdgemodError(f"bad options for student '{name}': {error}",
                           "check 'student.options' in the recipe") from None
