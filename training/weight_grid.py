"""Train with int8 weights so that weight compression after training loses nothing.

Every Conv and Linear weight is seen through a per-output-channel symmetric int8 rounding
(scale = max|w| / 127, levels -127..127, gradients passed straight through). After training the
rounded weights are written back, so the saved float student *is* an int8-weight model:

- Core ML `w8` (linear_quantize_weights, per channel, symmetric) and TFLite/ONNX per-channel
  symmetric int8 weights recover exactly these levels: weight rounding changes no score.
- BatchNorm folding scales each output channel, which keeps a channel on its own grid.
- Activation quantization (static int8) is not covered: that error remains and is measured at export.
"""
from __future__ import annotations

from edgemod.errors import EdgemodError

INT8_LEVELS = 127
FUSED_AT_EXPORT = ("fuse", "reparameterize", "switch_to_deploy")  # what timm's reparameterize_model calls


def int8_round(weight):
    """Per-output-channel symmetric int8 rounding, in float."""
    import torch

    scale = (weight.detach().flatten(1).abs().amax(dim=1) / INT8_LEVELS).clamp(min=torch.finfo(weight.dtype).tiny)
    scale = scale.view(-1, *([1] * (weight.dim() - 1)))
    return torch.round(weight / scale).clamp(-INT8_LEVELS, INT8_LEVELS) * scale


def _weighted_layers(model) -> list[tuple[str, object]]:
    import torch

    return [(name, m) for name, m in model.named_modules()
            if isinstance(m, (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Linear))]


def _straight_through():
    import torch

    class StraightThroughInt8(torch.nn.Module):
        def forward(self, weight):
            return weight + (int8_round(weight) - weight).detach()

    return StraightThroughInt8


def attach(model) -> int:
    """Route every Conv/Linear weight of `model` through int8 rounding; returns how many."""
    from torch.nn.utils import parametrize

    fused = [name for name, m in model.named_modules() if name and any(hasattr(m, a) for a in FUSED_AT_EXPORT)]
    if fused:
        raise EdgemodError(f"distill.int8_weights cannot hold for this student: '{fused[0]}' fuses its branches "
                           "at export, and the fused weights leave the int8 grid",
                           "use a student without re-parameterization (e.g. mobilenetv3_small_100), "
                           "or drop distill.int8_weights")
    rounding = _straight_through()
    layers = _weighted_layers(model)
    for _, layer in layers:
        parametrize.register_parametrization(layer, "weight", rounding())
    return len(layers)


def materialize(model) -> None:
    """Write the rounded weights into the layers and drop the parametrizations (in place)."""
    from torch.nn.utils import parametrize

    for _, layer in _weighted_layers(model):
        if parametrize.is_parametrized(layer, "weight"):
            parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)


def off_grid_layers(model) -> list[str]:
    """Names of Conv/Linear layers whose weights are not on their int8 grid (should be none)."""
    import torch

    off = []
    with torch.no_grad():
        for name, m in _weighted_layers(model):
            tolerance = 1e-6 * float(m.weight.abs().max())
            if not torch.allclose(int8_round(m.weight), m.weight, rtol=0, atol=tolerance):
                off.append(name)
    return off
