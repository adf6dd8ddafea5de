"""The write-ahead journal: each publish, promote, rollback and prune first writes an intent to
`.pending/`, then takes its steps, each idempotent, then deletes the intent. Any later writer (and
`edgemod registry check --repair`) replays the intents of dead writers: it completes what reached its
commit point and rolls back what did not. The protocol itself is described in
edgemod/registry/__init__.py.
"""
from __future__ import annotations

import contextlib
import json
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgemod.errors import EdgemodError
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.history import append_event, channel_stacks, now
from edgemod.registry.holders import describe, is_alive, this_holder
from edgemod.registry.store import RELEASE, SIGNATURE, Backend, PreconditionFailed, read_json

if TYPE_CHECKING:
    from edgemod.registry.core import Registry

PENDING = ".pending"  # a dot: never a model name (refs.NAME starts with a letter or digit)
STEPS = {
    "publish": ["claim", "release files", "release.sig", "release.json (the commit point)", "claim committed",
                "history: publish", "history: promote (with --channel)", "channels.json", "index.json"],
    "promote": ["history: promote (the commit point)", "channels.json", "index.json"],
    "rollback": ["history: rollback (the commit point)", "channels.json", "index.json"],
    "prune": ["history: prune (the commit point)", "release.json of each pruned version", "their other files",
              "channels.json", "index.json"],
}


@dataclass
class Intent:
    key: str
    body: dict[str, Any]

    @property
    def id(self) -> str:
        return self.body["id"]

    @property
    def name(self) -> str:
        return self.body["name"]

    def describe(self) -> str:
        target = self.body.get("version") or ""
        channel = f" --channel {self.body['channel']}" if self.body.get("channel") else ""
        return f"{self.body['op']} {self.name} {target}{channel}".replace("  ", " ").strip() + f" by {describe(self.body)}"


def begin(backend: Backend, op: str, name: str, **fields: Any) -> Intent:
    """Record what this writer is about to do, before its first step (create-only: the id is unique)."""
    intent_id = uuid.uuid4().hex
    target = fields.get("version") or fields.get("channel") or op
    body = {"op": op, "name": name, **fields, "id": intent_id, "steps": STEPS[op], "at": now(), **this_holder()}
    key = f"{PENDING}/{name}@{target}.{op}.{intent_id[:12]}.json"
    backend.put(key, (json.dumps(body, indent=2) + "\n").encode(), if_absent=True)
    return Intent(key, body)


def pending(backend: Backend) -> tuple[list[Intent], list[str]]:
    """The intents in `.pending/`, and the keys there that are not readable intents."""
    intents, damaged = [], []
    for key in backend.list(f"{PENDING}/"):
        try:
            body = read_json(backend, key)
        except EdgemodError:
            body = None
        if body is None and backend.get(key) is None:
            continue  # finished meanwhile
        if isinstance(body, dict) and body.get("op") in STEPS and isinstance(body.get("name"), str) and body.get("id"):
            intents.append(Intent(key, body))
        else:
            damaged.append(key)
    return intents, damaged


def is_dead(intent: Intent, stale_after_s: float) -> bool:
    return bool(intent.body.get("abandoned")) or not is_alive(intent.body, stale_after_s)


def finish(backend: Backend, intent: Intent) -> None:
    backend.delete(intent.key)


def recover(registry: Registry) -> list[str]:
    """Replay every intent whose writer is dead, and remove dead writers' temp and lock files; what was done."""
    registry.backend.sweep_leftovers()
    intents, _ = pending(registry.backend)
    done = []
    for intent in intents:
        if is_dead(intent, registry.config.stale_upload_after_s):
            try:
                done.append(replay(registry, intent))
            except EdgemodError as error:  # e.g. a damaged history: `registry check` reports it, this writer goes on
                done.append(f"could not replay {intent.describe()}: {error.message}")
    return done


def settle(registry: Registry, intent: Intent) -> None:
    """After a writer's own step failed (or was interrupted): complete or roll back now, or leave the
    intent marked abandoned so that the next writer does."""
    try:
        replay(registry, intent)
    except Exception:
        with contextlib.suppress(Exception):
            registry.backend.put(intent.key, json.dumps({**intent.body, "abandoned": True}).encode())


def replay(registry: Registry, intent: Intent) -> str:
    """Complete `intent` if it reached its commit point, else roll it back; returns what happened."""
    if intent.body["op"] == "publish":
        claim = _own_claim(registry.backend, intent)
        committed = claim is not None and claim[1].get("state") in ("uploading", "committed") and registry.backend.get(
            f"{intent.name}/{intent.body['version']}/{RELEASE}") is not None
    else:
        committed = any(e.get("intent") == intent.id for e in registry.history(intent.name))
    if committed:
        complete(registry, intent)
        return f"completed: {intent.describe()}"
    if intent.body["op"] == "publish":
        _roll_back_upload(registry, intent)
    finish(registry.backend, intent)
    return f"rolled back: {intent.describe()}"


def complete(registry: Registry, intent: Intent) -> None:
    """The steps after the commit point, each a no-op when already done; then the intent goes."""
    op, name = intent.body["op"], intent.name
    if op == "publish":
        claim = _own_claim(registry.backend, intent)
        if claim and claim[1].get("state") != "committed":
            registry.backend.put(claim[0], json.dumps({**claim[1], "state": "committed", "ended_at": now()}).encode())
        crash_point("publish:after-claim-committed")
        record_publish(registry, name, intent.body["version"], intent.id)
        crash_point("publish:after-history")
        if intent.body.get("channel"):
            _record_channel_move(registry, intent)
            crash_point("publish:after-promote-event")
    if op == "prune":
        _delete_pruned(registry, name, intent.id)
        crash_point("prune:after-files")
    registry._sync_channels(name)
    crash_point(f"{op}:after-channels")
    registry._refresh_index()
    crash_point(f"{op}:after-index")
    finish(registry.backend, intent)


def _delete_pruned(registry: Registry, name: str, intent_id: str) -> None:
    """The files of the versions the `prune` event of `intent_id` names."""
    events = [e for e in registry.history(name) if e.get("event") == "prune" and e.get("intent") == intent_id]
    delete_versions(registry, name, [v for e in events for v in e.get("versions", [])])


def delete_versions(registry: Registry, name: str, versions: list[str]) -> None:
    """Each version's release.json first (it stops being committed), then every other file of it."""
    for version in versions:
        prefix = f"{name}/{version}"
        registry.backend.delete(f"{prefix}/{RELEASE}")
        crash_point("prune:after-uncommit")
        for key in registry.backend.list(prefix + "/"):
            registry.backend.delete(key)
        remove_empty = getattr(registry.backend, "remove_empty_folders", None)
        if remove_empty:
            remove_empty(prefix)


def record_publish(registry: Registry, name: str, version: str, intent_id: str | None) -> None:
    """The publish event of a committed release, unless history already has one."""
    try:
        signature = read_json(registry.backend, f"{name}/{version}/{SIGNATURE}")
    except EdgemodError:
        signature = None
    signature = signature if isinstance(signature, dict) else {}

    def event(events: list[dict]) -> dict | None:
        if any(e.get("event") == "publish" and e.get("version") == version for e in events):
            return None
        return {"event": "publish", "version": version, "key_id": signature.get("key_id"),
                "release_sha256": signature.get("signed_sha256"), "intent": intent_id}

    append_event(registry.backend, name, registry.user, event)


def _record_channel_move(registry: Registry, intent: Intent) -> None:
    channel, version = intent.body["channel"], intent.body["version"]

    def event(events: list[dict]) -> dict | None:
        current = (channel_stacks(events).get(channel) or [None])[-1]
        if current == version or any(e.get("intent") == intent.id and e.get("event") == "promote" for e in events):
            return None
        return {"event": "promote", "channel": channel, "from": current, "to": version, "intent": intent.id}

    append_event(registry.backend, intent.name, registry.user, event)


def _own_claim(backend: Backend, intent: Intent) -> tuple[str, dict[str, Any]] | None:
    """The version's latest upload claim, if this intent made it (then nobody took the upload over)."""
    claims = sorted(k for k in backend.list(f"{intent.name}/{intent.body['version']}/.upload/") if k.endswith(".json"))
    if not claims:
        return None
    try:
        body = read_json(backend, claims[-1])
    except EdgemodError:
        return None
    return (claims[-1], body) if isinstance(body, dict) and body.get("intent") == intent.id else None


def _roll_back_upload(registry: Registry, intent: Intent) -> None:
    """Remove a dead publisher's half-upload and fence its claim with a newer "rolled-back" one."""
    claim = _own_claim(registry.backend, intent)
    if claim is None:
        return  # it never won the claim, or someone took the upload over: nothing here is its
    roll_back_version(registry, intent.name, intent.body["version"], claim, intent.id)


def roll_back_version(registry: Registry, name: str, version: str, last_claim: tuple[str, dict[str, Any]] | None,
                      intent_id: str | None) -> None:
    """Delete the files of an uncommitted version; unless its publisher aborted cleanly, add a newer
    claim that says it was rolled back, so that publisher can no longer commit."""
    prefix = f"{name}/{version}"
    if registry.backend.get(f"{prefix}/{RELEASE}") is not None:
        return
    for key in registry.backend.list(prefix + "/"):
        if "/.upload/" not in key:
            registry.backend.delete(key)
    if last_claim and last_claim[1].get("state") in ("aborted", "rolled-back"):
        return
    number = int(last_claim[0].rsplit("-", 1)[1].split(".")[0]) + 1 if last_claim else 0
    body = {"state": "rolled-back", "by": registry.user, "intent": None, "rolled_back_intent": intent_id,
            "ended_at": now(), **this_holder()}
    with contextlib.suppress(PreconditionFailed):  # a publisher claiming meanwhile wins: it cleans up itself
        registry.backend.put(f"{prefix}/.upload/claim-{number:06d}.json", json.dumps(body).encode(), if_absent=True)
