"""Student models, registered by name (`student.arch` in a recipe)."""
from training.students import text, vision  # noqa: F401
from training.students.registry import STUDENTS, build_student, list_students, register_student

__all__ = ["STUDENTS", "build_student", "list_students", "register_student"]
