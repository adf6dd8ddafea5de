"""Teachers, registered by kind. Importing this package registers every built-in kind."""
from training.teachers import hf  # noqa: F401
from training.teachers.base import TEACHERS, Item, Teacher, TeacherContext, build_teacher, register_teacher

__all__ = ["TEACHERS", "Item", "Teacher", "TeacherContext", "build_teacher", "register_teacher"]
