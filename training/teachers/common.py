"""Helpers every local teacher kind shares: validated options, logits to probabilities, shape and
range checks, batching and identity strings."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TypeVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean, unknown_choice, validation_lines
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item

# Probabilities a hair outside [0, 1] are float rounding (float32 softmax, ZipMap casts), not a bug.

RANGE_TOLERANCE = 1e-4


class TeacherOptions(BaseModel):
    """Options every local teacher understands; kinds add their own."""

    model_config = ConfigDict(extra="forbid")

    labels: list[str] | None = Field(None, min_length=1, description="teacher label names, in output order")
    multi_label: bool = Field(False, description="scores are independent per label (sigmoid)")
    output: Literal["probabilities", "logits"] | None = Field(None, description="what the model emits")
    activation: Literal["softmax", "sigmoid"] | None = Field(
        None, description="for logits; default sigmoid if multi_label else softmax"
    )
    batch_size: int = Field(64, ge=1)

    def to_probabilities(self, values: np.ndarray) -> np.ndarray:
        """Apply the activation if the values are logits, then check the range."""
        values = np.asarray(values, dtype=np.float64)
        if self.output == "logits":
            values = sigmoid(values) if self.resolved_activation == "sigmoid" else softmax(values)
        return checked_probabilities(values)

    @property
    def resolved_activation(self) -> str:
        return self.activation or ("sigmoid" if self.multi_label else "softmax")


Options = TypeVar("Options", bound=TeacherOptions)


def parse_options(model: type[Options], spec: TeacherSpec) -> Options:
    """Validate `spec.options` against a kind's options model, with a fix-it error."""
    try:
        return model.model_validate(spec.options)
    except ValidationError as error:
        raise EdgemodError(
            f"teacher '{spec.name or spec.kind}' has invalid options:\n" + _explain(error, model),
            f"edit teachers[].options in the recipe; known options: {', '.join(model.model_fields)}",
        ) from None


def _explain(error: ValidationError, model: type[BaseModel]) -> str:
    return validation_lines(error, model.model_fields, noun="option")


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)  # avoids overflow in exp
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # tanh form does not overflow


def checked_probabilities(values: np.ndarray) -> np.ndarray:
    """Float32 probabilities, or an error naming the likely cause when values leave [0, 1]."""
    values = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(values) | (values < -RANGE_TOLERANCE) | (values > 1 + RANGE_TOLERANCE)
    if bad.any():
        raise EdgemodError(
            f"{int(bad.sum())} teacher scores are not probabilities in [0, 1] "
            f"(e.g. {values[bad][:3].tolist()})",
            "if the model or file gives logits, set options.output: logits",
        )
    return np.clip(values, 0.0, 1.0).astype(np.float32)


def check_width(probs: np.ndarray, labels: Sequence[str], source: str) -> np.ndarray:
    """Error unless there is one score column per label."""
    if probs.ndim != 2 or probs.shape[1] != len(labels):
        raise EdgemodError(
            f"{source} gives scores of shape {list(probs.shape)}, expected [n, {len(labels)}] "
            f"for labels {list(labels)}",
            "set options.labels to one name per output column, in output order",
        )
    return probs


def batches(items: Sequence[Item], size: int) -> Iterator[Sequence[Item]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def require_path(path: str | Path | None, what: str, hint: str) -> Path:
    """An existing path, or an error saying what was expected there."""
    if not path:
        raise EdgemodError(f"{what}: no path given", hint)
    resolved = Path(path).expanduser()
    if not resolved.exists():
        raise EdgemodError(f"{what} not found: {resolved}", hint)
    return resolved


def identity_string(**parts: Any) -> str:
    """The stable, readable identity a label cache keys on."""
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


# --- the scores teacher --------------------------------------------------------------------------


def score_in_batches(items: Sequence[Item], batch_size: int, width: int,
                     score: Callable[[list[str]], np.ndarray]) -> np.ndarray:
    """Run `score` over the items' texts batch by batch; an empty input gives a [0, width] array."""
    parts = [score([item.text for item in batch]) for batch in batches(items, batch_size)]
    return np.concatenate(parts) if parts else np.zeros((0, width), dtype=np.float32)


def preset_name(kind: str, spec: TeacherSpec, preset: str | None, presets: Mapping[str, Any]) -> str | None:
    """The built-in preset a spec names (`options.preset`, or `path:` set to a preset name), else None."""
    if preset and spec.path and spec.path != preset:
        raise EdgemodError(f"{kind} teacher has both path: {spec.path} and options.preset: {preset}",
                           "keep one of them")
    name = preset or (spec.path if spec.path in presets else None)
    if name is not None and name not in presets:
        raise unknown_choice(f"{kind} preset", name, presets)
    return name


def model_file(kind: str, spec: TeacherSpec, presets: Mapping[str, Any], what: str) -> Path:
    """The model file of a spec that names no preset; a missing file suggests the closest preset."""
    known = ", ".join(presets)
    if spec.path and not Path(spec.path).expanduser().exists():
        raise EdgemodError(f"{kind} model not found: {spec.path}{did_you_mean(spec.path, presets)}",
                           f"give the path of {what} (relative to the working directory) or a preset: {known}")
    return require_path(spec.path, f"{kind} teacher model", f"set path: to {what} or a preset ({known})")


def cpu_session(path: Path, threads: int | None, purpose: str):
    """An ONNX Runtime CPU session over an exported teacher, `threads` intra-op threads (None: one per core)."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise MissingDependencyError("onnxruntime", purpose) from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or 0  # 0: onnxruntime's default, one per core
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
