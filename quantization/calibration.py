"""Calibration data: real items from the recipe's calibration split, encoded like the test items."""
from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from edgemod.errors import EdgemodError


@dataclass(frozen=True)
class CalibrationSet:
    """The exact tensors a static scheme calibrates on, and what the manifest says about them."""

    inputs: dict[str, np.ndarray]  # input name -> [items, ...]
    sha256: str  # of the tensors themselves: equal hashes mean equal calibration
    source: str  # the split they came from
    items: int

    def rows(self) -> Iterator[dict[str, np.ndarray]]:
        """Batch-1 feeds, one per calibration item."""
        for i in range(self.items):
            yield {name: array[i:i + 1] for name, array in self.inputs.items()}

    def record(self, asked: int) -> dict:
        """The manifest's calibration fields; `asked` is the recipe's calibration_items, which a
        scheme may cap."""
        return {"calibration_sha256": self.sha256, "calibration_source": self.source,
                "calibration_items": self.items, "calibration_items_asked": asked}


def calibration_set(student, items: int, seed: int = 0) -> CalibrationSet:
    """`items` calibration items (all of the split when it has fewer), encoded for `student`.

    The recipe's `data.calibration` split is used when set; otherwise the validation split the
    training run scored. Never the test split: parity is measured there. The items are the first
    of one seeded permutation, so a smaller set is a prefix of a larger one.

    Raises:
        EdgemodError: the calibration split is the test split, or it is empty.
    """
    reference = student.recipe.data.calibration
    if reference and reference == student.recipe.data.test:
        raise EdgemodError(f"the calibration split '{reference}' is the test split",
                           "calibrate on validation or a held-out split; parity is measured on test")
    if reference:
        from edgemod.catalog import load_split

        table = load_split(reference, max_items=student.recipe.data.max_items_per_split,
                           on_bad_row=student.recipe.data.on_bad_row)
        source = reference
    else:
        table = student.split("validation")
        source = "validation split of the training run"
    if table.empty:
        raise EdgemodError(f"the calibration split ({source}) is empty", "point data.calibration at a split with items")
    order = np.random.default_rng(seed).permutation(len(table))[:items]
    inputs = student.encode(table[student.payload_column].iloc[order].tolist())
    return CalibrationSet(inputs=inputs, sha256=_tensor_sha256(inputs), source=source, items=len(order))


def _tensor_sha256(inputs: dict[str, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for name in sorted(inputs):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(inputs[name]).tobytes())
    return digest.hexdigest()
