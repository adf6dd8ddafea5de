"""The one way from a raw payload (a text, or the path of an image file) to a model's inputs.

It is built only from the files a phone has beside the model: `student.json` (which inputs, and
their shapes), `tokenizer/` for text and `preprocess.json` for images; an export folder and a
train run both hold them. Export (tracing samples, parity, golden inputs), bench and the mobile
harness all encode through `load_encoder`, so the inputs a model was checked on are the inputs a
device builds: the same text length, the same alpha background under transparent pixels.

Two steps, so a stream can do the "file" half once, as a camera hands over decoded frames:
`prepare(payload)` (a text as is; an image decoded to RGB) and `encode_prepared(prepared)` (the
batch-1 inputs). `encode(payloads)` is the batch form: its row i equals
`encode_prepared(prepare(payloads[i]))`, bit for bit.

    >>> encoder = load_encoder("runs/r1/export")
    >>> encoder.encode(["free money, click now"])["input_ids"].shape
    (1, 64)
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.runtime.image import PreprocessConfig, eval_transform, load_image
from edgemod.runtime.tokenizer import WordPieceTokenizer

TEXT_INPUTS = ("input_ids", "attention_mask")
IMAGE_INPUTS = ("image",)
STUDENT_FILE = "student.json"


class Encoder(Protocol):
    """Payloads -> model inputs (batch-first numpy arrays keyed by input name)."""

    input_names: tuple[str, ...]

    def prepare(self, payload: str) -> Any: ...

    def encode_prepared(self, prepared: Any) -> dict[str, np.ndarray]: ...

    def encode(self, payloads: Sequence[str]) -> dict[str, np.ndarray]: ...


@dataclass
class TextEncoder:
    """Normalizer + WordPiece, padded or truncated to the model's input length; int32 ids and mask."""

    tokenizer: WordPieceTokenizer
    max_length: int
    input_names: ClassVar[tuple[str, ...]] = TEXT_INPUTS

    def prepare(self, payload: str) -> str:
        """A chat client already has the string: nothing to do before encoding."""
        return payload

    def encode_prepared(self, prepared: str) -> dict[str, np.ndarray]:
        """Batch-1 inputs of one text."""
        return self.encode([prepared])

    def encode(self, payloads: Sequence[str]) -> dict[str, np.ndarray]:
        """`input_ids` and `attention_mask`, each int32 [len(payloads), max_length]."""
        ids, mask = self.tokenizer.encode(list(payloads), max_length=self.max_length)
        return {"input_ids": ids, "attention_mask": mask}


@dataclass
class ImageEncoder:
    """Decode (EXIF orientation, alpha over the configured background), resize, crop, normalise."""

    config: PreprocessConfig
    transform: Any = field(init=False, repr=False)
    input_names: ClassVar[tuple[str, ...]] = IMAGE_INPUTS

    def __post_init__(self) -> None:
        self.transform = eval_transform(self.config)

    def prepare(self, payload: str):
        """The decoded 8-bit RGB frame of an image file."""
        return load_image(payload, background=tuple(self.config.alpha_background))

    def encode_prepared(self, prepared) -> dict[str, np.ndarray]:
        """Batch-1 float32 `image` [1, 3, H, W] of one decoded frame."""
        return {"image": self._tensor(prepared)[None]}

    def encode(self, payloads: Sequence[str]) -> dict[str, np.ndarray]:
        """float32 `image` [len(payloads), 3, H, W] of image files."""
        if not payloads:
            return {"image": np.zeros((0, *self.config.input_size), dtype=np.float32)}
        return {"image": np.stack([self._tensor(self.prepare(p)) for p in payloads])}

    def _tensor(self, image) -> np.ndarray:
        return self.transform(image).numpy().astype(np.float32, copy=False)


def load_encoder(folder: str | Path) -> TextEncoder | ImageEncoder:
    """The encoder a model's folder describes (an export folder, or the train run it came from).

    Raises:
        EdgemodError: `student.json`, the tokenizer folder or `preprocess.json` is missing or
            describes no known input.
    """
    folder = Path(folder)
    inputs = _read_json(folder / STUDENT_FILE).get("inputs", {})
    if "input_ids" in inputs:
        # The model's own input length, not the tokenizer's default: that is what the model takes.
        length = int(inputs["input_ids"]["shape"][-1])
        return TextEncoder(WordPieceTokenizer.load(folder / inputs.get("tokenizer", "tokenizer")), length)
    if "image" in inputs:
        config = PreprocessConfig.from_dict(_read_json(folder / inputs.get("preprocess", "preprocess.json")))
        return ImageEncoder(config)
    raise EdgemodError(f"{folder / STUDENT_FILE} declares neither text (input_ids) nor image inputs",
                       f"re-run `edgemod train` or `edgemod export`: they write {STUDENT_FILE}")


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise EdgemodError(f"{path} is missing: the folder is not what `edgemod train` or `edgemod export` wrote",
                           f"re-run the stage into {path.parent}, or copy the whole folder")
    return json.loads(path.read_text(encoding="utf-8"))
