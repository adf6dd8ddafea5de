"""ONNX Runtime int8: static QDQ (per-channel symmetric int8 weights, calibrated int8 activations)
or dynamic (int8 weights, activations quantized at run time)."""
from __future__ import annotations

import tempfile
from pathlib import Path

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import atomic_path
from edgemod.quantization.calibration import CalibrationSet


def _ort_quantization():
    try:
        from onnxruntime import quantization
    except ImportError:
        raise MissingDependencyError("onnxruntime", "ONNX int8 quantization") from None
    return quantization


METHODS = {"minmax": "MinMax", "percentile": "Percentile", "entropy": "Entropy"}
# Scores stay float: int8 steps of 1/255 are coarser than shipped thresholds such as 0.006.
FLOAT_SCORE_OPS = ("Softmax", "Sigmoid")
WEIGHTED_OPS = ("Conv", "MatMul", "Gemm")


def quantize_onnx(float_model: Path, out: Path, scheme: str, calibration: CalibrationSet | None,
                  op_types: list[str], float_ops: list[str], method: str = "minmax",
                  float_first_layers: int = 0) -> dict:
    q = _ort_quantization()
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory() as work, atomic_path(out) as tmp:
        prepared = Path(work) / "prepared.onnx"
        quant_pre_process(str(float_model), str(prepared), skip_symbolic_shape=True)
        op_types = _op_types(prepared, op_types, [*float_ops, *FLOAT_SCORE_OPS])
        excluded = first_weighted_nodes(prepared, float_first_layers)
        extra = {"float_nodes": excluded} if excluded else {}
        if scheme == "int8_dynamic":
            q.quantize_dynamic(str(prepared), str(tmp), weight_type=q.QuantType.QInt8, per_channel=True,
                               op_types_to_quantize=op_types, nodes_to_exclude=excluded)
            int8_weights_float_compute(tmp, excluded)
            return {"engine": "onnxruntime", "mode": "dynamic", "op_types": op_types, **extra}
        q.quantize_static(str(prepared), str(tmp), _Reader(calibration), quant_format=q.QuantFormat.QDQ,
                          per_channel=True, activation_type=q.QuantType.QInt8, weight_type=q.QuantType.QInt8,
                          calibrate_method=getattr(q.CalibrationMethod, METHODS[method]), op_types_to_quantize=op_types,
                          nodes_to_exclude=excluded)
    return {"engine": "onnxruntime", "mode": "static QDQ", "per_channel": True, "op_types": op_types,
            "calibration_method": method, **extra}


def first_weighted_nodes(model_path: Path, count: int) -> list[str]:
    """Names of the first `count` Conv/MatMul/Gemm nodes (graph order, which ONNX keeps topological)
    whose weight is a stored tensor: the layers that compute in float under `float_first_layers`
    (dynamic int8: from int8 weights, `int8_weights_float_compute`)."""
    if not count:
        return []
    import onnx

    graph = onnx.load(str(model_path)).graph
    stored = {init.name for init in graph.initializer}
    weighted = [node.name for node in graph.node
                if node.op_type in WEIGHTED_OPS and len(node.input) > 1 and node.input[1] in stored]
    if count > len(weighted):
        raise EdgemodError(f"float_first_layers is {count} but the ONNX model has {len(weighted)} weighted layers",
                           f"set float_first_layers to at most {len(weighted)} in this export of the recipe")
    return weighted[:count]


def _op_types(model_path: Path, op_types: list[str], float_ops: list[str]) -> list[str]:
    import onnx

    present = op_types or sorted({node.op_type for node in onnx.load(str(model_path)).graph.node})
    return [op for op in present if op not in set(float_ops)]


def int8_weights_float_compute(path: Path, nodes: list[str]) -> None:
    """Store these float nodes' weights as per-channel int8 read through a DequantizeLinear, as
    TFLite's float_first_layers does: the layer computes in float at the int8 size."""
    if not nodes:
        return
    import numpy as np
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    stored = {init.name: init for init in graph.initializer}
    for node in [n for n in graph.node if n.name in set(nodes)]:
        weights = numpy_helper.to_array(stored[node.input[1]]).astype(np.float32)
        transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i for a in node.attribute)
        axis = 0 if node.op_type == "Conv" or transposed else weights.ndim - 1
        moved = np.moveaxis(weights, axis, 0).reshape(weights.shape[axis], -1)
        scale = np.maximum(np.abs(moved).max(axis=1), 1e-12) / 127.0
        shape = [1] * weights.ndim
        shape[axis] = -1
        quantized = np.clip(np.round(weights / scale.reshape(shape)), -127, 127).astype(np.int8)
        base = f"{node.name}_weight"
        graph.initializer.extend([numpy_helper.from_array(quantized, f"{base}_int8"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{base}_scale"),
                                  numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), f"{base}_zero")])
        graph.node.insert(0, helper.make_node("DequantizeLinear", [f"{base}_int8", f"{base}_scale", f"{base}_zero"],
                                              [f"{base}_dequantized"], name=f"{base}_DequantizeLinear", axis=axis))
        node.input[1] = f"{base}_dequantized"
    used = {name for n in graph.node for name in n.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.save(model, str(path))


class _Reader:
    """onnxruntime's CalibrationDataReader protocol over our calibration rows."""

    def __init__(self, calibration: CalibrationSet):
        self._rows = calibration.rows()

    def get_next(self):
        return next(self._rows, None)

    def rewind(self):  # pragma: no cover - only some calibrators call it
        pass
