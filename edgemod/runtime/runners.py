"""One call signature for every artifact: `runner({input name: batch-1 array}) -> scores [1, C]`.

Runners feed the exact tensors a device would (int32 token ids and mask, or the pre-processed
float image), quantize/dequantize int8 model inputs and outputs with the model's own parameters,
and use the runtime's default CPU path (XNNPACK for LiteRT) with a chosen thread count. Each
runtime (ai-edge-litert, onnxruntime, coremltools, torch) is imported when its runner is built.
"""
from __future__ import annotations

import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError, unknown_choice


class Runner(Protocol):
    """`runner({input name: batch-1 array}) -> float32 scores [1, C]`."""

    input_names: tuple[str, ...]

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray: ...


def _quantize(array: np.ndarray, dtype, params) -> np.ndarray:
    scale, zero_point = params
    if not scale:
        return array.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(array / scale + zero_point), info.min, info.max).astype(dtype)


class TFLiteRunner:
    """LiteRT interpreter, its inputs bound by their signature names (`input_ids`, `attention_mask`,
    `image`) and its output by `scores`.

    Artifacts exported before the signature carried those names (still in registries) say `args_0`,
    `args_1`... in the module's argument order and `output_0`: they are bound by that order.
    """

    def __init__(self, path: str | Path, input_names: tuple[str, ...], threads: int = 1):
        from ai_edge_litert.interpreter import Interpreter

        self.input_names = input_names
        self.interpreter = Interpreter(model_path=str(path), num_threads=threads)
        self.interpreter.allocate_tensors()
        self._inputs, self._output = self._named_io() or self._positional_io()

    def _named_io(self) -> tuple[dict, dict] | None:
        """Input and output details by signature name; None when the signature lacks those names."""
        signatures = self.interpreter.get_signature_list()
        if len(signatures) != 1:
            return None
        signature = self.interpreter.get_signature_runner()
        inputs, outputs = signature.get_input_details(), signature.get_output_details()
        if set(inputs) != set(self.input_names) or "scores" not in outputs:
            return None
        return {name: inputs[name] for name in self.input_names}, outputs["scores"]

    def _positional_io(self) -> tuple[dict, dict]:
        details = sorted(self.interpreter.get_input_details(), key=lambda d: _arg_index(d["name"]))
        return dict(zip(self.input_names, details)), self.interpreter.get_output_details()[0]

    @property
    def delegate_partitions(self) -> int:
        """XNNPACK partitions: 1 means the whole graph runs on the fast path."""
        return sum(op["op_name"] == "DELEGATE" for op in self.interpreter._get_ops_details())

    def io_details(self) -> dict:
        """Input and output tensors as the interpreter sees them (names, shapes, dtypes, int8 params)."""
        def describe(d):
            scale, zero_point = d["quantization"]
            return {"tensor": d["name"], "shape": [int(x) for x in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                    **({"quantization": {"scale": float(scale), "zero_point": int(zero_point)}} if scale else {})}

        return {"inputs": {n: describe(d) for n, d in self._inputs.items()}, "outputs": {"scores": describe(self._output)}}

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        for name, detail in self._inputs.items():
            self.interpreter.set_tensor(detail["index"], _quantize(inputs[name], detail["dtype"], detail["quantization"]))
        self.interpreter.invoke()
        out = self.interpreter.get_tensor(self._output["index"])
        scale, zero_point = self._output["quantization"]
        return (out.astype(np.float32) - zero_point) * scale if scale else out.astype(np.float32)


class TasksLayoutRunner:
    """A Tasks-ready .tflite (target `mediapipe`) fed edgemod's own encoder output: the inputs are
    converted to the layout the file records (`edgemod.runtime.tasks_layout`), then LiteRT runs it
    as any other TFLite artifact. This is edgemod's pipeline on that artifact; Tasks' own
    pre-processing is checked separately (`edgemod.runtime.tasks_check`)."""

    def __init__(self, path: str | Path, input_names: tuple[str, ...], threads: int = 1):
        from edgemod.runtime.tasks_layout import read_layout

        self.input_names = input_names
        self.layout = read_layout(path)
        if self.layout is None:
            raise EdgemodError(f"{path} carries no edgemod.tasks_layout metadata: it is not a Tasks-ready export",
                               "re-export it with `target: mediapipe` in the recipe's export list")
        self.tflite = TFLiteRunner(path, tuple(self.layout["inputs"]), threads)

    @property
    def delegate_partitions(self) -> int:
        return self.tflite.delegate_partitions

    def io_details(self) -> dict:
        return {**self.tflite.io_details(), "tasks_layout": self.layout}

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        from edgemod.runtime.tasks_layout import to_tasks_inputs

        return self.tflite(to_tasks_inputs(inputs, self.layout))


def _arg_index(tensor_name: str) -> int:
    digits = tensor_name.rsplit("_", 1)[-1].split(":")[0]
    return int(digits) if digits.isdigit() else 0


# On x86 CPUs without VNNI, onnxruntime's fast int8 kernels (VPMADDUBSW) saturate 16-bit sums of
# u8 x s8 products: a Lite0 weapons int8 model agreed on 60-70 % of decisions instead of 94 %. This
# session option selects kernels without that overflow; it is a no-op on ARM and VNNI CPUs. Apps
# that run the ONNX int8 artifacts on such x86 CPUs must set it too (README, "Export").
ONNX_SESSION_CONFIG = {"session.x64quantprecision": "1"}


class OnnxRunner:
    """onnxruntime on the CPU execution provider, with `ONNX_SESSION_CONFIG` where the graph accepts it."""

    def __init__(self, path: str | Path, input_names: tuple[str, ...], threads: int = 1):
        self.input_names = input_names
        try:
            self.session, self.session_config = _onnx_session(path, threads, ONNX_SESSION_CONFIG), ONNX_SESSION_CONFIG
        except Exception:  # noqa: BLE001 - onnxruntime 1.32 refuses the option on dynamic-int8 graphs
            self.session, self.session_config = _onnx_session(path, threads, {}), {}

    def io_details(self) -> dict:
        """Input and output tensors of the session, and the session options it runs with."""
        def describe(arg):
            return {"tensor": arg.name, "shape": list(arg.shape), "dtype": arg.type}

        return {"inputs": {a.name: describe(a) for a in self.session.get_inputs()},
                "outputs": {a.name: describe(a) for a in self.session.get_outputs()},
                "session_config": dict(self.session_config)}

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        return self.session.run(None, {n: inputs[n] for n in self.input_names})[0].astype(np.float32)


def _onnx_session(path: str | Path, threads: int, config: dict[str, str]):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    for key, value in config.items():
        options.add_session_config_entry(key, value)
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class CoreMLRunner:
    """Core ML predictions exist only on macOS; elsewhere this refuses instead of pretending."""

    def __init__(self, path: str | Path, input_names: tuple[str, ...], threads: int = 1):
        if not coreml_can_predict():
            raise EdgemodError(f"cannot run {path}: Core ML predictions need macOS (this is {platform.system()})",
                               "run the Core ML parity check on a Mac: `edgemod export` does it there automatically")
        import coremltools as ct

        self.input_names = input_names
        self.model = ct.models.MLModel(str(path), compute_units=ct.ComputeUnit.CPU_ONLY)
        # single-label exports are classifiers: probabilities come back as {label: p} under this name
        self.probabilities = self.model.get_spec().description.predictedProbabilitiesName
        self.labels = json.loads(self.model.user_defined_metadata.get("labels", "[]"))

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        out = self.model.predict({n: inputs[n] for n in self.input_names})
        if self.probabilities and self.probabilities in out:
            return np.asarray([[out[self.probabilities][label] for label in self.labels]], dtype=np.float32)
        return np.asarray(out["scores"], dtype=np.float32).reshape(1, -1)


class TorchRunner:
    """A torch module (eager, inference mode) behind the same call signature as the artifacts."""

    def __init__(self, module, input_names: tuple[str, ...], threads: int | None = None):
        self.module, self.input_names, self.threads = module, input_names, threads

    def __call__(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        import torch

        if self.threads:
            torch.set_num_threads(self.threads)
        with torch.inference_mode():
            return self.module(*(torch.from_numpy(inputs[n]) for n in self.input_names)).numpy()


def coreml_can_predict() -> bool:
    """Whether Core ML predictions can run here (macOS only)."""
    return platform.system() == "Darwin"


RUNNERS = {"tflite": TFLiteRunner, "mediapipe": TasksLayoutRunner, "onnx": OnnxRunner, "coreml": CoreMLRunner}


def load_runner(target: str, path: str | Path, input_names: tuple[str, ...], threads: int = 1) -> Runner:
    """The runner of an artifact file for `target` (tflite, mediapipe, onnx or coreml) with `threads` threads.

    Raises:
        MissingDependencyError: the target's runtime package is not installed.
        EdgemodError: an unknown target, or a Core ML artifact off macOS.
    """
    if target not in RUNNERS:
        raise unknown_choice("target", target, RUNNERS)
    try:
        return RUNNERS[target](path, input_names, threads)
    except ImportError as error:
        package = {"tflite": "ai-edge-litert", "mediapipe": "ai-edge-litert", "onnx": "onnxruntime",
                   "coreml": "coremltools"}[target]
        raise MissingDependencyError(package, f"running {target} artifacts") from error


def run_all(runner: Runner, inputs: dict[str, np.ndarray], advance: Callable[[int], None] | None = None) -> np.ndarray:
    """Scores for a whole split, one item at a time (artifacts have batch size 1, like a device).

    `advance(1)`, when given, is called after each item (a progress report)."""
    count = len(next(iter(inputs.values())))
    rows = []
    for i in range(count):
        rows.append(runner({n: a[i:i + 1] for n, a in inputs.items()}))
        if advance is not None:
            advance(1)
    return np.concatenate(rows)
