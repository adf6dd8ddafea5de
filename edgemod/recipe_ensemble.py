"""The `ensemble:` section of a recipe: how several teachers' scores become one soft target."""
from __future__ import annotations

from typing import Literal

from edgemod.strict_model import StrictModel


class EnsembleSpec(StrictModel):
    """`weights: recipe` averages the teachers with their `weight:`; `weights: validation` picks the
    weights (non-negative, summing to 1) that minimise the ensemble's log-loss on the validation
    split's gold labels, and records them in the label manifest."""

    weights: Literal["recipe", "validation"] = "recipe"
