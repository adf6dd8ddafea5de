"""The web page (mobile_harness/web): MediaPipe Tasks in headless Chromium reproduces the golden decisions.

Real tiny exports with the `mediapipe` target go through `web_folder_from_export` and `check_web`:
the browser's Tasks tokenizes the raw text / decodes and resizes the image itself, so this is the
path a web app takes. Without Chromium, Node or `npm ci --prefix mobile_harness/web` the browser
tests skip, unless EDGEMOD_REQUIRE_BROWSER=1 (CI), where they fail.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pytest
from typer.testing import CliRunner

from edgemod.errors import EdgemodError
from edgemod.mobile_harness import web_check

REQUIRED = os.environ.get("EDGEMOD_REQUIRE_BROWSER") == "1"


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"EDGEMOD_REQUIRE_BROWSER=1 but {reason}")
    pytest.skip(reason)


def _require_browser() -> None:
    try:
        web_check.require_tools()
    except EdgemodError as error:
        _unavailable(f"{error.message} (fix: {error.hint})")


@pytest.fixture
def text_export(tasks_text_export):
    _require_browser()
    return tasks_text_export


@pytest.fixture
def image_export(tasks_vision_export):
    _require_browser()
    return tasks_vision_export


def _golden_items(web_folder, artifact: dict) -> tuple[list[dict], float]:
    golden = json.loads((web_folder / artifact["golden"]).read_text())
    return golden["items"], golden["tolerance"]["max_abs_score_diff"]


def _assert_reproduces_golden(result: dict, web_folder) -> None:
    """Every item agrees, except items within tolerance of a threshold, which must be listed as such."""
    tasks = web_check.read_tasks(web_folder)
    assert sorted(result["artifacts"]) == sorted(a["name"] for a in tasks["artifacts"])
    for artifact in tasks["artifacts"]:
        r = result["artifacts"][artifact["name"]]
        items, tolerance = _golden_items(web_folder, artifact)
        near = {i["key"] for i in items if i["threshold_margin"] <= tolerance}
        assert r["items"] == len(items) > 0
        assert r["mismatches"] == [], (artifact["name"], r["mismatches"])
        assert {i["key"] for i in r["near_threshold"]} == near
        flipped = sum(i["flipped"] for i in r["near_threshold"])
        assert r["agree"] + flipped == r["items"], (artifact["name"], r)
        assert r["page_errors"] == []
    assert result["passed"]


def test_text_page_reproduces_golden_decisions(text_export, tmp_path):
    web_folder = web_check.web_folder_from_export(text_export, tmp_path / "web")
    tasks = web_check.read_tasks(web_folder)
    assert tasks["task"] == "text" and tasks["labels"] == ["normal", "offensive", "hatespeech"]
    assert [a["name"] for a in tasks["artifacts"]] == ["mediapipe_fp32", "mediapipe_int8_dynamic"]
    assert (web_folder / "mediapipe/model_int8_dynamic.tflite").is_file()
    assert (web_folder / "mediapipe/golden/mediapipe_int8_dynamic.json").is_file()
    assert (web_folder / "thresholds.json").is_file()

    result = web_check.check_web(web_folder, screenshot=tmp_path / "text.png")
    _assert_reproduces_golden(result, web_folder)
    assert (tmp_path / "text.png").stat().st_size > 0


def test_image_page_reproduces_golden_decisions_through_the_cli(image_export, tmp_path):
    from edgemod.mobile_harness.cli import harness_app

    report = tmp_path / "report.json"
    done = CliRunner().invoke(harness_app, ["web", str(image_export), "--report", str(report)])
    assert done.exit_code == 0, done.output
    result = json.loads(report.read_text())
    assert result["task"] == "image"
    # The CLI's web folder was temporary: rebuild it to read the goldens the result is checked against.
    _assert_reproduces_golden(result, web_check.web_folder_from_export(image_export, tmp_path / "web"))


def test_an_export_without_mediapipe_artifacts_names_the_fix(tmp_path):
    (tmp_path / "manifest.json").write_text(json.dumps({
        "stage": "export", "name": "x", "recipe": {}, "recipe_sha256": "0",
        "details": {"artifacts": {"tflite_fp32": {"target": "tflite", "file": "tflite/model_fp32.tflite"}}}}))
    with pytest.raises(EdgemodError, match="no artifact with target 'mediapipe'") as caught:
        web_check.web_folder_from_export(tmp_path, tmp_path / "web")
    assert "target: mediapipe" in caught.value.hint


def test_missing_node_modules_names_npm_ci(tmp_path, monkeypatch):
    if shutil.which("node") is None or shutil.which("/usr/bin/chromium") is None:
        _unavailable("needs node and /usr/bin/chromium, to get past those checks")
    shutil.copy(web_check.WEB_DIR / "package-lock.json", tmp_path)
    monkeypatch.setattr(web_check, "WEB_DIR", tmp_path)
    with pytest.raises(EdgemodError, match="is not installed") as caught:
        web_check.require_tools()
    assert caught.value.hint == "npm ci --prefix mobile_harness/web"


def test_decision_js_is_decide(tmp_path):
    """decision.js (what the page and docs/mobile.md show) against edgemod.runtime.decision on random scores."""
    from edgemod.runtime.decision import decide

    node = shutil.which("node")
    if node is None:
        _unavailable("node is not installed")
    labels = ["normal", "offensive", "hatespeech"]
    cases = [{"policy": "max_f1", "benign": "normal", "multi_label": False,
              "per_class": {"offensive": {"threshold": 0.4}, "hatespeech": {"threshold": 0.3}}},
             {"policy": "argmax", "benign": "normal", "multi_label": False, "per_class": {}},
             {"policy": "max_f1", "benign": "normal", "multi_label": False, "per_class": {}},
             {"policy": "max_f1", "benign": None, "multi_label": True,
              "per_class": {"offensive": {"threshold": 0.5}, "hatespeech": {"threshold": 0.2}}}]
    scores = np.random.default_rng(0).dirichlet([1, 1, 1], size=200).round(3)
    scores[:5] = [[0.2, 0.4, 0.4], [0.3, 0.3, 0.4], [1 / 3, 1 / 3, 1 / 3], [0.6, 0.4, 0.0], [0.5, 0.2, 0.3]]
    (tmp_path / "cases.json").write_text(json.dumps({"labels": labels, "cases": cases, "scores": scores.tolist()}))
    module = json.dumps((web_check.WEB_DIR / "decision.js").as_uri())
    script = (f"import {{ decide }} from {module}; import {{ readFileSync }} from 'node:fs';"
              "const d = JSON.parse(readFileSync(process.argv[1], 'utf8'));"
              "console.log(JSON.stringify(d.cases.map((t) => d.scores.map((s) => decide(s, d.labels, t)))));")
    done = subprocess.run([node, "--input-type=module", "-e", script, str(tmp_path / "cases.json")],
                          capture_output=True, text=True, check=True)
    for thresholds, got in zip(cases, json.loads(done.stdout)):
        expected = decide(scores, labels, thresholds)
        if thresholds["multi_label"]:
            expected = [[labels[c] for c in np.flatnonzero(row)] for row in expected]
        else:
            expected = [labels[c] for c in expected]
        assert got == expected, thresholds
