"""What export knows about one exported model file, shared by the stage and the target builders."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from edgemod.recipe import ExportSpec
from edgemod.runtime.runners import coreml_can_predict


@dataclass
class Artifact:
    """One exported model file and what is known about it."""

    spec: ExportSpec
    path: Path
    quantization: dict = field(default_factory=dict)
    estimate: object | None = None  # torch module computing what a Core ML model computes
    handle: object | None = None  # the in-memory Core ML model, to compress without reloading
    record: dict = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.spec.target}_{self.spec.scheme}"

    @property
    def runs_here(self) -> bool:
        return self.spec.target != "coreml" or coreml_can_predict()
