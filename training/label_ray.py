"""`edgemod label --engine ray`: score the missing label chunks on a pool of Ray actors.

The chunk bookkeeping is `training.label_shards`' (`plan_chunks`, `store_chunk`), so the shard files,
their names and the returned scores are the ones the single-process path writes, and a run
may resume on either engine. Each actor rebuilds its teacher from the recipe's spec (a model is
never pickled); the driver writes every finished chunk atomically as it arrives, so a killed run
loses only the chunks in flight.

API teachers (openai, anthropic, hive) keep their own client-side rate limit inside each actor:
the global rate is workers x the per-actor rate, so each actor gets the recipe's
`requests_per_second` divided by the number of workers (and `max_concurrency` threads, so up to
workers x max_concurrency requests are open at once).
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np

from edgemod.console import progress
from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.recipe import Recipe, TeacherSpec
from edgemod.training.label_shards import chunk_items, plan_chunks, store_chunk

log = logging.getLogger(__name__)
API_KINDS = {"openai", "anthropic", "hive"}
MODEL_KINDS = {"hf", "timm", "onnx", "tf"}  # local models that can use a GPU (sklearn, scores: CPU)


def score_with_ray(teacher_spec: TeacherSpec, recipe: Recipe, name: str, items, shard_dir: Path,
                   chunk_size: int, workers: int, console, cache_dir: Path | None = None,
                   identity: str | None = None) -> dict[str, np.ndarray]:
    """Same contract as `label._score_with_resume`: scores for every item key, scoring only the
    chunks not already on disk. `identity`, when given, is checked against every actor's teacher."""
    done, chunks = plan_chunks(name, items, Path(shard_dir), chunk_size, console)
    if not chunks:
        return done
    ray = _ray(workers)
    actors = _start_actors(ray, teacher_spec, recipe, workers, cache_dir, identity)
    try:
        labels = ray.get([actor.labels.remote() for actor in actors])[0]  # loads every teacher first
        with progress(f"label {name}", sum(len(c) for _, c in chunks), console) as bar:
            for index, probs in _score_chunks(actors, chunks):
                shard, chunk = chunks[index]
                store_chunk(shard, chunk, probs, labels, name, done)
                bar.advance(len(chunk))
    except ray.exceptions.RayTaskError as error:
        if isinstance(error.cause, EdgemodError):  # show the teacher's own message and hint
            raise error.cause from None
        raise
    finally:
        for actor in actors:  # also on error or Ctrl-C: free the GPUs and API threads at once
            ray.kill(actor)
    return done


def _ray(workers: int):
    """Connect to RAY_ADDRESS, or start a local cluster with one CPU per worker."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "labelling with --engine ray", extra="scale") from None
    if workers < 1:
        raise EdgemodError(f"--workers must be at least 1 (got {workers})", "pass --workers 1 or more")
    address = os.environ.get("RAY_ADDRESS") or None
    # A local cluster gets one CPU per worker; an existing cluster keeps its own size.
    ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
             ignore_reinit_error=True, log_to_driver=False)
    return ray


def _start_actors(ray, spec: TeacherSpec, recipe: Recipe, workers: int, cache_dir, identity):
    cpus = ray.cluster_resources().get("CPU", 0)
    if workers > cpus:
        # An actor that can never be placed would wait forever.
        raise EdgemodError(f"--workers {workers} but the Ray cluster has {cpus:g} CPUs",
                           "lower --workers, or point RAY_ADDRESS at a bigger cluster (a local cluster "
                           "started earlier in this process keeps its first size)")
    gpus = ray.cluster_resources().get("GPU", 0) if spec.kind in MODEL_KINDS else 0
    # One GPU per actor; more actors than GPUs share them rather than wait.
    resources = {"num_cpus": 1, "num_gpus": min(1.0, gpus / workers) if gpus else 0}
    scorer = ray.remote(_Scorer).options(**resources)
    payload = (spec.model_dump(mode="json"), recipe.model_dump(mode="json"),
               str(cache_dir) if cache_dir else None, workers, identity)
    return [scorer.remote(*payload) for _ in range(workers)]


def _score_chunks(actors, chunks):
    """Yield `(chunk index, scores)` in finishing order, one chunk in flight per actor."""
    from ray.util import ActorPool

    work = [(i, chunk_items(chunk)) for i, (_, chunk) in enumerate(chunks)]
    yield from ActorPool(actors).map_unordered(lambda actor, job: actor.score.remote(*job), work)


class _Scorer:
    """A Ray actor holding one teacher, rebuilt from plain data in the actor's process.

    The teacher is built by the first call, not in `__init__`: an error there is then an ordinary
    task error carrying the EdgemodError, instead of a dead actor with only its traceback."""

    def __init__(self, spec: dict, recipe: dict, cache_dir: str | None, workers: int, identity: str | None):
        self._args, self._teacher = (spec, recipe, cache_dir, workers, identity), None

    def labels(self) -> list[str]:
        return list(self._get_teacher().labels)

    def score(self, index: int, items) -> tuple[int, np.ndarray]:
        return index, np.asarray(self._get_teacher().predict_proba(items), dtype=np.float32)

    def _get_teacher(self):
        if self._teacher is None:
            self._teacher = _build_checked(*self._args)
        return self._teacher


def _build_checked(spec: dict, recipe: dict, cache_dir: str | None, workers: int, identity: str | None):
    from edgemod.recipe import parse_recipe
    from edgemod.training.teachers.base import TeacherContext

    context = TeacherContext(recipe=parse_recipe(recipe),
                             cache_dir=Path(cache_dir) if cache_dir else Path(".cache/edgemod"))
    teacher = _build_per_actor(TeacherSpec.model_validate(spec), context, workers)
    if identity is not None and teacher.identity() != identity:
        raise EdgemodError(f"teacher '{spec.get('name') or spec['kind']}' on this Ray node is not the "
                           f"driver's ({teacher.identity()} != {identity})",
                           "put the same model files at the same paths on every node")
    return teacher


def _build_per_actor(spec: TeacherSpec, context, workers: int):
    """The teacher, with an API teacher's rate split across the actors (identity unchanged)."""
    from edgemod.training.teachers.base import build_teacher

    teacher = build_teacher(spec, context)
    rate = getattr(getattr(teacher, "options", None), "requests_per_second", None)
    if spec.kind not in API_KINDS or not rate or workers == 1:
        return teacher
    teacher.close()
    options = {**spec.options, "requests_per_second": rate / workers}
    return build_teacher(spec.model_copy(update={"options": options}), context)
