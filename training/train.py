"""`edgemod train`: distil the recipe's teachers into its student.

Reads the label stage's manifest and Parquet file, prepares the task's inputs (a tokenizer with its
normalizer, or image pre-processing and augmentation), trains with early stopping on validation
macro-F1, picks per-class thresholds on validation, reports validation and test metrics for the
student and the teacher, and writes a run folder with `manifest.json`.
The whole loop reads top to bottom here; data preparation and evaluation sit just below it.
"""
from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import numpy as np

from edgemod.console import activity, progress, say
from edgemod.errors import EdgemodError
from edgemod.fsutil import atomic_path, write_json_atomic
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, read_manifest, write_manifest
from edgemod.recipe import POST_TRAINING, Recipe, apply_overrides, parse_recipe
from edgemod.runtime.decision import decide
from edgemod.training import fairness, freezing, weight_grid
from edgemod.training.checkpoints import load_weights, resume, save_state, save_weights
from edgemod.training.distill import distillation_loss
from edgemod.training.distributed import DistributedContext, GlobalBatches
from edgemod.training.inputs import Split, student_inputs
from edgemod.training.items import COUNTERFACTUAL, OUT_OF_DOMAIN
from edgemod.training.label import label_fingerprint
from edgemod.training.metrics import classification_report, teacher_member_reports
from edgemod.training.sampling import balancing as _balancing
from edgemod.training.sampling import loader as _loader
from edgemod.training.thresholds import choose_thresholds, operating_points

STAGE = "train"
WEIGHTS = "model.safetensors"
PRETRAINED_PROVENANCE = "edgemod_pretrained"  # training.vision.pretrained.PROVENANCE_ATTR (no torch import here)


def run(upstream: Path, out: Path, overrides: list[str] | None = None, console=None) -> Manifest:
    """Train the student of the recipe recorded in the label run at `upstream`."""
    upstream, out = Path(upstream), Path(out)
    label_manifest = read_manifest(upstream, "label")
    recipe = _resolve_recipe(label_manifest, overrides or [])
    key = inputs_key(recipe.fingerprint(exclude=POST_TRAINING), {"labels": label_manifest.artifacts["labels"]})
    dist = DistributedContext.from_env().init()
    if not dist.is_main:
        console = None  # rank 0 alone reports; the others log
    # rank 0 decides (other nodes may not see the run folder), so every rank takes the same path
    if (done := dist.broadcast_object(finished_run(out, STAGE, key) if dist.is_main else None)) is not None:
        say(console, f"train: nothing to do, {out} is up to date")
        dist.close()
        return done
    table = _read_labels(upstream / label_manifest.artifacts["labels"].path)
    inputs, splits = _prepare(recipe, table)
    epochs_key = _epochs_key(recipe, label_manifest)
    model, history, seconds = _train_student(recipe, inputs, splits, out / "checkpoints", epochs_key, console, dist)
    baseline = None
    if recipe.distill.fairness.method != "none" and recipe.distill.fairness.compare_unmitigated:
        say(console, "train: the same student without fairness mitigation, for the before/after report")
        before = fairness.unmitigated(recipe)
        before_splits = _prepare(before, table, inputs)[1]
        baseline = (before, before_splits,
                    *_train_student(before, inputs, before_splits, out / "checkpoints" / "unmitigated",
                                    f"{epochs_key}-unmitigated", console, dist))
    gold_twin = _gold_only_twin(recipe, table, inputs, out, epochs_key, console, dist)
    if dist.is_main:  # rank 0 alone writes the run folder
        manifest = _finish(recipe, label_manifest, key, model, inputs, splits, table, history, seconds, out, baseline,
                           gold_twin)
    manifest = dist.broadcast_object(manifest if dist.is_main else None)  # the others return rank 0's
    dist.close()
    return manifest


def _epochs_key(recipe: Recipe, label_manifest: Manifest) -> str:
    """Key of the normal epochs' checkpoints. Quantization-aware epochs fine-tune after them, so a
    finished run given `distill.qat_epochs` resumes from its trained epochs instead of starting over."""
    epochs_only = recipe.model_copy(update={"distill": recipe.distill.model_copy(
        update={"qat_epochs": 0, "qat_ranges": "running"})})
    return inputs_key(epochs_only.fingerprint(exclude=POST_TRAINING), {"labels": label_manifest.artifacts["labels"]})


def _gold_only_twin(recipe: Recipe, table, inputs, out: Path, key: str, console, dist: DistributedContext):
    """The same student trained on gold labels only (distill.compare_gold_only), or None."""
    if not recipe.distill.compare_gold_only or recipe.distill.gold_only:
        return None
    say(console, "train: the same student on gold labels only, to measure what distillation adds")
    gold = recipe.model_copy(update={"distill": recipe.distill.model_copy(update={"gold_only": True})})
    gold_splits = _prepare(gold, table, inputs)[1]
    return (gold, gold_splits, *_train_student(gold, inputs, gold_splits, out / "checkpoints" / "gold_only",
                                               f"{key}-gold-only", console, dist))


def _train_student(recipe: Recipe, inputs, splits: dict[str, Split], checkpoints: Path, key: str, console,
                   dist: DistributedContext):
    """A fresh student trained to its best validation epoch: (model on CPU, history, seconds)."""
    import torch

    torch.manual_seed(recipe.distill.seed)  # same initial weights on every rank
    model = inputs.build_model(recipe)
    if recipe.distill.int8_weights:
        weight_grid.attach(model)
    started = time.time()
    history = _fit(model, recipe, inputs, splits, checkpoints, key, console, dist)
    seconds = time.time() - started
    model.to("cpu")
    if dist.is_main:  # the others' disks (other nodes) may not hold the checkpoint; only rank 0 writes
        load_weights(model, checkpoints / "best.safetensors")
        if recipe.distill.qat_epochs:  # before the weights leave their int8 grid parametrisation
            from edgemod.training import qat

            model.edgemod_qat = qat.fine_tune(model, recipe, inputs, splits["train"], console, splits["validation"])
        if recipe.distill.int8_weights:
            weight_grid.materialize(model)
    return model, history, seconds


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


def _prepare(recipe: Recipe, table, inputs=None):
    """Task-specific inputs (tokenizer or image pre-processing, reused when given) and the splits:
    train, validation, test, and out_of_domain when the recipe has such sets."""
    inputs = inputs or student_inputs(recipe, table)
    soft = table[[f"p:{name}" for name in recipe.labels]].to_numpy(np.float32)
    gold = _gold_matrix(table["label"], recipe)
    train_roles = ("train",) if recipe.distill.gold_only else ("train", "transfer")
    if fairness.uses_counterfactuals(recipe):
        soft, gold = fairness.family_averaged(table, soft), fairness.inherited_gold(table, gold)
        train_roles += (COUNTERFACTUAL,)
    usable = np.ones(len(table), dtype=bool)
    usable[inputs.bad_rows] = False
    splits = {}
    for name, roles in (("train", train_roles), ("validation", ("validation",)), ("test", ("test",)),
                        (OUT_OF_DOMAIN, (OUT_OF_DOMAIN,))):
        rows = np.flatnonzero(table["role"].isin(roles).to_numpy() & usable)
        if name == OUT_OF_DOMAIN and not len(rows):
            continue
        splits[name] = Split(inputs.inputs_for(rows), soft[rows], gold[rows], table["key"].iloc[rows].tolist())
        if name == "train" and fairness.uses_reweighting(recipe):
            splits[name].weights = fairness.sample_weights(recipe, table["text"].iloc[rows], soft[rows], gold[rows])
        if name == "train" and recipe.views.per_image and not recipe.distill.gold_only:
            from edgemod.training.vision.views import ViewTargets

            splits[name].views = ViewTargets.gather(table, splits[name].keys, soft, gold, recipe.views.per_image)
    return inputs, splits


def _gold_matrix(labels, recipe: Recipe) -> np.ndarray:
    """Class index per row (-1 when unlabelled), or a multi-hot matrix (`a|b`) for multi-label."""
    index = {label: i for i, label in enumerate(recipe.labels)}
    if not recipe.multi_label:
        return np.array([index[name] if isinstance(name, str) else -1 for name in labels], dtype=np.int64)
    gold = np.full((len(labels), len(recipe.labels)), -1, dtype=np.int64)
    for row, value in enumerate(labels):
        if isinstance(value, str):
            gold[row] = 0
            for part in filter(None, value.split("|")):
                gold[row, index[part]] = 1
    return gold


def _fit(model, recipe: Recipe, inputs, splits: dict[str, Split], checkpoints: Path, key: str, console,
         dist: DistributedContext | None = None) -> list[dict]:
    """Train with AdamW + warmup/cosine, evaluate every epoch, keep the best, stop early, resume.

    Under torchrun (`dist.enabled`) each rank trains on its share of the same global batches, DDP
    averages the gradients, and rank 0 alone saves checkpoints (also every few steps, so a killed
    worker costs at most those steps: the restarted group skips the batches already done)."""
    import torch

    dist = dist or DistributedContext()
    spec = recipe.distill
    if spec.channels_last:
        model.to(memory_format=torch.channels_last)
    frozen = freezing.freeze(model, spec.freeze)
    sampler, class_weights = _balancing(recipe, splits["train"])
    loader, order = _train_loader(inputs.train_dataset(splits["train"]), sampler, spec, dist)
    steps_per_epoch = len(order)
    total_steps = spec.max_steps or spec.epochs * steps_per_epoch
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=spec.lr,
                                  weight_decay=spec.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _warmup_cosine(total_steps, spec.warmup_ratio))
    state = resume(checkpoints, key, model, optimizer, scheduler, console, dist)
    trained, device = dist.wrap(model), dist.device()
    save_every = _checkpoint_every(steps_per_epoch) if dist.enabled else 0
    for epoch in range(state["epoch"] + 1, spec.epochs + 1):
        done = state.get("step_in_epoch", 0)  # > 0 only when resuming inside this epoch
        with progress(f"train epoch {epoch}/{spec.epochs}", steps_per_epoch, console, unit="steps", completed=done,
                      enabled=dist.is_main) as bar:
            trained.train()
            freezing.keep_frozen(model, frozen)
            torch.manual_seed(spec.seed + epoch)  # dropout masks reproducible after a resume
            (sampler or order).generator.manual_seed(spec.seed + epoch)
            if hasattr(loader.dataset, "set_epoch"):  # per-epoch data (text obfuscation), before workers prefetch
                loader.dataset.set_epoch(epoch)
            if dist.enabled:
                loader.batch_sampler.skip = done  # skips without loading the rows
            epoch_batches = loader if dist.enabled or not done else itertools.islice(loader, done, None)
            started, seen = time.time(), 0
            loss_sum, batches = state.get("epoch_loss", (0.0, 0)) if done else (0.0, 0)
            for number, (*batch_inputs, soft, gold) in enumerate(epoch_batches, start=done):
                if dist.enabled:
                    torch.manual_seed(_step_seed(spec.seed, epoch, number, dist.rank))  # same masks after a restart
                batch_inputs, soft, gold = _to_device(_memory_format(batch_inputs, spec), soft, gold, device)
                with _autocast(device):
                    loss = distillation_loss(trained(*batch_inputs), soft, gold, spec, recipe.multi_label, class_weights)
                share = _rank_share(number, len(splits["train"].keys), spec.batch_size, dist)
                optimizer.zero_grad()
                (loss * share).backward()  # DDP averages: shares make it the global-batch mean
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                scheduler.step()
                state["step"] += 1
                state["step_in_epoch"] = number + 1
                seen += _global_rows(number, len(splits["train"].keys), spec.batch_size)
                loss_sum, batches = loss_sum + loss.item(), batches + 1
                bar.advance(note=f"loss {loss.item():.4f}, {seen / max(time.time() - started, 1e-9):,.0f} samples/s")
                if state["step"] >= total_steps:
                    break
                if save_every and state["step_in_epoch"] % save_every == 0:
                    loss_sum = dist.all_reduce_mean(loss_sum)  # every rank holds what a resume would load
                    state["epoch_loss"] = (loss_sum, batches)
                    if dist.is_main:
                        save_state(checkpoints / "last.pt", key, model, optimizer, scheduler, state)
        with activity(f"train validation, epoch {epoch}", console, enabled=dist.is_main):
            score = dist.broadcast_object(_validation_f1(model, inputs, splits["validation"], recipe))
        state["history"].append({"epoch": epoch, "validation_macro_f1": score, "step": state["step"],
                                 "train_loss": round(dist.all_reduce_mean(loss_sum / max(batches, 1)), 6),
                                 "samples_per_s": round(seen / max(time.time() - started, 1e-9), 1)})
        say(console, f"epoch {epoch}: validation macro-F1 {score:.4f}")
        if score > state["best"]:
            state["best"], state["best_epoch"] = score, epoch
            if dist.is_main:
                save_weights(model, checkpoints / "best.safetensors")
        state["epoch"], state["step_in_epoch"] = epoch, 0
        if dist.is_main:
            save_state(checkpoints / "last.pt", key, model, optimizer, scheduler, state)
        dist.barrier()  # the checkpoint is on disk before any rank goes on
        if epoch - state["best_epoch"] >= spec.patience or state["step"] >= total_steps:
            say(console, f"stopping after epoch {epoch} (best epoch {state['best_epoch']})")
            break
    return state["history"]


def _train_loader(dataset, sampler, spec, dist: DistributedContext):
    """The training loader and the loader whose generator sets the global batch order.

    Single process: one and the same. Distributed: `order` yields global batches of row indices
    exactly as the 1-process loader would, and each rank loads its rows `rank::world` of them."""
    import torch
    from torch.utils.data import DataLoader

    if not dist.enabled:
        loader = _loader(dataset, spec.batch_size, spec.seed, spec.num_workers, sampler=sampler)
        return loader, loader
    dist.rank_batch_size(spec.batch_size)
    order = _loader(torch.arange(len(dataset)), spec.batch_size, spec.seed, 0, sampler=sampler)
    loader = DataLoader(dataset, batch_sampler=GlobalBatches(order, dist.rank, dist.world),
                        num_workers=spec.num_workers, persistent_workers=spec.num_workers > 0)
    return loader, order


def _global_rows(number: int, rows: int, batch_size: int) -> int:
    """Rows in global batch `number` of an epoch (the last one may be short)."""
    return min(batch_size, rows - number * batch_size)


def _rank_share(number: int, rows: int, batch_size: int, dist: DistributedContext) -> float:
    """This rank's weight so that DDP's gradient average equals the mean over the global batch.

    A rank with no rows of a short last batch gets one padding row (GlobalBatches) and weight 0."""
    if not dist.enabled:
        return 1.0
    size = _global_rows(number, rows, batch_size)
    mine = len(range(dist.rank, size, dist.world))
    return mine * dist.world / size


def _step_seed(seed: int, epoch: int, number: int, rank: int) -> int:
    return (seed * 1_000_003 + epoch * 10_007 + number) * 64 + rank


def _checkpoint_every(steps_per_epoch: int) -> int:
    """Mid-epoch checkpoint interval (distributed runs): ~10 per epoch, or EDGEMOD_CHECKPOINT_EVERY."""
    import os

    value = os.environ.get("EDGEMOD_CHECKPOINT_EVERY")
    return max(1, int(value)) if value else max(1, steps_per_epoch // 10)


def _to_device(batch_inputs: list, soft, gold, device):
    if device.type == "cpu":
        return batch_inputs, soft, gold
    return [x.to(device, non_blocking=True) for x in batch_inputs], soft.to(device), gold.to(device)


def _autocast(device):
    """bf16 autocast on GPU (not testable on the CPU-only dev machine); nothing on CPU."""
    import contextlib

    if device.type != "cuda":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def _memory_format(batch_inputs: list, spec):
    """Images in channels-last layout when the recipe asks (the model is converted in `_fit`)."""
    if not spec.channels_last:
        return batch_inputs
    import torch

    return [x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x for x in batch_inputs]


def _warmup_cosine(total_steps: int, warmup_ratio: float):
    warmup = max(1, int(total_steps * warmup_ratio))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return 0.5 * (1 + math.cos(math.pi * progress))

    return factor


def predict(model, dataset, multi_label: bool, batch_size: int = 256, workers: int = 0) -> np.ndarray:
    """Student probabilities over a dataset of `(inputs..., soft, gold)`."""
    import torch

    model.eval()
    device = next(model.parameters()).device
    outputs = []
    with torch.inference_mode():
        for *batch_inputs, _soft, _gold in _loader(dataset, batch_size, 0, workers, shuffle=False):
            logits = model(*(x.to(device) for x in batch_inputs)).float()
            outputs.append((torch.sigmoid(logits) if multi_label else torch.softmax(logits, -1)).cpu().numpy())
    return np.concatenate(outputs) if outputs else np.zeros((0, 0), np.float32)


def _validation_f1(model, inputs, split: Split, recipe: Recipe) -> float:
    from sklearn.metrics import f1_score

    probs = predict(model, inputs.eval_dataset(split), recipe.multi_label, workers=recipe.distill.num_workers)
    if recipe.multi_label:
        return float(f1_score(split.gold, probs >= 0.5, average="macro", zero_division=0))
    return float(f1_score(split.gold, probs.argmax(1), average="macro", zero_division=0))


def _finish(recipe, label_manifest, key, model, inputs, splits, table, history, seconds, out,
            baseline=None, gold_twin=None) -> Manifest:
    import pandas as pd

    labels = recipe.labels
    scored = [name for name in ("validation", "test", OUT_OF_DOMAIN) if name in splits]
    probs = {name: predict(model, inputs.eval_dataset(splits[name]), recipe.multi_label,
                           workers=recipe.distill.num_workers) for name in scored}
    thresholds = choose_thresholds(probs["validation"], splits["validation"].gold, labels, recipe.thresholds,
                                   recipe.benign_label, recipe.multi_label)
    metrics = {"train_seconds": round(seconds, 1), "history": history,
               "student_parameters": int(sum(p.numel() for p in model.parameters()))}
    if getattr(model, "edgemod_qat", None):
        metrics["quantization_aware"] = model.edgemod_qat
    if recipe.distill.int8_weights:  # the export stage relies on this: w8 compression is then lossless
        metrics["int8_weights_off_grid"] = weight_grid.off_grid_layers(model)
    teacher_params = [t.get("parameters") for t in label_manifest.details.get("teachers", [])]
    if teacher_params and all(teacher_params):
        metrics["teacher_parameters"] = int(sum(teacher_params))
        metrics["parameter_ratio"] = round(metrics["student_parameters"] / metrics["teacher_parameters"], 4)
    for name in ("validation", "test"):
        metrics[name] = _evaluate(recipe, splits[name], probs[name], thresholds)
    test = metrics["test"]
    if not recipe.multi_label and (members := teacher_member_reports(table, labels, splits)):
        metrics["teacher_members"] = members  # each teacher of an ensemble on its own
    if not recipe.multi_label:
        metrics["student_vs_teacher_macro_f1"] = round(test["student"]["macro_f1"] / max(test["teacher"]["macro_f1"], 1e-9), 4)
    before = _unmitigated_scores(baseline, inputs, scored) if baseline else {}
    if baseline:
        metrics["unmitigated"] = {"method": recipe.distill.fairness.method, "train_seconds": round(baseline[4], 1),
                                  "history": baseline[3], "test": _evaluate(recipe, splits["test"], before["test"],
                                                                            before.pop("thresholds"))}
    if gold_twin:
        gold = _unmitigated_scores(gold_twin, inputs, ["validation", "test"])
        metrics["gold_only"] = {"train_seconds": round(gold_twin[4], 1), "history": gold_twin[3],
                                "test": _evaluate(recipe, splits["test"], gold["test"], gold["thresholds"])}
    out.mkdir(parents=True, exist_ok=True)
    save_weights(model, out / WEIGHTS)
    preprocessing_files = inputs.save(out)
    write_json_atomic(out / "student.json", {
        "arch": recipe.student.arch, "task": recipe.task, "options": recipe.student.options,
        "pretrained": getattr(model, PRETRAINED_PROVENANCE, None),
        "num_labels": len(labels), "labels": labels, "multi_label": recipe.multi_label,
        "max_length": recipe.student.max_length, "inputs": inputs.input_spec(recipe),
        "outputs": {"logits": {"shape": [1, len(labels)], "dtype": "float32",
                               "activation": "sigmoid" if recipe.multi_label else "softmax"}}})
    write_json_atomic(out / "thresholds.json", thresholds)
    rows = []
    for name in scored:
        frame = pd.DataFrame(probs[name], columns=[f"student:{label}" for label in labels])
        if name in before:  # the student trained without fairness mitigation, on the same rows
            frame[[f"{fairness.UNMITIGATED}:{label}" for label in labels]] = before[name]
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


def _unmitigated_scores(baseline, inputs, scored: list[str]) -> dict:
    """A twin student's (unmitigated, gold-only) scores per split, and its own thresholds (picked on validation)."""
    recipe, splits, model = baseline[:3]
    probs = {name: predict(model, inputs.eval_dataset(splits[name]), recipe.multi_label,
                           workers=recipe.distill.num_workers) for name in scored}
    probs["thresholds"] = choose_thresholds(probs["validation"], splits["validation"].gold, recipe.labels,
                                            recipe.thresholds, recipe.benign_label, recipe.multi_label)
    return probs


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
