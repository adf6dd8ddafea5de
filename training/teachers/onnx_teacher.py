"""The `onnx` teacher: a local ONNX classifier run with onnxruntime on the CPU.

Two kinds of model are understood:
- text-input models (sklearn-onnx text pipelines and the like): one string tensor input;
- token-input models (exported transformers): `input_ids`, `attention_mask` and optionally
  `token_type_ids` as int64, produced by the tokenizer in `options.tokenizer`.

The scores come from a probability tensor, a logits tensor (`options.output: logits`) or a
sklearn-onnx ZipMap (a list of `{class: probability}` dicts).

```yaml
teachers:
  - {kind: onnx, path: hatesonar}          # a preset: the model shipped in the hatesonar wheel
  - kind: onnx
    path: models/toxic-bert.onnx
    options: {tokenizer: models/toxic-bert-tokenizer, output: logits, multi_label: true,
              labels: [toxic, severe_toxic, obscene, threat, insult, identity_hate]}
```
"""
from __future__ import annotations

import importlib.util
import json
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import Field

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean
from edgemod.fsutil import sha256_file, sha256_tree
from edgemod.locales import locale_scope
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher
from edgemod.training.teachers.common import (
    TeacherOptions,
    batches,
    check_width,
    identity_string,
    model_file,
    parse_options,
    preset_name,
    require_path,
)

log = logging.getLogger(__name__)
Encoder = Callable[[Sequence[str]], dict[str, np.ndarray]]
TOKEN_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
SCORE_TYPES = ("tensor(float)", "tensor(double)", "tensor(float16)")
# onnxruntime's StringNormalizer says this when the C library lacks the locale it asks for.
LOCALE_ERROR = re.compile(r"Failed to construct locale with name:\s*([^\s:]+)")


@dataclass(frozen=True)
class OnnxPreset:
    """A model file shipped inside an installed Python package."""

    package: str
    file: str
    labels: tuple[str, ...]
    locale: str | None = None

    def model_path(self) -> Path:
        return package_file(self.package, self.file, f"the onnx preset '{self.package}'")


PRESETS = {
    # Davidson et al. 2017 TF-IDF + LR, converted by sklearn-onnx; classes 0, 1, 2 in this order.
    # Its StringNormalizer needs en_US.UTF-8 (see edgemod/locales.py).
    "hatesonar": OnnxPreset("hatesonar", "model/model.onnx",
                            ("hate_speech", "offensive_language", "neither"), "en_US.UTF-8"),
}


class OnnxOptions(TeacherOptions):
    preset: str | None = Field(None, description=f"a packaged model: {', '.join(PRESETS)}")
    tokenizer: str | None = Field(None, description="HF tokenizer folder, for token-input models")
    max_length: int = Field(128, ge=1, description="token-input models: truncate to this many tokens")
    threads: int | None = Field(None, ge=1, description="onnxruntime intra-op threads (default: all cores)")
    output_name: str | None = Field(None, description="which model output holds the scores")
    locale: str | None = Field(None, description="C locale the model needs, built if missing")


def package_file(package: str, relative: str, feature: str) -> Path:
    """A data file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(package, feature)
    path = Path(next(iter(spec.submodule_search_locations))) / relative
    if not path.exists():
        raise EdgemodError(f"{feature}: {path} is missing from the installed package",
                           f"reinstall it: pip install --force-reinstall {package}")
    return path


class OnnxTeacher:
    """Scores texts with an onnxruntime session (CPU execution provider)."""

    def __init__(self, model_path: Path, options: OnnxOptions, labels: list[str] | None,
                 locale: str | None = None):
        self.model_path = model_path
        self.batch_size = options.batch_size
        self.multi_label = options.multi_label
        self.session = create_session(model_path, options.threads, locale)
        self.input_names = _input_names(self.session, options, model_path)
        self.output_name = pick_output(self.session, options, model_path)
        default_output = "logits" if "logit" in self.output_name.lower() else "probabilities"
        self.options = options.model_copy(update={"output": options.output or default_output})
        self.encode = self._encoder()
        self.labels = labels or self._probe_labels()

    def identity(self) -> str:
        return identity_string(
            kind="onnx", model_sha256=self._model_sha256, preset=self.options.preset, labels=self.labels,
            output_name=self.output_name, output=self.options.output,
            activation=self.options.resolved_activation, tokenizer_sha256=self._tokenizer_sha256,
            max_length=self.options.max_length if self.options.tokenizer else None,
        )

    @cached_property
    def _model_sha256(self) -> str:
        return sha256_file(self.model_path)

    @cached_property
    def _tokenizer_sha256(self) -> str | None:
        return sha256_tree(self.options.tokenizer) if self.options.tokenizer else None

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        parts = [self._score(batch) for batch in batches(items, self.batch_size)]
        if not parts:
            return np.zeros((0, len(self.labels)), dtype=np.float32)
        return np.concatenate(parts)

    def _score(self, batch: Sequence[Item]) -> np.ndarray:
        raw = self._run([item.text for item in batch])
        probs = self.options.to_probabilities(zipmap_to_array(raw, self.labels))
        return check_width(probs, self.labels, f"ONNX model {self.model_path.name}")

    def _run(self, texts: list[str]):
        return self.session.run([self.output_name], self.encode(texts))[0]

    def _encoder(self) -> Encoder:
        if not self.options.tokenizer:
            return self._text_feed
        ids = next(i for i in self.session.get_inputs() if i.name == "input_ids")
        fixed = ids.shape[1] if len(ids.shape) > 1 and isinstance(ids.shape[1], int) else None
        encode = load_tokenizer(self.options.tokenizer, self.options.max_length, fixed)
        return lambda texts: _select_inputs(encode(texts), self.input_names)

    def _text_feed(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        (only,) = self.session.get_inputs()
        values = np.array(list(texts), dtype=object)
        # sklearn-onnx declares text inputs as [None] or [None, 1]; match the declared rank.
        return {only.name: values.reshape(-1, 1) if len(only.shape) == 2 else values}

    def _probe_labels(self) -> list[str]:
        """Label names from a ZipMap's string classes; otherwise the user must name them."""
        raw = self._run([""])
        if isinstance(raw, list) and raw and all(isinstance(key, str) for key in raw[0]):
            return list(raw[0])
        width = len(raw[0]) if isinstance(raw, list) and raw else np.asarray(raw).shape[-1]
        raise EdgemodError(
            f"ONNX model {self.model_path} gives {width} scores but no label names",
            f"set options.labels to {width} names in output order",
        )


def create_session(path: Path, threads: int | None, locale: str | None):
    """An onnxruntime CPU session; builds a missing C locale when the model asks for one."""
    import onnxruntime as ort

    session_options = ort.SessionOptions()
    if threads:
        session_options.intra_op_num_threads = threads
        session_options.inter_op_num_threads = 1

    def make():
        return ort.InferenceSession(str(path), session_options, providers=["CPUExecutionProvider"])

    if locale:
        with locale_scope(locale):
            return make()
    try:
        return make()
    except Exception as error:  # onnxruntime raises its own pybind classes, all Exceptions
        needed = LOCALE_ERROR.search(str(error))
        if needed is None:
            raise EdgemodError(f"onnxruntime cannot load {path}: {str(error)[:500]}",
                               "check that the file is a complete ONNX model (re-export it)") from None
    with locale_scope(needed.group(1)) as built:
        log.warning("onnxruntime needs the locale %s for %s; built it into %s and retried (the "
                    "onnxruntime error above is handled)", needed.group(1), path.name, built)
        return make()


def _input_names(session, options: OnnxOptions, path: Path) -> list[str]:
    """Check the model's inputs against the options; return the names to feed."""
    inputs = session.get_inputs()
    names = [i.name for i in inputs]
    if any(i.type == "tensor(string)" for i in inputs):
        if len(inputs) != 1:
            raise EdgemodError(f"ONNX model {path} has inputs {names}; a text model must have one "
                               "string input", "export the model with a single text input")
        if options.tokenizer:
            raise EdgemodError(f"ONNX model {path} takes raw text, but options.tokenizer is set",
                               "remove options.tokenizer")
        return names
    unknown = [name for name in names if name not in TOKEN_INPUTS]
    if unknown or "input_ids" not in names:
        raise EdgemodError(f"ONNX model {path} has inputs {names}; expected one string input or "
                           f"token inputs {list(TOKEN_INPUTS)}", "export the model with those inputs")
    if not options.tokenizer:
        raise EdgemodError(f"ONNX model {path} takes token ids ({names}) but no tokenizer is given",
                           "set options.tokenizer to the model's tokenizer folder (with tokenizer.json)")
    return names


def pick_output(session, options: TeacherOptions, path: Path) -> str:
    """The output that holds the scores: the only float/ZipMap one, or the one named for it."""
    outputs = session.get_outputs()
    names = [o.name for o in outputs]
    wanted = getattr(options, "output_name", None)
    if wanted:
        if wanted not in names:
            raise EdgemodError(f"ONNX model {path} has no output '{wanted}'{did_you_mean(wanted, names)}",
                               f"set options.output_name to one of: {', '.join(names)}")
        return wanted
    usable = [o for o in outputs if o.type in SCORE_TYPES or o.type.startswith("seq(map(")]
    if len(usable) > 1:
        hint = "logit" if options.output == "logits" else "prob"
        usable = [o for o in usable if hint in o.name.lower()] or usable
    if len(usable) != 1:
        found = ", ".join(f"{o.name} {o.type} {o.shape}" for o in outputs)
        raise EdgemodError(f"cannot tell which output of ONNX model {path} holds the scores ({found})",
                           f"set options.output_name to one of: {', '.join(names)}")
    return usable[0].name


def zipmap_to_array(raw, labels: Sequence[str]) -> np.ndarray:
    """A ZipMap's list of `{class: probability}` dicts as a matrix; tensors pass through."""
    if not isinstance(raw, list):
        return np.asarray(raw, dtype=np.float64)
    if not raw:
        return np.zeros((0, len(labels)))
    keys = list(raw[0])
    # String classes that match the labels are picked by name, so label order cannot go wrong.
    if all(isinstance(key, str) for key in keys) and set(labels) <= set(keys):
        keys = list(labels)
    return np.array([[row[key] for key in keys] for row in raw], dtype=np.float64)


def _select_inputs(encoded: dict[str, np.ndarray], names: list[str]) -> dict[str, np.ndarray]:
    feed = {}
    for name in names:
        value = encoded.get(name)
        # BERT-style models want token_type_ids even when the tokenizer has no pairs: all zeros.
        feed[name] = value if value is not None else np.zeros_like(encoded["input_ids"])
    return feed


# --- tokenizers (shared with the tf teacher) -----------------------------------------------------

def load_tokenizer(path: str | Path, max_length: int, fixed_length: int | None = None) -> Encoder:
    """A function texts -> {input_ids, attention_mask, token_type_ids} (int64, padded).

    A folder (or file) with `tokenizer.json` is read with `tokenizers` directly (fast, no
    transformers import); any other HF tokenizer folder goes through `AutoTokenizer`.
    `fixed_length` pads every batch to that length, for models exported with a static sequence.
    """
    where = require_path(path, "tokenizer", "set options.tokenizer to a folder saved with "
                                            "tokenizer.save_pretrained(...) (it holds tokenizer.json)")
    file = where if where.is_file() else where / "tokenizer.json"
    if file.exists():
        return _fast_encoder(file, max_length, fixed_length)
    return _transformers_encoder(where, max_length, fixed_length)


def _fast_encoder(file: Path, max_length: int, fixed_length: int | None) -> Encoder:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.enable_truncation(fixed_length or max_length)
    pad_id, pad_token = _pad_token(tokenizer, file.parent)
    tokenizer.enable_padding(pad_id=pad_id, pad_token=pad_token, length=fixed_length)

    def encode(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encodings = tokenizer.encode_batch(list(texts))
        return {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }

    return encode


def _pad_token(tokenizer, folder: Path) -> tuple[int, str]:
    """The pad token the model was trained with: tokenizer_config.json, then tokenizer.json, then
    common names. The attention mask hides padding, so id 0 is a safe last resort."""
    config = folder / "tokenizer_config.json"
    if config.exists():
        token = json.loads(config.read_text(encoding="utf-8")).get("pad_token")
        token = token.get("content") if isinstance(token, dict) else token
        if token and tokenizer.token_to_id(token) is not None:
            return tokenizer.token_to_id(token), token
    if tokenizer.padding:
        return tokenizer.padding["pad_id"], tokenizer.padding["pad_token"]
    for token in ("[PAD]", "<pad>", "<|pad|>"):
        if tokenizer.token_to_id(token) is not None:
            return tokenizer.token_to_id(token), token
    return 0, "[PAD]"


def _transformers_encoder(folder: Path, max_length: int, fixed_length: int | None) -> Encoder:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    padding = "max_length" if fixed_length else True

    def encode(texts: Sequence[str]) -> dict[str, np.ndarray]:
        encoded = tokenizer(list(texts), truncation=True, max_length=fixed_length or max_length,
                            padding=padding, return_tensors="np")
        return {name: np.asarray(value, dtype=np.int64) for name, value in encoded.items()}

    return encode


# --- factory -------------------------------------------------------------------------------------

def _resolve(spec: TeacherSpec, options: OnnxOptions) -> tuple[Path, OnnxPreset | None]:
    """The model file and, for presets, its built-in settings."""
    name = preset_name("onnx", spec, options.preset, PRESETS)
    if name is not None:
        return PRESETS[name].model_path(), PRESETS[name]
    return model_file("ONNX", spec, PRESETS, "a .onnx file"), None


@register_teacher("onnx")
def build_onnx_teacher(spec: TeacherSpec, context: TeacherContext) -> OnnxTeacher:
    options = parse_options(OnnxOptions, spec)
    path, preset = _resolve(spec, options)
    if preset is not None:
        options = options.model_copy(update={"preset": options.preset or spec.path})
    labels = options.labels or (list(preset.labels) if preset else None)
    locale = options.locale or (preset.locale if preset else None)
    return OnnxTeacher(path, options, labels, locale)
