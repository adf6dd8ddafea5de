"""The bench report: one self-contained HTML page, built here from a tiny fake bench folder."""
from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from edgemod.benchmarks.report import TITLES, write_report

TEXT_LABELS = ["normal", "offensive", "hatespeech"]
VISION_LABELS = ["none", "firearm", "knife"]
COREML_REASON = "Core ML predictions need macOS"
IMG = '<img src="data:image/png;base64,'
GATE = {"verdict": "fail", "baseline": None, "checks": [
    {"name": "size_mb", "subject": "tflite_int8_dynamic", "value": 1.4, "budget": 2.0, "passed": True,
     "detail": "1.40 MB <= 2.0 MB"},
    {"name": "min_decision_agreement", "subject": "tflite_int8_dynamic", "value": 0.97, "budget": 0.995,
     "passed": False, "detail": "agreement <0.995> & too low"},
    {"name": "latency_p50", "subject": "tflite_int8_dynamic", "value": 0.06, "budget": 1.0, "passed": True,
     "detail": "fast enough"}]}


def _probs(rng, gold: np.ndarray, n_labels: int, noise: float = 1.0) -> np.ndarray:
    logits = rng.normal(scale=noise, size=(len(gold), n_labels)) + 2.0 * np.eye(n_labels)[gold]
    return np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)


def _accuracy(labels: list[str]) -> dict:
    per_class = {name: {"precision": 0.7, "recall": 0.6, "f1": 0.65, "support": 12, "auroc": 0.8,
                     "average_precision": 0.7} for name in labels}
    return {"n": 36, "macro_f1": 0.654321, "accuracy": 0.66, "macro_auroc": 0.812345, "per_class": per_class,
            "confusion_matrix": [[12 if r == c else 0 for c in labels] for r in labels]}


def _artifacts(measured: str, coreml: str, labels: list[str]) -> dict:
    return {
        measured: {"target": measured.split("_")[0], "scheme": measured.split("_", 1)[1], "file": f"{measured}.bin",
                   "integrity": "ok", "size_mb": 1.4, "quantized": True, "measured": True,
                   "accuracy_at_thresholds": _accuracy(labels), "decision_flip_rate": 0.055556,
                   "decision_flips": 2, "cold_start_ms": 0.7, "memory": {"peak_rss_mb": 44.0, "model_rss_mb": 12.0}},
        coreml: {"target": "coreml", "scheme": coreml.split("_")[1], "file": f"{coreml}.mlpackage", "integrity": "ok",
                 "size_mb": 1.3, "quantized": True, "measured": False,
                 "export_parity": {"items": 36, "decision_agreement": 0.972222, "decision_flips": 1,
                                   "macro_auroc_drop": 0.0001},
                 "parity_mode": "estimate: same compression applied in PyTorch (coremltools.optimize.torch)",
                 "not_measured_because": COREML_REASON},
    }


def _latency(names: list[str]) -> dict:
    one = {"p50_ms": 0.2, "p90_ms": 0.3, "p99_ms": 0.5, "p50_pass_spread": 0.01, "p50_per_pass": [0.2, 0.2]}
    return {n: {"1_thread": one, "2_thread": one} for n in names}


def _slices(models: list[str], text: bool) -> dict:
    out = {}
    for m in models:
        out[m] = {"by_source": {"src_a": {"items": 20, "macro_f1": 0.6, "violation_auc": 0.8},
                                "src_b": {"items": 16, "macro_f1": 0.7, "violation_auc": 0.85}}}
        if text:
            groups = {"women": {"items": 12, "gated": True, "subgroup_auc": 0.8, "bpsn_auc": 0.7, "bnsp_auc": 0.9},
                      "jewish": {"items": 11, "gated": True, "subgroup_auc": 0.6, "bpsn_auc": 0.65, "bnsp_auc": 0.8},
                      "asian": {"items": 3, "gated": False, "subgroup_auc": 0.5, "bpsn_auc": 0.5, "bnsp_auc": 0.5}}
            out[m]["identity"] = {"overall_auc": 0.8, "groups": groups}
    return out


def _robustness(models: list[str]) -> dict:
    return {m: {"clean_macro_f1": 0.65, "leetspeak": {"macro_f1": 0.55, "decision_flip_rate_vs_clean": 0.3},
                "spacing": {"macro_f1": 0.6, "decision_flip_rate_vs_clean": 0.1}} for m in models}


def _scores(rng, labels: list[str], models: list[str], gold: np.ndarray, multi_hot: np.ndarray | None):
    import pandas as pd

    if multi_hot is not None:
        names = ["|".join(name for name, on in zip(labels, row) if on) for row in multi_hot]
    else:
        names = [labels[g] for g in gold]
    frame = pd.DataFrame({"key": [f"k{i}" for i in range(len(gold))], "dataset": "src_a", "label": names})
    for model in models:
        probs = _probs(rng, gold, len(labels), noise=1.0 if model != "teacher" else 1.2)
        for i, label in enumerate(labels):
            frame[f"{model}:{label}"] = probs[:, i]
    return frame


def _make_bench(folder: Path, kind: str = "text") -> Path:
    """A bench folder with the real schema: 36 items, one measured int8 artifact, one Core ML estimate."""
    labels = {"text": TEXT_LABELS, "vision": VISION_LABELS, "multi": ["violence", "nudity"]}[kind]
    measured = "onnx_int8_static" if kind == "vision" else "tflite_int8_dynamic"
    coreml = "coreml_fp16" if kind == "vision" else "coreml_w8"
    multi = kind == "multi"
    rng = np.random.default_rng(0)
    gold = np.arange(36) % len(labels)
    multi_hot = rng.integers(0, 2, size=(36, len(labels))) if multi else None
    benign = None if multi else labels[0]
    per_class = {name: {"threshold": 0.4} for name in labels if name != benign}
    thresholds = {"policy": "max_f1", "benign": benign, "multi_label": multi, "per_class": per_class}
    bench = {"integrity": {measured: "ok", coreml: "ok"}, "artifacts": _artifacts(measured, coreml, labels),
             "reference": {m: {"accuracy_at_thresholds": _accuracy(labels)} for m in ("fp32_student", "teacher")},
             "latency": _latency(["torch_eager_fp32", measured]),
             "slices": _slices(["fp32_student", "teacher", measured], kind == "text"), "seconds": 3.2}
    if kind == "text":
        bench["robustness"] = _robustness(["fp32_student", measured])
        bench["out_of_domain"] = {"olid:test": {
            "items": 860, "violating": 240, "teacher": {"auroc": 0.83, "macro_f1": 0.7},
            "fp32_student": {"auroc": 0.81, "macro_f1": 0.68}, "student_auroc_vs_teacher": 0.9759}}
    recipe = {"name": f"tiny-{kind}", "task": "image-classification" if kind == "vision" else "text-classification",
              "multi_label": multi, "labels": labels, "teachers": [{"kind": "scores", "path": "t.parquet", "name": "t"}],
              "student": {"arch": "test_tiny"}, "budgets": {"size_mb": {"tflite": 2.0}}}
    manifest = {"stage": "bench", "name": recipe["name"], "created_at": "2026-01-01T00:00:00+00:00",
                "recipe": recipe, "details": {"export_run": "runs/x/export", "labels": labels, "thresholds": thresholds},
                "metrics": bench, "tool_versions": {"python": "3.11", "torch": "2.x"}, "git_commit": "abc123" * 6}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "manifest.json").write_text(json.dumps(manifest))
    (folder / "bench.json").write_text(json.dumps(bench))
    _scores(rng, labels, ["fp32_student", "teacher", measured], gold, multi_hot).to_parquet(folder / "scores.parquet")
    samples = {n: {t: list(rng.lognormal(-1.5, 0.3, 40)) for t in ("1", "2")} for n in ("torch_eager_fp32", measured)}
    (folder / "latency_samples.json").write_text(json.dumps(samples))
    return folder


class _StrictParser(HTMLParser):
    """Fails on a closing tag that does not match the open one, so the page is well-formed enough."""

    VOID = {"meta", "img", "br", "wbr", "hr", "link", "input"}

    def __init__(self):
        super().__init__()
        self.stack: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, f"</{tag}> closes <{self.stack[-1] if self.stack else None}>"
        self.stack.pop()


@pytest.fixture(scope="module")
def text_page(tmp_path_factory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("report")
    out = write_report(_make_bench(root / "bench"), GATE, root / "out" / "report.html")
    return out, out.read_text()


def test_page_has_verdict_every_section_and_plots(text_page):
    out, page = text_page
    assert out.exists() and out.name == "report.html"
    assert "<title>tiny-text \u2014 FAIL</title>" in page
    assert "FAIL \u2014 1 of 3 checks failed" in page
    for key, title in TITLES.items():  # the run section belongs to `edgemod run` reports only
        assert (f"<h2>{title}</h2>" in page) == (key != "run"), title
    assert page.count(IMG) >= 4  # latency, PR curves, confusion matrices, reliability diagram
    assert "<script" not in page and "http://" not in page and "https://" not in page


def test_failed_checks_are_listed_first(text_page):
    _, page = text_page
    failed = page.index("<td>min_decision_agreement</td>")
    assert failed < page.index("<td>size_mb</td>") and failed < page.index("<td>latency_p50</td>")
    assert page.index("<td>size_mb</td>") < page.index("<td>latency_p50</td>")  # passed ones keep the gate's order


def test_text_is_escaped(text_page):
    _, page = text_page
    assert "agreement &lt;0.995&gt; &amp; too low" in page
    assert "<0.995>" not in page


def test_unmeasured_coreml_shows_its_reason_not_numbers(text_page):
    _, page = text_page
    row = next(r for r in page.split("<tr") if "<td>coreml_w8</td>" in r and "not measured" in r)
    assert COREML_REASON in row
    assert "0.654" not in row and "0.812" not in row  # no accuracy borrowed from another model
    parity = next(r for r in page.split("<tr") if "<td>coreml_w8</td>" in r and "estimate:" in r)
    assert "estimate: same compression applied in PyTorch" in parity
    assert "Not plotted, not measured here: coreml_w8 (Core ML predictions need macOS)" in page


def test_page_parses_with_balanced_tags(text_page):
    _, page = text_page
    parser = _StrictParser()
    parser.feed(page)
    parser.close()
    assert parser.stack == []


def test_worst_gated_identity_group_is_highlighted(text_page):
    _, page = text_page
    assert '<td class="num worst">0.600</td>' in page  # jewish subgroup AUC; asian (0.5) is not gated
    assert '<td class="num worst">0.500</td>' not in page


def test_vision_like_bench_without_identity_or_robustness_renders(tmp_path):
    out = write_report(_make_bench(tmp_path / "bench", "vision"), None, tmp_path / "vision.html")
    page = out.read_text()
    assert "NOT GATED" in page and "tiny-vision \u2014 not gated" in page
    for key, title in TITLES.items():
        assert (f"<h2>{title}</h2>" in page) == (key not in ("identity", "robustness", "out_of_domain", "run")), title
    assert page.count(IMG) >= 4
    assert COREML_REASON in page
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # atomic write left no temp file
    _StrictParser().feed(page)


def test_multi_label_and_missing_artifact(tmp_path):
    bench_dir = _make_bench(tmp_path / "bench", "multi")
    bench = json.loads((bench_dir / "bench.json").read_text())
    bench["artifacts"]["coreml_w8"].update({"integrity": "missing", "size_mb": None, "not_measured_because": "missing"})
    (bench_dir / "bench.json").write_text(json.dumps(bench))
    page = write_report(bench_dir, GATE, tmp_path / "multi.html").read_text()
    assert "Multi-label: one 2x2 per class." in page and "<th>TP</th>" in page
    missing = [r for r in page.split("<tr") if "<td>coreml_w8</td>" in r]
    assert missing and all("not measured: missing" in r and "0.972" not in r for r in missing)
    assert page.count(IMG) >= 3  # latency, PR curves, calibration


def test_run_section_shows_stages_data_and_teacher_vs_student(tmp_path):
    pipeline = {"stages": [{"stage": "train", "seconds": 41.5, "did_work": True, "summary": "student 0.96"},
                           {"stage": "export", "seconds": 0.2, "did_work": False, "summary": "6 artifacts"}],
                "items_by_role": {"train": 3900, "test": 836},
                "train": {"teacher": {"macro_f1": 0.962, "macro_auroc": 0.99, "parameters": 22700000},
                          "student": {"macro_f1": 0.967, "macro_auroc": 0.98, "parameters": 1270000}}}
    page = write_report(_make_bench(tmp_path / "bench", "text"), None, tmp_path / "run.html", pipeline).read_text()
    assert f"<h2>{TITLES['run']}</h2>" in page
    assert "up to date" in page and "3,900" in page and "0.967" in page
