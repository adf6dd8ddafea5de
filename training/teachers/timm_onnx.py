"""Score a `timm` teacher through an fp32 ONNX Runtime export of itself.

On a CPU torch eager runs EfficientNet's depthwise convolutions slowly; ONNX Runtime runs the same
float graph several times faster. The export is cached beside the label cache, keyed on the
checkpoint's sha256 and the input size, and the label stage checks it against torch on validation
frames before scoring anything with it (`check_engine`): decisions must be identical and scores
within `MAX_SCORE_DELTA`, otherwise the run stops and names the fix.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import atomic_path

OPSET = 18
MAX_SCORE_DELTA = 1e-3  # fp32 reassociation moves scores by ~1e-6; more means a wrong graph
INPUT_NAME, OUTPUT_NAME = "pixels", "logits"


def teacher_onnx_path(cache_dir: Path, weights_sha256: str, image_size: int) -> Path:
    return Path(cache_dir) / "teacher-onnx" / f"{weights_sha256[:16]}-{image_size}px.onnx"


def export_teacher_onnx(model, image_size: int, out: Path) -> Path:
    """The model (normalised pixels [n, 3, S, S] -> logits) as fp32 ONNX with a dynamic batch."""
    if out.is_file():
        return out
    try:
        import onnx  # noqa: F401  (the exporter needs it)
        import torch
    except ImportError:
        raise MissingDependencyError("onnx", "scoring a timm teacher with engine: onnxruntime") from None
    out.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.zeros(2, 3, image_size, image_size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with atomic_path(out) as tmp:
        try:
            torch.onnx.export(model.eval(), (sample,), str(tmp), dynamo=True, external_data=False,
                              opset_version=OPSET, input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                              dynamic_shapes=({0: batch},), verbose=False)
        except Exception as error:
            raise EdgemodError(f"could not export the teacher to ONNX for scoring: {error}",
                               "score it with torch instead: set the teacher's options.engine: torch") from error
    return out


class OrtScorer:
    """An ONNX Runtime session over the exported teacher: numpy pixels in, logits out."""

    def __init__(self, path: Path, threads: int | None):
        from edgemod.training.teachers.common import cpu_session

        self.session = cpu_session(path, threads, "scoring a timm teacher with engine: onnxruntime")

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {INPUT_NAME: np.ascontiguousarray(pixels, dtype=np.float32)})[0]


def compare_engines(teacher, items, limit: int) -> dict:
    """Score up to `limit` items with torch and with ONNX Runtime; the agreement and views/s of each.

    Raises when a decision differs or a score moves by more than MAX_SCORE_DELTA, so a broken
    export never writes a label."""
    items = list(items)[:limit]
    if not items:
        raise EdgemodError("no validation frames to check the ONNX Runtime teacher against torch on",
                           "give the recipe a validation split, or set the teacher's options.engine: torch")
    pixels = teacher.load_batch(items)
    scores, seconds = {}, {}
    for engine in ("torch", "onnxruntime"):
        teacher.score_pixels(pixels[:2], engine)  # warm-up: the export and session set-up are not scoring time
        started = time.perf_counter()
        scores[engine] = np.concatenate([teacher.score_pixels(pixels[i:i + teacher.batch_size], engine)
                                         for i in range(0, len(items), teacher.batch_size)])
        seconds[engine] = time.perf_counter() - started
    delta = float(np.abs(scores["torch"] - scores["onnxruntime"]).max())
    identical = bool((scores["torch"].argmax(1) == scores["onnxruntime"].argmax(1)).all())
    views = len(items) * (2 if teacher.options.tta_hflip else 1)
    report = {"items": len(items), "views": views, "max_abs_score_delta": delta, "decisions_identical": identical,
              "views_per_s": {e: round(views / max(s, 1e-9), 2) for e, s in seconds.items()}}
    if not identical or delta > MAX_SCORE_DELTA:
        raise EdgemodError(
            f"the teacher's ONNX Runtime export disagrees with torch on {len(items)} validation frames "
            f"(max |Δscore| {delta:.2e}, decisions identical: {identical})",
            "score with torch instead: set the teacher's options.engine: torch, and report the model")
    return report
