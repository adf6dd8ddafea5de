"""The input layout MediaPipe Tasks feeds a model, and the conversion from edgemod's own layout.

Tasks runs its own pre-processing on the phone, so a Tasks-ready artifact (export target
`mediapipe`) takes what Tasks builds:

- text (BERT path): three int32 [1, L] tensors whose metadata names are `ids`, `mask` and
  `segment_ids`; the tensors themselves are named `input_ids`, `attention_mask` and
  `token_type_ids`. Segment ids are all zero for one text.
- images: one float32 NHWC [1, H, W, 3] tensor `image` with values in [0, 1] (Tasks applies the
  metadata's single mean 0 and std 255); the student's per-channel mean/std is folded into the
  graph, because Tasks refuses per-channel normalization.

The artifact records that layout in a flatbuffer metadata entry named `edgemod.tasks_layout`
(JSON), so a runner can feed it edgemod's own encoder output without any other file.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

LAYOUT_METADATA = "edgemod.tasks_layout"
TASKS_TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
TASKS_TEXT_METADATA_NAMES = {"input_ids": "ids", "attention_mask": "mask", "token_type_ids": "segment_ids"}
TASKS_IMAGE_INPUTS = ("image",)
# Tasks maps 8-bit pixels p to (p - mean) / std with one mean and one std for all channels.
TASKS_IMAGE_MEAN, TASKS_IMAGE_STD = 0.0, 255.0


def text_layout() -> dict:
    return {"task": "text", "inputs": list(TASKS_TEXT_INPUTS)}


def image_layout(mean: list[float], std: list[float]) -> dict:
    return {"task": "image", "inputs": list(TASKS_IMAGE_INPUTS), "layout": "NHWC", "value_range": [0.0, 1.0],
            "folded_mean": [float(m) for m in mean], "folded_std": [float(s) for s in std]}


def to_tasks_inputs(inputs: dict[str, np.ndarray], layout: dict) -> dict[str, np.ndarray]:
    """edgemod encoder output -> the tensors Tasks feeds the model (same batch size).

    Text: `input_ids` and `attention_mask` as they are, `token_type_ids` zeros. Images: the
    normalised NCHW `image` back to [0, 1] (x * std + mean per channel) and to NHWC.
    """
    if layout["task"] == "text":
        ids = inputs["input_ids"]
        return {"input_ids": ids, "attention_mask": inputs["attention_mask"], "token_type_ids": np.zeros_like(ids)}
    mean = np.asarray(layout["folded_mean"], np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(layout["folded_std"], np.float32).reshape(1, 3, 1, 1)
    unit = inputs["image"] * std + mean
    return {"image": np.ascontiguousarray(unit.transpose(0, 2, 3, 1), dtype=np.float32)}


def read_layout(path: str | Path) -> dict | None:
    """The `edgemod.tasks_layout` entry of a .tflite file, or None when it has none."""
    from ai_edge_litert import schema_py_generated as schema

    raw = Path(path).read_bytes()
    model = schema.Model.GetRootAs(raw, 0)
    for i in range(model.MetadataLength()):
        entry = model.Metadata(i)
        if entry.Name().decode() == LAYOUT_METADATA:
            return json.loads(model.Buffers(entry.Buffer()).DataAsNumpy().tobytes().decode())
    return None
