"""Core ML (mlprogram) export. Converting and compressing work on Linux; predictions need macOS."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from edgemod.errors import EdgemodError, unknown_choice
from edgemod.export.op_errors import conversion_error
from edgemod.export.student import OUTPUT_NAME
from edgemod.export.tflite import torch_sample
from edgemod.optional import coremltools


def deployment_target(name: str):
    ct = coremltools()
    known = [t.name for t in ct.target]
    if name not in known:
        raise unknown_choice("Core ML minimum_deployment_target", name, known)
    return getattr(ct.target, name)


def convert_coreml(module, sample_inputs: dict, input_names: tuple[str, ...], *, labels: list[str],
                   multi_label: bool, precision: str, target: str, metadata: dict):
    """An in-memory MLModel; `precision` is fp16 or fp32 compute precision."""
    import torch

    ct = coremltools()
    sample = torch_sample(sample_inputs, input_names)
    inputs = [ct.TensorType(name=n, shape=sample_inputs[n].shape, dtype=sample_inputs[n].dtype.type)
              for n in input_names]
    classifier = None if multi_label else ct.ClassifierConfig(labels, predicted_probabilities_output=OUTPUT_NAME)
    try:
        with torch.no_grad():
            traced = torch.jit.trace(module, sample)
        model = ct.convert(traced, inputs=inputs, outputs=[ct.TensorType(name=OUTPUT_NAME)],
                           classifier_config=classifier, convert_to="mlprogram",
                           compute_precision=ct.precision.FLOAT16 if precision == "fp16" else ct.precision.FLOAT32,
                           minimum_deployment_target=deployment_target(target))
    except EdgemodError:
        raise
    except Exception as error:
        raise conversion_error("coreml", error, module, sample) from error
    describe(model, labels, metadata)
    return model


def describe(model, labels: list[str], metadata: dict) -> None:
    model.short_description = metadata.get("description", "")
    model.version = str(metadata.get("version", ""))
    model.user_defined_metadata["labels"] = json.dumps(labels)
    for key, value in metadata.items():
        model.user_defined_metadata[key] = value if isinstance(value, str) else json.dumps(value)


def save_mlpackage(model, out: Path) -> Path:
    """Save next to the target and rename, so a failed save leaves no half-written package."""
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save(str(tmp))
    if out.exists():
        shutil.rmtree(out)
    tmp.rename(out)
    return out


def validate_program(path: Path, input_names: tuple[str, ...]) -> dict:
    """What can be checked without macOS: the package loads, its interface and op counts."""
    ct = coremltools()
    model = ct.models.MLModel(str(path), skip_model_load=True)
    spec = model.get_spec()
    names = [i.name for i in spec.description.input]
    if list(names) != list(input_names):
        raise EdgemodError(f"{path} has inputs {names}, expected {list(input_names)}",
                           "re-export; the converted program does not match the student")
    ops: dict[str, int] = {}
    for function in spec.mlProgram.functions.values():
        for block in function.block_specializations.values():
            for op in block.operations:
                ops[op.type] = ops.get(op.type, 0) + 1
    return {"inputs": names, "outputs": [o.name for o in spec.description.output],
            "spec_version": spec.specificationVersion, "ops": dict(sorted(ops.items())),
            "predicted": False}
