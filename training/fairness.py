"""Identity fairness during distillation (`distill.fairness`).

- `counterfactual`: the identity-swapped copies (`data.counterfactuals`, scored by the teachers in
  the label stage) join the training rows, and a post and all its copies aim at the teachers'
  scores *averaged over the family*: the student learns what the teacher says about the post, not
  about the group it names. A copy of a gold item keeps the item's gold label.
- `reweight`: benign items that mention an identity (edgemod/identity_terms.json) are drawn
  `benign_identity_weight` times as often, so that 'mentions a group' stops predicting 'violating'.
- `identity_weight` (any method): every item that mentions an identity is drawn that many times as
  often. Most transfer text (tweets) names no group, so without it the student spends little of its
  capacity on the posts the identity slices judge.
"""
from __future__ import annotations

import numpy as np

from edgemod.counterfactual import mentions_identity
from edgemod.recipe import Recipe
from edgemod.training.items import COUNTERFACTUAL

UNMITIGATED = "unmitigated"  # prefix of the train run's prediction columns of the student trained without mitigation


def uses_counterfactuals(recipe: Recipe) -> bool:
    return "counterfactual" in recipe.distill.fairness.method


def uses_reweighting(recipe: Recipe) -> bool:
    return "reweight" in recipe.distill.fairness.method or recipe.distill.fairness.identity_weight != 1


def family_averaged(table, soft: np.ndarray) -> np.ndarray:
    """`soft` with every item that has counterfactual copies, and those copies, set to the family mean."""
    if "parent" not in table or not (table["role"] == COUNTERFACTUAL).any():
        return soft
    family = np.where(table["role"].to_numpy() == COUNTERFACTUAL, table["parent"].to_numpy(dtype=object),
                      table["key"].to_numpy(dtype=object))
    codes, members = np.unique(family.astype(str), return_inverse=True)
    sums = np.zeros((len(codes), soft.shape[1]))
    np.add.at(sums, members, soft)
    counts = np.bincount(members, minlength=len(codes))[:, None]
    return (sums / counts)[members].astype(soft.dtype)


def inherited_gold(table, gold: np.ndarray) -> np.ndarray:
    """Gold labels with each counterfactual copy given its parent's (-1 when the parent has none)."""
    if "parent" not in table:
        return gold
    row_of = {key: i for i, key in enumerate(table["key"])}
    gold = gold.copy()
    for i in np.flatnonzero(table["role"].to_numpy() == COUNTERFACTUAL):
        gold[i] = gold[row_of[table["parent"].iloc[i]]]
    return gold


def sample_weights(recipe: Recipe, texts, soft: np.ndarray, gold: np.ndarray) -> np.ndarray:
    """Per-row sampling weight: `identity_weight` for identity mentions, times `benign_identity_weight`
    for benign ones when the method reweights; else 1.

    Benign means the gold label, or for unlabelled rows the teachers' top class."""
    spec = recipe.distill.fairness
    names_group = np.array(mentions_identity(texts), dtype=bool)
    weights = np.ones(len(names_group))
    weights[names_group] = spec.identity_weight
    if "reweight" in spec.method:
        benign = recipe.labels.index(recipe.benign_label)
        classes = np.where(gold >= 0, gold, soft.argmax(axis=1))
        weights[(classes == benign) & names_group] *= spec.benign_identity_weight
    return weights


def unmitigated(recipe: Recipe) -> Recipe:
    """The same recipe without mitigation: the 'before' student of the fairness report."""
    fairness = recipe.distill.fairness.model_copy(update={"method": "none", "identity_weight": 1.0})
    return recipe.model_copy(update={"distill": recipe.distill.model_copy(update={"fairness": fairness})})
