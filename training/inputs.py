"""What a student eats, per task: text (normalizer + WordPiece ids) or images (timm-style
pre-processing + augmentation). The trainer only sees datasets of `(inputs..., soft, gold)`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgemod.fsutil import write_json_atomic
from edgemod.recipe import Recipe


@dataclass
class Split:
    """One split's model inputs (arrays for text, image paths for images) with its targets."""

    inputs: Any
    soft: np.ndarray
    gold: np.ndarray
    keys: list[str]


class StudentInputs(Protocol):
    def train_dataset(self, split: Split): ...
    def eval_dataset(self, split: Split): ...
    def build_model(self, recipe: Recipe): ...
    def save(self, out: Path) -> list[str]: ...
    def input_spec(self, recipe: Recipe) -> dict: ...


def _tensor_dataset(*arrays):
    import torch
    from torch.utils.data import TensorDataset

    return TensorDataset(*(torch.from_numpy(np.ascontiguousarray(a)) for a in arrays))


class TextInputs:
    """Tokenizer fitted on train + transfer text; every item encoded once up front."""

    payload = "text"
    bad_rows: list[int] = []

    def __init__(self, recipe: Recipe, table):
        from edgemod.training.text.tokenizer import train_wordpiece

        corpus = table[table["role"].isin(("train", "transfer"))]["text"].tolist()
        self.tokenizer = train_wordpiece(corpus, vocab_size=recipe.student.vocab_size,
                                         normalizer=recipe.student.normalizer, max_length=recipe.student.max_length)
        self.encoded = self.tokenizer.encode(table["text"].tolist())

    def inputs_for(self, rows: np.ndarray):
        return tuple(a[rows] for a in self.encoded)

    def train_dataset(self, split: Split):
        return _tensor_dataset(*split.inputs, split.soft, split.gold)

    eval_dataset = train_dataset

    def build_model(self, recipe: Recipe):
        from edgemod.training.students import build_student

        model = build_student(recipe.student.arch, len(recipe.labels), vocab_size=self.tokenizer.vocab_size,
                              max_length=recipe.student.max_length, **recipe.student.options)
        if recipe.student.init_embeddings_from:
            from edgemod.training.students.embedding_init import init_embeddings

            init_embeddings(model, self.tokenizer.vocab, recipe.student.init_embeddings_from, recipe.distill.seed)
        return model

    def save(self, out: Path) -> list[str]:
        self.tokenizer.save(out / "tokenizer")
        return [f"tokenizer/{p.name}" for p in sorted((out / "tokenizer").iterdir())]

    def input_spec(self, recipe: Recipe) -> dict:
        shape = [1, recipe.student.max_length]
        return {"input_ids": {"shape": shape, "dtype": "int32"}, "attention_mask": {"shape": shape, "dtype": "int32"},
                "vocab_size": self.tokenizer.vocab_size, "tokenizer": "tokenizer"}


class ImageInputs:
    """timm-style pre-processing that travels with the weights; augmentation for training only."""

    payload = "path"

    def __init__(self, recipe: Recipe, table):
        from edgemod.training.students.vision import timm_arch
        from edgemod.training.vision.preprocess import preprocess_from_timm

        self.recipe = recipe
        self.preprocess = preprocess_from_timm(timm_arch(recipe.student.arch), recipe.student.image_size)
        self.paths = table["path"].tolist()
        self._check_images(table)

    def _check_images(self, table) -> None:
        from edgemod.training.vision.images import scan_images

        report = scan_images(self.paths)
        kept = set(report.raise_or_skip(self.recipe.data.on_bad_image))
        self.bad_rows = sorted(set(range(len(self.paths))) - kept)

    def inputs_for(self, rows: np.ndarray):
        return [self.paths[i] for i in rows]

    def _dataset(self, split: Split, transform):
        from edgemod.training.vision.images import ImageDataset

        # The background a transparent image is composited on is part of the shipped pre-processing.
        images = ImageDataset(split.inputs, transform, background=tuple(self.preprocess.alpha_background))
        return _ZipDataset(images, _tensor_dataset(split.soft, split.gold))

    def train_dataset(self, split: Split):
        from edgemod.training.vision.augment import train_transform

        return self._dataset(split, train_transform(self.preprocess, self.recipe.student.augment))

    def eval_dataset(self, split: Split):
        from edgemod.runtime.image import eval_transform

        return self._dataset(split, eval_transform(self.preprocess))

    def build_model(self, recipe: Recipe):
        """A registered image student, or any timm architecture (large teachers trained here)."""
        from edgemod.training.students import build_student
        from edgemod.training.students.vision import create_timm_student, is_image_student

        student = recipe.student
        if is_image_student(student.arch):
            model = build_student(student.arch, len(recipe.labels), image_size=student.image_size, **student.options)
        else:
            model = create_timm_student(student.arch, len(recipe.labels), image_size=student.image_size,
                                        **student.options)
        if student.pretrained:
            from edgemod.training.vision.pretrained import PROVENANCE_ATTR, load_pretrained

            setattr(model, PROVENANCE_ATTR, load_pretrained(model, student.pretrained))
        return model

    def save(self, out: Path) -> list[str]:
        write_json_atomic(out / "preprocess.json", self.preprocess.to_dict())
        return ["preprocess.json"]

    def input_spec(self, recipe: Recipe) -> dict:
        channels, height, width = self.preprocess.input_size
        return {"image": {"shape": [1, channels, height, width], "dtype": "float32", "layout": "NCHW"},
                "preprocess": "preprocess.json"}


class _ZipDataset:
    """(image, soft, gold) from an image dataset and a tensor dataset of targets."""

    def __init__(self, images, targets):
        self.images, self.targets = images, targets

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, index: int):
        return (self.images[index], *self.targets[index])


def student_inputs(recipe: Recipe, table) -> TextInputs | ImageInputs:
    return ImageInputs(recipe, table) if recipe.task == "image-classification" else TextInputs(recipe, table)
