"""A portable image-model checkpoint: one folder that rebuilds the model without the training code.

```
<folder>/
  model.safetensors   # the state dict (no pickles, so loading runs no code)
  config.json         # arch, labels, build options, pre-processing, tool versions, extra
```

`arch` is a registered image student (`training.students.vision`) or any timm model name, so
teachers trained with `edgemod teacher train` and distilled students share one format, and the
`timm` teacher kind reads both. The pre-processing travels with the weights (timm's rule), so
whoever scores with the checkpoint resizes and normalises exactly as in training.
"""
from __future__ import annotations

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.fsutil import sha256_file

if TYPE_CHECKING:
    from edgemod.runtime.image import PreprocessConfig

FORMAT = "edgemod.image-checkpoint"
FORMAT_VERSION = 1
WEIGHTS = "model.safetensors"
CONFIG = "config.json"
SAVE_HINT = "write the folder with training.vision.checkpoint.save_image_checkpoint (or `edgemod teacher train`)"


# --- save ----------------------------------------------------------------------------------------

def save_image_checkpoint(folder: str | Path, model, arch: str, labels: list[str],
                          preprocess: PreprocessConfig, extra: dict | None = None) -> Path:
    """Write `model.safetensors` and `config.json` into `folder`, atomically.

    The files are written into a temp folder beside `folder`, which is then renamed into place, so
    a crash never leaves a half-written checkpoint. An existing checkpoint folder is replaced; any
    other non-empty folder is refused (it may hold the user's files).

    Args:
        folder: the checkpoint folder to create or replace.
        model: the torch module (for example from `build_student`).
        arch: the student name or timm model name that rebuilds `model`.
        labels: class names in output order; one per model output.
        preprocess: the eval pre-processing the model expects.
        extra: JSON-serialisable provenance (recipe name, metrics, ...).

    Returns:
        The checkpoint folder.
    """
    from edgemod.training.students.vision import BUILD_OPTIONS_ATTR, REPARAMETERIZED_ATTR, timm_arch

    target = Path(folder)
    _check_replaceable(target)
    _check_arch(arch)
    config = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": arch,
        "timm_arch": timm_arch(arch),
        "num_classes": _num_classes(model, labels),
        "labels": list(labels),
        # Structural timm options (and image_size) are needed to rebuild the same module.
        "build_options": dict(getattr(model, BUILD_OPTIONS_ATTR, {})),
        # Fused models have different state-dict keys; the loader fuses a fresh model first.
        "reparameterized": bool(getattr(model, REPARAMETERIZED_ATTR, False)),
        "preprocess": preprocess.to_dict(),
        "versions": _versions(),
        "extra": extra or {},
    }
    _check_json(config)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Not tempfile.mkdtemp: its 0700 mode would survive the rename and hide the checkpoint from
    # colleagues; mkdir honours the umask.
    tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}.tmp")
    tmp.mkdir()
    try:
        _write_weights(model, tmp / WEIGHTS)
        config["weights_sha256"] = sha256_file(tmp / WEIGHTS)
        (tmp / CONFIG).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
        _swap_in(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _num_classes(model, labels: list[str]) -> int:
    width = getattr(model, "num_classes", None)
    if not labels or (width is not None and width != len(labels)):
        raise EdgemodError(f"the model has {width} outputs but {len(labels)} labels were given",
                           "pass one label name per model output, in output order")
    return len(labels)


def _check_arch(arch: str) -> None:
    """Refuse to write a checkpoint that `load_image_checkpoint` could not rebuild."""
    import timm

    from edgemod.training.students.vision import is_image_student

    if not (is_image_student(arch) or timm.is_model(arch)):
        raise EdgemodError(f"cannot save a checkpoint for arch '{arch}': it is neither an image student "
                           f"nor a timm {timm.__version__} model", "pass the name the model was built with")


def _check_json(config: dict) -> None:
    try:
        json.dumps(config)
    except TypeError as error:
        raise EdgemodError(f"checkpoint config is not JSON-serialisable: {error}",
                           "pass plain str/int/float/list/dict values in `extra` and student options") from None


def _write_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    tensors, seen = {}, set()
    for key, value in model.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        # safetensors refuses tensors that share memory (tied weights); store each one separately.
        if tensor.numel() and tensor.data_ptr() in seen:
            tensor = tensor.clone()
        seen.add(tensor.data_ptr())
        tensors[key] = tensor
    save_file(tensors, str(path), metadata={"format": FORMAT})


def _versions() -> dict[str, str]:
    import safetensors
    import timm
    import torch

    return {"timm": timm.__version__, "torch": torch.__version__, "safetensors": safetensors.__version__}


def _check_replaceable(target: Path) -> None:
    if target.exists() and not target.is_dir():
        raise EdgemodError(f"cannot write a checkpoint to {target}: it is a file", "choose a folder path")
    if target.is_dir() and any(target.iterdir()) and not (target / CONFIG).exists():
        raise EdgemodError(f"{target} exists and is not an image checkpoint; refusing to replace it",
                           "choose a new or empty folder")


def _swap_in(tmp: Path, target: Path) -> None:
    """Rename `tmp` to `target`; an existing target is moved aside first and removed after."""
    if not target.exists():
        os.replace(tmp, target)
        return
    old = target.with_name(f".{target.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(target, old)
    try:
        os.replace(tmp, target)
    except OSError:
        os.replace(old, target)  # put the previous checkpoint back
        raise
    shutil.rmtree(old, ignore_errors=True)


# --- load ----------------------------------------------------------------------------------------

def load_image_checkpoint(folder: str | Path) -> tuple[Any, dict]:
    """Rebuild the model saved in `folder`.

    Returns:
        `(model, config)`: the torch module in eval mode with the saved weights, and the parsed
        `config.json` (`config["preprocess"]` feeds `PreprocessConfig.from_dict`).

    Raises:
        EdgemodError: the folder or a file is missing, the arch is unknown, or the weights do not
            fit the arch (the message names the first mismatched key).
    """
    root = Path(folder).expanduser()
    config = read_image_config(root)
    model = _build(config, root)
    _load_weights(model, root / WEIGHTS, config["arch"])
    return model.eval(), config


def read_image_config(folder: str | Path) -> dict:
    """The validated `config.json` of a checkpoint folder (no torch import)."""
    root = Path(folder).expanduser()
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "not found"
        raise EdgemodError(f"image checkpoint folder {what}: {root}",
                           f"give the folder that holds {CONFIG} and {WEIGHTS}; {SAVE_HINT}")
    for name in (CONFIG, WEIGHTS):
        if not (root / name).is_file():
            raise EdgemodError(f"image checkpoint {root} has no {name}", SAVE_HINT)
    try:
        config = json.loads((root / CONFIG).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise EdgemodError(f"{root / CONFIG} is not valid JSON: {error}", SAVE_HINT) from None
    missing = [key for key in ("arch", "num_classes", "labels", "preprocess") if key not in config]
    if missing:
        raise EdgemodError(f"{root / CONFIG} lacks {', '.join(missing)}", SAVE_HINT)
    if len(config["labels"]) != config["num_classes"]:
        raise EdgemodError(f"{root / CONFIG} has {len(config['labels'])} labels for "
                           f"{config['num_classes']} classes", "list one label per class")
    return config


def _build(config: dict, root: Path):
    import timm

    from edgemod.training.students import STUDENTS, build_student
    from edgemod.training.students.vision import create_timm_student, is_image_student, reparameterize

    arch, options = config["arch"], dict(config.get("build_options") or {})
    if is_image_student(arch):
        model = build_student(arch, config["num_classes"], **options)
    elif timm.is_model(arch):
        model = create_timm_student(arch, config["num_classes"], **options)
    else:
        students = [name for name, entry in STUDENTS.items() if entry.task == "image-classification"]
        raise EdgemodError(
            f"image checkpoint {root} has unknown arch '{arch}'{did_you_mean(arch, students)}",
            f"set arch in {CONFIG} to an image student ({', '.join(sorted(students))}) or a timm "
            f"{timm.__version__} model name (saved with timm {config.get('versions', {}).get('timm', '?')})",
        )
    return reparameterize(model) if config.get("reparameterized") else model


def _load_weights(model, path: Path, arch: str) -> None:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        saved = load_file(str(path))
    except (SafetensorError, OSError) as error:
        raise EdgemodError(f"cannot read {path}: {error}", f"the file is damaged; {SAVE_HINT}") from None
    mismatch = first_mismatch(model.state_dict(), saved)
    if mismatch:
        raise EdgemodError(f"weights in {path} do not match arch '{arch}': {mismatch}",
                           f"set arch (and build_options) in {CONFIG} to what the weights were "
                           f"trained with, or re-save the checkpoint")
    model.load_state_dict(saved, strict=True)


def first_mismatch(expected: dict, saved: dict) -> str | None:
    """A description of the first key whose presence or shape differs, with totals; None if equal."""
    missing = [key for key in expected if key not in saved]
    unexpected = [key for key in saved if key not in expected]
    reshaped = [key for key in expected
                if key in saved and tuple(saved[key].shape) != tuple(expected[key].shape)]
    if not (missing or unexpected or reshaped):
        return None
    first = next(key for key in [*expected, *saved] if key in {*missing, *unexpected, *reshaped})
    if first in reshaped:
        detail = (f"first mismatched key '{first}' has shape {list(saved[first].shape)} in the file, "
                  f"{list(expected[first].shape)} in the model")
    elif first in missing:
        detail = f"first mismatched key '{first}' is missing from the file"
    else:
        detail = f"first mismatched key '{first}' is not in the model"
    return f"{detail} ({len(missing)} missing, {len(unexpected)} unexpected, {len(reshaped)} reshaped)"
