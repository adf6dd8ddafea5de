"""MediaPipe Tasks in Python on raw payloads: the exact path an app takes with a Tasks-ready
artifact (Tasks' own tokenizer, or its own image decoding, resizing and normalization).

`TasksClassifier(path, task, labels)` turns a raw text or an image file into scores in label
order; `tasks_scores` does a whole split. Images are given to Tasks with the region of interest
edgemod's eval pipeline crops (`center_crop_roi`), as an app passes it in ImageProcessingOptions.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError, MissingDependencyError


def center_crop_roi(width: int, height: int, crop_pct: float) -> tuple[float, float, float, float]:
    """(left, top, right, bottom), normalized: the square edgemod's eval transform keeps
    (resize the shorter side to H / crop_pct, center-crop H x H) in the original frame's coordinates."""
    side = min(width, height) * crop_pct
    left, top = (width - side) / 2 / width, (height - side) / 2 / height
    return left, top, 1 - left, 1 - top


class TasksClassifier:
    """A MediaPipe Tasks TextClassifier or ImageClassifier over one Tasks-ready .tflite."""

    def __init__(self, path: str | Path, task: str, labels: Sequence[str], crop_pct: float | None = None):
        from edgemod.optional import triton_before_tensorflow

        triton_before_tensorflow()
        try:
            from mediapipe.tasks.python import text, vision
            from mediapipe.tasks.python.core.base_options import BaseOptions
        except ImportError:
            raise MissingDependencyError("mediapipe==1.2.3", "the MediaPipe Tasks check") from None
        self.task, self.labels, self.crop_pct = task, list(labels), crop_pct
        base = BaseOptions(model_asset_path=str(path))
        try:
            if task == "text":
                self._classifier = text.TextClassifier.create_from_options(
                    text.TextClassifierOptions(base_options=base, max_results=-1))
            else:
                self._classifier = vision.ImageClassifier.create_from_options(
                    vision.ImageClassifierOptions(base_options=base, max_results=-1))
        except (RuntimeError, ValueError) as error:
            raise EdgemodError(f"MediaPipe Tasks cannot load {path}: {error}",
                               "export it with `target: mediapipe` (it writes the metadata Tasks needs)") from error

    def __call__(self, payload: str) -> np.ndarray:
        """Scores [C] in label order for one raw text or image path."""
        if self.task == "text":
            result = self._classifier.classify(payload)
        else:
            result = self._classify_image(payload)
        scores = np.zeros(len(self.labels), dtype=np.float32)
        for category in result.classifications[0].categories:
            scores[category.index] = category.score
        return scores

    def _classify_image(self, path: str):
        import mediapipe as mp
        from mediapipe.tasks.python.components.containers.rect import RectF
        from mediapipe.tasks.python.vision.core.image_processing_options import ImageProcessingOptions

        image = mp.Image.create_from_file(str(path))
        options = None
        if self.crop_pct:
            left, top, right, bottom = center_crop_roi(image.width, image.height, self.crop_pct)
            options = ImageProcessingOptions(region_of_interest=RectF(left=left, top=top, right=right, bottom=bottom))
        return self._classifier.classify(image, options)

    def close(self) -> None:
        self._classifier.close()


def tasks_scores(path: str | Path, task: str, labels: Sequence[str], payloads: Sequence[str],
                 crop_pct: float | None = None, progress=None) -> np.ndarray:
    """Scores [N, C] of MediaPipe Tasks on raw payloads; `progress(i)` is called after each."""
    classifier = TasksClassifier(path, task, labels, crop_pct)
    try:
        rows = []
        for i, payload in enumerate(payloads):
            rows.append(classifier(payload))
            if progress is not None:
                progress(i)
        return np.stack(rows) if rows else np.zeros((0, len(labels)), np.float32)
    finally:
        classifier.close()
