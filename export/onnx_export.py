"""ONNX float export (torch.onnx dynamo exporter, weights inside the file) with metadata props."""
from __future__ import annotations

import json
from pathlib import Path

from edgemod.errors import MissingDependencyError
from edgemod.export.op_errors import conversion_error
from edgemod.export.student import OUTPUT_NAME
from edgemod.export.tflite import torch_sample
from edgemod.fsutil import atomic_path

OPSET = 18


def export_onnx(module, sample_inputs: dict, input_names: tuple[str, ...], out: Path, metadata: dict) -> Path:
    try:
        import onnx
        import torch
    except ImportError:
        raise MissingDependencyError("onnx", "ONNX export") from None
    sample = torch_sample(sample_inputs, input_names)
    with atomic_path(out) as tmp:
        try:
            # external_data=False: a separate .onnx.data file breaks onnxruntime's quant_pre_process
            torch.onnx.export(module, sample, str(tmp), dynamo=True, external_data=False, opset_version=OPSET,
                              input_names=list(input_names), output_names=[OUTPUT_NAME], verbose=False)
        except Exception as error:
            raise conversion_error("onnx", error, module, sample) from error
        proto = onnx.load(str(tmp))
        onnx.checker.check_model(proto)
        onnx.helper.set_model_props(proto, {k: v if isinstance(v, str) else json.dumps(v) for k, v in metadata.items()})
        onnx.save(proto, str(tmp))
    return out
