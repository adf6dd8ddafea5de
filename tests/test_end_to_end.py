"""The real pipeline through the CLI on real SMS data: a real teacher (TF-IDF + logistic regression
fitted on the SMS train split, served by the `sklearn` kind) -> label -> distil."""
import json

import joblib
import pytest

from edgemod.catalog import load_split
from edgemod.cli import main


@pytest.fixture(scope="module")
def sms_teacher(tmp_path_factory):
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    train = load_split("sms_spam:train")
    model = make_pipeline(TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2),
                          LogisticRegression(C=10, max_iter=2000)).fit(train["text"], train["label"])
    path = tmp_path_factory.mktemp("teacher") / "sms_tfidf.joblib"
    joblib.dump(model, path)
    return path


def test_label_then_train_through_the_cli(tmp_path, sms_teacher):
    caps = ["--set", "data.max_items_per_split=400", "--set", "distill.epochs=3",
            "--set", f"teachers=[{{name: tfidf, kind: sklearn, path: '{sms_teacher}'}}]",
            "--set", "student.init_embeddings_from=null", "--set", "student.vocab_size=2000"]
    assert main(["label", "recipes/quickstart.yaml", "--out", str(tmp_path / "label"), *caps]) == 0
    assert main(["train", str(tmp_path / "label"), "--out", str(tmp_path / "train")]) == 0
    manifest = json.loads((tmp_path / "train" / "manifest.json").read_text())
    test = manifest["metrics"]["test"]
    assert test["teacher"]["per_class"]["spam"]["auroc"] > 0.95
    assert test["student"]["per_class"]["spam"]["auroc"] > 0.85  # 400 messages, 3 epochs: real signal
    assert test["student"]["n"] == 400
    assert main(["train", str(tmp_path / "label"), "--out", str(tmp_path / "train")]) == 0
    again = json.loads((tmp_path / "train" / "manifest.json").read_text())
    assert again["created_at"] == manifest["created_at"]  # nothing re-done

    # export + quantize (the recipe's targets) and verify parity on the real test split
    assert main(["export", str(tmp_path / "train"), "--out", str(tmp_path / "export")]) == 0
    exported = json.loads((tmp_path / "export" / "manifest.json").read_text())
    summary = exported["metrics"]["summary"]["artifacts"]
    assert set(summary) == {"tflite_fp32", "tflite_int8_dynamic", "coreml_fp16", "coreml_w8", "onnx_fp32",
                            "onnx_int8_dynamic"}
    assert summary["tflite_fp32"]["decision_agreement"] == 1.0
    assert summary["tflite_int8_dynamic"]["decision_agreement"] >= 0.99
    assert summary["onnx_int8_dynamic"]["decision_agreement"] >= 0.99
    assert summary["tflite_int8_dynamic"]["size_mb"] < summary["tflite_fp32"]["size_mb"] / 2
    assert exported["details"]["artifacts"]["tflite_int8_dynamic"]["parity"]["items"] == 400


def test_cli_reports_user_errors_with_a_fix(tmp_path, capsys):
    assert main(["train", str(tmp_path / "missing"), "--out", str(tmp_path / "t")]) == 2
    assert "fix:" in capsys.readouterr().err
