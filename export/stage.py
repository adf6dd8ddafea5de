"""`edgemod export`: every target and quantization scheme of the recipe, checked on real data.

Reads a finished train run; writes one folder holding the artifacts, the files a device needs
beside them (tokenizer or pre-processing, thresholds), golden vectors per artifact, and
`manifest.json` describing every artifact (interface, quantization, calibration hash, parity
against the fp32 student on the whole test split, latency, sizes, tool versions, sha256).
The float model of each target is always exported: it is what quantized variants are cut from.
"""
from __future__ import annotations

import platform
import shutil
import time
from pathlib import Path

import numpy as np

from edgemod.console import activity, progress, say
from edgemod.errors import EdgemodError
from edgemod.export import targets
from edgemod.export.artifact import Artifact
from edgemod.export.student import OUTPUT_NAME, TestSet, TrainedStudent, load_trained_student, torch_scores
from edgemod.fsutil import write_json_atomic
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, write_manifest
from edgemod.quantization.calibration import CalibrationSet, calibration_set
from edgemod.quiet import quiet_converters
from edgemod.recipe import EXPORT_SCHEMES, POST_TRAINING, ExportSpec, Recipe, apply_overrides, override_section, parse_recipe
from edgemod.runtime.latency import interleaved
from edgemod.runtime.parity import noise_tolerance, parity_report
from edgemod.runtime.runners import TorchRunner, coreml_can_predict, load_runner, run_all

STAGE = "export"
FORMAT_VERSION = 3  # 3: calibration set per export entry, its item count recorded
DEFAULT_EXPORTS = [ExportSpec(target="tflite"), ExportSpec(target="coreml"), ExportSpec(target="onnx")]
EXTENSIONS = {"tflite": ".tflite", "mediapipe": ".tflite", "onnx": ".onnx", "coreml": ".mlpackage"}


def run(upstream: Path, out: Path, overrides: list[str] | None = None, console=None,
        recipe_path: Path | None = None, recipe_overrides: list[str] | None = None) -> Manifest:
    """Export the student of the train run at `upstream` into `out`.

    The recipe is the one the student was trained with; `recipe_path` may bring a newer export
    list and budgets from an edited recipe file, as long as nothing that shaped training changed
    (`recipe_overrides`: the training overrides the run applied to that file, e.g. `edgemod run --set`).
    """
    upstream, out = Path(upstream), Path(out)
    student = load_trained_student(upstream)
    if recipe_path is not None:
        student.recipe = _with_export_from(student.recipe, Path(recipe_path), recipe_overrides or [])
    student.recipe = _resolve_recipe(student.recipe, overrides or [])
    used = {name: student.manifest.artifacts[name]
            for name in ("model.safetensors", "student.json", "thresholds.json", "predictions.parquet")}
    # budgets only matter to the gate: changing one must not re-export
    key = inputs_key(student.recipe.fingerprint(exclude=("budgets",)), used,
                     extra={"format": FORMAT_VERSION, "os": platform.system()})
    if (done := finished_run(out, STAGE, key)) is not None:
        say(console, f"[green]export {out}: nothing to do, inputs unchanged and artifacts intact[/]")
        return done
    out.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    with quiet_converters():
        test = TestSet.load(student, console)
        artifacts = _build(student, _specs(student.recipe), out, console)
        for artifact in artifacts:
            with progress(f"export parity of {artifact.name}", len(test.gold), console) as bar:
                artifact.record = _describe(student, artifact, test, out, bar.advance)
        say(console, "latency at 1 and 2 threads, interleaved with torch eager")
        latency = _latency(student, artifacts, test, console)
        _write_golden(student, artifacts, test, out)
    tool_files = _copy_device_files(student, out)
    seconds = time.perf_counter() - started
    tolerance = noise_tolerance(test.reference, student.labels, student.thresholds)
    return _finish(student, key, used, artifacts, latency, tolerance, tool_files, seconds, out, console)


def _resolve_recipe(recipe: Recipe, overrides: list[str]) -> Recipe:
    """Only what happens after training (export targets, budgets) may change here."""
    for override in overrides:
        if override_section(override) not in POST_TRAINING:
            raise EdgemodError(f"override '{override}' changes training, not export",
                               "only export... and budgets... can change here; re-run `edgemod train` for the rest")
    return parse_recipe(apply_overrides(recipe.model_dump(mode="json"), overrides), "recipe with overrides")


def _with_export_from(trained: Recipe, recipe_path: Path, overrides: list[str]) -> Recipe:
    from edgemod.recipe import load_recipe

    edited = load_recipe(recipe_path, overrides)
    changed = [k for k in trained.model_fields if k not in POST_TRAINING and getattr(trained, k) != getattr(edited, k)]
    if changed:
        raise EdgemodError(f"{recipe_path} differs from the recipe the student was trained with in: {', '.join(changed)}",
                           "re-run `edgemod label`/`edgemod train` with the edited recipe, or only edit export and budgets")
    return trained.model_copy(update={"export": edited.export, "budgets": edited.budgets})


def _specs(recipe: Recipe) -> list[ExportSpec]:
    """The recipe's exports plus each target's float model, float models first."""
    wanted = recipe.export or DEFAULT_EXPORTS
    floats = {s.target: s for s in wanted if s.is_float}
    for spec in wanted:
        floats.setdefault(spec.target, ExportSpec(target=spec.target, minimum_deployment_target=spec.minimum_deployment_target))
    seen, ordered = set(), []
    for spec in [*floats.values(), *(s for s in wanted if not s.is_float)]:
        if (spec.target, spec.scheme) not in seen:
            seen.add((spec.target, spec.scheme))
            ordered.append(spec)
    return ordered


def _build(student: TrainedStudent, specs: list[ExportSpec], out: Path, console) -> list[Artifact]:
    calibrations: dict[int, CalibrationSet] = {}  # by item count: specs asking for as many items share one set
    built: dict[str, Artifact] = {}
    for spec in specs:
        path = out / spec.target / f"model_{spec.scheme}{EXTENSIONS[spec.target]}"
        path.parent.mkdir(parents=True, exist_ok=True)
        with activity(f"export {spec.target} {spec.scheme} -> {path.relative_to(out)}", console):
            calibration = _calibration(student, spec, calibrations, console)
            begun = time.perf_counter()
            artifact = targets.build(student, spec, path, built, calibration)
        artifact.quantization["seconds"] = round(time.perf_counter() - begun, 1)
        built[artifact.name] = artifact
    return list(built.values())


def _calibration(student: TrainedStudent, spec: ExportSpec, calibrations: dict[int, CalibrationSet],
                 console) -> CalibrationSet | None:
    """The calibration set of a static scheme (None for the others), built once per item count."""
    items = targets.calibration_items(spec)
    if items is None:
        return None
    if items < spec.calibration_items:
        say(console, f"[yellow]{spec.target} {spec.scheme} calibrates on {items} of the {spec.calibration_items} "
                      "items asked: its calibration runs in PyTorch fake-quant, which is slow[/]")
    if items not in calibrations:
        calibrations[items] = calibration_set(student, items)
        say(console, f"calibration set: {calibrations[items].items} items from {calibrations[items].source}")
    return calibrations[items]


def _describe(student: TrainedStudent, artifact: Artifact, test: TestSet, out: Path, advance=None) -> dict:
    scores, mode = _artifact_scores(student, artifact, test.inputs, advance)
    parity = parity_report(test.reference, scores, test.gold, student.labels, student.thresholds)
    size = file_ref(artifact.path, out).bytes
    artifact.record["scores"] = scores
    return {"target": artifact.spec.target, "scheme": artifact.spec.scheme, "file": artifact.path.relative_to(out).as_posix(),
            "bytes": size, "size_mb": round(size / 1e6, 3), "quantization": artifact.quantization,
            "interface": _interface(student, artifact), "parity": parity, "parity_mode": mode}


def _artifact_scores(student: TrainedStudent, artifact: Artifact, inputs: dict, advance=None) -> tuple[np.ndarray, str]:
    if artifact.runs_here:
        runner = load_runner(artifact.spec.target, artifact.path, student.input_names)
        return run_all(runner, inputs, advance), f"measured in {artifact.spec.target} runtime"
    estimate = artifact.estimate or student.module
    how = ("estimate: same compression applied in PyTorch (coremltools.optimize.torch)" if artifact.estimate
           else "estimate: fp32 PyTorch (fp16 rounding not modelled)")
    scores = torch_scores(estimate, inputs, student.input_names)
    if advance is not None:
        advance(len(scores))
    return scores, f"{how}; Core ML predictions need macOS, not run"


def _interface(student: TrainedStudent, artifact: Artifact) -> dict:
    declared = {"inputs": {n: {"shape": s, "dtype": student.input_dtypes()[n]} for n, s in student.input_shapes().items()},
                "outputs": {OUTPUT_NAME: {"shape": [1, len(student.labels)], "dtype": "float32",
                                          "meaning": "sigmoid" if student.recipe.multi_label else "softmax"}}}
    if artifact.spec.target == "coreml":
        from edgemod.export.coreml import validate_program

        return {**declared, "program": validate_program(artifact.path, student.input_names)}
    runner = load_runner(artifact.spec.target, artifact.path, student.input_names)
    details = runner.io_details()
    if artifact.spec.target in ("tflite", "mediapipe"):
        details["xnnpack_partitions"] = runner.delegate_partitions
    return {**declared, "runtime": details}


def _latency(student: TrainedStudent, artifacts: list[Artifact], test: TestSet, console=None) -> dict:
    """p50 per artifact at 1 and 2 threads, interleaved with torch eager fp32 in the same run."""
    item = {n: a[:1] for n, a in test.inputs.items()}
    results = {}
    for threads in (1, 2):
        calls = {"torch_eager_fp32": _bound(TorchRunner(student.module, student.input_names, threads), item)}
        for artifact in artifacts:
            if artifact.runs_here:
                runner = load_runner(artifact.spec.target, artifact.path, student.input_names, threads)
                calls[artifact.name] = _bound(runner, item)
        with progress(f"export latency, {threads} thread{'s' * (threads > 1)}", 5 * 60 * len(calls), console,
                      unit="calls") as bar:
            results[f"{threads}_thread"] = interleaved(calls, rounds=5, runs=60, advance=bar.advance)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    return results


def _bound(runner, item):
    return lambda: runner(item)


def _write_golden(student: TrainedStudent, artifacts: list[Artifact], test: TestSet, out: Path) -> None:
    from edgemod.export.golden import golden_record, select_items
    from edgemod.runtime.golden import check_golden

    margin = 3 * max(a.spec.tolerance for a in artifacts)
    items = select_items(test.table, test.reference, student.labels, student.thresholds, student.payload_column,
                         margin, student.is_text)
    inputs = student.encode([i.payload for i in items])
    reference = torch_scores(student.module, inputs, student.input_names)
    for artifact in artifacts:
        runner = (load_runner(artifact.spec.target, artifact.path, student.input_names) if artifact.runs_here
                  else TorchRunner(artifact.estimate or student.module, student.input_names))
        expected = run_all(runner, inputs)
        header = {"artifact": artifact.record["file"], "target": artifact.spec.target, "scheme": artifact.spec.scheme,
                  "expected_from": "this artifact in its runtime" if artifact.runs_here
                  else "PyTorch estimate of this artifact (Core ML needs macOS)", "input_names": list(student.input_names)}
        record = golden_record(items, inputs, expected, reference, student.labels, student.thresholds,
                               artifact.spec.tolerance, header)
        path = out / "golden" / f"{artifact.name}.json"
        path.parent.mkdir(exist_ok=True)
        write_json_atomic(path, record)
        artifact.record["golden"] = {"file": path.relative_to(out).as_posix(), "items": len(items),
                                     "check_here": check_golden(record, runner)}


def _copy_device_files(student: TrainedStudent, out: Path) -> list[str]:
    for relative in student.tool_files():
        target = out / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(student.run_dir / relative, target)
    return student.tool_files()


def _finish(student, key, used, artifacts, latency, tolerance, tool_files, seconds, out, console) -> Manifest:
    records = {a.name: {k: v for k, v in a.record.items() if k != "scores"} for a in artifacts}
    summary = {**_summary(artifacts, latency), "reference_noise_tolerance": tolerance}
    files = {name: file_ref(out / rec["file"], out) for name, rec in records.items()}
    files.update({f"golden:{name}": file_ref(out / rec["golden"]["file"], out) for name, rec in records.items()})
    files.update({relative: file_ref(out / relative, out) for relative in tool_files})
    manifest = Manifest(
        stage=STAGE, name=student.recipe.name, recipe=student.recipe.model_dump(mode="json"),
        recipe_sha256=student.recipe.fingerprint(), inputs=used, inputs_key=key, artifacts=files,
        metrics={"export_seconds": round(seconds, 1), "summary": summary, "latency": latency},
        details={"artifacts": records, "labels": student.labels, "thresholds": student.thresholds,
                 "student": student.spec, "train_run": str(student.run_dir.resolve()),
                 "student_metrics": {k: student.manifest.metrics.get(k) for k in ("test", "student_parameters")},
                 "teachers": student.manifest.details.get("teachers", []),
                 "coreml_predictions": "run on macOS" if coreml_can_predict() else
                 "not run: Core ML predicts only on macOS; parity estimated in PyTorch"})
    write_manifest(out, manifest)
    _print_summary(console, summary, seconds)
    return manifest


def _summary(artifacts: list[Artifact], latency: dict) -> dict:
    one = latency["1_thread"]
    torch_p50 = one["torch_eager_fp32"]["p50_ms"]
    rows = {}
    for artifact in artifacts:
        parity = artifact.record["parity"]
        row = {"size_mb": artifact.record["size_mb"], "decision_agreement": parity["decision_agreement"],
               "macro_auroc_drop": parity["macro_auroc_drop"], "max_abs_score_diff": parity["max_abs_score_diff"],
               "median_abs_log_score_diff": parity["median_abs_log_score_diff"], "parity_measured": artifact.runs_here}
        if artifact.name in one:
            float_name = f"{artifact.spec.target}_{EXPORT_SCHEMES[artifact.spec.target][0]}"
            row["p50_ms_1thread"] = one[artifact.name]["p50_ms"]
            row["p50_ms_2threads"] = latency["2_thread"][artifact.name]["p50_ms"]
            row["speedup_vs_torch_eager"] = round(torch_p50 / row["p50_ms_1thread"], 2)
            if float_name in one:
                row["speedup_vs_float_same_runtime"] = round(one[float_name]["p50_ms"] / row["p50_ms_1thread"], 2)
        rows[artifact.name] = row
    return {"torch_eager_fp32_p50_ms_1thread": torch_p50, "artifacts": rows}


def _print_summary(console, summary: dict, seconds: float) -> None:
    if console is None:
        return
    from rich.table import Table

    torch_p50 = summary["torch_eager_fp32_p50_ms_1thread"]
    table = Table(title=f"export: {seconds:.0f} s; torch eager fp32 p50 {torch_p50} ms (1 thread)")
    table.add_column("artifact", no_wrap=True)
    for column in ("MB", "agree", "AUC drop", "max |Δ|", "med |Δlog|", "ms 1t", "ms 2t", "× float", "× torch"):
        table.add_column(column, justify="right")
    for name, row in summary["artifacts"].items():
        agreement = f"{row['decision_agreement']:.4f}" + ("" if row["parity_measured"] else "*")
        drop = row["macro_auroc_drop"]
        table.add_row(name, f"{row['size_mb']:.2f}", agreement, "-" if drop is None else f"{drop:+.4f}",
                      f"{row['max_abs_score_diff']:.4f}", f"{row['median_abs_log_score_diff']:.4f}",
                      str(row.get("p50_ms_1thread", "-")), str(row.get("p50_ms_2threads", "-")),
                      str(row.get("speedup_vs_float_same_runtime", "-")), str(row.get("speedup_vs_torch_eager", "-")))
    console.print(table)
    if any(not row["parity_measured"] for row in summary["artifacts"].values()):
        console.print("* estimated in PyTorch: Core ML predictions need macOS")
    levels = ", ".join(f"σ {level} → {agreement:.4f}" for level, agreement in summary["reference_noise_tolerance"].items())
    console.print(f"the fp32 student's own decisions under log-score noise (expected agreement): {levels}")
