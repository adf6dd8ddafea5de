"""The golden-vector protocol, replayed from the raw payloads the way a phone would.

`edgemod.runtime.golden.check_golden` feeds the stored inputs to a runtime. A device has no stored inputs:
it tokenizes the text (or decodes and resizes the image) itself. So this check builds every
golden item's inputs from its payload with the export folder's own tokenizer / `preprocess.json`,
compares them with the golden inputs, runs the artifact on what it built, and compares the
scores and decisions. A wrong tokenizer file, a changed normalizer or a different resize shows
up as an input mismatch before it becomes a silent accuracy loss on phones.
"""
from __future__ import annotations

import json
import platform
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.mobile_harness.device_pipeline import STAGE, DevicePipeline, artifact_record

FLOAT_INPUT_TOLERANCE = 1e-5  # resize/normalise in float32 on two machines, not bit-exact


def check_export(export_dir: str | Path, artifacts: list[str] | None = None, threads: int = 1) -> list[dict]:
    """`check_artifact` for the named artifacts, or for every artifact of the export."""
    from edgemod.manifest import read_manifest

    manifest = read_manifest(export_dir, STAGE)
    names = artifacts or list(manifest.details.get("artifacts", {}))
    return [check_artifact(export_dir, name, threads, manifest=manifest) for name in names]


def check_artifact(export_dir: str | Path, artifact_name: str, threads: int = 1, manifest=None) -> dict:
    """Replay one artifact's golden vectors from their payloads.

    Returns:
        A report: `items`, `inputs_match` (token ids exact; float images within 1e-5),
        `input_mismatches`, `max_abs_input_diff`, `max_abs_score_diff`, `decision_mismatches`
        (items within the tolerance of a threshold are excused, as in `check_golden`),
        `payload_errors`, `changed_files` (device files whose sha256 differs from the manifest),
        `runtime_only` (the stored inputs through the runtime: separates runtime from
        pre-processing problems), `skipped` (why scores were not computed, or None) and `passed`
        (True, False, or None when skipped without any failure).
    """
    from edgemod.manifest import read_manifest
    from edgemod.runtime.runners import coreml_can_predict

    export_dir = Path(export_dir)
    manifest = manifest or read_manifest(export_dir, STAGE)
    record = artifact_record(export_dir, artifact_name, manifest)
    golden = _golden(export_dir, record)
    report = {"artifact": artifact_name, "target": record["target"], "scheme": record["scheme"], "threads": threads,
              "golden": record["golden"]["file"], "items": len(golden["items"]),
              "tolerance": golden["tolerance"]["max_abs_score_diff"],
              "changed_files": changed_files(export_dir, manifest, artifact_name), "skipped": None}
    runs_here = record["target"] != "coreml" or coreml_can_predict()
    if not runs_here:
        # Never pretend: the inputs can be checked here, the scores cannot.
        report["skipped"] = (f"scores not computed: Core ML predicts only on macOS (this is {platform.system()}); "
                             "inputs were checked. Run `edgemod harness golden` or `ios-test` on a Mac")
    try:
        pipeline = DevicePipeline.from_export(export_dir, artifact_name, threads, manifest=manifest, load_model=runs_here)
    except EdgemodError as error:
        return {**report, "error": error.message, "hint": error.hint, "passed": False}
    report.update(replay(pipeline, golden))
    if runs_here:
        from edgemod.runtime.golden import check_golden

        report["runtime_only"] = check_golden(golden, pipeline.runner)
    if record["target"] == "mediapipe":
        report["mediapipe_tasks"] = tasks_replay(export_dir / record["file"], golden, manifest)
    report["passed"] = _verdict(report)
    return report


def replay(pipeline: DevicePipeline, golden: dict) -> dict:
    """Build each item's inputs from its payload; compare inputs, and scores when the model is loaded."""
    from edgemod.runtime.golden import decode_tensor

    tolerance = golden["tolerance"]["max_abs_score_diff"]
    mismatches, errors, decisions = [], [], []
    worst_input, worst_score = None, None
    for item in golden["items"]:
        try:
            built = pipeline.inputs(item["payload"])
        except EdgemodError as error:  # e.g. the image file is not on this machine
            errors.append({"key": item["key"], "error": error.message})
            continue
        expected = {name: decode_tensor(tensor) for name, tensor in item["inputs"].items()}
        for name, difference in compare_inputs(built, expected).items():
            if difference.get("float_max_abs_diff") is not None:
                worst_input = max(worst_input or 0.0, difference["float_max_abs_diff"])
            if not difference["match"]:
                mismatches.append({"key": item["key"], "input": name, **difference})
        if pipeline.runner is None:
            continue
        scores = pipeline.scores(built)
        worst_score = max(worst_score or 0.0, float(np.abs(scores[0] - np.asarray(item["expected_scores"])).max()))
        near_threshold = item.get("threshold_margin", np.inf) <= tolerance
        if pipeline.decision(scores) != item["expected_decision"] and not near_threshold:
            decisions.append(item["key"])
    return {"inputs_match": not mismatches and not errors, "input_mismatches": mismatches,
            "max_abs_input_diff": None if worst_input is None else round(worst_input, 8),
            "max_abs_score_diff": None if worst_score is None else round(worst_score, 6),
            "decision_mismatches": decisions, "payload_errors": errors}


def tasks_replay(path: Path, golden: dict, manifest) -> dict:
    """Every golden payload through MediaPipe Tasks (its own tokenizer or image pre-processing):
    decisions must equal the golden decisions, except for items within the tolerance of a threshold."""
    from edgemod.runtime.golden import decision_label
    from edgemod.runtime.tasks_check import tasks_scores

    task = "image" if manifest.recipe.get("task") == "image-classification" else "text"
    crop_pct = None
    if task == "image":
        crop_pct = json.loads((path.parent.parent / "preprocess.json").read_text(encoding="utf-8"))["crop_pct"]
    labels, tolerance = golden["labels"], golden["tolerance"]["max_abs_score_diff"]
    items = golden["items"]
    scores = tasks_scores(path, task, labels, [item["payload"] for item in items], crop_pct)
    mismatches = [item["key"] for item, row in zip(items, scores)
                  if decision_label(row, labels, golden["thresholds"]) != item["expected_decision"]
                  and item.get("threshold_margin", np.inf) > tolerance]
    worst = float(np.abs(scores - np.asarray([item["expected_scores"] for item in items])).max()) if items else 0.0
    return {"items": len(items), "decision_mismatches": mismatches, "max_abs_score_diff": round(worst, 6),
            "passed": not mismatches}


def compare_inputs(built: dict[str, np.ndarray], expected: dict[str, np.ndarray],
                   float_tolerance: float = FLOAT_INPUT_TOLERANCE) -> dict[str, dict]:
    """Per input: exact equality for integer tensors (token ids, mask), max |diff| for floats."""
    out = {}
    for name, want in expected.items():
        got = built.get(name)
        if got is None or got.shape != want.shape:
            out[name] = {"match": False, "reason": f"shape {None if got is None else list(got.shape)}, "
                                                   f"expected {list(want.shape)}"}
        elif np.issubdtype(want.dtype, np.integer):
            differing = int((got != want).sum())
            out[name] = {"match": differing == 0 and got.dtype == want.dtype, "differing_positions": differing,
                         **({} if got.dtype == want.dtype else {"reason": f"dtype {got.dtype}, expected {want.dtype}"})}
        else:
            diff = float(np.abs(got.astype(np.float64) - want.astype(np.float64)).max())
            out[name] = {"match": diff <= float_tolerance, "float_max_abs_diff": diff}
    return out


def changed_files(export_dir: Path, manifest, artifact_name: str) -> list[str]:
    """Files this artifact's device pipeline reads whose sha256 no longer matches the manifest."""
    from edgemod.manifest import verify_artifacts

    def used(name: str) -> bool:
        return (name in (artifact_name, f"golden:{artifact_name}", "student.json", "thresholds.json", "preprocess.json")
                or name.startswith("tokenizer/"))

    subset = {name: ref for name, ref in manifest.artifacts.items() if used(name)}
    return verify_artifacts(export_dir, manifest.model_copy(update={"artifacts": subset}))


def _golden(export_dir: Path, record: dict) -> dict:
    path = export_dir / record["golden"]["file"]
    if not path.is_file():
        raise EdgemodError(f"golden vectors {path} are missing", f"re-run `edgemod export` into {export_dir}")
    return json.loads(path.read_text(encoding="utf-8"))


def _verdict(report: dict) -> bool | None:
    tolerance, worst = report["tolerance"], report.get("max_abs_score_diff")
    failed = (report["changed_files"] or not report["inputs_match"] or report["decision_mismatches"]
              or (worst is not None and worst > tolerance)
              or not report.get("runtime_only", {"passed": True})["passed"]
              or not report.get("mediapipe_tasks", {"passed": True})["passed"])
    if failed:
        return False
    return None if report["skipped"] else True
