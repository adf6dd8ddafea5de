"""The base of every recipe model: unknown keys are errors, so a typo never passes silently; and
numbers must be ones a stage can use: finite floats (`1e999` is infinity, `.nan` is no number) and
integers no larger than JSON readers on phones hold exactly (a 400-digit epoch count is a typo)."""
from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_INT = 2**53  # the largest integer JavaScript, Kotlin and Swift JSON readers all hold exactly


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False, allow_inf_nan=False)

    @field_validator("*", mode="after")
    @classmethod
    def _sane_numbers(cls, value: Any) -> Any:
        # Typed float fields are refused by `allow_inf_nan`; this also covers ints and free-form
        # values (`options: dict[str, Any]`), at any depth.
        check_numbers(value)
        return value


def check_numbers(value: Any) -> None:
    """Raise ValueError for a non-finite float or an integer beyond ±2**53 anywhere inside `value`."""
    if isinstance(value, bool) or isinstance(value, BaseModel):  # a nested model checked its own fields
        return
    if isinstance(value, int) and abs(value) > MAX_INT:
        digits = len(str(abs(value))) if value.bit_length() < 14_000 else "over 4,000"  # str() stops at 4,300 digits
        raise ValueError(f"an integer of {digits} digits is out of range (at most 2**53 = {MAX_INT:,} either way)")
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{value} is not a finite number")
    if isinstance(value, dict):
        for item in value.values():
            check_numbers(item)
    elif isinstance(value, list | tuple | set):
        for item in value:
            check_numbers(item)
