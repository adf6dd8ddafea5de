"""Teachers, registered by kind. Importing this package registers every built-in kind."""
from edgemod.training.teachers import (  # noqa: F401
    anthropic_teacher,
    hf,
    hive_teacher,
    onnx_teacher,
    openai_teacher,
    scores,
    sklearn_teacher,
    tf_teacher,
    timm_teacher,
)
from edgemod.training.teachers.base import TEACHERS, Item, Teacher, TeacherContext, build_teacher, register_teacher

__all__ = ["TEACHERS", "Item", "Teacher", "TeacherContext", "build_teacher", "register_teacher"]
