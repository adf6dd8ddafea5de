"""Training batches: the DataLoader (seeded shuffling or a sampler) and class balancing, shared by
the trainer (`training.train`) and quantization-aware fine-tuning (`training.qat`)."""
from __future__ import annotations

import numpy as np

from edgemod.recipe import Recipe
from edgemod.training.inputs import Split


def loader(dataset, batch_size: int, seed: int, workers: int, shuffle: bool = True, sampler=None):
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      generator=generator, num_workers=workers, persistent_workers=workers > 0)


def balancing(recipe: Recipe, split: Split):
    """A sampler (class-balanced and/or the split's own row weights) or inverse-frequency loss weights.

    Rows without a gold label (transfer items) count as the teacher's top class."""
    from edgemod.training.vision.augment import class_balanced_sampler, class_weights, weighted_sampler

    balance = "none" if recipe.multi_label else recipe.distill.balance
    classes = np.where(split.gold >= 0, split.gold, split.soft.argmax(axis=1)) if balance != "none" else None
    if balance == "loss_weights":
        return row_sampler(split, recipe), class_weights(classes, len(recipe.labels))
    if balance == "sampler":
        balanced = class_balanced_sampler(classes, recipe.distill.seed)
        if split.weights is None:
            return balanced, None
        return weighted_sampler(balanced.weights.numpy() * split.weights, recipe.distill.seed), None
    return row_sampler(split, recipe), None


def row_sampler(split: Split, recipe: Recipe):
    from edgemod.training.vision.augment import weighted_sampler

    return None if split.weights is None else weighted_sampler(split.weights, recipe.distill.seed)
