"""TFLite/LiteRT float export through litert-torch."""
from __future__ import annotations

from pathlib import Path

from edgemod.errors import MissingDependencyError
from edgemod.export.op_errors import conversion_error
from edgemod.fsutil import atomic_path
from edgemod.litert_flatbuffer import shorten_tensor_names


def torch_sample(inputs: dict, names: tuple[str, ...]) -> tuple:
    import torch

    return tuple(torch.from_numpy(inputs[n]) for n in names)


def export_tflite(module, sample_inputs: dict, input_names: tuple[str, ...], out: Path) -> Path:
    """fp32 .tflite; inputs keep their dtypes (int32 token ids and mask, float32 images)."""
    try:
        import litert_torch
    except ImportError:
        raise MissingDependencyError("litert-torch", "TFLite export") from None
    sample = torch_sample(sample_inputs, input_names)
    try:
        edge_model = litert_torch.convert(module, sample)
    except Exception as error:
        raise conversion_error("tflite", error, module, sample) from error
    with atomic_path(out) as tmp:
        edge_model.export(str(tmp))
    shorten_tensor_names(out)
    return out
