"""Fine-tune only the later layers of a pretrained image model (`distill.freeze`).

On a phone-class CPU budget the early, high-resolution layers dominate a backward pass, and they
hold the most generic features of a pretrained backbone. Freezing them (weights and BatchNorm
statistics) halves fine-tuning time here and keeps the ImageNet features intact on small data.
"""
from __future__ import annotations

import fnmatch

from edgemod.errors import EdgemodError


def frozen_modules(model, patterns: list[str]) -> list[str]:
    """Names of the top-most modules matching `patterns` (fnmatch on dotted module names)."""
    names = [name for name, _ in model.named_modules() if name]
    chosen: list[str] = []
    for pattern in patterns:
        matches = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
        if not matches:
            tops = sorted({n.split(".")[0] for n in names})
            raise EdgemodError(f"distill.freeze: no module of the student matches '{pattern}'",
                               f"use dotted module names such as {', '.join(tops[:6])}, or blocks.0 / 'blocks.[0-2]'")
        chosen += matches
    return [n for n in dict.fromkeys(chosen) if not any(n.startswith(f"{p}.") for p in chosen)]


def freeze(model, patterns: list[str]) -> list[str]:
    """Stop gradients into the matching modules; returns their names. Call `keep_frozen` after `.train()`."""
    names = frozen_modules(model, patterns)
    modules = dict(model.named_modules())
    for name in names:
        for parameter in modules[name].parameters():
            parameter.requires_grad_(False)
    return names


def keep_frozen(model, names: list[str]) -> None:
    """Put frozen modules back in eval mode, so BatchNorm keeps its pretrained statistics."""
    modules = dict(model.named_modules())
    for name in names:
        modules[name].eval()
