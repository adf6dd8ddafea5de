"""Local teachers: onnx (string and token input, the hatesonar preset and its locale), sklearn,
tf and precomputed scores. Everything here is tiny or shipped in a wheel, so it runs in seconds."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import sha256_file, sha256_text
from edgemod.locales import ensure_locale, locale_loads, locale_scope
from edgemod.recipe import parse_recipe
from edgemod.training.teachers import onnx_teacher, sklearn_teacher, tf_teacher
from edgemod.training.teachers.base import Item, Teacher, TeacherContext, build_teacher

BENIGN = [
    "I hope you have a wonderful day with your family",
    "The weather is lovely this morning, let's go for a walk",
    "Thanks for the help with my homework yesterday",
]
OFFENSIVE = [
    "you stupid fucking bitch, shut up",
    "fuck you, you worthless piece of shit",
    "go back to your country you dirty faggot",
]


def build(spec: dict, labels: list[str] | None = None) -> Teacher:
    """Build a teacher the way the pipeline does: through the registry with a recipe context."""
    recipe = parse_recipe({
        "name": "t", "labels": labels or ["a", "b"],
        "data": {"train": "x:train", "validation": "x:validation", "test": "x:test"},
        "teachers": [spec], "student": {"arch": "text_cnn_small"},
    })
    teacher = build_teacher(recipe.teachers[0], TeacherContext(recipe=recipe))
    assert isinstance(teacher, Teacher)
    return teacher


def items(texts: list[str]) -> list[Item]:
    return [Item(f"x:test:{i}", text) for i, text in enumerate(texts)]


def assert_distributions(probs: np.ndarray, n: int, k: int) -> None:
    assert probs.shape == (n, k) and probs.dtype == np.float32
    assert ((probs >= 0) & (probs <= 1)).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.fixture(autouse=True)
def locale_cache(tmp_path_factory, monkeypatch):
    """Compiled locales go to a test folder, never to ~/.cache."""
    monkeypatch.setenv("EDGEMOD_LOCALE_DIR", str(tmp_path_factory.getbasetemp() / "locales"))


def hatesonar_model() -> Path:
    return onnx_teacher.PRESETS["hatesonar"].model_path()


# --- onnx: hatesonar preset ----------------------------------------------------------------------

def test_hatesonar_preset_scores_offensive_above_benign():
    before = os.environ.get("LOCPATH")
    teacher = build({"kind": "onnx", "path": "hatesonar"})
    assert teacher.labels == ["hate_speech", "offensive_language", "neither"]
    assert os.environ.get("LOCPATH") == before  # the locale fix does not leak into the process env

    probs = teacher.predict_proba(items(BENIGN + OFFENSIVE))
    assert_distributions(probs, 6, 3)
    abusive = probs[:, 0] + probs[:, 1]
    assert abusive[3:].min() > abusive[:3].max()
    assert (probs[:3, 2] > 0.5).all()
    assert sha256_file(hatesonar_model()) in teacher.identity()


def test_hatesonar_matches_package_api_and_batches():
    teacher = build({"kind": "onnx", "options": {"preset": "hatesonar", "batch_size": 2, "threads": 1}})
    texts = BENIGN + OFFENSIVE
    probs = teacher.predict_proba(items(texts))
    raw = teacher.session.run(None, {"text": np.array(texts, dtype=object)})[1]
    expected = np.array([[row[k] for k in (0, 1, 2)] for row in raw], dtype=np.float32)
    np.testing.assert_allclose(probs, expected, atol=1e-6)
    assert teacher.predict_proba([]).shape == (0, 3)


def test_onnx_preset_and_path_errors_say_how_to_fix(tmp_path):
    with pytest.raises(EdgemodError, match="did you mean 'hatesonar'"):
        build({"kind": "onnx", "path": "hatesoner"})
    with pytest.raises(EdgemodError, match="unknown onnx preset 'hatesoner'.*did you mean"):
        build({"kind": "onnx", "options": {"preset": "hatesoner"}})
    with pytest.raises(EdgemodError, match="not found"):
        build({"kind": "onnx", "path": str(tmp_path / "missing.onnx")})
    with pytest.raises(EdgemodError, match="unknown option 'tokeniser'.*did you mean 'tokenizer'"):
        build({"kind": "onnx", "path": "hatesonar", "options": {"tokeniser": "x"}})
    with pytest.raises(EdgemodError, match="no output 'probability'.*did you mean 'output_probability'"):
        build({"kind": "onnx", "path": "hatesonar", "options": {"output_name": "probability"}})


def test_onnx_text_model_without_labels_asks_for_them():
    with pytest.raises(EdgemodError, match="gives 3 scores but no label names") as error:
        build({"kind": "onnx", "path": str(hatesonar_model())})
    assert "options.labels" in error.value.hint


def test_sklearn_onnx_string_labels_come_from_the_zipmap(tmp_path):
    skl2onnx = pytest.importorskip("skl2onnx")
    from skl2onnx.common.data_types import StringTensorType

    pipeline = fit_tiny_pipeline()
    onx = skl2onnx.convert_sklearn(pipeline, initial_types=[("input", StringTensorType([None, 1]))])
    (tmp_path / "tfidf.onnx").write_bytes(onx.SerializeToString())
    texts = ["you are an idiot", "lovely day"]
    expected = pipeline.predict_proba(texts)  # classes_ ["bad", "ok"]

    teacher = build({"kind": "onnx", "path": str(tmp_path / "tfidf.onnx")})
    assert teacher.labels == ["bad", "ok"]
    np.testing.assert_allclose(teacher.predict_proba(items(texts)), expected, atol=1e-5)
    # Labels that name the classes pick them by name, whatever order they are given in.
    reordered = build({"kind": "onnx", "path": str(tmp_path / "tfidf.onnx"),
                       "options": {"labels": ["ok", "bad"]}})
    np.testing.assert_allclose(reordered.predict_proba(items(texts)), expected[:, ::-1], atol=1e-5)


# --- the locale the hatesonar model needs --------------------------------------------------------

def test_ensure_locale_is_a_no_op_when_the_system_has_it():
    assert ensure_locale("C.UTF-8") is None


def test_ensure_locale_compiles_a_missing_locale(tmp_path, monkeypatch):
    # An empty LOCPATH hides the system's locales, so en_US.UTF-8 is missing on any machine.
    monkeypatch.setenv("LOCPATH", str(tmp_path / "empty"))
    monkeypatch.setenv("EDGEMOD_LOCALE_DIR", str(tmp_path / "cache"))
    assert not locale_loads("en_US.UTF-8")

    root = ensure_locale("en_US.UTF-8")
    assert root == tmp_path / "cache"
    assert (root / "en_US.UTF-8" / "LC_CTYPE").exists()
    assert os.environ["LOCPATH"].split(os.pathsep)[0] == str(root)
    assert locale_loads("en_US.UTF-8")
    assert ensure_locale("en_US.UTF-8") is None  # second call: already loadable


def test_locpath_set_in_process_fixes_onnxruntime(tmp_path):
    """Fresh process, locale missing: the session fails, then works once ensure_locale ran."""
    script = textwrap.dedent(f"""
        import onnxruntime as ort
        from edgemod.locales import ensure_locale
        model = {str(hatesonar_model())!r}
        try:
            ort.InferenceSession(model, providers=["CPUExecutionProvider"])
            print("LOADED-WITHOUT-LOCALE")
        except Exception as error:
            print("FAILED:", "Failed to construct locale" in str(error))
        ensure_locale("en_US.UTF-8")
        ort.InferenceSession(model, providers=["CPUExecutionProvider"])
        print("LOADED")
    """)
    env = dict(os.environ, LOCPATH=str(tmp_path / "empty"), EDGEMOD_LOCALE_DIR=str(tmp_path / "cache"))
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True,
                            cwd=Path(__file__).parents[1], timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["FAILED:", "True", "LOADED"]


def test_onnx_teacher_builds_the_locale_a_plain_model_asks_for(tmp_path, monkeypatch):
    """Not a preset: the locale is read from onnxruntime's error, built, and the load retried."""
    monkeypatch.setenv("LOCPATH", str(tmp_path / "empty"))
    monkeypatch.setenv("EDGEMOD_LOCALE_DIR", str(tmp_path / "cache"))
    teacher = build({"kind": "onnx", "path": str(hatesonar_model()),
                     "options": {"labels": ["hate", "offensive", "neither"]}})
    assert os.environ["LOCPATH"] == str(tmp_path / "empty")  # restored after loading
    assert_distributions(teacher.predict_proba(items(BENIGN)), 3, 3)


def test_missing_localedef_error_says_how_to_fix(tmp_path, monkeypatch):
    monkeypatch.setenv("LOCPATH", str(tmp_path / "empty"))
    monkeypatch.setenv("EDGEMOD_LOCALE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr("edgemod.locales.shutil.which", lambda name: None)
    with pytest.raises(EdgemodError, match="localedef is not installed") as error:
        with locale_scope("en_US.UTF-8"):
            pass
    assert "apt-get install locales" in error.value.hint and "LOCPATH" in error.value.hint
    assert os.environ["LOCPATH"] == str(tmp_path / "empty")


# --- onnx: token-input model ---------------------------------------------------------------------

TRAIN_TEXTS = ["you are great", "you are awful", "what a lovely day", "what an awful idiot",
               "great work friend", "shut up idiot"]


@pytest.fixture(scope="module")
def token_model(tmp_path_factory):
    """A tiny torch bag-of-embeddings classifier exported to ONNX, with a WordLevel tokenizer."""
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    root = tmp_path_factory.mktemp("token_model")
    tokenizer = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.train_from_iterator(TRAIN_TEXTS, trainers.WordLevelTrainer(special_tokens=["[PAD]", "[UNK]"]))
    (root / "tokenizer").mkdir()
    tokenizer.save(str(root / "tokenizer" / "tokenizer.json"))

    class BagClassifier(torch.nn.Module):
        def __init__(self, vocab: int):
            super().__init__()
            self.embed = torch.nn.Embedding(vocab, 8)
            self.head = torch.nn.Linear(8, 3)

        def forward(self, input_ids, attention_mask):
            mask = attention_mask.unsqueeze(-1).float()
            pooled = (self.embed(input_ids) * mask).sum(1) / mask.sum(1).clamp(min=1)
            return self.head(pooled)

    torch.manual_seed(0)
    model = BagClassifier(tokenizer.get_vocab_size()).eval()
    dummy = (torch.ones(2, 5, dtype=torch.long), torch.ones(2, 5, dtype=torch.long))
    torch.onnx.export(model, dummy, str(root / "model.onnx"), dynamo=False, opset_version=18,
                      input_names=["input_ids", "attention_mask"], output_names=["logits"],
                      dynamic_axes={"input_ids": {0: "batch", 1: "seq"},
                                    "attention_mask": {0: "batch", 1: "seq"}, "logits": {0: "batch"}})
    return root, model, tokenizer


def torch_logits(model, tokenizer, texts: list[str]) -> np.ndarray:
    import torch

    tokenizer.enable_padding(pad_id=tokenizer.token_to_id("[PAD]"))
    encodings = tokenizer.encode_batch(texts)
    ids = torch.tensor([e.ids for e in encodings])
    mask = torch.tensor([e.attention_mask for e in encodings])
    with torch.no_grad():
        return model(ids, mask).numpy()


def test_token_input_onnx_matches_torch(token_model):
    root, model, tokenizer = token_model
    texts = ["you are great", "shut up you awful idiot", "a lovely friend", "zzz unknown words here"]
    teacher = build({"kind": "onnx", "path": str(root / "model.onnx"),
                     "options": {"tokenizer": str(root / "tokenizer"), "labels": ["x", "y", "z"],
                                 "batch_size": 3, "max_length": 16}})
    assert teacher.options.output == "logits"  # inferred from the output name
    probs = teacher.predict_proba(items(texts))
    logits = torch_logits(model, tokenizer, texts)
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    assert_distributions(probs, 4, 3)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert np.ptp(probs, axis=0).max() > 1e-3  # inputs give different scores: the check means something
    assert sha256_file(root / "model.onnx") in teacher.identity()


def test_token_input_onnx_multi_label_uses_sigmoid(token_model):
    root, model, tokenizer = token_model
    texts = ["you are great", "shut up idiot"]
    teacher = build({"kind": "onnx", "path": str(root / "model.onnx"),
                     "options": {"tokenizer": str(root / "tokenizer"), "labels": ["x", "y", "z"],
                                 "multi_label": True}})
    expected = 1 / (1 + np.exp(-torch_logits(model, tokenizer, texts)))
    np.testing.assert_allclose(teacher.predict_proba(items(texts)), expected, atol=1e-5)
    assert teacher.multi_label


def test_token_input_onnx_needs_a_tokenizer(token_model):
    root, _, _ = token_model
    with pytest.raises(EdgemodError, match="takes token ids") as error:
        build({"kind": "onnx", "path": str(root / "model.onnx"), "options": {"labels": ["x", "y", "z"]}})
    assert "options.tokenizer" in error.value.hint
    with pytest.raises(EdgemodError, match="not probabilities"):
        teacher = build({"kind": "onnx", "path": str(root / "model.onnx"),
                         "options": {"tokenizer": str(root / "tokenizer"), "labels": ["x", "y", "z"],
                                     "output": "probabilities"}})
        teacher.predict_proba(items(["you are great", "shut up idiot", "what a lovely day"]) * 10)


# --- sklearn -------------------------------------------------------------------------------------

def test_alt_profanity_check_preset():
    teacher = build({"kind": "sklearn", "path": "alt-profanity-check"})
    assert teacher.labels == ["clean", "profane"]
    probs = teacher.predict_proba(items(BENIGN + OFFENSIVE))
    assert_distributions(probs, 6, 2)
    assert probs[3:, 1].min() > probs[:3, 1].max()
    model_file, vectorizer_file = sklearn_teacher.PRESETS["alt-profanity-check"].paths()
    assert sha256_file(model_file) in teacher.identity()
    assert sha256_file(vectorizer_file) in teacher.identity()


def fit_tiny_pipeline():
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    labels = ["ok", "bad", "ok", "bad", "ok", "bad"]
    return make_pipeline(TfidfVectorizer(), LogisticRegression(C=10)).fit(TRAIN_TEXTS, labels)


def test_sklearn_pipeline_and_separate_vectorizer(tmp_path):
    import joblib

    pipeline = fit_tiny_pipeline()
    joblib.dump(pipeline, tmp_path / "pipe.joblib")
    joblib.dump(pipeline[0], tmp_path / "vec.joblib")
    joblib.dump(pipeline[-1], tmp_path / "clf.joblib")
    texts = ["you are an idiot", "lovely day", "something else entirely"]
    expected = pipeline.predict_proba(texts)

    whole = build({"kind": "sklearn", "path": str(tmp_path / "pipe.joblib"), "options": {"batch_size": 2}})
    assert whole.labels == ["bad", "ok"]  # classes_, stringified
    np.testing.assert_allclose(whole.predict_proba(items(texts)), expected, atol=1e-6)

    split = build({"kind": "sklearn", "path": str(tmp_path / "clf.joblib"),
                   "options": {"vectorizer": str(tmp_path / "vec.joblib"), "labels": ["offensive", "fine"]}})
    assert split.labels == ["offensive", "fine"]
    np.testing.assert_allclose(split.predict_proba(items(texts)), expected, atol=1e-6)
    assert whole.identity() != split.identity()


def test_sklearn_version_warning_is_recorded_not_shown(tmp_path, monkeypatch):
    import joblib
    import sklearn.base
    from sklearn.exceptions import InconsistentVersionWarning

    monkeypatch.setattr(sklearn.base, "__version__", "0.24.2")  # pretend an old sklearn pickled it
    joblib.dump(fit_tiny_pipeline(), tmp_path / "old.joblib")
    monkeypatch.undo()
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        teacher = build({"kind": "sklearn", "path": str(tmp_path / "old.joblib")})
    assert not [w for w in shown if issubclass(w.category, InconsistentVersionWarning)]
    assert any("pickled with scikit-learn 0.24.2" in note for note in teacher.load_warnings)


def test_sklearn_errors_say_how_to_fix(tmp_path):
    import joblib
    from sklearn.svm import LinearSVC

    with pytest.raises(EdgemodError, match="did you mean 'alt-profanity-check'"):
        build({"kind": "sklearn", "path": "alt-profanity-chek"})
    with pytest.raises(EdgemodError, match="unknown option 'vectoriser'.*did you mean 'vectorizer'"):
        build({"kind": "sklearn", "path": "alt-profanity-check", "options": {"vectoriser": "v"}})
    joblib.dump(LinearSVC().fit([[0.0], [1.0]], [0, 1]), tmp_path / "svm.joblib")
    with pytest.raises(EdgemodError, match="no predict_proba"):
        build({"kind": "sklearn", "path": str(tmp_path / "svm.joblib")})
    joblib.dump(fit_tiny_pipeline(), tmp_path / "pipe.joblib")
    with pytest.raises(EdgemodError, match="3 names but"):
        build({"kind": "sklearn", "path": str(tmp_path / "pipe.joblib"),
               "options": {"labels": ["a", "b", "c"]}})


# --- tf ------------------------------------------------------------------------------------------

def tensorflow_or_skip():
    # Not pytest.importorskip("tensorflow") directly: that would import TF before triton, which
    # segfaults the torch tooling later in this process. import_tensorflow orders them.
    import importlib.util

    if importlib.util.find_spec("tensorflow") is None:
        pytest.skip("tensorflow is not installed (pip install 'edgemod[tf]')")
    tf_teacher.import_tensorflow()
    return pytest.importorskip("tensorflow")


@pytest.fixture(scope="module")
def keras_model(tmp_path_factory):
    """TextVectorization + Embedding + pooling + softmax, trained a few steps, saved both ways."""
    tf = tensorflow_or_skip()
    import keras

    keras.utils.set_random_seed(0)
    root = tmp_path_factory.mktemp("keras_model")
    vectorize = keras.layers.TextVectorization(max_tokens=64, output_sequence_length=8)
    vectorize.adapt(TRAIN_TEXTS)
    text = keras.Input(shape=(1,), dtype="string", name="text")
    hidden = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(64, 8)(vectorize(text)))
    model = keras.Model(text, keras.layers.Dense(3, activation="softmax")(hidden))
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy")
    model.fit(tf.constant(TRAIN_TEXTS)[:, None], np.array([0, 1, 2, 1, 0, 2]), epochs=5, verbose=0)
    model.save(root / "model.keras")
    model.export(str(root / "saved"), verbose=False)
    return root, model


@pytest.mark.parametrize("artifact", ["model.keras", "saved"])
def test_tf_teacher_matches_keras_predict(keras_model, artifact):
    tf = tensorflow_or_skip()
    root, model = keras_model
    texts = ["you are great", "shut up idiot", "what a lovely day", "never seen words", ""]
    teacher = build({"kind": "tf", "path": str(root / artifact),
                     "options": {"labels": ["x", "y", "z"], "batch_size": 2}})
    probs = teacher.predict_proba(items(texts))
    expected = model.predict(tf.constant(texts)[:, None], verbose=0)
    assert_distributions(probs, 5, 3)
    np.testing.assert_allclose(probs, expected, atol=1e-5)
    assert np.ptp(probs, axis=0).max() > 1e-3


def test_tf_teacher_errors(keras_model):
    root, _ = keras_model
    with pytest.raises(EdgemodError, match="needs options.labels"):
        build({"kind": "tf", "path": str(root / "model.keras")})
    with pytest.raises(EdgemodError, match="no signature 'serving_defualt'.*did you mean 'serving_default'"):
        build({"kind": "tf", "path": str(root / "saved"),
               "options": {"labels": ["x", "y", "z"], "signature": "serving_defualt"}})


def test_import_tensorflow_loads_triton_first():
    import importlib.util

    tensorflow_or_skip()
    if importlib.util.find_spec("triton") is not None:
        assert "triton" in sys.modules


@pytest.mark.slow
def test_torch_tooling_imports_after_import_tensorflow(tmp_path):
    """The stack-probe segfault: `import tensorflow, coremltools` dies (rc 139); our order works."""
    tensorflow_or_skip()
    script = ("from training.teachers.tf_teacher import import_tensorflow\n"
              "import_tensorflow()\nimport coremltools, torch._dynamo\nprint('ok')\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=Path(__file__).parents[1], timeout=300)
    assert result.returncode == 0 and result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def test_tf_teacher_without_tensorflow_names_the_extra(monkeypatch):
    monkeypatch.setattr(tf_teacher, "_tensorflow_installed", lambda: False)
    with pytest.raises(MissingDependencyError, match="tensorflow") as error:
        build({"kind": "tf", "path": ".", "options": {"labels": ["x", "y"]}})
    assert error.value.hint == "pip install 'edgemod[tf]'"


# --- scores --------------------------------------------------------------------------------------

SCORE_TEXTS = ["hello there", "NA", "you idiot", "00123"]  # "NA" and "00123" must stay texts in CSV
SCORE_ROWS = np.array([[0.9, 0.1], [0.5, 0.5], [0.2, 0.8], [0.7, 0.3]])


def write_scores(path: Path, match: str, values: np.ndarray = SCORE_ROWS, drop: int | None = None) -> Path:
    import pandas as pd

    keys = {"key": [item.key for item in items(SCORE_TEXTS)], "text": SCORE_TEXTS,
            "text_sha256": [sha256_text(text) for text in SCORE_TEXTS]}[match]
    frame = pd.DataFrame({match: keys, "clean": values[:, 0], "toxic": values[:, 1], "note": "x"})
    frame = frame.iloc[::-1]  # file order differs from item order
    if drop is not None:
        frame = frame[frame[match] != keys[drop]]
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(row) + "\n" for row in frame.to_dict("records")))
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
@pytest.mark.parametrize("match", ["key", "text", "text_sha256"])
def test_scores_file_for_each_format_and_match(tmp_path, suffix, match):
    path = write_scores(tmp_path / f"scores{suffix}", match)
    teacher = build({"kind": "scores", "path": str(path), "options": {"match": match}})
    assert teacher.labels == ["clean", "toxic"]  # every numeric column but the key
    assert not teacher.multi_label
    probs = teacher.predict_proba(items(SCORE_TEXTS)[::-1])
    assert probs.dtype == np.float32
    np.testing.assert_allclose(probs, SCORE_ROWS[::-1], atol=1e-7)
    assert sha256_file(path) in teacher.identity()


def test_scores_missing_items_are_an_error_with_the_fix(tmp_path):
    path = write_scores(tmp_path / "scores.csv", "key", drop=2)
    teacher = build({"kind": "scores", "path": str(path)})
    with pytest.raises(EdgemodError, match=r"no row for 1 of 4 items.*'x:test:2'") as error:
        teacher.predict_proba(items(SCORE_TEXTS))
    assert "score them or drop them from the recipe's data" in error.value.hint


def test_scores_out_of_range_is_an_error_unless_logits(tmp_path):
    logits = np.array([[2.0, -1.0], [0.0, 0.0], [-3.0, 4.0], [1.5, 0.5]])
    path = write_scores(tmp_path / "scores.parquet", "key", values=logits)
    with pytest.raises(EdgemodError, match="not probabilities") as error:
        build({"kind": "scores", "path": str(path)})
    assert "options.output: logits" in error.value.hint

    teacher = build({"kind": "scores", "path": str(path), "options": {"output": "logits", "labels": ["toxic"],
                                                                       "multi_label": True}})
    expected = 1 / (1 + np.exp(-logits[:, 1:]))
    np.testing.assert_allclose(teacher.predict_proba(items(SCORE_TEXTS)), expected, atol=1e-6)
    softmax = build({"kind": "scores", "path": str(path), "options": {"output": "logits"}})
    assert_distributions(softmax.predict_proba(items(SCORE_TEXTS)), 4, 2)


def test_scores_file_errors_say_how_to_fix(tmp_path):
    path = write_scores(tmp_path / "scores.csv", "text")
    with pytest.raises(EdgemodError, match="no key column 'key'"):
        build({"kind": "scores", "path": str(path)})
    with pytest.raises(EdgemodError, match="no column 'toxc'.*did you mean 'toxic'"):
        build({"kind": "scores", "path": str(path), "options": {"match": "text", "labels": ["toxc"]}})
    with pytest.raises(EdgemodError, match="not found"):
        build({"kind": "scores", "path": str(tmp_path / "nope.csv")})
    with pytest.raises(EdgemodError, match="unknown option 'mach'"):
        build({"kind": "scores", "path": str(path), "options": {"mach": "text"}})
