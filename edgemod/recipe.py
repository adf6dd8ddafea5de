"""Validated recipe models. YAML is only their storage; unknown keys are errors."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from edgemod.budgets import Budgets
from edgemod.errors import EdgemodError, did_you_mean, yaml_problem
from edgemod.fsutil import sha256_text
from edgemod.recipe_augment import AugmentSpec, ColorJitterSpec, JpegSpec  # noqa: F401  (part of the recipe schema)
from edgemod.recipe_ensemble import EnsembleSpec
from edgemod.recipe_views import ViewsSpec
from edgemod.strict_model import StrictModel


class CounterfactualSpec(StrictModel):
    """Identity-swapped copies of train/transfer text, scored by the teachers like any other item
    (`edgemod.counterfactual`, swaps in `edgemod/identity_swaps.json`)."""

    per_item: int = Field(2, ge=1, le=8, description="copies per item that mentions a swappable identity")
    seed: int = 0


class OutOfDomainSpec(StrictModel):
    """A labelled set from another source, checked as violating-vs-not: neither model trains on its labels."""

    ref: str = Field(description="dataset split, e.g. olid:test")
    violating: list[str] = Field(min_length=1, description="its labels that count as violating, e.g. [OFF]")


class DataSpec(StrictModel):
    """Dataset references are `name:split` (see `edgemod data list`)."""

    train: str
    validation: str
    test: str
    transfer: list[str] = Field(default_factory=list, description="unlabelled text, soft loss only")
    calibration: str | None = None
    max_items_per_split: int | None = Field(None, gt=0, description="cap per split, for smoke runs")
    on_bad_row: Literal["error", "skip"] = "error"
    on_bad_image: Literal["error", "skip"] = Field(
        "error", description="corrupt or unreadable images: fail the run, or report and skip them")
    counterfactuals: CounterfactualSpec | None = Field(
        None, description="text: identity-swapped copies of train/transfer items for distill.fairness")
    out_of_domain: list[OutOfDomainSpec] = Field(
        default_factory=list, description="labelled sets from other sources, scored by teacher and student in bench")


class TeacherSpec(StrictModel):
    kind: str
    path: str | None = None
    weight: float = Field(1.0, gt=0)
    map: dict[str, str | None] = Field(
        default_factory=dict, description="teacher label -> recipe label (null drops it)"
    )
    options: dict[str, Any] = Field(default_factory=dict, description="kind-specific settings")
    name: str | None = None


# The normalizer of student.tokenizer 'mediapipe_tasks' (edgemod.runtime.tokenizer.TASKS_NORMALIZER).
MEDIAPIPE_NORMALIZER = "mediapipe-bert-v1"


class StudentSpec(StrictModel):
    arch: str
    max_length: int = Field(64, ge=8, le=512)
    image_size: int | None = Field(None, ge=32, le=1024, description="square input size; default: the arch's")
    pretrained: str | None = Field(
        None, description="image backbone weights from an installed package, e.g. imagenet:efficientnet_lite0")
    augment: AugmentSpec = Field(default_factory=AugmentSpec, description="training-time image augmentation")
    vocab_size: int = Field(8000, ge=100, le=8000)
    normalizer: str = Field(
        "moderation-v1", description="text normalizer spec (edgemod/runtime/normalizers); with tokenizer "
                                     f"mediapipe_tasks it must be, and defaults to, {MEDIAPIPE_NORMALIZER}")
    tokenizer: Literal["bert", "mediapipe_tasks"] = Field(
        "bert", description="pre-tokenization before WordPiece: 'bert', or 'mediapipe_tasks' (exactly what MediaPipe "
                            "Tasks' TextClassifier does on the phone, so it can run the model on raw text)")
    image_preprocessing: Literal["timm", "mediapipe_tasks"] = Field(
        "timm", description="eval crop and resize of image students: timm's (resize the shorter side, center crop), "
                            "or exactly what MediaPipe Tasks' ImageClassifier does with a center region of interest")
    init_embeddings_from: str | None = Field(
        None, description="'minilm-l6' or a local transformers folder: start the embedding table from its token embeddings")
    options: dict[str, Any] = Field(default_factory=dict, description="architecture kwargs")

    @model_validator(mode="after")
    def _tasks_normalizer(self) -> StudentSpec:
        """MediaPipe Tasks normalizes nothing but ASCII case on the phone, so the student must not either."""
        if self.tokenizer != "mediapipe_tasks":
            return self
        if "normalizer" not in self.model_fields_set:
            self.normalizer = MEDIAPIPE_NORMALIZER
        elif self.normalizer != MEDIAPIPE_NORMALIZER:
            raise ValueError(f"student.tokenizer 'mediapipe_tasks' needs student.normalizer '{MEDIAPIPE_NORMALIZER}' "
                             f"(MediaPipe Tasks only lower-cases ASCII on the device), got '{self.normalizer}'; "
                             f"set 'normalizer: {MEDIAPIPE_NORMALIZER}' or remove the key "
                             f"(override: --set student.normalizer={MEDIAPIPE_NORMALIZER})")
        return self


class FairnessSpec(StrictModel):
    """Identity fairness during distillation (text)."""

    method: Literal["none", "counterfactual", "reweight", "counterfactual_reweight"] = Field(
        "none", description="counterfactual: train on the identity-swapped copies too, every copy and its original "
                            "aiming at the teacher's scores averaged over all of them (needs data.counterfactuals); "
                            "reweight: benign items that mention an identity are drawn benign_identity_weight times "
                            "as often; counterfactual_reweight: both")
    benign_identity_weight: float = Field(3.0, ge=1, description="reweight: sampling weight of benign identity mentions")
    identity_weight: float = Field(
        1.0, ge=1, description="with any method: every train item that mentions an identity (violating or not) is drawn "
                               "this many times as often, so the student spends more of its capacity where the identity "
                               "slices are judged (multiplies benign_identity_weight)")
    compare_unmitigated: bool = Field(
        True, description="also train the same student without mitigation, so the report shows before and after")


class DistillSpec(StrictModel):
    loss: Literal["kl", "bce", "logit_mse"] = Field(
        "kl", description="single-label soft loss: kl (at `temperature`) or logit_mse (squared error between centred "
                          "student logits and teacher log-probabilities; temperature unused); multi-label tasks use "
                          "BCE whatever this says")
    temperature: float = Field(2.0, gt=0)
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the soft (teacher) loss")
    gold_only: bool = Field(False, description="ignore teachers: the no-distillation baseline")
    qat_epochs: int = Field(0, ge=0, le=5, description="image students: after the best epoch, fine-tune this many "
                                                       "epochs with int8 activations simulated (static int8 export)")
    qat_ranges: Literal["running", "validation"] = Field(
        "running", description="activation ranges of the quantization-aware epochs: running min/max over the "
                               "fine-tuning batches, or min/max of the validation images through the trained "
                               "student, fixed while fine-tuning (the ranges a min/max calibration on validation "
                               "gives the exporter)")
    compare_gold_only: bool = Field(
        False, description="also train the same student on gold labels only (no teacher, no transfer items), "
                           "so the report shows what distillation adds")
    epochs: int = Field(8, ge=1)
    batch_size: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    patience: int = Field(3, ge=1, description="epochs without validation gain before stopping")
    max_steps: int | None = Field(None, ge=1)
    seed: int = 0
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes (images: use the cores)")
    channels_last: bool = Field(False, description="image models: NHWC memory layout (faster convs on some CPUs)")
    balance: Literal["none", "sampler", "loss_weights"] = Field(
        "none", description="class imbalance: a class-balanced sampler, or inverse-frequency weights on the gold loss")
    freeze: list[str] = Field(
        default_factory=list, description="student module names (fnmatch) kept at their pretrained weights and "
                                          "BatchNorm statistics, e.g. [conv_stem, bn1, 'blocks.[0-1]']")
    int8_weights: bool = Field(
        False, description="train Conv/Linear weights on a per-channel int8 grid (straight-through), so that "
                           "int8 weight compression at export (Core ML w8, TFLite/ONNX int8 weights) is lossless")
    obfuscation_augment: float = Field(
        0.0, ge=0, le=1, description="text: probability that a training item is replaced, each epoch, by one of its "
                                     "obfuscated copies (leetspeak, homoglyphs, zero-width characters, spaced-out "
                                     "letters, on some words); the targets stay the clean text's. 0 disables")
    obfuscation_copies: int = Field(
        2, ge=1, le=16, description="obfuscated copies of every training item, made and encoded once up front "
                                    "(seeded by distill.seed) when obfuscation_augment > 0")
    fairness: FairnessSpec = Field(default_factory=FairnessSpec)


class ClassThresholdSpec(StrictModel):
    """One class's operating point (`thresholds.per_class.<label>`)."""

    policy: Literal["max_f1", "precision_at", "recall_at"] = "max_f1"
    precision: float | None = Field(None, gt=0, le=1)
    recall: float | None = Field(None, gt=0, le=1)

    @model_validator(mode="after")
    def _target_given(self):
        if self.policy == "precision_at" and self.precision is None:
            raise ValueError("policy 'precision_at' needs 'precision: <0..1>'")
        if self.policy == "recall_at" and self.recall is None:
            raise ValueError("policy 'recall_at' needs 'recall: <0..1>'")
        return self


class ThresholdSpec(ClassThresholdSpec):
    policy: Literal["argmax", "max_f1", "precision_at", "recall_at"] = "max_f1"
    benign: str | None = Field(None, description="the no-action class; default: the first label")
    per_class: dict[str, ClassThresholdSpec] = Field(
        default_factory=dict, description="another policy for some classes, e.g. {firearm: {policy: recall_at, recall: 0.96}}")

    def for_class(self, label: str) -> ClassThresholdSpec:
        """The operating-point rule of `label`: its own entry, else the recipe-wide policy."""
        return self.per_class.get(label) or ClassThresholdSpec(
            policy=self.policy, precision=self.precision, recall=self.recall)


EXPORT_SCHEMES: dict[str, tuple[str, ...]] = {
    "tflite": ("fp32", "int8_dynamic", "int8_weight_only", "int8_static"),
    # a .tflite with MediaPipe Tasks metadata and Tasks' input layout (edgemod.runtime.tasks_layout)
    "mediapipe": ("fp32", "int8_dynamic", "int8_weight_only", "int8_static"),
    "coreml": ("fp16", "fp32", "w8", "w8a8", "palettize"),
    "onnx": ("fp32", "int8_static", "int8_dynamic"),
}
FLOAT_SCHEMES = ("fp32", "fp16")
POST_TRAINING = ("export", "budgets")  # recipe sections that do not change a trained student


class ExportSpec(StrictModel):
    """One artifact: a target runtime and a quantization scheme (`quant`; none = the float model).

    Every target's float model is always exported too: it is the reference the quantized one is
    checked against. `float_ops` keeps TFLite op types (e.g. HARD_SWISH) or ONNX op types out of
    static int8; `op_types` restricts ONNX static int8 to these op types. `float_first_layers`
    keeps the first N conv/fully-connected layers out of int8 activations: TFLite and MediaPipe keep
    their int8 weights and compute in float, ONNX keeps them float. The layer reading raw embeddings
    or pixels is the one int8 activations hurt most.
    """

    target: Literal["tflite", "mediapipe", "coreml", "onnx"]
    quant: str | None = None
    calibration_items: int = Field(256, gt=0, description="calibration-split items for static schemes")
    float_ops: list[str] = Field(default_factory=list)
    op_types: list[str] = Field(default_factory=list)
    float_first_layers: int = Field(0, ge=0, description="int8: the first N conv/fully-connected layers compute in "
                                                         "float (TFLite/MediaPipe from int8 weights)")
    calibration_method: Literal["minmax", "percentile", "entropy"] = Field(
        "minmax", description="ONNX static int8: how activation ranges are chosen from the calibration set")
    palettize_bits: Literal[2, 3, 4, 6, 8] = 6
    minimum_deployment_target: str = Field("iOS17", description="Core ML: coremltools.target name")
    golden_tolerance: float | None = Field(
        None, gt=0, description="max |score diff| a device may show on the golden vectors "
                                "(default: 1e-3 fp32, 1e-2 Core ML fp16, 2e-2 quantized)")

    @model_validator(mode="after")
    def _known_scheme(self) -> ExportSpec:
        known = EXPORT_SCHEMES[self.target]
        if self.quant is not None and self.quant not in known:
            raise ValueError(f"unknown quant '{self.quant}' for target {self.target}{did_you_mean(self.quant, known)}; "
                             f"known: {', '.join(known)}")
        if self.float_first_layers and (self.target == "coreml" or self.is_float):
            raise ValueError(f"float_first_layers applies to int8 tflite, mediapipe and onnx exports, not {self.target} "
                             f"{self.scheme}: remove it from this export")
        return self

    @property
    def scheme(self) -> str:
        return self.quant or EXPORT_SCHEMES[self.target][0]

    @property
    def is_float(self) -> bool:
        return self.scheme in FLOAT_SCHEMES

    @property
    def tolerance(self) -> float:
        if self.golden_tolerance:
            return self.golden_tolerance
        if self.is_float:  # Core ML runs fp16 on the device: looser than fp32 runtimes
            return 1e-2 if self.target == "coreml" else 1e-3
        return 2e-2


class Recipe(StrictModel):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$")
    task: Literal["text-classification", "image-classification"] = "text-classification"
    multi_label: bool = False
    labels: list[str] = Field(min_length=2)
    data: DataSpec
    teachers: list[TeacherSpec] = Field(default_factory=list)
    ensemble: EnsembleSpec = Field(default_factory=EnsembleSpec)
    student: StudentSpec
    views: ViewsSpec = Field(default_factory=ViewsSpec)
    distill: DistillSpec = Field(default_factory=DistillSpec)
    thresholds: ThresholdSpec = Field(default_factory=ThresholdSpec)
    export: list[ExportSpec] = Field(default_factory=list)
    budgets: Budgets = Field(default_factory=Budgets)

    @field_validator("labels")
    @classmethod
    def _unique_labels(cls, labels: list[str]) -> list[str]:
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {labels}")
        return labels

    @model_validator(mode="after")
    def _teacher_maps_hit_labels(self) -> Recipe:
        for teacher in self.teachers:
            for source, target in teacher.map.items():
                if target is not None and target not in self.labels:
                    raise ValueError(
                        f"teacher '{teacher.name or teacher.kind}' maps '{source}' to '{target}', "
                        f"which is not a recipe label{did_you_mean(target, self.labels)}; "
                        f"labels: {self.labels}"
                    )
        benign = self.thresholds.benign
        if benign is not None and benign not in self.labels:
            raise ValueError(f"thresholds.benign '{benign}' is not a recipe label"
                             f"{did_you_mean(benign, self.labels)}; labels: {self.labels}")
        for label in self.thresholds.per_class:
            if label not in self.labels or label == self.benign_label:
                raise ValueError(f"thresholds.per_class '{label}' is not a non-benign recipe label"
                                 f"{did_you_mean(label, self.labels)}; labels: {self.labels}")
        if self.thresholds.per_class and self.thresholds.policy == "argmax":
            raise ValueError("thresholds.per_class needs a threshold policy; 'argmax' uses none")
        if not self.teachers and not self.distill.gold_only:
            raise ValueError("no teachers given: add 'teachers:' or set 'distill.gold_only: true'")
        if self.distill.qat_epochs and self.task != "image-classification":
            raise ValueError("distill.qat_epochs simulates static int8 activations of image students; text students "
                             "export with dynamic int8: remove it")
        if self.views.per_image and self.task != "image-classification":
            raise ValueError("views: augmented views are for image recipes; remove 'views:' from this text recipe")
        self._tasks_ready_student()
        self._fairness_inputs()
        return self

    def _fairness_inputs(self) -> None:
        method = self.distill.fairness.method
        text_only = {"data.counterfactuals": self.data.counterfactuals is not None,
                     "data.out_of_domain": bool(self.data.out_of_domain), f"distill.fairness.method {method}": method != "none"}
        if self.task == "image-classification" and (asked := [k for k, v in text_only.items() if v]):
            raise ValueError(f"{', '.join(asked)}: text recipes only (identity terms and out-of-domain text); remove them")
        if "counterfactual" in method and self.data.counterfactuals is None:
            raise ValueError(f"distill.fairness.method '{method}' trains on identity-swapped copies: add "
                             "'counterfactuals: {per_item: 2}' under data (then re-run `edgemod label`, which scores "
                             "only the new copies)")

    def _tasks_ready_student(self) -> None:
        """A `mediapipe` artifact runs on Tasks' own pre-processing: the student must be trained for it,
        or Tasks would feed it other token ids or other pixels than edgemod checks it on."""
        if not any(spec.target == "mediapipe" for spec in self.export or []):
            return
        if self.task == "image-classification" and self.student.image_preprocessing != "mediapipe_tasks":
            raise ValueError("export target 'mediapipe' needs student.image_preprocessing: mediapipe_tasks (MediaPipe "
                             "Tasks crops and resizes the frame itself; timm's resize differs on up to 4 % of decisions)")
        if self.task != "image-classification" and self.student.tokenizer != "mediapipe_tasks":
            raise ValueError("export target 'mediapipe' needs student.tokenizer: mediapipe_tasks (MediaPipe Tasks "
                             "tokenizes the raw text itself, with no normalizer)")

    @property
    def benign_label(self) -> str | None:
        return None if self.multi_label else (self.thresholds.benign or self.labels[0])

    def fingerprint(self, exclude: tuple[str, ...] = ()) -> str:
        """Stable hash of the resolved recipe, without the top-level sections in `exclude` (a stage
        keys its work on what can change its output: training ignores export targets and budgets)."""
        return sha256_text(json.dumps(self.model_dump(mode="json", exclude=set(exclude)), sort_keys=True))


def _fields_at(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Field names of the sub-model reached by following `loc` from `model`."""
    current: Any = model
    for part in loc:
        if isinstance(part, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        field = current.model_fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _model_in(annotation: Any) -> Any:
    """The BaseModel class inside an annotation such as `list[X]` or `X | None`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def format_validation_error(error: ValidationError, source: str, model: type[BaseModel]) -> str:
    lines = [f"invalid recipe {source}:"]
    for item in error.errors():
        loc = tuple(item["loc"])
        where = ".".join(str(p) for p in loc) or "(top level)"
        if item["type"] == "extra_forbidden":
            known = _fields_at(model, loc[:-1])
            lines.append(f"  unknown key '{loc[-1]}' at '{where}'{did_you_mean(str(loc[-1]), known)}")
        else:
            lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        parts = key.strip().split(".")
        if not sep:
            raise EdgemodError(f"override '{override}' has no '='", "write it as key.sub=value, e.g. distill.epochs=3")
        if not all(parts):
            raise EdgemodError(f"override '{override}' has an empty key", "write it as key.sub=value, e.g. distill.epochs=3")
        node = data
        for depth, part in enumerate(parts[:-1]):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                where = ".".join(parts[:depth + 1])
                raise EdgemodError(f"override '{override}': '{where}' is a {type(node).__name__}, not a mapping, "
                                   "so it has no keys to set",
                                   f"set the whole value instead, e.g. --set '{where}=[a, b]' (YAML syntax)")
        try:
            node[parts[-1]] = yaml.safe_load(raw)
        except ValueError as error:  # an integer of over 4300 digits: Python refuses to read it
            raise EdgemodError(f"override '{key.strip()}=...': the value is out of range ({str(error).split(':')[0]})",
                               f"set {key.strip()} to a number of a sensible size") from None
        except yaml.YAMLError as error:
            raise EdgemodError(f"override '{override}': the value is not valid YAML ({yaml_problem(error)})",
                               "quote it as YAML, e.g. --set 'distill={epochs: 3}' or --set 'name=\"a: b\"'") from None
    return data


def override_section(override: str) -> str:
    """The top-level recipe section an `a.b.c=value` override sets (`a`)."""
    return override.split("=", 1)[0].strip().split(".", 1)[0]


def split_overrides(overrides: list[str]) -> tuple[list[str], list[str]]:
    """Overrides that shape the trained student, and those of `POST_TRAINING` sections.

    Returns:
        `(training, post_training)`: export targets and budgets may change after training without
        re-training; every other override must reach the train stage.
    """
    training = [o for o in overrides if override_section(o) not in POST_TRAINING]
    return training, [o for o in overrides if override_section(o) in POST_TRAINING]


def parse_recipe(data: dict[str, Any], source: str = "<dict>") -> Recipe:
    try:
        return Recipe.model_validate(data)
    except ValidationError as error:
        raise EdgemodError(
            format_validation_error(error, source, Recipe), "edit the recipe and run again"
        ) from None


def load_recipe(path: str | Path, overrides: list[str] | None = None) -> Recipe:
    """Read and validate a recipe YAML file, applying `key=value` overrides."""
    from edgemod.fsutil import read_user_text

    path = Path(path)
    if not path.exists():
        raise EdgemodError(f"recipe not found: {path}", "check the path; shipped recipes are in recipes/")
    text = read_user_text(path, "recipe")
    try:
        data = yaml.safe_load(text)
    except (yaml.YAMLError, ValueError) as error:  # ValueError: an integer of over 4300 digits
        raise EdgemodError(f"recipe {path} is not valid YAML: {yaml_problem(error)}",
                           "fix the YAML at that position (indentation, a missing ':' or an unclosed quote or bracket)") from None
    if data is None:
        raise EdgemodError(f"recipe {path} is empty", "start from a shipped recipe in recipes/, e.g. recipes/text-hate.yaml")
    if not isinstance(data, dict):
        raise EdgemodError(f"recipe {path} must be a mapping at the top level (name:, task:, labels:, data:, ...), "
                           f"not a {type(data).__name__}",
                           "start from a shipped recipe in recipes/, e.g. recipes/text-hate.yaml")
    return parse_recipe(apply_overrides(data, overrides or []), str(path))
