"""Each model's append-only history (`<name>/history.jsonl`) and the compare-and-swap loop every
mutable key (history, channels.json, index.json) is updated with."""
from __future__ import annotations

import datetime as dt
import json
import random
import time
from collections.abc import Callable
from typing import Any

from edgemod.errors import EdgemodError
from edgemod.registry.documents import parse_events
from edgemod.registry.store import ABSENT, Backend, Blob, PreconditionFailed

CAS_ATTEMPTS = 50


def now() -> str:
    """The current UTC time as recorded in history, claims, the index and pull records."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def read_events(blob: Blob | None, where: str = "history.jsonl") -> list[dict[str, Any]]:
    """The events of a history.jsonl blob (read from `where`), oldest first; none when the model has no history yet."""
    if blob is None:
        return []
    return parse_events(blob.data, where)


def channel_stacks(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Replay history: a promote pushes its version on the channel's stack, a rollback pops it, a prune
    removes its versions from every stack (never a channel's head: `registry prune` keeps those)."""
    stacks: dict[str, list[str]] = {}
    for event in events:
        if event.get("event") == "promote":
            stacks.setdefault(event["channel"], []).append(event["to"])
        elif event.get("event") == "rollback" and stacks.get(event["channel"]):
            stacks[event["channel"]].pop()
        elif event.get("event") == "prune":
            gone = set(event.get("versions", []))
            for channel, stack in stacks.items():
                kept = [v for v in stack[:-1] if v not in gone]
                stacks[channel] = [*kept, stack[-1]] if stack else stack
    return stacks


def pruned_versions(events: list[dict[str, Any]]) -> set[str]:
    """Every version a `prune` event removed."""
    return {v for e in events if e.get("event") == "prune" for v in e.get("versions", [])}


def append_event(backend: Backend, name: str, user: str,
                 make_event: Callable[[list[dict]], dict | None]) -> dict[str, Any] | None:
    """Append one event to `<name>/history.jsonl` with compare-and-swap; `make_event` sees the latest
    events and returns None when there is nothing to append (then so does this)."""
    key = f"{name}/history.jsonl"
    for attempt in range(CAS_ATTEMPTS):
        blob = backend.get(key)
        made = make_event(read_events(blob, f"{backend.url}/{key}"))
        if made is None:  # already recorded (a replayed step)
            return None
        event = {"at": now(), **made, "by": user}
        data = (blob.data if blob else b"") + (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            backend.put(key, data, if_match=blob.token if blob else ABSENT)
            return event
        except PreconditionFailed:
            _backoff(attempt)
    raise _contention(key)


def compare_and_swap(backend: Backend, key: str, render: Callable[[Blob | None], bytes | None]) -> None:
    """Write `render(current)` over `key` only if nobody changed it meanwhile; None means up to date.
    Retried with backoff, so a slower writer cannot restore an old state."""
    for attempt in range(CAS_ATTEMPTS):
        blob = backend.get(key)
        data = render(blob)
        if data is None:
            return
        try:
            backend.put(key, data, if_match=blob.token if blob else ABSENT)
            return
        except PreconditionFailed:
            _backoff(attempt)
    raise _contention(key)


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * 2 ** min(attempt, 6)) * random.random())


def _contention(key: str) -> EdgemodError:
    return EdgemodError(f"could not update {key}: other writers kept changing it", "run the command again")
