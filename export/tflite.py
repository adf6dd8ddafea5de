"""TFLite/LiteRT float export through litert-torch."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from edgemod.errors import MissingDependencyError
from edgemod.export.op_errors import conversion_error
from edgemod.fsutil import atomic_path
from edgemod.litert_flatbuffer import shorten_tensor_names

# The signature's output key, and its tensor's name: what the README promises apps.
OUTPUT_NAME = "scores"


def torch_sample(inputs: dict, names: tuple[str, ...]) -> tuple:
    import torch

    # A copy per input: litert-torch converts wrongly when one tensor object is the sample of two
    # inputs (measured: a model fed ids, mask and segment ids all read the same buffer).
    return tuple(torch.from_numpy(np.array(inputs[n], copy=True)) for n in names)


def named_io(module, input_names: tuple[str, ...]):
    """`module` (positional inputs, scores out) as litert-torch should see it: keyword inputs named
    `input_names` and a `{"scores": ...}` output, so the signature says `input_ids`, `attention_mask`
    or `image`, and `scores`, instead of `args_0`, `args_1` and `output_0`."""
    import torch

    class NamedIO(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, **inputs):
            return {OUTPUT_NAME: self.model(*(inputs[name] for name in input_names))}

    return NamedIO(module).eval()


def export_tflite(module, sample_inputs: dict, input_names: tuple[str, ...], out: Path) -> Path:
    """fp32 .tflite; inputs keep their dtypes (int32 token ids and mask, float32 images).

    Args:
        module: takes `input_names` positionally and returns scores.
        sample_inputs: one example per input name (numpy arrays).
        input_names: the signature's input names, in the module's argument order.
        out: where the .tflite goes (written atomically).

    Returns:
        `out`, whose signature and IO tensors are named `input_names` and `scores`.
    """
    try:
        import litert_torch
    except ImportError:
        raise MissingDependencyError("litert-torch", "TFLite export") from None
    sample = torch_sample(sample_inputs, input_names)
    try:
        edge_model = litert_torch.convert(named_io(module, input_names), sample_kwargs=dict(zip(input_names, sample)))
    except Exception as error:
        raise conversion_error("tflite", error, module, sample) from error
    with atomic_path(out) as tmp:
        edge_model.export(str(tmp))
    shorten_tensor_names(out)
    return out
