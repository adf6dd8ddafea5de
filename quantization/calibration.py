"""Calibration data: real items from the recipe's calibration split, encoded like the test items."""
from __future__ import annotations

import hashlib

import numpy as np

from edgemod.errors import EdgemodError


def calibration_inputs(student, items: int, seed: int = 0) -> tuple[dict[str, np.ndarray], str, str]:
    """(inputs, sha256 of the exact tensors, where they came from) for `items` calibration items.

    The recipe's `data.calibration` split is used when set; otherwise the validation split the
    training run scored. Never the test split: parity is measured there.
    """
    reference = student.recipe.data.calibration
    if reference:
        from edgemod.catalog import load_split

        table = load_split(reference, max_items=student.recipe.data.max_items_per_split,
                           on_bad_row=student.recipe.data.on_bad_row)
        source = reference
    else:
        table = student.split("validation")
        source = "validation split of the training run"
    if reference and reference == student.recipe.data.test:
        raise EdgemodError(f"the calibration split '{reference}' is the test split",
                           "calibrate on validation or a held-out split; parity is measured on test")
    column = student.payload_column
    if table.empty:
        raise EdgemodError(f"the calibration split ({source}) is empty", "point data.calibration at a split with items")
    order = np.random.default_rng(seed).permutation(len(table))[:items]
    inputs = student.encode(table[column].iloc[order].tolist())
    digest = hashlib.sha256()
    for name in sorted(inputs):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(inputs[name]).tobytes())
    return inputs, digest.hexdigest(), f"{source} ({len(order)} items)"


def rows(inputs: dict[str, np.ndarray]):
    """Batch-1 feeds, one per calibration item."""
    count = len(next(iter(inputs.values())))
    for i in range(count):
        yield {name: array[i:i + 1] for name, array in inputs.items()}
