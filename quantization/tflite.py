"""TFLite int8 schemes, applied by ai-edge-quantizer to the fp32 .tflite.

- int8_dynamic: int8 weights, activations quantized on the fly (no calibration). The fast, safe
  choice for text models: embeddings, masks and pooling stay float.
- int8_weight_only: int8 weights de-quantized at load; smallest change, fp32 speed.
- int8_static: int8 weights and activations, ranges from the calibration set. Op types XNNPACK
  cannot run in int8 stay float (see XNNPACK_FLOAT_OPS); otherwise each one splits the graph
  into separate delegate partitions and the int8 model runs slower than fp32. The model's inputs,
  outputs and final score op stay float (FLOAT_INTERFACE): same interface as the fp32 model.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import atomic_path
from edgemod.litert_flatbuffer import shorten_tensor_names
from edgemod.quantization.calibration import CalibrationSet

# Measured with ai-edge-litert 2.3.0: an int8 HARD_SWISH is not delegated to XNNPACK, so
# MobileNetV3 split into 20 partitions and ran 3.5x slower than fp32; kept float it is one partition.
XNNPACK_FLOAT_OPS = ("HARD_SWISH",)
# An int8 softmax output has steps of 1/256, coarser than shipped thresholds such as 0.006: the
# weapons student flipped decisions on that rounding alone. INPUT and OUTPUT are ai-edge-quantizer's
# virtual ops for the graph's inputs and outputs.
FLOAT_INTERFACE = ("INPUT", "OUTPUT", "SOFTMAX", "LOGISTIC")
# Ops whose weights int8 schemes quantize; `float_first_layers` counts these, in execution order.
WEIGHTED_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "BATCH_MATMUL")


def _recipes():
    try:
        from ai_edge_quantizer import quantizer, recipe
    except ImportError:
        raise MissingDependencyError("ai-edge-quantizer", "TFLite int8 quantization") from None
    return quantizer, recipe


def quantization_recipe(scheme: str, float_ops: list[str], float_compute_outputs: list[str] = ()) -> list[dict]:
    """ai-edge-quantizer entries for `scheme`; the ops writing `float_compute_outputs` keep int8
    weights but compute in float (weight-only), whatever the scheme."""
    _, recipe = _recipes()
    if scheme == "int8_dynamic":
        entries = copy.deepcopy(recipe.dynamic_wi8_afp32())
    elif scheme == "int8_weight_only":
        return recipe.weight_only_wi8_afp32()
    else:
        entries = copy.deepcopy(recipe.static_wi8_ai8())
        for op in dict.fromkeys([*XNNPACK_FLOAT_OPS, *FLOAT_INTERFACE, *float_ops]):
            entries.append({"regex": ".*", "operation": op.upper(), "algorithm_key": "no_quantize"})
    weight_only = recipe.weight_only_wi8_afp32()[0]
    for output in float_compute_outputs:  # an op's scope is its output tensors' names, each followed by ';'
        entries.append({**copy.deepcopy(weight_only), "regex": f"^{re.escape(output)};"})
    return entries


def first_weighted_outputs(float_model: Path, count: int) -> list[str]:
    """The tensors written by the graph's first `count` weighted ops (conv, fully-connected)."""
    if count == 0:
        return []
    from edgemod.litert_flatbuffer import op_outputs

    outputs = op_outputs(float_model, WEIGHTED_OPS)
    if count > len(outputs):
        raise EdgemodError(f"float_first_layers is {count} but the model has {len(outputs)} conv/fully-connected layers",
                           f"set float_first_layers to at most {len(outputs)} in this export of the recipe")
    return outputs[:count]


def quantize_tflite(float_model: Path, out: Path, scheme: str, calibration: CalibrationSet | None,
                    input_names: tuple[str, ...], float_ops: list[str], float_first_layers: int = 0) -> dict:
    """Write the int8 model to `out`; returns the recipe used (recorded in the manifest)."""
    quantizer, _ = _recipes()
    entries = quantization_recipe(scheme, float_ops, first_weighted_outputs(float_model, float_first_layers))
    engine = quantizer.Quantizer(str(float_model))
    engine.load_quantization_recipe(entries)
    ranges = None
    if engine.need_calibration:
        if calibration is None:
            raise EdgemodError(f"{scheme} needs calibration data", "set data.calibration in the recipe")
        feeds = [{name: row[name] for name in input_names} for row in calibration.rows()]  # signature input names
        ranges = engine.calibrate({"serving_default": feeds})
    result = engine.quantize(ranges)
    with atomic_path(out) as tmp:
        tmp.unlink(missing_ok=True)
        result.export_model(str(tmp))
    shorten_tensor_names(out)
    smoke_test(out, input_names, calibration)
    return {"engine": "ai-edge-quantizer", "recipe": entries}


def smoke_test(path: Path, input_names: tuple[str, ...], calibration: CalibrationSet | None) -> None:
    """Several int8 failures only show at invoke time: run the model once before trusting it."""
    from edgemod.runtime.runners import TFLiteRunner

    try:
        runner = TFLiteRunner(path, input_names)
        if calibration is not None:
            runner(next(calibration.rows()))
        else:  # zeros: padding token ids, an all-black image
            runner({n: np.zeros(d["shape"], np.dtype(d["dtype"]).type) for n, d in runner.io_details()["inputs"].items()})
    except RuntimeError as error:
        path.unlink(missing_ok=True)
        node = re.search(r"Node number \d+ \((\w+)\) failed", str(error))
        op = node.group(1) if node else None
        raise EdgemodError(f"the int8 TFLite model fails at run time{f' in op {op}' if op else ''}: "
                           f"{str(error).splitlines()[0]}",
                           f"add {op or 'the failing op type'} to this export's float_ops in the recipe, "
                           "or use int8_dynamic") from None
