"""The `timm` teacher: an image classifier saved as an edgemod image checkpoint.

`path` is a folder written by `training.vision.checkpoint.save_image_checkpoint` (what
`edgemod teacher train` produces); labels and pre-processing come from its `config.json`, so the
teacher scores images exactly as the model was trained. Items carry the image file in `path`.

```yaml
teachers:
  - kind: timm
    path: runs/weapons-teacher/checkpoint
    options: {batch_size: 32, threads: 2, tta_hflip: true, engine: onnxruntime}
```

`engine: onnxruntime` scores through an fp32 ONNX export of the checkpoint (`timm_onnx`), checked
against torch on validation frames before any label is written.
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher
from edgemod.training.teachers.common import (
    batches,
    check_width,
    checked_probabilities,
    identity_string,
    parse_options,
    require_path,
)


class TimmOptions(BaseModel):
    """Options of the `timm` teacher (`teachers[].options`)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(32, ge=1)
    threads: int | None = Field(None, ge=1, description="torch CPU threads while scoring (default: torch's)")
    image_size: int | None = Field(None, ge=8, description="score at this square size instead of the checkpoint's")
    multi_label: bool = Field(False, description="independent sigmoid scores instead of one softmax")
    tta_hflip: bool = Field(False, description="average the scores with those of the mirrored image")
    engine: Literal["torch", "onnxruntime"] = Field(
        "torch", description="onnxruntime: score an fp32 ONNX export (checked against torch first); "
                             "several times faster than torch eager on a CPU")
    engine_check_items: int = Field(96, ge=8, description="validation frames scored by both engines first")


class TimmTeacher:
    """Scores image files with a checkpointed timm model (CUDA when available, else CPU)."""

    scores_views = True  # items may carry an augmented view (`training.vision.views`)

    def __init__(self, folder: Path, options: TimmOptions, cache_dir: Path | None = None):
        import torch

        from edgemod.runtime.image import PreprocessConfig, eval_transform
        from edgemod.training.students.vision import count_parameters
        from edgemod.training.vision.checkpoint import WEIGHTS, load_image_checkpoint

        self.folder = folder
        self.options = options
        self.batch_size = options.batch_size
        self.multi_label = options.multi_label
        model, self.config = load_image_checkpoint(folder)
        self.labels = list(self.config["labels"])
        self.preprocess = _resized(PreprocessConfig.from_dict(self.config["preprocess"]), options.image_size)
        self.transform = eval_transform(self.preprocess)
        self.device = "cuda" if torch.cuda.is_available() else "cpu"
        self.model = model.to(self.device).eval()
        self.parameters = int(count_parameters(self.model))
        self.pretrained = self.config.get("extra", {}).get("pretrained")  # backbone provenance, if any
        self._weights = folder / WEIGHTS
        self._cache_dir = Path(cache_dir or folder)

    def identity(self) -> str:
        return identity_string(
            kind="timm", weights_sha256=self._weights_sha256, arch=self.config["arch"], labels=self.labels,
            preprocess=self.preprocess.to_dict(), multi_label=self.multi_label, tta_hflip=self.options.tta_hflip,
            # torch scores keep the identity they always had, so existing label caches stay valid
            **({"engine": self.options.engine} if self.options.engine != "torch" else {}),
        )

    @cached_property
    def _weights_sha256(self) -> str:
        return sha256_file(self._weights)

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        parts = []
        with _torch_threads(self.options.threads):
            for batch in batches(items, self.batch_size):
                parts.append(self._score(self.load_batch(batch)))
        if not parts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return check_width(np.concatenate(parts), self.labels, f"timm checkpoint {self.folder}")

    def load_batch(self, items: Sequence[Item]):
        """The pre-processed float tensor [n, 3, H, W] for these items' image files."""
        import torch

        from edgemod.runtime.image import load_image

        background = tuple(self.preprocess.alpha_background)

        def prepare(item: Item):
            if item.view:  # an augmented view, rendered exactly as the student will see it
                return self._view_transform(json.loads(item.view), str(image_path(item)))
            return self.transform(load_image(image_path(item), background))

        # PIL releases the GIL while decoding and resizing, so threads overlap the file work.
        workers = min(len(items), self.options.threads or 2)
        if workers <= 1:
            return torch.stack([prepare(item) for item in items])
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return torch.stack(list(pool.map(prepare, items)))

    def _score(self, pixels) -> np.ndarray:
        return self.score_pixels(pixels, self.options.engine)

    def score_pixels(self, pixels, engine: str) -> np.ndarray:
        """Probabilities for a pre-processed batch, flip TTA included, on `engine`."""
        import torch

        with torch.inference_mode():
            logits = self._logits(pixels, engine)
            probs = self._activate(logits)
            if self.options.tta_hflip:
                # Average probabilities (not logits) so each view counts as one calibrated vote.
                probs = (probs + self._activate(self._logits(pixels.flip(-1), engine))) / 2
        return checked_probabilities(probs.cpu().numpy())

    def _logits(self, pixels, engine: str):
        import torch

        if engine == "onnxruntime":
            return torch.from_numpy(self._ort(pixels.cpu().numpy()))
        return self.model(pixels.to(self.device))

    def check_engine(self, items: Sequence[Item]) -> dict | None:
        """Before labelling with ONNX Runtime: its agreement with torch and the views/s of both."""
        if self.options.engine == "torch":
            return None
        from edgemod.training.teachers.timm_onnx import compare_engines

        with _torch_threads(self.options.threads):
            return {"engine": self.options.engine, **compare_engines(self, items, self.options.engine_check_items)}

    @cached_property
    def _view_transform(self):
        from edgemod.training.vision.views import view_transform

        return view_transform(self.preprocess)

    @cached_property
    def _ort(self):
        from edgemod.training.teachers.timm_onnx import OrtScorer, export_teacher_onnx, teacher_onnx_path

        size = self.preprocess.image_size
        path = export_teacher_onnx(self.model, size, teacher_onnx_path(self._cache_dir, self._weights_sha256, size))
        return OrtScorer(path, self.options.threads)

    def _activate(self, logits):
        logits = logits.float()
        return logits.sigmoid() if self.multi_label else logits.softmax(dim=-1)


def image_path(item: Item) -> Path:
    """The existing image file of an item, or an error naming the item and the path."""
    # `Item.path` is new; older callers put the image path in `text`.
    raw = getattr(item, "path", None) or item.text
    if not raw:
        raise EdgemodError(f"item '{item.key}' has no image path",
                           "image teachers need items whose `path` names an image file")
    path = Path(raw).expanduser()
    if not path.is_file():
        raise EdgemodError(f"image for item '{item.key}' not found: {path}",
                           "check that the file exists and that the dataset's image root is right "
                           "(paths are relative to the working directory)")
    return path


def _resized(cfg, image_size: int | None):
    """`cfg` at another square input size (crop_pct, mean, std kept)."""
    if not image_size or image_size == cfg.image_size:
        return cfg
    return type(cfg).model_validate({**cfg.model_dump(), "input_size": (3, image_size, image_size)})


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """Use `threads` CPU threads inside the block only, so other users of torch are unaffected."""
    import torch

    if not threads:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@register_teacher("timm")
def build_timm_teacher(spec: TeacherSpec, context: TeacherContext) -> TimmTeacher:
    options = parse_options(TimmOptions, spec)
    folder = require_path(spec.path, "timm teacher checkpoint",
                          "set path: to a folder written by `edgemod teacher train` "
                          "(it holds model.safetensors and config.json, or folds.json with `--folds`)")
    from edgemod.training.teachers.folds import FoldedTimmTeacher, is_folded

    if is_folded(folder):  # out-of-fold members: each train image scored by the one that never saw it
        return FoldedTimmTeacher(folder, lambda member: TimmTeacher(member, options, context.cache_dir), options)
    return TimmTeacher(folder, options, context.cache_dir)
