"""What a student eats, per task: text (normalizer + WordPiece ids) or images (timm-style
pre-processing + augmentation). The trainer only sees datasets of `(inputs..., soft, gold)`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.fsutil import write_json_atomic
from edgemod.recipe import Recipe
from edgemod.training.items import COUNTERFACTUAL


@dataclass
class Split:
    """One split's model inputs (arrays for text, image paths for images) with its targets."""

    inputs: Any
    soft: np.ndarray
    gold: np.ndarray
    keys: list[str]
    weights: np.ndarray | None = None  # sampling weight per row (distill.fairness reweight)
    views: Any = None  # training.vision.views.ViewTargets: each row's labelled views (recipe views:)


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
    """Tokenizer fitted on train + transfer text; every item encoded once up front.

    With `distill.obfuscation_augment` > 0, `distill.obfuscation_copies` obfuscated copies of every
    train/transfer item are made and encoded up front too, and each epoch the training set swaps
    items for one of their copies (`ObfuscatedTexts`). The vocabulary is trained on the clean text
    plus one copy of each: obfuscated spellings ('h4te', Cyrillic 'о', zero-width joins) then have
    pieces of their own instead of [UNK], at the price of vocabulary entries the clean text would
    have used; one copy, not all, keeps clean text the majority of what the vocabulary is fitted to.
    """

    payload = "text"
    bad_rows: list[int] = []

    def __init__(self, recipe: Recipe, table):
        from edgemod.obfuscation import variants
        from edgemod.training.text.tokenizer import train_wordpiece

        spec = recipe.distill
        texts, keys = table["text"].tolist(), table["key"].astype(str).tolist()
        # rows that can be trained on; the vocabulary is fitted on real text only (not identity swaps)
        rows = np.flatnonzero(table["role"].isin(("train", "transfer", COUNTERFACTUAL)).to_numpy())
        real = table["role"].iloc[rows].isin(("train", "transfer")).to_numpy()
        copies = variants([texts[i] for i in rows], [keys[i] for i in rows], spec.obfuscation_copies,
                          spec.seed) if spec.obfuscation_augment else []
        corpus = [texts[i] for i in rows[real]] + ([c for c, r in zip(copies[0], real) if r] if copies else [])
        self.tokenizer = train_wordpiece(corpus, vocab_size=recipe.student.vocab_size,
                                         normalizer=recipe.student.normalizer, max_length=recipe.student.max_length,
                                         pre_tokenization=recipe.student.tokenizer)
        self.encoded = self.tokenizer.encode(texts)
        self.augment, self.seed = spec.obfuscation_augment, spec.seed
        self._copy_row = {keys[i]: n for n, i in enumerate(rows)}
        encoded = [self.tokenizer.encode(texts_k) for texts_k in copies]
        # ids and mask of the copies, each [copies, len(rows), max_length]
        self.copies = (np.stack([ids for ids, _ in encoded]), np.stack([mask for _, mask in encoded])) if copies else ()

    def inputs_for(self, rows: np.ndarray):
        return tuple(a[rows] for a in self.encoded)

    def train_dataset(self, split: Split):
        if not self.augment:
            return self.eval_dataset(split)
        rows = np.array([self._copy_row[key] for key in split.keys], dtype=np.int64)
        return ObfuscatedTexts(split.inputs, tuple(a[:, rows] for a in self.copies), split.soft, split.gold,
                               self.augment, self.seed)

    def eval_dataset(self, split: Split):
        return _tensor_dataset(*split.inputs, split.soft, split.gold)

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


class ObfuscatedTexts:
    """Training rows `(ids, mask, soft, gold)`: each item's clean encoding or, with probability `rate`,
    one of its obfuscated copies (equally likely), redrawn every epoch; the targets are always the
    clean item's (what the teacher said about the text before it was obfuscated).

    The draw depends only on (seed, epoch), never on the batch order, the rank or the worker, so a
    resumed or distributed run sees the same rows. The trainer calls `set_epoch` before it iterates;
    the draw sits in shared memory, so persistent DataLoader workers see it too.
    """

    def __init__(self, clean: tuple, copies: tuple, soft, gold, rate: float, seed: int):
        import torch

        self.clean = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in clean)
        self.copies = tuple(torch.from_numpy(np.ascontiguousarray(a)) for a in copies)
        self.targets = (torch.from_numpy(np.ascontiguousarray(soft)), torch.from_numpy(np.ascontiguousarray(gold)))
        self.rate, self.seed = rate, seed
        self.choice = torch.full((len(soft),), -1, dtype=torch.int64).share_memory_()  # -1: clean, k: copy k
        self.set_epoch(1)

    def set_epoch(self, epoch: int) -> None:
        import torch

        rng = np.random.default_rng([self.seed, epoch])
        swap = rng.random(len(self)) < self.rate
        copy = rng.integers(len(self.copies[0]), size=len(self))
        self.choice.copy_(torch.from_numpy(np.where(swap, copy, -1)))

    def __len__(self) -> int:
        return len(self.targets[0])

    def __getitem__(self, index: int):
        k = int(self.choice[index])
        inputs = (a[index] for a in self.clean) if k < 0 else (a[k, index] for a in self.copies)
        return (*inputs, *(t[index] for t in self.targets))


class ImageInputs:
    """timm-style pre-processing that travels with the weights; augmentation for training only."""

    payload = "path"

    def __init__(self, recipe: Recipe, table):
        from edgemod.training.students.vision import timm_arch
        from edgemod.training.vision.preprocess import preprocess_from_timm

        if recipe.distill.obfuscation_augment:
            raise EdgemodError("distill.obfuscation_augment rewrites text; this recipe trains an image student",
                               "remove distill.obfuscation_augment (or set it to 0)")
        self.recipe = recipe
        self.preprocess = preprocess_from_timm(timm_arch(recipe.student.arch), recipe.student.image_size)
        if recipe.student.image_preprocessing == "mediapipe_tasks":
            self.preprocess = self.preprocess.model_copy(update={"resize": "mediapipe_tasks_roi"})
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

        if split.views is not None:  # the teacher's views, rendered again: no augmentation it did not see
            from edgemod.training.vision.views import ViewEpochs, view_transform

            return ViewEpochs(split.inputs, split.views, view_transform(self.preprocess), self.recipe.distill.seed)
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
