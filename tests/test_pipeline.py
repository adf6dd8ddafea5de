"""`edgemod run`: the stages in order, skipped when their inputs are unchanged, resumable, and a
budget change re-runs only the gate."""
import json
import shutil
import subprocess
from html.parser import HTMLParser

import pytest
import yaml

from edgemod import pipeline
from edgemod.errors import EdgemodError

BUDGETS = {"size_mb": {"tflite": 50}, "parity": {"min_decision_agreement": 0.5},
           "devices": {"host": {"min_speedup_vs_torch_eager": 0.01}}}


@pytest.fixture
def recipe_file(tmp_path):
    from conftest import tiny_text_recipe

    recipe = tiny_text_recipe()
    recipe["export"] = [{"target": "tflite", "quant": "int8_dynamic"}, {"target": "onnx"}]
    recipe["budgets"] = BUDGETS
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def _work(state) -> dict[str, bool]:
    return {r.stage: r.did_work for r in state.results}


def test_run_until_gate_then_rerun_does_nothing(recipe_file, tmp_path):
    out = tmp_path / "run"
    first = pipeline.run(recipe_file, out, until="gate")
    assert [r.stage for r in first.results] == ["label", "train", "export", "bench", "gate"]
    assert all(_work(first).values()) and first.gate["verdict"] == "pass"
    again = pipeline.run(recipe_file, out, until="gate")
    assert _work(again) == {"label": False, "train": False, "export": False, "bench": False, "gate": True}

    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["budgets"]["size_mb"] = {"tflite": 0.0001}  # only a budget changes
    recipe_file.write_text(yaml.safe_dump(recipe))
    changed = pipeline.run(recipe_file, out, until="gate")
    assert _work(changed) == {"label": False, "train": False, "export": False, "bench": False, "gate": True}
    assert changed.gate["verdict"] == "fail"


def test_interrupted_run_resumes_at_the_stage_that_stopped(recipe_file, tmp_path, monkeypatch):
    from edgemod.benchmarks import bench

    out = tmp_path / "run"
    real = bench.run

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(bench, "run", interrupted)
    with pytest.raises(KeyboardInterrupt):
        pipeline.run(recipe_file, out, until="gate")
    assert not (out / "bench" / "manifest.json").exists()
    monkeypatch.setattr(bench, "run", real)
    resumed = pipeline.run(recipe_file, out, until="gate")
    assert _work(resumed) == {"label": False, "train": False, "export": False, "bench": True, "gate": True}


def test_from_needs_the_earlier_stages(recipe_file, tmp_path):
    with pytest.raises(EdgemodError, match="no finished export run"):
        pipeline.run(recipe_file, tmp_path / "empty", start="bench")
    with pytest.raises(EdgemodError, match="unknown stage 'trian'"):
        pipeline.run(recipe_file, tmp_path / "x", until="trian")


def test_run_report_renders(recipe_file, tmp_path):
    out = tmp_path / "run"
    # a training override reaches export too: it compares the file *with* the run's overrides
    state = pipeline.run(recipe_file, out, overrides=["distill.epochs=1"], until="gate")
    pipeline.record_run(state)
    page = pipeline.write_run_report(out).read_text()
    for title in ("Run: stages, data, teacher vs student", "Gate", "Headline", "Latency", "Precision-recall per class"):
        assert title in page
    HTMLParser().feed(page)
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("no headless Chromium on this machine: the page was parsed, not rendered")
    shot = tmp_path / "report.png"
    done = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                           "--window-size=1400,3000", (out / "report.html").as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.stat().st_size > 50_000  # a rendered page with plots, not a blank one
    assert json.loads((out / "run.json").read_text())["verdict"] == "pass"


def test_full_run_publishes_once_and_the_release_pulls(recipe_file, tmp_path, monkeypatch):
    from edgemod.registry.config import load_config
    from edgemod.registry.core import Registry
    from edgemod.registry.refs import parse_ref
    from edgemod.registry.signing import generate_keypair

    private, public = generate_keypair(tmp_path / "keys")
    monkeypatch.setenv("EDGEMOD_SIGNING_KEY", str(private))
    monkeypatch.setenv("EDGEMOD_TRUSTED_KEYS", str(public))
    registry = str(tmp_path / "registry")
    out = tmp_path / "run"
    first = pipeline.run(recipe_file, out, registry=registry)
    assert first.release == "tiny-hate@0.1.0" and _work(first)["publish"]
    again = pipeline.run(recipe_file, out, registry=registry)
    assert again.release == "tiny-hate@0.1.0" and not _work(again)["publish"]
    recipe = yaml.safe_load(recipe_file.read_text())
    recipe["budgets"]["size_mb"] = {"tflite": 40}  # a budget changes, the verdict does not
    recipe_file.write_text(yaml.safe_dump(recipe))
    budget_only = pipeline.run(recipe_file, out, registry=registry)
    assert {s for s, worked in _work(budget_only).items() if worked} == {"gate"}
    assert budget_only.release == "tiny-hate@0.1.0"
    store = Registry(load_config(url=registry))
    assert store.versions("tiny-hate") == ["0.1.0"] and store.channels("tiny-hate")["canary"] == "0.1.0"
    pulled = store.pull(parse_ref("tiny-hate@canary"), "android", tmp_path / "pulled")
    assert pulled.version == "0.1.0" and any(p.suffix == ".tflite" for p in (tmp_path / "pulled").rglob("*"))
