"""The `sklearn` teacher: a joblib/pickle text classifier with `predict_proba`.

Either a whole Pipeline (texts in, probabilities out), or a classifier plus a separate vectorizer
file (`options.vectorizer`). Labels default to the classifier's `classes_`, stringified.

```yaml
teachers:
  - {kind: sklearn, path: alt-profanity-check}   # preset: vectorizer + model from the wheel
  - {kind: sklearn, path: models/tfidf-lr.joblib, map: {"1": offensive, "0": normal}}
```

Pickles run code when loaded: point this teacher only at model files you trust.
"""
from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from pydantic import Field

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file
from edgemod.recipe import TeacherSpec
from edgemod.training.teachers import common
from edgemod.training.teachers.base import Item, TeacherContext, register_teacher
from edgemod.training.teachers.onnx_teacher import package_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SklearnPreset:
    """A vectorizer + classifier pair shipped inside an installed Python package."""

    package: str
    model: str
    vectorizer: str | None
    labels: tuple[str, ...]
    distribution: str

    def paths(self) -> tuple[Path, Path | None]:
        feature = f"the sklearn preset '{self.distribution}'"
        model = package_file(self.package, self.model, feature)
        vectorizer = package_file(self.package, self.vectorizer, feature) if self.vectorizer else None
        return model, vectorizer


PRESETS = {
    # TF-IDF + calibrated linear SVM; classes_ [0, 1] = clean, profane.
    "alt-profanity-check": SklearnPreset("profanity_check", "data/model.joblib", "data/vectorizer.joblib",
                                         ("clean", "profane"), "alt-profanity-check"),
}


class SklearnOptions(common.TeacherOptions):
    preset: str | None = Field(None, description=f"a packaged model: {', '.join(PRESETS)}")
    vectorizer: str | None = Field(None, description="a separate fitted vectorizer file (joblib/pickle)")
    batch_size: int = Field(1024, ge=1)


class SklearnTeacher:
    """Scores texts with `[vectorizer.transform ->] model.predict_proba`."""

    def __init__(self, model_path: Path, vectorizer_path: Path | None, options: SklearnOptions,
                 labels: list[str] | None = None):
        self.model_path = model_path
        self.vectorizer_path = vectorizer_path
        self.options = options.model_copy(update={"output": options.output or "probabilities"})
        self.batch_size = options.batch_size
        self.multi_label = options.multi_label
        self.load_warnings: list[str] = []  # version mismatches seen while unpickling
        self.model = self._load(model_path)
        self.vectorizer = self._load(vectorizer_path) if vectorizer_path else None
        if not hasattr(self.model, "predict_proba"):
            raise EdgemodError(
                f"{model_path} holds a {type(self.model).__name__}, which has no predict_proba",
                "save a classifier with probabilities (e.g. LogisticRegression, or wrap it in "
                "CalibratedClassifierCV)",
            )
        self.labels = _labels(labels, self.model, model_path)

    def _load(self, path: Path):
        model, notes = load_pickled(path)
        self.load_warnings.extend(notes)
        return model

    def identity(self) -> str:
        import sklearn

        return common.identity_string(
            kind="sklearn", model_sha256=self._hashes[0], vectorizer_sha256=self._hashes[1],
            preset=self.options.preset, labels=self.labels, output=self.options.output,
            activation=self.options.resolved_activation, sklearn=sklearn.__version__,
        )

    @cached_property
    def _hashes(self) -> tuple[str, str | None]:
        vectorizer = sha256_file(self.vectorizer_path) if self.vectorizer_path else None
        return sha256_file(self.model_path), vectorizer

    def predict_proba(self, items: Sequence[Item]) -> np.ndarray:
        return common.score_in_batches(items, self.batch_size, len(self.labels), self._score)

    def _score(self, texts: list[str]) -> np.ndarray:
        features = self.vectorizer.transform(texts) if self.vectorizer is not None else texts
        raw = self.model.predict_proba(features)
        if isinstance(raw, list):  # MultiOutputClassifier: one [n, 2] array per label
            raw = np.stack([np.asarray(part)[:, -1] for part in raw], axis=1)
        probs = self.options.to_probabilities(raw)
        return common.check_width(probs, self.labels, f"sklearn model {self.model_path.name}")


def load_pickled(path: Path):
    """Load a joblib or pickle file; return (object, version-mismatch notes).

    scikit-learn warns (InconsistentVersionWarning) for every estimator pickled by another
    version; that is noise for a known teacher, so it is recorded and logged once, not shown.
    """
    import joblib
    from sklearn.exceptions import InconsistentVersionWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InconsistentVersionWarning)
        model = _unpickle(path, joblib)
    notes = []
    for warning in caught:
        if issubclass(warning.category, InconsistentVersionWarning):
            message = warning.message
            notes.append(f"{path.name}: {message.estimator_name} pickled with scikit-learn "
                         f"{message.original_sklearn_version}, loaded with {message.current_sklearn_version}")
        else:  # anything else is news: show it as usual
            warnings.showwarning(warning.message, warning.category, warning.filename, warning.lineno)
    if notes:
        log.info("scikit-learn version mismatch while loading %s: %s", path, "; ".join(notes))
    return model, notes


def _unpickle(path: Path, joblib):
    try:
        if path.suffix in (".pkl", ".pickle"):
            import pickle

            with open(path, "rb") as handle:
                return pickle.load(handle)
        return joblib.load(path)
    except (ModuleNotFoundError, AttributeError) as error:
        raise EdgemodError(f"cannot unpickle {path}: {error}",
                           "install the packages (and versions) the model was saved with") from None


def _labels(given: list[str] | None, model, path: Path) -> list[str]:
    """The given labels (checked against classes_) or classes_ stringified."""
    classes = getattr(model, "classes_", None)
    if classes is not None and np.asarray(classes, dtype=object).ndim == 1:
        classes = [str(label) for label in classes]
    else:
        classes = None  # MultiOutputClassifier and friends: one classes_ array per label
    if given and classes and len(given) != len(classes):
        raise EdgemodError(f"options.labels has {len(given)} names but {path} has classes {classes}",
                           "give one name per class, in classes_ order")
    if given or classes:
        return list(given or classes)
    raise EdgemodError(f"cannot read label names from {path} (no 1-D classes_)",
                       "set options.labels to one name per predict_proba column")


def _resolve(spec: TeacherSpec, options: SklearnOptions) -> tuple[Path, Path | None, SklearnPreset | None]:
    name = common.preset_name("sklearn", spec, options.preset, PRESETS)
    if name is not None:
        return *PRESETS[name].paths(), PRESETS[name]
    model = common.model_file("sklearn", spec, PRESETS, "a joblib/pickle file")
    vectorizer = None
    if options.vectorizer:
        vectorizer = common.require_path(options.vectorizer, "sklearn vectorizer",
                                  "set options.vectorizer to the fitted vectorizer's joblib file")
    return model, vectorizer, None


@register_teacher("sklearn")
def build_sklearn_teacher(spec: TeacherSpec, context: TeacherContext) -> SklearnTeacher:
    options = common.parse_options(SklearnOptions, spec)
    model, vectorizer, preset = _resolve(spec, options)
    if preset is not None:
        options = options.model_copy(update={"preset": preset.distribution})
    labels = options.labels or (list(preset.labels) if preset else None)
    return SklearnTeacher(model, vectorizer, options, labels)
