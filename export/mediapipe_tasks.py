"""Tasks-ready TFLite artifacts (export target `mediapipe`): MediaPipe Tasks' TextClassifier and
ImageClassifier run them with no app-side pre-processing.

The student is wrapped to take Tasks' input layout (`edgemod.runtime.tasks_layout`), converted
with litert-torch (and quantized like any TFLite artifact), and then gets two metadata entries:
`edgemod.tasks_layout` (how edgemod feeds it) and the TFLite/MediaPipe metadata Tasks reads
(labels; the WordPiece vocabulary and the ids/mask/segment_ids tensor names for text; one
normalization mean/std for images). The metadata goes in last: MediaPipe appends the vocabulary
and labels as a zip after the flatbuffer, which any later flatbuffer rewrite would drop.

Why the BERT path (not the regex tokenizer): a WordPiece student keeps sub-word pieces of
misspelled and obfuscated words, where a word-level regex vocabulary maps them all to <UNKNOWN>.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from edgemod.fsutil import atomic_path
from edgemod.runtime.tasks_layout import (
    LAYOUT_METADATA,
    TASKS_IMAGE_MEAN,
    TASKS_IMAGE_STD,
    TASKS_TEXT_INPUTS,
    TASKS_TEXT_METADATA_NAMES,
    image_layout,
    text_layout,
    to_tasks_inputs,
)


def tasks_layout(student) -> dict:
    if student.is_text:
        return text_layout()
    preprocess = json.loads((student.run_dir / "preprocess.json").read_text())
    return image_layout(preprocess["mean"], preprocess["std"])


def tasks_module(student, layout: dict):
    """The student behind Tasks' inputs, scores out (positional, in `layout["inputs"]` order)."""
    import torch

    model = student.module

    class TextTasks(torch.nn.Module):
        def forward(self, input_ids, attention_mask, token_type_ids):
            # One text has one segment: the ids carry nothing, but Tasks' BERT path needs the
            # input, and a graph that ignores it would lose it in conversion.
            return model(input_ids, attention_mask) + 0.0 * token_type_ids[:, :1].float()

    class ImageTasks(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(layout["folded_mean"]).reshape(1, 3, 1, 1))
            self.register_buffer("std", torch.tensor(layout["folded_std"]).reshape(1, 3, 1, 1))

        def forward(self, image):
            return model((image.permute(0, 3, 1, 2) - self.mean) / self.std)

    return (TextTasks() if layout["task"] == "text" else ImageTasks()).eval()


def tasks_inputs(inputs: dict[str, np.ndarray], layout: dict) -> dict[str, np.ndarray]:
    return to_tasks_inputs(inputs, layout)


def add_layout_entry(path: Path, layout: dict) -> None:
    """Store `layout` as the flatbuffer metadata entry `edgemod.tasks_layout` (before Tasks metadata)."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    raw = path.read_bytes()
    model = schema.ModelT.InitFromPackedBuf(bytearray(raw), 0)
    for buffer in model.buffers:  # constants stored after the flatbuffer move inside it
        if buffer.offset > 1:
            buffer.data, buffer.offset, buffer.size = raw[buffer.offset:buffer.offset + buffer.size], 0, 0
    entry_buffer = schema.BufferT()
    entry_buffer.data = list(json.dumps(layout, sort_keys=True).encode())
    model.buffers.append(entry_buffer)
    entry = schema.MetadataT()
    entry.name, entry.buffer = LAYOUT_METADATA, len(model.buffers) - 1
    model.metadata = [m for m in (model.metadata or []) if (m.name.decode() if isinstance(m.name, bytes) else m.name)
                      != LAYOUT_METADATA] + [entry]
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    with atomic_path(path) as tmp:
        tmp.write_bytes(builder.Output())


def add_tasks_metadata(path: Path, student, layout: dict) -> dict:
    """Write the TFLite metadata MediaPipe Tasks reads into `path` (atomically); returns a summary."""
    from edgemod.optional import mediapipe_metadata_writers

    writers = mediapipe_metadata_writers()
    labels = writers.metadata_writer.Labels().add(list(student.labels))
    model = bytearray(path.read_bytes())
    if layout["task"] == "text":
        vocab = student.run_dir / "tokenizer" / "vocab.txt"
        writer = writers.text_classifier.MetadataWriter.create_for_bert_model(
            model, writers.metadata_writer.BertTokenizer(str(vocab)), labels,
            ids_name=TASKS_TEXT_INPUTS[0], mask_name=TASKS_TEXT_INPUTS[1], segment_name=TASKS_TEXT_INPUTS[2])
        summary = {"tokenizer": "BertTokenizer (WordPiece)", "vocab_file": "vocab.txt",
                   "tensor_metadata_names": TASKS_TEXT_METADATA_NAMES}
    else:
        writer = writers.image_classifier.MetadataWriter.create(
            model, input_norm_mean=[TASKS_IMAGE_MEAN], input_norm_std=[TASKS_IMAGE_STD], labels=labels)
        summary = {"normalization": {"mean": [TASKS_IMAGE_MEAN], "std": [TASKS_IMAGE_STD]},
                   "folded_into_graph": {"mean": layout["folded_mean"], "std": layout["folded_std"]}}
    annotated, _ = writer.populate()
    del writer  # its temp folder goes now, not at interpreter exit (where its cleanup raises)
    with atomic_path(path) as tmp:
        tmp.write_bytes(annotated)
    return {"mediapipe_metadata": {**summary, "labels_file": "labels.txt", "task": layout["task"]}}
