"""`edgemod bench`: latency, memory, accuracy and slices of every exported artifact, beside the
fp32 student and the teacher, on the real test split.

Latency is measured twice per artifact and thread count, interleaved with torch eager fp32, so
the gate can use ratios from one run and the report can show how stable p50 was (spread).
Artifacts whose files are missing or changed since export are recorded as such, not measured.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgemod.benchmarks.accuracy import accuracy_at_thresholds
from edgemod.benchmarks.arm_bench import arm_results, arm_setup_key
from edgemod.benchmarks.device_class import host_device
from edgemod.benchmarks.integrity import integrity_of
from edgemod.benchmarks.slices import agreement_interval
from edgemod.console import activity, progress, say
from edgemod.export.student import TestSet, TrainedStudent, load_trained_student, torch_scores
from edgemod.fsutil import atomic_path, write_json_atomic
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, read_manifest, write_manifest
from edgemod.runtime.decision import decide
from edgemod.runtime.latency import interleaved
from edgemod.runtime.runners import TorchRunner, coreml_can_predict, load_runner, run_all
from edgemod.training.fairness import UNMITIGATED
from edgemod.training.items import OUT_OF_DOMAIN

STAGE = "bench"
UNMITIGATED_STUDENT = "unmitigated_student"  # scores of the student trained without distill.fairness
FORMAT_VERSION = 4  # 4: device class, ARM instruction counts, bootstrap intervals and counterfactual shifts
THREADS = (1, 2)
PASSES = 2


def run(upstream: Path, out: Path, console=None, quick: bool = False, arm: bool = True) -> Manifest:
    """Benchmark the export run at `upstream` into `out` (`quick`: fewer latency calls, for tests;
    `arm`: count instructions on emulated ARM cores when `scripts/setup_arm.sh` has run)."""
    upstream, out = Path(upstream), Path(out)
    export = read_manifest(upstream, "export")
    used = {"export_manifest": file_ref(upstream / "manifest.json")}
    arm_key = arm_setup_key() if arm else "off"
    key = inputs_key(export.recipe_sha256, used, extra={"format": FORMAT_VERSION, "quick": quick, "arm": arm_key,
                                                         "integrity": integrity_of(upstream, export)})
    if (done := finished_run(out, STAGE, key)) is not None:
        say(console, f"[green]bench {out}: nothing to do, the export is unchanged[/]")
        return done
    started = time.perf_counter()
    student = load_trained_student(upstream, stage="export")  # the export folder carries the fp32 reference
    integrity = integrity_of(upstream, export)
    runnable = {name: rec for name, rec in export.details["artifacts"].items()
                if integrity[name] == "ok" and (rec["target"] != "coreml" or coreml_can_predict())}
    test = TestSet.load(student, console)
    scores = _scores(student, upstream, runnable, test, console)
    results = {"integrity": integrity, "artifacts": {}, "reference": _reference(student, test, scores),
               "device": host_device(THREADS)}
    for name, record in export.details["artifacts"].items():
        results["artifacts"][name] = _artifact_result(student, name, record, upstream, test, scores, integrity[name])
    say(console, "latency: 2 passes x 1 and 2 threads, interleaved with torch eager")
    latency, samples = _latency(student, upstream, runnable, test, quick, console)
    results["latency"] = latency
    for name in runnable:
        with activity(f"bench cold start and peak memory of {name}", console):
            results["artifacts"][name].update(_cold_start_and_memory(student, upstream, runnable[name], test))
    with activity("bench slices", console):
        results["slices"] = _slices(student, test, scores)
    if ood := _out_of_domain(student):
        results[OUT_OF_DOMAIN] = ood
    if student.is_text:
        with activity("bench robustness on obfuscated test texts", console):
            results["robustness"] = _robustness(student, upstream, runnable, test)
    tasks_ready = {name: record for name, record in runnable.items() if record["target"] == "mediapipe"}
    if tasks_ready:
        from edgemod.benchmarks.tasks_bench import tasks_results

        results["tasks"] = tasks_results(student, upstream, tasks_ready, test, scores, console)
    results["arm"] = arm_results(student, upstream, runnable, console) if arm else {"not_measured_because": "bench --no-arm"}
    results["seconds"] = round(time.perf_counter() - started, 1)
    return _finish(export, student, used, key, results, scores, samples, test, out, console)


def _scores(student: TrainedStudent, export_dir: Path, runnable: dict, test: TestSet, console) -> dict[str, np.ndarray]:
    scores = {"teacher": test.table[[f"p:{name}" for name in student.labels]].to_numpy(dtype=np.float32)}
    unmitigated = [f"{UNMITIGATED}:{name}" for name in student.labels]
    if set(unmitigated) <= set(test.table.columns):  # distill.fairness: the student trained without it
        scores[UNMITIGATED_STUDENT] = test.table[unmitigated].to_numpy(dtype=np.float32)
    scores["fp32_student"] = test.reference
    for name, record in runnable.items():
        runner = load_runner(record["target"], export_dir / record["file"], student.input_names)
        with progress(f"bench scoring {name}", len(test.gold), console) as bar:
            scores[name] = run_all(runner, test.inputs, bar.advance)
    return scores


def _reference(student: TrainedStudent, test: TestSet, scores: dict) -> dict:
    return {name: {"accuracy_at_thresholds": accuracy_at_thresholds(student, test, scores[name])}
            for name in ("fp32_student", "teacher", UNMITIGATED_STUDENT) if name in scores}


def _out_of_domain(student: TrainedStudent) -> dict:
    """Per out-of-domain set: violating-vs-not AUROC and macro-F1 of the teacher and the fp32 students."""
    from sklearn.metrics import f1_score, roc_auc_score

    from edgemod.benchmarks.slices import violation_scores

    table = student.split(OUT_OF_DOMAIN)
    if table.empty or student.recipe.multi_label:
        return {}
    labels, thresholds = student.labels, student.thresholds
    benign = labels.index(thresholds.get("benign") or labels[0])
    columns = {"teacher": "p", UNMITIGATED_STUDENT: UNMITIGATED, "fp32_student": "student"}
    out = {}
    for source, rows in table.groupby(table["dataset"] + ":" + table["split"].astype(str)):
        truth = rows["violating"].astype(int).to_numpy()
        entry = {"items": int(len(rows)), "violating": int(truth.sum())}
        for model, prefix in columns.items():
            if f"{prefix}:{labels[0]}" not in rows:
                continue
            probs = rows[[f"{prefix}:{label}" for label in labels]].to_numpy(dtype=np.float32)
            # the teacher has no thresholds of its own: its argmax; the students: the shipped thresholds
            decided = probs.argmax(1) if model == "teacher" else decide(probs, labels, thresholds)
            entry[model] = {"auroc": round(float(roc_auc_score(truth, violation_scores(probs, labels, labels[benign]))), 6),
                            "macro_f1": round(float(f1_score(truth, (decided != benign).astype(int), average="macro")), 6)}
        entry["student_auroc_vs_teacher"] = round(entry["fp32_student"]["auroc"] / entry["teacher"]["auroc"], 4)
        out[source] = entry
    return out


def _artifact_result(student, name, record, export_dir, test, scores, status) -> dict:
    result = {"target": record["target"], "scheme": record["scheme"], "file": record["file"], "integrity": status,
              "size_mb": round(file_ref(export_dir / record["file"]).bytes / 1e6, 4) if status != "missing" else None,
              "quantized": record["scheme"] not in ("fp32", "fp16")}
    if name in scores:
        labels, thresholds = student.labels, student.thresholds
        mine, reference = decide(scores[name], labels, thresholds), decide(test.reference, labels, thresholds)
        flips = mine != reference
        flips = flips.any(axis=1) if flips.ndim > 1 else flips
        boot = student.recipe.budgets.slices.bootstrap
        agreement = agreement_interval(mine, reference, boot.resamples, boot.confidence, boot.seed)
        result.update({"measured": True, "accuracy_at_thresholds": accuracy_at_thresholds(student, test, scores[name]),
                       "decision_flip_rate": round(float(flips.mean()), 6), "decision_flips": int(flips.sum()),
                       "decision_agreement_interval": agreement["interval"]})
    else:
        result.update({"measured": False, "export_parity": record["parity"], "parity_mode": record["parity_mode"],
                       "not_measured_because": status if status != "ok" else "Core ML predictions need macOS"})
    return result


def _latency(student, export_dir: Path, runnable: dict, test: TestSet, quick: bool, console=None) -> tuple[dict, dict]:
    item = {n: a[:1] for n, a in test.inputs.items()}
    rounds, runs = (2, 20) if quick else (5, 60)
    latency, samples = {}, {}
    for threads in THREADS:
        calls = {"torch_eager_fp32": _bound(TorchRunner(student.module, student.input_names, threads), item)}
        for name, record in runnable.items():
            runner = load_runner(record["target"], export_dir / record["file"], student.input_names, threads)
            calls[name] = _bound(runner, item)
        total = PASSES * rounds * runs * len(calls)
        with progress(f"bench latency, {threads} thread{'s' * (threads > 1)}", total, console, unit="calls") as bar:
            passes = [interleaved(calls, rounds=rounds, runs=runs, keep_samples=True, advance=bar.advance)
                      for _ in range(PASSES)]
        for name in calls:
            p50s = [p[name]["p50_ms"] for p in passes]
            merged = {k: round(float(np.median([p[name][k] for p in passes])), 4) for k in ("p50_ms", "p90_ms", "p99_ms")}
            merged["p50_pass_spread"] = round((max(p50s) - min(p50s)) / max(min(p50s), 1e-9), 4)
            merged["p50_per_pass"] = p50s
            latency.setdefault(name, {})[f"{threads}_thread"] = merged
            samples.setdefault(name, {})[str(threads)] = [x for p in passes for x in p[name]["samples"]]
    return latency, samples


def _bound(runner, item):
    return lambda: runner(item)


def _cold_start_and_memory(student, export_dir: Path, record: dict, test: TestSet) -> dict:
    """Load + first inference in this process (median of 3), peak RSS in a fresh process."""
    item = {n: a[:1] for n, a in test.inputs.items()}
    path = export_dir / record["file"]
    cold = []
    for _ in range(3):
        start = time.perf_counter()
        load_runner(record["target"], path, student.input_names)(item)
        cold.append((time.perf_counter() - start) * 1e3)
    with tempfile.TemporaryDirectory() as work:
        feed = Path(work) / "item.npz"
        np.savez(feed, **item)
        done = subprocess.run([sys.executable, "-m", "edgemod.benchmarks.rss", record["target"], str(path),
                               ",".join(student.input_names), str(feed)], capture_output=True, text=True,
                              cwd=Path(__file__).resolve().parents[1], timeout=300)
    memory = json.loads(done.stdout.strip().splitlines()[-1]) if done.returncode == 0 else {"error": done.stderr[-300:]}
    return {"cold_start_ms": round(float(np.median(cold)), 3), "memory": memory}


def _slices(student: TrainedStudent, test: TestSet, scores: dict) -> dict:
    """Per model: `by_source`; text recipes add `identity` (bootstrap intervals, students paired with
    the teacher) and, for the teacher and fp32 student, `counterfactual` (see `fairness_bench`)."""
    from edgemod.benchmarks.fairness_bench import counterfactual_by_model, identity_by_model
    from edgemod.benchmarks.slices import source_slices, violation_scores

    benign = student.thresholds.get("benign")
    violating = _violating(student, test)
    out = {}
    for name, probs in scores.items():
        score = violation_scores(probs, student.labels, benign)
        decisions = decide(probs, student.labels, student.thresholds)
        out[name] = {"by_source": source_slices(test.table["dataset"].tolist(), test.gold if test.gold.ndim == 1 else violating,
                                                decisions if decisions.ndim == 1 else decisions.max(axis=1), violating, score)}
    if student.is_text:
        for name, identity in identity_by_model(student, test, scores, violating).items():
            out[name]["identity"] = identity
        for name, shifts in counterfactual_by_model(student, test).items():
            out[name]["counterfactual"] = shifts
    return out


def _violating(student: TrainedStudent, test: TestSet) -> np.ndarray:
    benign = student.thresholds.get("benign")
    if test.gold.ndim > 1:
        return (test.gold.sum(axis=1) > 0).astype(int)
    return (test.gold != student.labels.index(benign)).astype(int) if benign in student.labels else np.ones(len(test.gold), int)


def _robustness(student: TrainedStudent, export_dir: Path, runnable: dict, test: TestSet) -> dict:
    """Macro-F1 and decision flips on obfuscated copies of the test texts (fp32 student and TFLite)."""
    from edgemod.obfuscation import OBFUSCATIONS, obfuscate

    texts = test.table["text"].tolist()
    models = {"fp32_student": None, **{n: r for n, r in runnable.items() if r["target"] == "tflite"}}
    clean = {name: (test.reference if record is None else None) for name, record in models.items()}
    out = {}
    for name, record in models.items():
        runner = None if record is None else load_runner("tflite", export_dir / record["file"], student.input_names)
        clean_scores = clean[name] if record is None else run_all(runner, test.inputs)
        clean_decisions = decide(clean_scores, student.labels, student.thresholds)
        entry = {"clean_macro_f1": accuracy_at_thresholds(student, test, clean_scores)["macro_f1"]}
        for style in OBFUSCATIONS:
            inputs = student.encode([obfuscate(t, style) for t in texts])
            probs = torch_scores(student.module, inputs, student.input_names) if runner is None else run_all(runner, inputs)
            decisions = decide(probs, student.labels, student.thresholds)
            entry[style] = {"macro_f1": accuracy_at_thresholds(student, test, probs)["macro_f1"],
                            "decision_flip_rate_vs_clean": round(float((decisions != clean_decisions).mean()), 6)}
        out[name] = entry
    return out


def _finish(export, student, used, key, results, scores, samples, test, out, console) -> Manifest:
    import pandas as pd

    out.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame({"key": test.table["key"], "dataset": test.table["dataset"], "label": test.table["label"]})
    for name, probs in scores.items():
        for i, label in enumerate(student.labels):
            frame[f"{name}:{label}"] = probs[:, i]
    with atomic_path(out / "scores.parquet") as tmp:
        frame.to_parquet(tmp, index=False)
    write_json_atomic(out / "latency_samples.json", samples)
    write_json_atomic(out / "bench.json", results)
    manifest = Manifest(
        stage=STAGE, name=export.name, recipe=export.recipe, recipe_sha256=export.recipe_sha256, inputs=used,
        inputs_key=key, artifacts={n: file_ref(out / n, out) for n in ("bench.json", "scores.parquet", "latency_samples.json")},
        metrics=results, details={"export_run": str(Path(used["export_manifest"].path).parent.resolve()),
                                  "labels": student.labels, "thresholds": student.thresholds})
    write_manifest(out, manifest)
    _print(console, results)
    return manifest


def _print(console, results: dict) -> None:
    if console is None:
        return
    from rich.table import Table

    table = Table(title=f"bench: {results['seconds']:.0f} s")
    table.add_column("model", no_wrap=True)
    for column in ("ok", "MB", "macro-F1", "AUROC", "flips", "p50 1t", "p50 2t", "spread", "cold ms", "RSS MB"):
        table.add_column(column, justify="right")
    for name, ref in results["reference"].items():
        acc = ref["accuracy_at_thresholds"]
        lat = results["latency"].get("torch_eager_fp32", {}) if name == "fp32_student" else {}
        table.add_row(name, "", "", f"{acc['macro_f1']:.4f}", f"{acc.get('macro_auroc') or 0:.4f}", "",
                      str(lat.get("1_thread", {}).get("p50_ms", "")), str(lat.get("2_thread", {}).get("p50_ms", "")),
                      str(lat.get("1_thread", {}).get("p50_pass_spread", "")), "", "")
    for name, art in results["artifacts"].items():
        lat = results["latency"].get(name, {})
        acc = art.get("accuracy_at_thresholds", {})
        table.add_row(name, art["integrity"], str(art["size_mb"]), f"{acc['macro_f1']:.4f}" if acc else "-",
                      f"{acc.get('macro_auroc') or 0:.4f}" if acc else "-", str(art.get("decision_flips", "-")),
                      str(lat.get("1_thread", {}).get("p50_ms", "-")), str(lat.get("2_thread", {}).get("p50_ms", "-")),
                      str(lat.get("1_thread", {}).get("p50_pass_spread", "-")), str(art.get("cold_start_ms", "-")),
                      str(art.get("memory", {}).get("peak_rss_mb", "-")))
    console.print(table)
