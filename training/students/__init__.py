"""Student models, registered by name (`student.arch` in a recipe)."""
from edgemod.training.students import text, vision  # noqa: F401
from edgemod.training.students.registry import STUDENTS, build_student, list_students, register_student

__all__ = ["STUDENTS", "build_student", "list_students", "register_student"]
