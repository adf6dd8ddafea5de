"""`edgemod label`: score every item of a recipe with its teachers into a cached Parquet file.

Scores are written in shards (temp file, then rename) per teacher identity, so an interrupted run
resumes without re-scoring finished items, and a changed teacher never reuses stale scores.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Literal

import numpy as np

from edgemod.console import progress, say
from edgemod.errors import EdgemodError
from edgemod.fsutil import atomic_path, sha256_text
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, write_manifest
from edgemod.recipe import Recipe
from edgemod.training.items import collect_items, dataset_inputs
from edgemod.training.label_shards import chunk_items, plan_chunks, score_keys, store_chunk
from edgemod.training.teachers.base import TeacherContext, build_teacher, teacher_name
from edgemod.training.teachers.mapping import combine, fit_weights, map_scores

STAGE = "label"
LABELS_FILE = "labels.parquet"


def label_fingerprint(recipe: Recipe) -> str:
    """What determines the labels: data, labels and teachers (not the student or export settings)."""
    relevant = recipe.model_dump(mode="json", include={"labels", "multi_label", "data", "teachers", "task"})
    # only when set, so recipes without them keep their existing label caches
    if recipe.views.per_image:
        relevant["views"] = recipe.views.model_dump(mode="json")
    if recipe.ensemble.weights != "recipe":
        relevant["ensemble"] = recipe.ensemble.model_dump(mode="json")
    return sha256_text(json.dumps(relevant, sort_keys=True))


def run(recipe: Recipe, out: Path, cache_dir: Path | None = None, chunk_size: int = 1024,
        console=None, engine: Literal["local", "ray"] = "local", workers: int = 2) -> Manifest:
    """Label all items with every teacher; return the finished manifest (or the existing one).

    `engine="ray"` scores the missing chunks on `workers` Ray actors (see `training.label_ray`);
    the shards, labels and manifest are the same as with the default single process, so the
    engine is a parameter, not a recipe field, and a run may resume on either engine."""
    out = Path(out)
    if engine not in ("local", "ray"):
        raise EdgemodError(f"unknown labelling engine '{engine}'", "use --engine local or --engine ray")
    if not recipe.teachers:
        raise EdgemodError("the recipe has no teachers to label with", "add 'teachers:' to the recipe")
    context = TeacherContext(recipe=recipe, cache_dir=Path(cache_dir or out / "cache"))
    teachers = [build_teacher(spec, context) for spec in recipe.teachers]
    _check_view_support(recipe, teachers)
    names = [teacher_name(spec, i) for i, spec in enumerate(recipe.teachers)]
    inputs = dataset_inputs(recipe)
    key = inputs_key(label_fingerprint(recipe), inputs, [t.identity() for t in teachers])
    if (done := finished_run(out, STAGE, key)) is not None:
        return _reuse(done, recipe, out, console)
    items = collect_items(recipe)
    started = time.time()
    engine_checks = _check_engines(teachers, names, items, console)
    scored = {}
    for spec, name, teacher in zip(recipe.teachers, names, teachers):
        shard_dir = out / "shards" / f"{name}-{sha256_text(teacher.identity())[:12]}"
        if engine == "ray":
            from edgemod.training.label_ray import score_with_ray

            scored[name] = score_with_ray(spec, recipe, name, items, shard_dir, chunk_size, workers,
                                          console, cache_dir=context.cache_dir,
                                          identity=teacher.identity())
        else:
            scored[name] = _score_with_resume(teacher, name, items, shard_dir, chunk_size, console)
    table = _assemble(recipe, items, teachers, names, scored)
    ensemble_weights = table.attrs.pop("ensemble_weights")
    with atomic_path(out / LABELS_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    manifest = Manifest(
        stage=STAGE, name=recipe.name, recipe=recipe.model_dump(mode="json"),
        recipe_sha256=recipe.fingerprint(), inputs=inputs, inputs_key=key,
        artifacts={"labels": file_ref(out / LABELS_FILE, out)},
        metrics={"items": int(len(table)), "seconds": round(time.time() - started, 1),
                 "items_by_role": table["role"].value_counts().to_dict(),
                 "teacher_confidence": teacher_confidence(table, recipe)},
        details={"teachers": [{"name": n, "kind": s.kind, "identity": t.identity(), "labels": t.labels,
                               "multi_label": t.multi_label, "weight": s.weight, "map": s.map,
                               "parameters": getattr(t, "parameters", None),
                               "pretrained": getattr(t, "pretrained", None)}
                              for n, s, t in zip(names, recipe.teachers, teachers)],
                 "engine_checks": engine_checks,
                 "ensemble": {"weights": recipe.ensemble.weights, "chosen": ensemble_weights}},
    )
    write_manifest(out, manifest)
    return manifest


def _check_view_support(recipe: Recipe, teachers) -> None:
    if not recipe.views.per_image:
        return
    for spec, teacher in zip(recipe.teachers, teachers):
        if not getattr(teacher, "scores_views", False):
            raise EdgemodError(f"teacher '{spec.name or spec.kind}' (kind {spec.kind}) cannot score augmented views",
                               "use a timm teacher for views.per_image > 0, or set views.per_image: 0")


def teacher_confidence(table, recipe: Recipe) -> dict[str, dict[str, float]]:
    """Per role, the ensemble's mean top probability and mean entropy (nats). A teacher that saw the
    train items in its own training is near one-hot there, so its soft labels add little to gold."""
    if recipe.multi_label:
        return {}
    probs = table[[f"p:{label}" for label in recipe.labels]].to_numpy(np.float64)
    entropy = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(axis=1)
    return {role: {"items": int(mask.sum()), "mean_max_prob": round(float(probs[mask].max(axis=1).mean()), 4),
                   "mean_entropy": round(float(entropy[mask].mean()), 4)}
            for role in table["role"].unique() if (mask := (table["role"] == role).to_numpy()).any()}


def _check_engines(teachers, names, items, console) -> dict[str, dict]:
    """Teachers that score through a faster runtime than their own framework prove it first on the
    validation items: agreement with the framework, and the items/s of both."""
    validation = chunk_items(items[items["role"] == "validation"])
    checks = {}
    for name, teacher in zip(names, teachers):
        if hasattr(teacher, "check_engine") and (check := teacher.check_engine(validation)) is not None:
            checks[name] = check
            speeds = ", ".join(f"{e} {v} views/s" for e, v in check["views_per_s"].items())
            agreement = check.get("decision_agreement", 1.0 if check["decisions_identical"] else None)
            decided = ("decisions identical to torch" if check["decisions_identical"]
                       else f"{agreement:.2%} of decisions as torch's")
            say(console, f"label: {name} scores with {check['engine']}: {decided} on {check['items']} validation "
                         f"items, max |Δscore| {check['max_abs_score_delta']:.1e} ({speeds})")
    return checks


def _reuse(done: Manifest, recipe: Recipe, out: Path, console) -> Manifest:
    """Labels are current. A recipe changed outside data/teachers (student, distill, budgets) is
    recorded without re-scoring, so downstream stages read the recipe the user has now."""
    if done.recipe_sha256 != recipe.fingerprint():
        done.recipe, done.recipe_sha256 = recipe.model_dump(mode="json"), recipe.fingerprint()
        write_manifest(out, done)
        say(console, f"label: labels in {out} are up to date; recorded the updated recipe")
    else:
        say(console, f"label: nothing to do, {out} is up to date")
    done.details["skipped"] = True
    return done


def _score_with_resume(teacher, name, items, shard_dir: Path, chunk_size: int, console) -> dict[str, np.ndarray]:
    """Scores for every item key, reading finished shards and scoring only what is missing."""
    done, chunks = plan_chunks(name, items, shard_dir, chunk_size, console)
    with progress(f"label {name}", sum(len(c) for _, c in chunks), console) as bar:
        for shard, chunk in chunks:
            probs = np.asarray(teacher.predict_proba(chunk_items(chunk)), dtype=np.float32)
            store_chunk(shard, chunk, probs, teacher.labels, name, done)
            bar.advance(len(chunk))
    return done


def _assemble(recipe: Recipe, items, teachers, names, scored):
    """One table: item columns, each teacher's mapped scores (`t:<teacher>:<label>`), the ensemble (`p:<label>`)."""
    payload = "path" if "path" in items else "text"
    # counterfactual and view rows (`parent`, `view`), out-of-domain rows (`violating`)
    extra = [column for column in ("parent", "view", "violating") if column in items]
    table = items[["key", "dataset", "split", "role", payload, "label", *extra]].copy()
    mapped_all = []
    for name, spec, teacher in zip(names, recipe.teachers, teachers):
        raw = np.stack([scored[name][k] for k in score_keys(table)])
        mapped = map_scores(raw, teacher.labels, teacher.multi_label, spec.map, recipe.labels,
                            recipe.multi_label, teacher=name)
        mapped_all.append(mapped)
        for i, label in enumerate(recipe.labels):
            table[f"t:{name}:{label}"] = mapped[:, i]
    weights = [s.weight for s in recipe.teachers]
    if recipe.ensemble.weights == "validation" and len(mapped_all) > 1:
        weights = fit_weights(mapped_all, table, recipe)
    table.attrs["ensemble_weights"] = dict(zip(names, (round(float(w), 6) for w in weights)))
    ensemble = combine(mapped_all, weights)
    for i, label in enumerate(recipe.labels):
        table[f"p:{label}"] = ensemble[:, i]
    return table
