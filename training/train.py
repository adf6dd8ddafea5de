"""`edgemod train`: distil the recipe's teachers into its student.

Reads the label stage's manifest and Parquet file, prepares the task's inputs (a tokenizer with its
normalizer, or image pre-processing and augmentation), trains with early stopping on validation macro-F1, picks per-class thresholds on validation, reports validation and
test metrics for the student and the teacher, and writes a run folder with `manifest.json`.
The whole loop reads top to bottom here; data preparation and evaluation sit just below it.
"""
from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.fsutil import atomic_path, write_json_atomic
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, read_manifest, write_manifest
from edgemod.recipe import POST_TRAINING, Recipe, apply_overrides, parse_recipe
from training.distill import distillation_loss
from training.label import label_fingerprint
from training.inputs import Split, student_inputs
from training.metrics import classification_report
from training.thresholds import choose_thresholds, decide, operating_points

log = logging.getLogger(__name__)
STAGE = "train"
WEIGHTS = "model.safetensors"


def run(upstream: Path, out: Path, overrides: list[str] | None = None, console=None) -> Manifest:
    """Train the student of the recipe recorded in the label run at `upstream`."""
    import torch

    upstream, out = Path(upstream), Path(out)
    label_manifest = read_manifest(upstream, "label")
    recipe = _resolve_recipe(label_manifest, overrides or [])
    key = inputs_key(recipe.fingerprint(exclude=POST_TRAINING), {"labels": label_manifest.artifacts["labels"]})
    if (done := finished_run(out, STAGE, key)) is not None:
        _say(console, f"train: nothing to do, {out} is up to date")
        return done
    torch.manual_seed(recipe.distill.seed)
    table = _read_labels(upstream / label_manifest.artifacts["labels"].path)
    inputs, splits = _prepare(recipe, table)
    model = inputs.build_model(recipe)
    started = time.time()
    history = _fit(model, recipe, inputs, splits, out / "checkpoints", key, console)
    seconds = time.time() - started
    _load_weights(model, out / "checkpoints" / "best.safetensors")
    return _finish(recipe, label_manifest, key, model, inputs, splits, table, history, seconds, out)


def _resolve_recipe(label_manifest: Manifest, overrides: list[str]) -> Recipe:
    recorded = parse_recipe(label_manifest.recipe, "recorded in the label run")
    recipe = parse_recipe(apply_overrides(label_manifest.recipe, overrides), "with overrides")
    if label_fingerprint(recipe) != label_fingerprint(recorded):
        raise EdgemodError("the overrides change the data, labels or teachers of the labelled run",
                           "re-run `edgemod label` with the changed recipe first")
    return recipe


def _read_labels(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except Exception as error:
        raise EdgemodError(f"cannot read the label cache {path}: {error}",
                           "re-run `edgemod label` to rebuild it") from None


def _prepare(recipe: Recipe, table):
    """Task-specific inputs (tokenizer or image pre-processing) and the train/validation/test splits."""
    inputs = student_inputs(recipe, table)
    soft = table[[f"p:{l}" for l in recipe.labels]].to_numpy(np.float32)
    gold = _gold_matrix(table["label"], recipe)
    usable = np.ones(len(table), dtype=bool)
    usable[inputs.bad_rows] = False
    train_roles = ("train",) if recipe.distill.gold_only else ("train", "transfer")
    splits = {}
    for name, roles in (("train", train_roles), ("validation", ("validation",)), ("test", ("test",))):
        rows = np.flatnonzero(table["role"].isin(roles).to_numpy() & usable)
        splits[name] = Split(inputs.inputs_for(rows), soft[rows], gold[rows], table["key"].iloc[rows].tolist())
    return inputs, splits


def _gold_matrix(labels, recipe: Recipe) -> np.ndarray:
    """Class index per row (-1 when unlabelled), or a multi-hot matrix (`a|b`) for multi-label."""
    index = {label: i for i, label in enumerate(recipe.labels)}
    if not recipe.multi_label:
        return np.array([index[l] if isinstance(l, str) else -1 for l in labels], dtype=np.int64)
    gold = np.full((len(labels), len(recipe.labels)), -1, dtype=np.int64)
    for row, value in enumerate(labels):
        if isinstance(value, str):
            gold[row] = 0
            for part in filter(None, value.split("|")):
                gold[row, index[part]] = 1
    return gold


def _fit(model, recipe: Recipe, inputs, splits: dict[str, Split], checkpoints: Path, key: str, console) -> list[dict]:
    """Train with AdamW + warmup/cosine, evaluate every epoch, keep the best, stop early, resume."""
    import torch
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    spec = recipe.distill
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    sampler, class_weights = _balancing(recipe, splits["train"])
    loader = _loader(inputs.train_dataset(splits["train"]), spec.batch_size, spec.seed, spec.num_workers,
                     sampler=sampler)
    total_steps = spec.max_steps or spec.epochs * len(loader)
    optimizer = torch.optim.AdamW(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(total_steps, spec.warmup_ratio))
    state = _resume(checkpoints, key, model, optimizer, scheduler, console)
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} samples/s  loss {task.fields[loss]}"), TimeElapsedColumn()]
    with Progress(*columns, console=console) as progress:
        for epoch in range(state["epoch"] + 1, spec.epochs + 1):
            task = progress.add_task(f"epoch {epoch}/{spec.epochs}", total=len(loader), rate="-", loss="-")
            model.train()
            torch.manual_seed(spec.seed + epoch)  # dropout masks reproducible after a resume
            (sampler or loader).generator.manual_seed(spec.seed + epoch)
            started, seen = time.time(), 0
            for *batch_inputs, soft, gold in loader:
                batch_inputs = _memory_format(batch_inputs, spec)
                loss = distillation_loss(model(*batch_inputs), soft, gold, spec, recipe.multi_label, class_weights)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                state["step"] += 1
                seen += len(soft)
                progress.update(task, advance=1, loss=f"{loss.item():.4f}",
                                rate=f"{seen / max(time.time() - started, 1e-9):,.0f}")
                if state["step"] >= total_steps:
                    break
            score = _validation_f1(model, inputs, splits["validation"], recipe)
            state["history"].append({"epoch": epoch, "validation_macro_f1": score, "step": state["step"],
                                     "samples_per_s": round(seen / max(time.time() - started, 1e-9), 1)})
            progress.console.print(f"epoch {epoch}: validation macro-F1 {score:.4f}")
            if score > state["best"]:
                state["best"], state["best_epoch"] = score, epoch
                _save_weights(model, checkpoints / "best.safetensors")
            state["epoch"] = epoch
            _save_state(checkpoints / "last.pt", key, model, optimizer, scheduler, state)
            if epoch - state["best_epoch"] >= spec.patience or state["step"] >= total_steps:
                progress.console.print(f"stopping after epoch {epoch} (best epoch {state['best_epoch']})")
                break
    return state["history"]


def _loader(dataset, batch_size: int, seed: int, workers: int, shuffle: bool = True, sampler=None):
    import torch
    from torch.utils.data import DataLoader

    generator = torch.Generator().manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None, sampler=sampler,
                      generator=generator, num_workers=workers, persistent_workers=workers > 0)


def _memory_format(batch_inputs: list, spec):
    """Images in channels-last layout when the recipe asks (the model is converted in `_fit`)."""
    if not spec.channels_last:
        return batch_inputs
    import torch

    return [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in batch_inputs]


def _balancing(recipe: Recipe, split: Split):
    """A class-balanced sampler or inverse-frequency loss weights, as the recipe asks.

    Rows without a gold label (transfer items) count as the teacher's top class."""
    if recipe.distill.balance == "none" or recipe.multi_label:
        return None, None
    from training.vision.augment import class_balanced_sampler, class_weights

    classes = np.where(split.gold >= 0, split.gold, split.soft.argmax(axis=1))
    if recipe.distill.balance == "sampler":
        return class_balanced_sampler(classes, recipe.distill.seed), None
    return None, class_weights(classes, len(recipe.labels))


def _warmup_cosine(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def _resume(checkpoints: Path, key: str, model, optimizer, scheduler, console) -> dict:
    import torch

    fresh = {"epoch": 0, "step": 0, "best": -1.0, "best_epoch": 0, "history": []}
    path = checkpoints / "last.pt"
    if not path.exists():
        return fresh
    try:
        saved = torch.load(path, weights_only=False)
    except Exception as error:
        _say(console, f"train: checkpoint {path} is unreadable ({error}); starting from scratch")
        return fresh
    if saved.get("key") != key:
        _say(console, "train: checkpoint belongs to other inputs; starting from scratch")
        return fresh
    model.load_state_dict(saved["model"])
    optimizer.load_state_dict(saved["optimizer"])
    scheduler.load_state_dict(saved["scheduler"])
    _say(console, f"train: resuming after epoch {saved['state']['epoch']}")
    return saved["state"]


def _save_state(path: Path, key: str, model, optimizer, scheduler, state: dict) -> None:
    import torch

    payload = {"key": key, "model": model.state_dict(), "optimizer": optimizer.state_dict(),
               "scheduler": scheduler.state_dict(), "state": state}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def _save_weights(model, path: Path) -> None:
    from safetensors.torch import save_file

    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(tmp))


def _load_weights(model, path: Path) -> None:
    from safetensors.torch import load_file

    model.load_state_dict(load_file(str(path)))


def predict(model, dataset, multi_label: bool, batch_size: int = 256, workers: int = 0) -> np.ndarray:
    """Student probabilities over a dataset of `(inputs..., soft, gold)`."""
    import torch

    model.eval()
    outputs = []
    with torch.inference_mode():
        for *batch_inputs, _soft, _gold in _loader(dataset, batch_size, 0, workers, shuffle=False):
            logits = model(*batch_inputs)
            outputs.append((torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def _validation_f1(model, inputs, split: Split, recipe: Recipe) -> float:
    from sklearn.metrics import f1_score

    probs = predict(model, inputs.eval_dataset(split), recipe.multi_label, workers=recipe.distill.num_workers)
    if recipe.multi_label:
        return float(f1_score(split.gold, probs >= 0.5, average="macro", zero_division=0))
    return float(f1_score(split.gold, probs.argmax(1), average="macro", zero_division=0))


def _finish(recipe, label_manifest, key, model, inputs, splits, table, history, seconds, out) -> Manifest:
    import pandas as pd

    labels = recipe.labels
    probs = {name: predict(model, inputs.eval_dataset(splits[name]), recipe.multi_label,
                           workers=recipe.distill.num_workers) for name in ("validation", "test")}
    thresholds = choose_thresholds(probs["validation"], splits["validation"].gold, labels, recipe.thresholds,
                                   recipe.benign_label, recipe.multi_label)
    metrics = {"train_seconds": round(seconds, 1), "history": history,
               "student_parameters": int(sum(p.numel() for p in model.parameters()))}
    teacher_params = [t.get("parameters") for t in label_manifest.details.get("teachers", [])]
    if teacher_params and all(teacher_params):
        metrics["teacher_parameters"] = int(sum(teacher_params))
        metrics["parameter_ratio"] = round(metrics["student_parameters"] / metrics["teacher_parameters"], 4)
    for name in ("validation", "test"):
        metrics[name] = _evaluate(recipe, splits[name], probs[name], thresholds)
    test = metrics["test"]
    if not recipe.multi_label:
        metrics["student_vs_teacher_macro_f1"] = round(test["student"]["macro_f1"] / max(test["teacher"]["macro_f1"], 1e-9), 4)
    out.mkdir(parents=True, exist_ok=True)
    _save_weights(model, out / WEIGHTS)
    preprocessing_files = inputs.save(out)
    write_json_atomic(out / "student.json", {
        "arch": recipe.student.arch, "task": recipe.task, "options": recipe.student.options,
        "num_labels": len(labels), "labels": labels, "multi_label": recipe.multi_label,
        "max_length": recipe.student.max_length, "inputs": inputs.input_spec(recipe),
        "outputs": {"logits": {"shape": [1, len(labels)], "dtype": "float32",
                               "activation": "sigmoid" if recipe.multi_label else "softmax"}}})
    write_json_atomic(out / "thresholds.json", thresholds)
    rows = []
    for name in ("validation", "test"):
        frame = pd.DataFrame(probs[name], columns=[f"student:{l}" for l in labels])
        frame.insert(0, "key", splits[name].keys)
        frame.insert(1, "role", name)
        rows.append(frame)
    predictions = pd.concat(rows).merge(table.drop(columns=["role"]), on="key", how="left")
    with atomic_path(out / "predictions.parquet") as tmp:
        predictions.to_parquet(tmp, index=False)
    artifact_files = [WEIGHTS, "student.json", "thresholds.json", "predictions.parquet", *preprocessing_files]
    manifest = Manifest(
        stage=STAGE, name=recipe.name, recipe=recipe.model_dump(mode="json"), recipe_sha256=recipe.fingerprint(),
        inputs={"labels": label_manifest.artifacts["labels"]}, inputs_key=key,
        artifacts={name: file_ref(out / name, out) for name in artifact_files}, metrics=metrics,
        details={"teachers": label_manifest.details.get("teachers", []), "thresholds": thresholds,
                 "upstream_inputs": label_manifest.inputs},
    )
    write_manifest(out, manifest)
    return manifest


def _evaluate(recipe: Recipe, split: Split, student_probs: np.ndarray, thresholds: dict) -> dict:
    """Student (argmax and at thresholds) and teacher metrics on one split."""
    labels = recipe.labels
    if recipe.multi_label:
        return _evaluate_multi_label(recipe, split, student_probs, thresholds)
    gold = [labels[i] for i in split.gold]
    student = classification_report(gold, student_probs, labels)
    at_thresholds = classification_report(gold, student_probs, labels, predicted=decide(student_probs, labels, thresholds))
    return {"student": student,
            "student_at_thresholds": {"macro_f1": at_thresholds["macro_f1"], "per_class": at_thresholds["per_class"],
                                      "confusion_matrix": at_thresholds["confusion_matrix"],
                                      "operating_points": operating_points(student_probs, split.gold, labels, thresholds)},
            "teacher": classification_report(gold, split.soft, labels)}


def _evaluate_multi_label(recipe: Recipe, split: Split, student_probs: np.ndarray, thresholds: dict) -> dict:
    from sklearn.metrics import f1_score, roc_auc_score

    def summary(probs, decisions):
        return {"macro_f1": round(float(f1_score(split.gold, decisions, average="macro", zero_division=0)), 6),
                "macro_auroc": round(float(roc_auc_score(split.gold, probs, average="macro")), 6)}

    return {"student": summary(student_probs, student_probs >= 0.5),
            "student_at_thresholds": {**summary(student_probs, decide(student_probs, recipe.labels, thresholds)),
                                      "operating_points": operating_points(student_probs, split.gold, recipe.labels, thresholds)},
            "teacher": summary(split.soft, split.soft >= 0.5)}


def _say(console, message: str) -> None:
    if console is not None:
        console.print(message)
    else:
        log.info(message)
