"""The `tf` teacher: a TensorFlow SavedModel folder or a `.keras` file.

The model takes a string tensor (e.g. it starts with a TextVectorization layer) or, with
`options.tokenizer`, token ids (`input_ids`, `attention_mask`[, `token_type_ids`]). It returns
probabilities or logits (`options.output: logits`). Needs the optional extra:
`pip install 'edgemod[tf]'`.

```yaml
teachers:
  - kind: tf
    path: models/toxicity-savedmodel
    options: {labels: [ok, toxic], signature: serving_default, output_name: probabilities}
```
"""
from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean
from edgemod.fsutil import sha256_tree
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher
from edgemod.training.teachers.common import (
    TeacherOptions,
    check_width,
    identity_string,
    parse_options,
    require_path,
    score_in_batches,
)
from edgemod.training.teachers.onnx_teacher import TOKEN_INPUTS, load_tokenizer


def import_tensorflow():
    """Import TensorFlow without breaking torch tooling imported later in the same process.

    With TensorFlow loaded, a later `import triton` (pulled in by coremltools, torchao,
    litert_torch and torch._dynamo) segfaults; triton first, then TensorFlow, is fine
    (notes/stack-probe.md section 6). So triton is imported first when it is installed.
    """
    if not _tensorflow_installed():
        raise MissingDependencyError("tensorflow", "the tf teacher", extra="tf")
    if "tensorflow" not in sys.modules:
        with contextlib.suppress(ImportError):
            importlib.import_module("triton")
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # hide C++ start-up chatter (CUDA probes)
    import tensorflow as tf

    return tf


def _tensorflow_installed() -> bool:
    try:
        return importlib.util.find_spec("tensorflow") is not None
    except ValueError:  # sys.modules["tensorflow"] is None: the import is blocked
        return False


class TfOptions(TeacherOptions):
    tokenizer: str | None = Field(None, description="HF tokenizer folder, for models that take token ids")
    max_length: int = Field(128, ge=1, description="token-id models: truncate to this many tokens")
    signature: str = Field("serving_default", description="SavedModel signature to call")
    output_name: str | None = Field(None, description="which output holds the scores, if several")
    batch_size: int = Field(256, ge=1)


@dataclass
class Endpoint:
    """A loaded model as one call: feed dict in, tensor or dict of tensors out."""

    inputs: dict[str, tuple[bool, int]]  # name -> (takes strings, rank)
    call: Callable[[dict[str, Any]], Any]


class TfTeacher:
    """Scores texts with a SavedModel signature or a Keras model."""

    def __init__(self, path: Path, options: TfOptions, labels: list[str]):
        self.path = path
        self.options = options
        self.labels = labels
        self.batch_size = options.batch_size
        self.multi_label = options.multi_label
        self.tf = import_tensorflow()
        if path.is_file():
            self.endpoint = load_keras(self.tf, path)
        else:
            self.endpoint = load_saved_model(self.tf, path, options)
        self.encode = self._encoder()

    def identity(self) -> str:
        return identity_string(
            kind="tf", model_sha256=self._hashes[0], tokenizer_sha256=self._hashes[1], labels=self.labels,
            signature=self.options.signature, output_name=self.options.output_name,
            output=self.options.output, activation=self.options.resolved_activation,
            max_length=self.options.max_length if self.options.tokenizer else None,
        )

    @cached_property
    def _hashes(self) -> tuple[str, str | None]:
        tokenizer = sha256_tree(self.options.tokenizer) if self.options.tokenizer else None
        return sha256_tree(self.path), tokenizer

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        return score_in_batches(items, self.batch_size, len(self.labels), self._score)

    def _score(self, texts: list[str]) -> np.ndarray:
        name, raw = pick_tensor(self.endpoint.call(self.encode(texts)), self.options, self.path)
        output = self.options.output or ("logits" if "logit" in name.lower() else "probabilities")
        options = self.options.model_copy(update={"output": output})
        probs = options.to_probabilities(np.asarray(raw).reshape(len(texts), -1))
        return check_width(probs, self.labels, f"TensorFlow model {self.path.name}")

    def _encoder(self) -> Callable[[list[str]], dict[str, Any]]:
        inputs = self.endpoint.inputs
        strings = [name for name, (is_string, _) in inputs.items() if is_string]
        if strings:
            if len(inputs) != 1 or self.options.tokenizer:
                raise EdgemodError(f"TensorFlow model {self.path} has inputs {list(inputs)}; a text model "
                                   "takes one string tensor and no options.tokenizer",
                                   "export the model with a single string input, or drop options.tokenizer")
            name, (_, rank) = next(iter(inputs.items()))
            return lambda texts: {name: self._strings(texts, rank)}
        return self._token_encoder(inputs)

    def _strings(self, texts: list[str], rank: int):
        # Models declare text as shape [None] or [None, 1]; match the declared rank.
        values = self.tf.constant(texts, dtype=self.tf.string)
        return self.tf.reshape(values, (-1, 1)) if rank == 2 else values

    def _token_encoder(self, inputs: dict[str, tuple[bool, int]]):
        unknown = [name for name in inputs if name not in TOKEN_INPUTS]
        if unknown or "input_ids" not in inputs or not self.options.tokenizer:
            raise EdgemodError(
                f"TensorFlow model {self.path} has inputs {list(inputs)}",
                "give a model with one string input, or token inputs "
                f"{list(TOKEN_INPUTS)} plus options.tokenizer",
            )
        encode = load_tokenizer(self.options.tokenizer, self.options.max_length)

        def feed(texts: list[str]) -> dict[str, Any]:
            encoded = encode(texts)
            ids = encoded["input_ids"]
            return {name: self.tf.constant(encoded.get(name, np.zeros_like(ids))) for name in inputs}

        return feed


def load_keras(tf, path: Path) -> Endpoint:
    """A `.keras` (or `.h5`) file: call the model in inference mode."""
    import keras

    try:
        model = keras.models.load_model(path, compile=False)  # compile=False: no optimizer needed
    except Exception as error:  # keras raises ValueError, OSError, TypeError... for bad files
        raise EdgemodError(f"keras cannot load {path}: {str(error)[:500]}",
                           "save the model with model.save('model.keras') (Keras 3)") from None
    inputs = {tensor.name: (_is_string(tensor.dtype), len(tensor.shape)) for tensor in model.inputs}

    def call(feed: dict[str, Any]):
        single = next(iter(feed.values())) if len(feed) == 1 else feed
        return model(single, training=False)

    return Endpoint(inputs, call)


def load_saved_model(tf, path: Path, options: TfOptions) -> Endpoint:
    """A SavedModel folder (`tf.saved_model.save` or Keras `model.export`): call one signature."""
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as error:  # TF raises OSError or its own errors for a bad folder
        raise EdgemodError(f"TensorFlow cannot load the SavedModel {path}: {str(error)[:500]}",
                           "give a SavedModel folder (with saved_model.pb) or a .keras file") from None
    signatures = dict(loaded.signatures)
    if options.signature not in signatures:
        raise EdgemodError(
            f"SavedModel {path} has no signature '{options.signature}'"
            f"{did_you_mean(options.signature, signatures)}",
            f"set options.signature to one of: {', '.join(signatures) or '(none: re-export with one)'}",
        )
    function = signatures[options.signature]
    specs = function.structured_input_signature[1]
    inputs = {name: (spec.dtype == tf.string, len(spec.shape)) for name, spec in specs.items()}
    # Keep `loaded` alive with the function: signatures hold weak references to its variables.
    return Endpoint(inputs, lambda feed, _keep=loaded: function(**feed))


def _is_string(dtype) -> bool:
    return "string" in str(dtype)


def pick_tensor(outputs, options: TfOptions, path: Path) -> tuple[str, Any]:
    """(name, tensor) holding the scores from a tensor, a list or a dict of outputs."""
    if isinstance(outputs, (list, tuple)):
        outputs = {f"output_{i}": value for i, value in enumerate(outputs)}
    if not isinstance(outputs, dict):
        return "", outputs
    names = list(outputs)
    wanted = options.output_name
    if wanted is None and len(names) > 1:
        hint = "logit" if options.output == "logits" else "prob"
        matches = [name for name in names if hint in name.lower()]
        wanted = matches[0] if len(matches) == 1 else None
    if wanted is None and len(names) == 1:
        wanted = names[0]
    if wanted not in outputs:
        raise EdgemodError(
            f"cannot tell which output of {path} holds the scores: {names}"
            + (did_you_mean(wanted, names) if wanted else ""),
            f"set options.output_name to one of: {', '.join(names)}",
        )
    return wanted, outputs[wanted]


@register_teacher("tf")
def build_tf_teacher(spec: TeacherSpec, context: TeacherContext) -> TfTeacher:
    options = parse_options(TfOptions, spec)
    path = require_path(spec.path, "TensorFlow model",
                        "set path: to a SavedModel folder or a .keras file")
    if not options.labels:
        raise EdgemodError("the tf teacher needs options.labels (a TensorFlow model carries no label names)",
                           "set options.labels to one name per output column, in output order")
    return TfTeacher(path, options, options.labels)
