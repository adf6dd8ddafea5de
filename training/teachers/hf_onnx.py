"""Score an `hf` teacher through an ONNX Runtime export of itself, fp32 or int8.

A 12-layer encoder such as MPNet-base labels HateXplain's 79k train, transfer and counterfactual
texts in about 45 minutes on two cores in torch eager; ONNX Runtime runs the same graph faster, and
its dynamic int8 quantisation (int8 weights, activations quantised per batch) faster again on CPUs
with int8 dot products. The export is cached beside the label cache, keyed on the checkpoint's
sha256, and the label stage checks it against torch on the validation texts before scoring anything
with it (`compare_engines`): an fp32 export must give identical decisions and scores within
`MAX_FP32_DELTA`; an int8 one must agree on at least `min_agreement` of the decisions. Otherwise the
run stops and names the fix. Measured on the HateXplain MPNet teacher (384 validation texts): every
MatMul int8 agreed with torch on 90.9 % of decisions (max |Δscore| 0.53); keeping the FFN output
projections (`/output/dense/`, which read GELU outputs with outlier activations) float, 97.1 %
(0.23), at 1.6x fp32 ONNX Runtime's speed instead of 2.7x.
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
import time
import warnings
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import atomic_path

OPSET = 17
MAX_FP32_DELTA = 1e-3  # fp32 reassociation moves scores by ~1e-6; more means a wrong graph
INPUTS = ("input_ids", "attention_mask")


def onnx_path(cache_dir: Path, weights_sha256: str, max_length: int, engine: str, float_patterns=()) -> Path:
    suffix = "fp32"
    if engine.endswith("int8"):
        suffix = "int8" + (f"-{hashlib.sha256(repr(sorted(float_patterns)).encode()).hexdigest()[:8]}"
                           if float_patterns else "")
    return Path(cache_dir) / "teacher-onnx" / f"hf-{weights_sha256[:16]}-len{max_length}-{suffix}.onnx"


def export_onnx(model, out: Path) -> Path:
    """The classifier (token ids and mask [batch, length] -> logits) as fp32 ONNX, batch and length dynamic."""
    if out.is_file():
        return out
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import torch
    except ImportError:
        raise MissingDependencyError("onnx", "scoring an hf teacher with engine: onnxruntime") from None

    class Logits(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask):
            return self.inner(input_ids=input_ids, attention_mask=attention_mask).logits

    out.parent.mkdir(parents=True, exist_ok=True)
    sample = (torch.ones(2, 16, dtype=torch.long), torch.ones(2, 16, dtype=torch.long))
    axes = {name: {0: "batch", 1: "length"} for name in INPUTS}
    with atomic_path(out) as tmp, _quiet():
        try:
            torch.onnx.export(Logits(model.eval()).cpu(), sample, str(tmp), dynamo=False, opset_version=OPSET,
                              input_names=list(INPUTS), output_names=["logits"],
                              dynamic_axes={**axes, "logits": {0: "batch"}})
        except Exception as error:
            raise EdgemodError(f"could not export the teacher to ONNX for scoring: {error}",
                               "score it with torch instead: set the teacher's options.engine: torch") from error
    return out


def quantize_int8(fp32: Path, out: Path, float_patterns: list[str]) -> Path:
    """Dynamic int8: per-channel int8 weights of every MatMul, activations quantised per batch, except
    the MatMuls whose node name holds one of `float_patterns`."""
    if out.is_file():
        return out
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(fp32), load_external_data=False).graph
    kept = [node.name for node in graph.node
            if node.op_type == "MatMul" and any(pattern in node.name for pattern in float_patterns)]
    with atomic_path(out) as tmp, _quiet():
        quantize_dynamic(str(fp32), str(tmp), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul"], nodes_to_exclude=kept,
                         extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT})
    return out


@contextlib.contextmanager
def _quiet():
    """The tracer's and quantizer's advice (TracerWarning, "consider pre-processing") is not for our
    users: the check against torch is what says whether the export is right."""
    from edgemod.quiet import quiet_converters

    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        with quiet_converters(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        root.setLevel(level)


class OrtTextScorer:
    """An ONNX Runtime session over the exported teacher: numpy token ids and mask in, logits out."""

    def __init__(self, path: Path, threads: int | None):
        from edgemod.training.teachers.common import cpu_session

        self.session = cpu_session(path, threads, "scoring an hf teacher with engine: onnxruntime")

    def __call__(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": input_ids.astype(np.int64), "attention_mask": attention_mask.astype(np.int64)}
        return self.session.run(None, feeds)[0]


def compare_engines(teacher, items, limit: int, min_agreement: float) -> dict:
    """Score up to `limit` items with torch and with the teacher's ONNX engine; their agreement and
    texts/s. Raises when the export disagrees beyond its budget, so a broken export never writes a label."""
    items = list(items)[:limit]
    if not items:
        raise EdgemodError("no validation texts to check the ONNX Runtime teacher against torch on",
                           "give the recipe a validation split, or set the teacher's options.engine: torch")
    engine = teacher.engine
    scores, seconds = {}, {}
    for name in ("torch", engine):
        teacher.score(items[:2], name)  # warm-up: the export and session set-up are not scoring time
        started = time.perf_counter()
        scores[name] = teacher.score(items, name)
        seconds[name] = time.perf_counter() - started
    delta = float(np.abs(scores["torch"] - scores[engine]).max())
    agreement = float((scores["torch"].argmax(1) == scores[engine].argmax(1)).mean())
    report = {"items": len(items), "views": len(items), "max_abs_score_delta": delta,
              "decisions_identical": agreement == 1.0, "decision_agreement": round(agreement, 5),
              "views_per_s": {e: round(len(items) / max(s, 1e-9), 2) for e, s in seconds.items()}}
    fp32 = not engine.endswith("int8")
    if (fp32 and (agreement < 1.0 or delta > MAX_FP32_DELTA)) or (not fp32 and agreement < min_agreement):
        budget = f"identical decisions, |Δscore| ≤ {MAX_FP32_DELTA}" if fp32 else f"agreement ≥ {min_agreement}"
        raise EdgemodError(
            f"the teacher's {engine} export disagrees with torch on {len(items)} validation texts "
            f"(decision agreement {agreement:.4f}, max |Δscore| {delta:.2e}; budget: {budget})",
            "score with torch or fp32 onnxruntime instead: set the teacher's options.engine")
    return report
