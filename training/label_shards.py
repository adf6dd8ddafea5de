"""The label cache on disk: each teacher's scores in shards, planned, checked and written the same
way by every labelling engine (`training.label`'s single process and `training.label_ray`), so a
run may resume on either engine."""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from edgemod.console import say
from edgemod.errors import EdgemodError
from edgemod.fsutil import atomic_path
from edgemod.training.teachers.base import Item

log = logging.getLogger(__name__)


def plan_chunks(name, items, shard_dir: Path, chunk_size: int, console):
    """Finished scores and the missing items as `(shard path, chunk)` pairs, the bookkeeping every
    engine shares. Shard numbers are fixed here, so chunks may finish in any order, and continue
    after the highest existing one, so a gap left by a crash is never overwritten."""
    done = _read_shards(shard_dir)
    todo = items[~np.isin(score_keys(items), list(done))]
    if len(done):
        say(console, f"label: {name}: {len(done)} items already scored, {len(todo)} to go")
    shard_dir.mkdir(parents=True, exist_ok=True)
    # part-*.* also counts shards moved aside as .corrupt; temp files start with a dot.
    numbers = [int(n) for p in shard_dir.glob("part-*.*") if (n := p.stem.partition("-")[2]).isdigit()]
    first = max(numbers, default=-1) + 1
    starts = range(0, len(todo), chunk_size)
    chunks = [(shard_dir / f"part-{first + i:05d}.parquet", todo.iloc[start:start + chunk_size])
              for i, start in enumerate(starts)]
    return done, chunks


def store_chunk(shard: Path, chunk, probs: np.ndarray, labels: list[str], name: str,
                done: dict[str, np.ndarray]) -> None:
    """Check one chunk's scores, write its shard atomically and add them to `done`."""
    _check_scores(probs, len(chunk), labels, name)
    keys = score_keys(chunk)
    _write_shard(shard, keys, probs, labels)
    done.update(zip(keys, probs))


def score_keys(items) -> list[str]:
    """The cache key of each item's scores: its key, and for an augmented view also a digest of the
    view's parameters, so views re-drawn under another `views:` spec are scored again, never reused."""
    from edgemod.fsutil import sha256_text

    if "view" not in items:
        return items["key"].tolist()
    return [f"{key}#{sha256_text(view)[:16]}" if isinstance(view, str) else key
            for key, view in zip(items["key"], items["view"])]


def chunk_items(chunk) -> list[Item]:
    """The teacher inputs of one chunk of the item table: image paths or texts, with their keys."""
    if "path" in chunk:
        views = chunk["view"] if "view" in chunk else [None] * len(chunk)
        return [Item(key, path=path, view=view if isinstance(view, str) else None)
                for key, path, view in zip(chunk["key"], chunk["path"], views)]
    return [Item(key, text) for key, text in zip(chunk["key"], chunk["text"])]


def _check_scores(probs: np.ndarray, n: int, labels: list[str], name: str) -> None:
    if probs.shape != (n, len(labels)) or not np.isfinite(probs).all():
        raise EdgemodError(f"teacher '{name}' returned scores of shape {probs.shape} (expected "
                           f"{(n, len(labels))}) or non-finite values",
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
