"""An exported artifact run the way a phone runs it: raw text or an image file in, scores and a
decision out, using only the files of the export folder.

A phone has no training run and no Python student: it has the model file, the tokenizer folder
(or `preprocess.json`), `thresholds.json` and `student.json`. Building the inputs from those
files alone, and comparing them with the golden inputs, is what proves a device-side pipeline
reproduces what the model was checked on; `edgemod.runtime.encoder` is that pipeline, the same
one export and bench encode with.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgemod.errors import EdgemodError, unknown_choice
from edgemod.runtime.encoder import Encoder, load_encoder

STAGE = "export"


@dataclass
class DevicePipeline:
    """One artifact with its runtime, pre-processing, labels and thresholds from the export folder."""

    export_dir: Path
    artifact: str
    record: dict = field(repr=False)
    labels: list[str]
    thresholds: dict = field(repr=False)
    input_names: tuple[str, ...]
    encoder: Encoder = field(repr=False)
    runner: Any = field(repr=False)
    threads: int = 1

    @classmethod
    def from_export(cls, export_dir: str | Path, artifact_name: str, threads: int = 1,
                    manifest=None, load_model: bool = True) -> DevicePipeline:
        """Load `artifact_name` of the export folder in its own runtime with `threads` threads.

        Args:
            load_model: False builds only the pre-processing (inputs can be checked without the
                runtime, e.g. a Core ML artifact on Linux); `predict` then refuses.

        Raises:
            EdgemodError: unknown artifact, missing or edited device files, or a Core ML artifact
                off macOS (with `load_model=True`).
        """
        export_dir = Path(export_dir)
        record = artifact_record(export_dir, artifact_name, manifest)
        student = _read_json(export_dir / "student.json")
        input_names = tuple(record["interface"]["inputs"])
        encoder = load_encoder(export_dir)
        runner = _runner(export_dir, record, input_names, threads) if load_model else None
        return cls(export_dir=export_dir, artifact=artifact_name, record=record, labels=list(student["labels"]),
                   thresholds=_read_json(export_dir / "thresholds.json"), input_names=input_names,
                   encoder=encoder, runner=runner, threads=threads)

    @property
    def target(self) -> str:
        return self.record["target"]

    def inputs(self, payload: str) -> dict[str, np.ndarray]:
        """Batch-1 model inputs built from a raw text or an image path."""
        return self.encoder.encode_prepared(self.encoder.prepare(payload))

    def scores(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        if self.runner is None:
            raise EdgemodError(f"{self.artifact} was loaded without its model (load_model=False)",
                               "call DevicePipeline.from_export(..., load_model=True) where its runtime exists")
        return self.runner(inputs)

    def decision(self, scores: np.ndarray) -> str | list[str]:
        """The shipped thresholds applied to scores [1, C]: a label, or labels when multi-label."""
        from edgemod.runtime.decision import decide

        decided = decide(np.asarray(scores).reshape(1, -1), self.labels, self.thresholds)[0]
        if self.thresholds.get("multi_label"):
            return [self.labels[c] for c in np.flatnonzero(decided)]
        return self.labels[int(decided)]

    def predict(self, payload: str) -> tuple[np.ndarray, str | list[str]]:
        """Scores [C] and decision for one raw payload, as the app would compute them."""
        scores = self.scores(self.inputs(payload))
        return scores[0], self.decision(scores)

    def with_threads(self, threads: int) -> DevicePipeline:
        """Another interpreter of the same artifact (interpreters are not shared across threads)."""
        runner = _runner(self.export_dir, self.record, self.input_names, threads)
        return DevicePipeline(**{**self.__dict__, "runner": runner, "threads": threads})


def artifact_record(export_dir: Path, name: str, manifest=None) -> dict:
    """The manifest entry of one artifact; the error lists the ones that exist."""
    from edgemod.manifest import read_manifest

    manifest = manifest or read_manifest(export_dir, STAGE)
    artifacts = manifest.details.get("artifacts", {})
    if name not in artifacts:
        raise unknown_choice(f"artifact of {export_dir}", name, artifacts)
    return artifacts[name]


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise EdgemodError(f"{path} is missing: the export folder is not what `edgemod export` wrote",
                           f"re-run `edgemod export` into {path.parent}, or copy the whole folder")
    return json.loads(path.read_text(encoding="utf-8"))


def _runner(export_dir: Path, record: dict, input_names: tuple[str, ...], threads: int):
    from edgemod.runtime.runners import load_runner

    return load_runner(record["target"], export_dir / record["file"], input_names, threads)


