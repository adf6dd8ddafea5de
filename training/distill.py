"""Distillation losses: KL at temperature T (or, with `loss: logit_mse`, squared error between the
student's and the teacher's centred logits) mixed with CE on gold labels; BCE with soft targets for
multi-label tasks. Rows without a gold label (transfer text) get the soft loss only.

Logit matching (Kim et al., IJCAI 2021, "Comparing Kullback-Leibler Divergence and Mean Squared
Error Loss in Knowledge Distillation") is KL's limit at high temperature: every class's log-odds
count alike, so the student copies how the teacher *ranks* items, not only its top class. Teachers
give probabilities, so their logits are log-probabilities, centred per row (softmax ignores a shift)."""
from __future__ import annotations

from edgemod.recipe import DistillSpec


def soften(teacher_probs, temperature: float):
    """Teacher probabilities at temperature T (same as dividing the teacher's logits by T)."""
    tempered = teacher_probs.clamp_min(1e-8) ** (1.0 / temperature)
    return tempered / tempered.sum(dim=-1, keepdim=True)


def distillation_loss(student_logits, teacher_probs, gold, spec: DistillSpec, multi_label: bool,
                      class_weights=None):
    """Mean loss over the batch. `gold`: class index (-1 = none) or a multi-hot matrix (-1 rows = none).

    `class_weights` (one per class) reweight the gold cross-entropy of single-label tasks."""
    import torch
    import torch.nn.functional as F

    if multi_label:
        has_gold = (gold >= 0).all(dim=-1)
        soft = F.binary_cross_entropy_with_logits(student_logits, teacher_probs, reduction="none").mean(-1)
        hard = F.binary_cross_entropy_with_logits(student_logits, gold.clamp_min(0).float(),
                                                  reduction="none").mean(-1)
    else:
        has_gold = gold >= 0
        soft = _soft_loss(student_logits, teacher_probs, spec)
        hard = F.cross_entropy(student_logits, gold.clamp_min(0), weight=class_weights, reduction="none")
    if spec.gold_only:
        return hard[has_gold].mean()
    per_row = torch.where(has_gold, spec.alpha * soft + (1 - spec.alpha) * hard, soft)
    return per_row.mean()


def _soft_loss(student_logits, teacher_probs, spec: DistillSpec):
    """Per-row soft loss of a single-label task."""
    import torch.nn.functional as F

    if spec.loss == "logit_mse":
        teacher_logits = teacher_probs.clamp_min(1e-8).log()
        teacher_logits = teacher_logits - teacher_logits.mean(dim=-1, keepdim=True)
        centred = student_logits - student_logits.mean(dim=-1, keepdim=True)
        return ((centred - teacher_logits) ** 2).mean(-1)
    temperature = spec.temperature
    target = soften(teacher_probs, temperature)
    log_student = F.log_softmax(student_logits / temperature, dim=-1)
    # T^2 keeps the soft-loss gradient scale independent of T (Hinton et al. 2015).
    return (target * (target.clamp_min(1e-8).log() - log_student)).sum(-1) * temperature ** 2

