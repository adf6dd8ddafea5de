"""Text pre-processing that travels with a student: normalizer spec + WordPiece tokenizer + length."""
from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgemod.fsutil import write_json_atomic


@dataclass
class TextPipeline:
    normalizer: object
    tokenizer: object
    max_length: int

    @classmethod
    def fit(cls, texts: list[str], normalizer_name: str, vocab_size: int, max_length: int) -> "TextPipeline":
        from training.text.normalizer import load_normalizer
        from training.text.tokenizer import train_wordpiece

        normalizer = load_normalizer(normalizer_name)
        tokenizer = train_wordpiece(normalizer.batch(texts), vocab_size=vocab_size, normalizer=normalizer)
        return cls(normalizer, tokenizer, max_length)

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """int32 token ids and attention mask, each [n, max_length]."""
        return self.tokenizer.encode(self.normalizer.batch(list(texts)), self.max_length)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.vocab_size

    def save(self, folder: Path) -> None:
        folder = Path(folder)
        self.tokenizer.save(folder / "tokenizer")
        write_json_atomic(folder / "normalizer.json", self.normalizer.spec)
        write_json_atomic(folder / "text_pipeline.json", {"max_length": self.max_length,
                                                           "normalizer": "normalizer.json",
                                                           "tokenizer": "tokenizer"})

    @classmethod
    def load(cls, folder: Path) -> "TextPipeline":
        from training.text.normalizer import TextNormalizer
        from training.text.tokenizer import WordPieceTokenizer

        folder = Path(folder)
        config = json.loads((folder / "text_pipeline.json").read_text())
        normalizer = TextNormalizer.from_spec(folder / config["normalizer"])
        return cls(normalizer, WordPieceTokenizer.load(folder / config["tokenizer"]), config["max_length"])


def copy_pipeline(source: Path, target: Path) -> None:
    for name in ("tokenizer", "normalizer.json", "text_pipeline.json"):
        src = Path(source) / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, Path(target) / name)
