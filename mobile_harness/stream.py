"""Stream replay: does the model keep up with a live chat or camera feed under a thread budget?

A producer releases items on a real-time schedule (item i is due at t0 + i / rate, as chat
messages at N msg/s or frames at K fps), into a bounded queue that a pool of workers drains.
Each worker owns its own interpreter (runtimes are not thread-safe to share) and runs the whole
device pipeline per item: tokenize (or resize and normalise a decoded frame), run, threshold.

Thread budget, two ways to spend it (`parallelism`):
- `instances` (default): `threads` interpreters with 1 thread each, items in parallel. Best
  throughput for a stream of independent small items (chat), costs one model copy per worker.
- `intra_op`: one interpreter with `threads` threads, items one at a time. Lower latency per
  item for big models (frames), one model copy.

Queueing delay is measured from the item's scheduled arrival (not from when the producer got
round to enqueueing it), so a starved producer cannot hide a backlog.
"""
from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from edgemod.errors import EdgemodError


class StreamConfig(BaseModel):
    """One replay: `rate` items/s for `seconds`, under `threads` and a queue of `max_queue`."""

    model_config = ConfigDict(extra="forbid")

    rate: float = Field(20.0, gt=0, description="messages per second (text) or frames per second (images)")
    seconds: float = Field(5.0, gt=0, le=3600)
    threads: int = Field(1, ge=1, le=64, description="the thread budget")
    parallelism: Literal["instances", "intra_op"] = "instances"
    max_queue: int = Field(32, ge=1, description="items waiting beyond this are dropped")
    drop_policy: Literal["drop_oldest", "drop_new"] = Field(
        "drop_oldest", description="drop_oldest keeps the feed fresh (frames); drop_new keeps arrival order (chat)")
    budget_ms: float = Field(50.0, gt=0, description="keeps_up needs p95 queueing delay below this")
    warmup: int = Field(2, ge=0, description="untimed runs per worker before the clock starts")


@dataclass
class _Item:
    index: int
    prepared: object
    due: float  # scheduled arrival, perf_counter seconds


@dataclass
class _Done:
    due: float
    started: float
    finished: float


class _BoundedQueue:
    """A deque with a drop policy; `queue.Queue` can only refuse new items, not evict old ones."""

    def __init__(self, size: int, policy: str):
        self.items: deque[_Item] = deque()
        self.size, self.policy = size, policy
        self.dropped, self.peak, self.closed = 0, 0, False
        self.ready = threading.Condition()

    def put(self, item: _Item) -> None:
        with self.ready:
            if len(self.items) >= self.size:
                self.dropped += 1
                if self.policy == "drop_new":
                    return
                self.items.popleft()
            self.items.append(item)
            self.peak = max(self.peak, len(self.items))
            self.ready.notify()

    def get(self) -> _Item | None:
        """The next item, or None once closed and empty."""
        with self.ready:
            while not self.items and not self.closed:
                self.ready.wait()
            return self.items.popleft() if self.items else None

    def close(self) -> int:
        """No more items; returns the backlog left at that moment."""
        with self.ready:
            self.closed = True
            self.ready.notify_all()
            return len(self.items)


def replay(export_dir: str | Path, artifact: str, config: StreamConfig,
           payloads: Sequence[str] | None = None) -> dict:
    """Replay a stream through `artifact` of an export folder.

    Args:
        payloads: texts or image paths, cycled; default: the artifact's golden payloads.
    """
    from edgemod.mobile_harness.device_pipeline import DevicePipeline

    pipeline = DevicePipeline.from_export(export_dir, artifact, threads=_runner_threads(config))
    if payloads is None:
        payloads = golden_payloads(Path(export_dir), pipeline.record)
    pipelines = [pipeline] + [pipeline.with_threads(_runner_threads(config)) for _ in range(_workers(config) - 1)]
    return {"artifact": artifact, "target": pipeline.target, **replay_pipelines(pipelines, payloads, config)}


def replay_pipelines(pipelines: Sequence, payloads: Sequence[str], config: StreamConfig) -> dict:
    """The replay itself, one worker per pipeline (anything with `encoder`, `scores`, `decision`)."""
    if not payloads:
        raise EdgemodError("stream replay needs at least one payload", "pass texts or image paths, or use the golden ones")
    # Decode once up front: a chat client has the string, a camera has the decoded frame.
    prepared = [pipelines[0].encoder.prepare(p) for p in payloads]
    for pipeline in pipelines:
        for item in prepared[: config.warmup]:
            _process(pipeline, item)
    queue = _BoundedQueue(config.max_queue, config.drop_policy)
    done: list[_Done] = []
    lock = threading.Lock()
    workers = [threading.Thread(target=_work, args=(p, queue, done, lock), daemon=True) for p in pipelines]
    for worker in workers:
        worker.start()
    start = time.perf_counter()
    produced = _produce(queue, prepared, config, start)
    backlog = queue.close()
    production_end = time.perf_counter()
    for worker in workers:
        worker.join()
    return _report(config, done, produced, queue, backlog, start, production_end, len(pipelines))


def golden_payloads(export_dir: Path, record: dict) -> list[str]:
    import json

    golden = json.loads((export_dir / record["golden"]["file"]).read_text(encoding="utf-8"))
    return [item["payload"] for item in golden["items"]]


def _workers(config: StreamConfig) -> int:
    return config.threads if config.parallelism == "instances" else 1


def _runner_threads(config: StreamConfig) -> int:
    return 1 if config.parallelism == "instances" else config.threads


def _produce(queue: _BoundedQueue, prepared: list, config: StreamConfig, start: float) -> int:
    """Release item i at start + i / rate; when late, release at once (a burst, like a real feed)."""
    total = max(1, round(config.rate * config.seconds))
    for index, item in zip(range(total), itertools.cycle(prepared)):
        due = start + index / config.rate
        wait = due - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        queue.put(_Item(index, item, due))
    return total


def _work(pipeline, queue: _BoundedQueue, done: list[_Done], lock: threading.Lock) -> None:
    while (item := queue.get()) is not None:
        started = time.perf_counter()
        _process(pipeline, item.prepared)
        finished = time.perf_counter()
        with lock:
            done.append(_Done(item.due, started, finished))


def _process(pipeline, prepared) -> None:
    """What the app does per item: encode, run, apply thresholds."""
    pipeline.decision(pipeline.scores(pipeline.encoder.encode_prepared(prepared)))


def _percentiles(values_s: list[float]) -> dict:
    if not values_s:
        return {"p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(values_s) * 1e3
    return {f"p{q}_ms": round(float(np.percentile(ms, q)), 3) for q in (50, 95, 99)} | {"max_ms": round(float(ms.max()), 3)}


def _report(config: StreamConfig, done: list[_Done], produced: int, queue: _BoundedQueue, backlog: int,
            start: float, production_end: float, workers: int) -> dict:
    queueing = _percentiles([max(0.0, d.started - d.due) for d in done])
    end = max((d.finished for d in done), default=production_end)
    keeps_up = queue.dropped == 0 and queueing["p95_ms"] is not None and queueing["p95_ms"] < config.budget_ms
    return {
        "config": config.model_dump(),
        "workers": workers, "threads_per_worker": _runner_threads(config),
        "offered_rate": config.rate, "produced": produced, "completed": len(done), "dropped": queue.dropped,
        "achieved_throughput": round(len(done) / max(end - start, 1e-9), 2),
        "queueing_delay": queueing,
        "end_to_end_latency": _percentiles([d.finished - d.due for d in done]),
        "service_time": _percentiles([d.finished - d.started for d in done]),
        "peak_queue": queue.peak, "backlog_at_end": backlog,
        "drain_seconds": round(max(0.0, end - production_end), 3),
        "keeps_up": bool(keeps_up),
    }
