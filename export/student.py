"""The trained student as the export stage sees it: the module (scores out), its input spec, and
the real items (validation and test) the training run scored, ready to feed to any runtime."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

import numpy as np

from edgemod.console import activity
from edgemod.errors import EdgemodError
from edgemod.manifest import Manifest, read_manifest, verify_artifacts
from edgemod.recipe import Recipe, parse_recipe
from edgemod.runtime.encoder import IMAGE_INPUTS, TEXT_INPUTS, load_encoder

OUTPUT_NAME = "scores"


def scoring_model(model, multi_label: bool, text: bool):
    """Wrap a logits model so every artifact outputs the scores the thresholds apply to.
    Named arguments (no *args) so FX-based quantizers can trace it."""
    import torch

    class ScoringModel(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def scores(self, logits):
            return torch.sigmoid(logits) if multi_label else torch.softmax(logits, dim=-1)

    class TextScoring(ScoringModel):
        def forward(self, input_ids, attention_mask):
            return self.scores(self.inner(input_ids, attention_mask))

    class ImageScoring(ScoringModel):
        def forward(self, image):
            return self.scores(self.inner(image))

    return (TextScoring if text else ImageScoring)(model).eval()


@dataclass
class TrainedStudent:
    """A finished `edgemod train` run, loaded for export."""

    run_dir: Path
    manifest: Manifest
    recipe: Recipe
    spec: dict
    thresholds: dict
    predictions: object = field(repr=False)

    @property
    def labels(self) -> list[str]:
        return self.recipe.labels

    @property
    def is_text(self) -> bool:
        return self.recipe.task != "image-classification"

    @property
    def input_names(self) -> tuple[str, ...]:
        return TEXT_INPUTS if self.is_text else IMAGE_INPUTS

    @cached_property
    def module(self):
        """The student with its trained weights, scores out, ready to trace (eval mode)."""
        from safetensors.torch import load_file

        from edgemod.training.students import build_student
        from edgemod.training.students.vision import reparameterize

        options = dict(self.spec.get("options") or {})
        if self.is_text:
            model = build_student(self.spec["arch"], self.spec["num_labels"], vocab_size=self.spec["vocab_size"],
                                  max_length=self.spec["max_length"], **options)
        else:
            from edgemod.training.students.vision import create_timm_student, is_image_student

            size = self.spec["inputs"]["image"]["shape"][-1]
            build = build_student if is_image_student(self.spec["arch"]) else create_timm_student
            model = build(self.spec["arch"], self.spec["num_labels"], image_size=size, **options)
        model.load_state_dict(load_file(str(self.run_dir / "model.safetensors")))
        model.eval()
        if not self.is_text:
            model = reparameterize(model)
        return scoring_model(model, self.recipe.multi_label, self.is_text)

    @cached_property
    def encoder(self):
        """The device-side encoder, built from this folder's student.json, tokenizer/ or preprocess.json."""
        return load_encoder(self.run_dir)

    def input_shapes(self) -> dict[str, list[int]]:
        return {name: list(self.spec["inputs"][name]["shape"]) for name in self.input_names}

    def input_dtypes(self) -> dict[str, str]:
        return {name: self.spec["inputs"][name]["dtype"] for name in self.input_names}

    def encode(self, payloads: list) -> dict[str, np.ndarray]:
        """Model inputs for texts or image paths, batch-first, exactly as a device builds them."""
        return self.encoder.encode(payloads)

    def split(self, role: str):
        """Rows of the training run's predictions for `validation` or `test` (payload, label, scores)."""
        return self.predictions[self.predictions["role"] == role].reset_index(drop=True)

    @property
    def payload_column(self) -> str:
        return "text" if self.is_text else "path"

    def sample_inputs(self) -> dict[str, np.ndarray]:
        return self.encode(self.split("validation")[self.payload_column].tolist()[:1])

    def tool_files(self) -> list[str]:
        """Files a device needs beside the model (the tokenizer or the pre-processing config), and the
        fp32 reference with its scored test split, so an export folder can be benched on its own."""
        if self.is_text:
            return ["student.json", "thresholds.json", *REFERENCE_FILES,
                    *(f"tokenizer/{p.name}" for p in sorted((self.run_dir / "tokenizer").iterdir()))]
        return ["student.json", "thresholds.json", "preprocess.json", *REFERENCE_FILES]


REFERENCE_FILES = ("model.safetensors", "predictions.parquet")  # the fp32 student and its scored test split


def load_trained_student(run_dir: str | Path, stage: str = "train") -> TrainedStudent:
    """Read a finished train run, or an export folder (which carries the same files), checking
    that the files needed here are intact."""
    import pandas as pd

    run_dir = Path(run_dir)
    manifest = read_manifest(run_dir, stage)
    needed = {n: r for n, r in manifest.artifacts.items()
              if stage == "train" or n in (*REFERENCE_FILES, "student.json", "thresholds.json")}
    if broken := verify_artifacts(run_dir, manifest.model_copy(update={"artifacts": needed})):
        raise EdgemodError(f"{stage} run {run_dir} has missing or changed files: {', '.join(broken)}",
                           f"re-run `edgemod {stage}` into {run_dir}")
    spec = json.loads((run_dir / "student.json").read_text())
    if "vocab_size" not in spec and "input_ids" in spec.get("inputs", {}):
        spec["vocab_size"] = spec["inputs"].get("vocab_size")
    return TrainedStudent(run_dir=run_dir, manifest=manifest, recipe=parse_recipe(manifest.recipe, str(run_dir)),
                          spec=spec, thresholds=json.loads((run_dir / "thresholds.json").read_text()),
                          predictions=pd.read_parquet(run_dir / "predictions.parquet"))


@dataclass
class TestSet:
    """The whole test split: model inputs, gold labels and the fp32 student's scores."""

    inputs: dict[str, np.ndarray]
    gold: np.ndarray
    reference: np.ndarray  # fp32 student scores
    table: object

    @classmethod
    def load(cls, student: TrainedStudent, console=None) -> TestSet:
        table = student.split("test")
        if table.empty:
            raise EdgemodError(f"the train run {student.run_dir} scored no test items",
                               "set data.test in the recipe and re-run `edgemod train`")
        with activity(f"encode {len(table)} test items and score them with the fp32 student", console):
            inputs = student.encode(table[student.payload_column].tolist())
            reference = torch_scores(student.module, inputs, student.input_names)
        labels = student.labels
        if student.recipe.multi_label:
            gold = np.array([[int(name in str(v).split("|")) for name in labels] for v in table["label"]])
        else:
            gold = np.array([labels.index(v) for v in table["label"]])
        return cls(inputs, gold, reference, table)


def torch_scores(module, inputs: dict[str, np.ndarray], names: tuple[str, ...], batch: int = 128) -> np.ndarray:
    import torch

    count = len(inputs[names[0]])
    with torch.inference_mode():
        return np.concatenate([module(*(torch.from_numpy(inputs[n][i:i + batch]) for n in names)).float().numpy()
                               for i in range(0, count, batch)])
