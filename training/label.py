"""`edgemod label`: score every item of a recipe with its teachers into a cached Parquet file.

Scores are written in shards (temp file, then rename) per teacher identity, so an interrupted run
resumes without re-scoring finished items, and a changed teacher never reuses stale scores.
"""
from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError
from edgemod.fsutil import atomic_path, sha256_text
from edgemod.manifest import Manifest, file_ref, finished_run, inputs_key, write_manifest
from edgemod.recipe import Recipe
from training.items import collect_items, dataset_inputs
from training.teachers.base import Item, TeacherContext, build_teacher, teacher_name
from training.teachers.mapping import combine, map_scores

log = logging.getLogger(__name__)
STAGE = "label"
LABELS_FILE = "labels.parquet"


def label_fingerprint(recipe: Recipe) -> str:
    """What determines the labels: data, labels and teachers (not the student or export settings)."""
    relevant = recipe.model_dump(mode="json", include={"labels", "multi_label", "data", "teachers", "task"})
    return sha256_text(json.dumps(relevant, sort_keys=True))


def run(recipe: Recipe, out: Path, cache_dir: Path | None = None, chunk_size: int = 1024,
        console=None) -> Manifest:
    """Label all items with every teacher; return the finished manifest (or the existing one)."""
    out = Path(out)
    if not recipe.teachers:
        raise EdgemodError("the recipe has no teachers to label with", "add 'teachers:' to the recipe")
    context = TeacherContext(recipe=recipe, cache_dir=Path(cache_dir or out / "cache"))
    teachers = [build_teacher(spec, context) for spec in recipe.teachers]
    names = [teacher_name(spec, i) for i, spec in enumerate(recipe.teachers)]
    inputs = dataset_inputs(recipe)
    key = inputs_key(label_fingerprint(recipe), inputs, [t.identity() for t in teachers])
    if (done := finished_run(out, STAGE, key)) is not None:
        return _reuse(done, recipe, out, console)
    items = collect_items(recipe)
    started = time.time()
    scored = {}
    for name, teacher in zip(names, teachers):
        shard_dir = out / "shards" / f"{name}-{sha256_text(teacher.identity())[:12]}"
        scored[name] = _score_with_resume(teacher, name, items, shard_dir, chunk_size, console)
    table = _assemble(recipe, items, teachers, names, scored)
    with atomic_path(out / LABELS_FILE) as tmp:
        table.to_parquet(tmp, index=False)
    manifest = Manifest(
        stage=STAGE, name=recipe.name, recipe=recipe.model_dump(mode="json"),
        recipe_sha256=recipe.fingerprint(), inputs=inputs, inputs_key=key,
        artifacts={"labels": file_ref(out / LABELS_FILE, out)},
        metrics={"items": int(len(table)), "seconds": round(time.time() - started, 1),
                 "items_by_role": table["role"].value_counts().to_dict()},
        details={"teachers": [{"name": n, "kind": s.kind, "identity": t.identity(), "labels": t.labels,
                               "multi_label": t.multi_label, "weight": s.weight, "map": s.map,
                               "parameters": getattr(t, "parameters", None)}
                              for n, s, t in zip(names, recipe.teachers, teachers)]},
    )
    write_manifest(out, manifest)
    return manifest


def _reuse(done: Manifest, recipe: Recipe, out: Path, console) -> Manifest:
    """Labels are current. A recipe changed outside data/teachers (student, distill, budgets) is
    recorded without re-scoring, so downstream stages read the recipe the user has now."""
    if done.recipe_sha256 != recipe.fingerprint():
        done.recipe, done.recipe_sha256 = recipe.model_dump(mode="json"), recipe.fingerprint()
        write_manifest(out, done)
        _say(console, f"label: labels in {out} are up to date; recorded the updated recipe")
    else:
        _say(console, f"label: nothing to do, {out} is up to date")
    done.details["skipped"] = True
    return done


def _score_with_resume(teacher, name, items, shard_dir: Path, chunk_size: int, console) -> dict[str, np.ndarray]:
    """Scores for every item key, reading finished shards and scoring only what is missing."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    done = _read_shards(shard_dir)
    todo = items[~items["key"].isin(done.keys())]
    if len(done):
        _say(console, f"label: {name}: {len(done)} items already scored, {len(todo)} to go")
    shard_dir.mkdir(parents=True, exist_ok=True)
    next_index = len(list(shard_dir.glob("part-*.parquet")))
    started = time.time()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]} items/s"), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(f"label {name}", total=len(todo), rate="-")
        for start in range(0, len(todo), chunk_size):
            chunk = todo.iloc[start:start + chunk_size]
            probs = np.asarray(teacher.predict_proba(_items(chunk)), dtype=np.float32)
            _check_scores(probs, len(chunk), teacher, name)
            _write_shard(shard_dir / f"part-{next_index:05d}.parquet", chunk["key"].tolist(), probs, teacher.labels)
            next_index += 1
            done.update(zip(chunk["key"], probs))
            rate = (start + len(chunk)) / max(time.time() - started, 1e-9)
            progress.update(task, advance=len(chunk), rate=f"{rate:,.0f}")
    return done


def _items(chunk) -> list[Item]:
    if "path" in chunk:
        return [Item(key, path=path) for key, path in zip(chunk["key"], chunk["path"])]
    return [Item(key, text) for key, text in zip(chunk["key"], chunk["text"])]


def _check_scores(probs: np.ndarray, n: int, teacher, name: str) -> None:
    if probs.shape != (n, len(teacher.labels)) or not np.isfinite(probs).all():
        raise EdgemodError(f"teacher '{name}' returned scores of shape {probs.shape} (expected "
                           f"{(n, len(teacher.labels))}) or non-finite values",
                           "check the teacher's model and its output options")


def _write_shard(path: Path, keys: list[str], probs: np.ndarray, labels: list[str]) -> None:
    import pandas as pd

    frame = pd.DataFrame(probs, columns=labels)
    frame.insert(0, "key", keys)
    with atomic_path(path) as tmp:
        frame.to_parquet(tmp, index=False)


def _read_shards(shard_dir: Path) -> dict[str, np.ndarray]:
    """Scores from finished shards; an unreadable shard is moved aside and its items rescored."""
    import pandas as pd

    done: dict[str, np.ndarray] = {}
    for shard in sorted(shard_dir.glob("part-*.parquet")):
        try:
            frame = pd.read_parquet(shard)
        except Exception as error:  # pyarrow raises several types for a damaged file
            aside = shard.with_suffix(".corrupt")
            shard.rename(aside)
            log.warning("label cache shard %s is unreadable (%s); moved to %s, its items will be "
                        "scored again", shard, error, aside.name)
            continue
        values = frame.drop(columns="key").to_numpy(np.float32)
        done.update(zip(frame["key"], values))
    return done


def _assemble(recipe: Recipe, items, teachers, names, scored):
    """One table: item columns, each teacher's mapped scores (`t:<teacher>:<label>`), the ensemble (`p:<label>`)."""
    payload = "path" if "path" in items else "text"
    table = items[["key", "dataset", "split", "role", payload, "label"]].copy()
    mapped_all = []
    for name, spec, teacher in zip(names, recipe.teachers, teachers):
        raw = np.stack([scored[name][k] for k in table["key"]])
        mapped = map_scores(raw, teacher.labels, teacher.multi_label, spec.map, recipe.labels,
                            recipe.multi_label, teacher=name)
        mapped_all.append(mapped)
        for i, label in enumerate(recipe.labels):
            table[f"t:{name}:{label}"] = mapped[:, i]
    ensemble = combine(mapped_all, [s.weight for s in recipe.teachers])
    for i, label in enumerate(recipe.labels):
        table[f"p:{label}"] = ensemble[:, i]
    return table


def _say(console, message: str) -> None:
    if console is not None:
        console.print(message)
    else:
        log.info(message)
