"""Build one artifact per (target, scheme): float conversion or a quantization of the float model."""
from __future__ import annotations

import json
from pathlib import Path

from edgemod.export.artifact import Artifact
from edgemod.export.student import TrainedStudent
from edgemod.quantization.calibration import CalibrationSet
from edgemod.recipe import ExportSpec

STATIC_SCHEMES = {("tflite", "int8_static"), ("mediapipe", "int8_static"), ("onnx", "int8_static"), ("coreml", "w8a8")}
# Core ML w8a8 calibrates by running fake-quantized PyTorch, which is slow; 64 items fix the ranges.
COREML_W8A8_CALIBRATION_ITEMS = 64


def calibration_items(spec: ExportSpec) -> int | None:
    """How many calibration items `spec` uses: None for schemes that do not calibrate, else the
    recipe's calibration_items, capped for Core ML w8a8."""
    if (spec.target, spec.scheme) not in STATIC_SCHEMES:
        return None
    if (spec.target, spec.scheme) == ("coreml", "w8a8"):
        return min(spec.calibration_items, COREML_W8A8_CALIBRATION_ITEMS)
    return spec.calibration_items


def build(student: TrainedStudent, spec: ExportSpec, path: Path, built: dict[str, Artifact],
          calibration: CalibrationSet | None) -> Artifact:
    """Convert or quantize `student` as `spec` says, into `path`.

    Args:
        built: the artifacts built so far by name; quantized variants are cut from their float model.
        calibration: the calibration set of a static scheme, None for every other scheme.
    """
    artifact = Artifact(spec=spec, path=path, quantization={"scheme": spec.scheme})
    if calibration is not None:
        artifact.quantization.update(calibration.record(asked=spec.calibration_items))
    BUILDERS[spec.target](student, artifact, built, calibration)
    return artifact


def _metadata(student: TrainedStudent, spec: ExportSpec) -> dict:
    per_class = {label: entry["threshold"] for label, entry in student.thresholds["per_class"].items()}
    extra = ({"tokenizer": "tokenizer/tokenizer_spec.json", "max_length": student.spec["max_length"]} if student.is_text
             else {"preprocess": json.loads((student.run_dir / "preprocess.json").read_text())})
    return {"description": f"edgemod {student.recipe.name}: {student.recipe.task}, scores for {', '.join(student.labels)}",
            "edgemod.recipe": student.recipe.name, "edgemod.scheme": spec.scheme,
            "thresholds": per_class, "benign": student.thresholds.get("benign"),
            "inputs": list(student.input_names), **extra}


def _tflite(student: TrainedStudent, artifact: Artifact, built: dict[str, Artifact],
            calibration: CalibrationSet | None) -> None:
    spec = artifact.spec
    if spec.is_float:
        from edgemod.export.tflite import export_tflite

        export_tflite(student.module, student.sample_inputs(), student.input_names, artifact.path)
        artifact.quantization.update({"engine": "litert-torch"})
        return
    from edgemod.quantization.tflite import quantize_tflite

    details = quantize_tflite(built["tflite_fp32"].path, artifact.path, spec.scheme, calibration,
                              student.input_names, spec.float_ops, spec.float_first_layers)
    artifact.quantization.update(details)


def _mediapipe(student: TrainedStudent, artifact: Artifact, built: dict[str, Artifact],
               calibration: CalibrationSet | None) -> None:
    """The TFLite artifact in Tasks' input layout, with Tasks metadata (export/mediapipe_tasks.py)."""
    from dataclasses import replace

    from edgemod.export import mediapipe_tasks as tasks
    from edgemod.export.tflite import export_tflite

    spec, layout = artifact.spec, tasks.tasks_layout(student)
    names = tuple(layout["inputs"])
    sample = tasks.tasks_inputs(student.sample_inputs(), layout)
    # Quantized variants are cut from a float model without Tasks metadata: MediaPipe stores its
    # files after the flatbuffer, where the quantizer would not keep them.
    plain = artifact.path if spec.is_float else artifact.path.with_name(f".{artifact.path.stem}.float.tflite")
    export_tflite(tasks.tasks_module(student, layout), sample, names, plain)
    artifact.quantization.update({"engine": "litert-torch"})
    if not spec.is_float:
        from edgemod.quantization.tflite import quantize_tflite

        adapted = None if calibration is None else replace(calibration, inputs=tasks.tasks_inputs(calibration.inputs, layout))
        try:
            artifact.quantization.update(quantize_tflite(plain, artifact.path, spec.scheme, adapted, names, spec.float_ops,
                                                               spec.float_first_layers))
        finally:
            plain.unlink(missing_ok=True)
    tasks.add_layout_entry(artifact.path, layout)
    artifact.quantization.update(tasks.add_tasks_metadata(artifact.path, student, layout))


def _onnx(student: TrainedStudent, artifact: Artifact, built: dict[str, Artifact],
          calibration: CalibrationSet | None) -> None:
    spec = artifact.spec
    if spec.is_float:
        from edgemod.export.onnx_export import OPSET, export_onnx

        export_onnx(student.module, student.sample_inputs(), student.input_names, artifact.path, _metadata(student, spec))
        artifact.quantization.update({"engine": "torch.onnx (dynamo)", "opset": OPSET})
        return
    from edgemod.quantization.onnx import quantize_onnx

    details = quantize_onnx(built["onnx_fp32"].path, artifact.path, spec.scheme, calibration, spec.op_types,
                            spec.float_ops, spec.calibration_method, spec.float_first_layers)
    artifact.quantization.update(details)


def _coreml(student: TrainedStudent, artifact: Artifact, built: dict[str, Artifact],
            calibration: CalibrationSet | None) -> None:
    from edgemod.export.coreml import convert_coreml, describe, save_mlpackage

    spec = artifact.spec
    common = dict(labels=student.labels, multi_label=student.recipe.multi_label, target=spec.minimum_deployment_target,
                  metadata=_metadata(student, spec))
    artifact.quantization.update({"engine": "coremltools", "minimum_deployment_target": spec.minimum_deployment_target})
    if spec.is_float:
        artifact.handle = convert_coreml(student.module, student.sample_inputs(), student.input_names,
                                         precision=spec.scheme, **common)
    elif spec.scheme == "w8a8":
        from edgemod.export.tflite import torch_sample
        from edgemod.quantization.coreml import torch_estimate

        batches = [torch_sample(row, student.input_names) for row in calibration.rows()]
        artifact.estimate = torch_estimate(student.module, "w8a8", spec.palettize_bits, batches)
        artifact.handle = convert_coreml(artifact.estimate, student.sample_inputs(), student.input_names,
                                         precision="fp16", **common)
        artifact.quantization.update({"weights": "int8 per-channel symmetric", "activations": "int8 (LinearQuantizer)"})
    else:
        from edgemod.quantization.coreml import compress_program, torch_estimate

        base = next(a for a in built.values() if a.spec.target == "coreml" and a.spec.is_float)
        artifact.handle = compress_program(base.handle, spec.scheme, spec.palettize_bits)
        describe(artifact.handle, student.labels, {**common["metadata"], "edgemod.scheme": spec.scheme})
        artifact.estimate = torch_estimate(student.module, spec.scheme, spec.palettize_bits)
        artifact.quantization.update({"weights": "int8 per-channel symmetric" if spec.scheme == "w8"
                                      else f"{spec.palettize_bits}-bit k-means palette"})
    save_mlpackage(artifact.handle, artifact.path)


BUILDERS = {"tflite": _tflite, "mediapipe": _mediapipe, "onnx": _onnx, "coreml": _coreml}
