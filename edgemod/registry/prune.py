"""`edgemod registry prune`: remove old versions of a model, keeping what can still be pulled or rolled back to.

Kept: every version a channel points at; for each channel, its `keep_previous` most recent earlier
versions (what `edgemod rollback` would go back to); and every version newer than all channel heads
(published, not promoted yet). A model without channels keeps its latest version and the
`keep_previous` before it. Everything else goes.

Crash-consistent like a promote: an intent, then a history `prune` event naming the versions (THE
COMMIT POINT), then each version's release.json (so it stops being committed at once), then its other
files, then channels.json and index.json. A dead pruner's intent is completed by the next writer or
`edgemod registry check --repair`. A pruned version leaves every channel's rollback stack, and its
number stays used: versions are immutable, so publish refuses it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgemod.errors import EdgemodError
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.history import append_event, channel_stacks
from edgemod.registry.journal import begin, complete, recover, settle
from edgemod.registry.refs import semver_key
from edgemod.registry.store import RELEASE

if TYPE_CHECKING:
    from edgemod.registry.core import Registry


@dataclass
class PrunePlan:
    name: str
    kept: dict[str, str] = field(default_factory=dict)  # version -> why it stays
    removed: list[str] = field(default_factory=list)
    bytes_removed: int = 0


def plan_prune(name: str, versions: list[str], events: list[dict[str, Any]], keep_previous: int) -> PrunePlan:
    """What a prune of `name` keeps (and why) and removes, given its committed `versions` and history."""
    if keep_previous < 0:
        raise EdgemodError(f"--keep-previous {keep_previous} is negative", "use 0 (only channel heads) or more")
    ordered = sorted(versions, key=semver_key)
    plan = PrunePlan(name)
    stacks = {c: [v for v in s if v in versions] for c, s in channel_stacks(events).items()}
    stacks = {c: s for c, s in stacks.items() if s}
    if not stacks and ordered:
        stacks = {"": ordered}  # no channels: the newest version plays the channel head
    for channel, stack in sorted(stacks.items()):
        label = channel or "latest"
        plan.kept.setdefault(stack[-1], label)
        earlier = [v for v in dict.fromkeys(reversed(stack[:-1])) if v != stack[-1]]
        for version in earlier[:keep_previous]:
            plan.kept.setdefault(version, f"{label}'s previous")
    newest_head = max((s[-1] for s in stacks.values()), key=semver_key, default=None)
    for version in ordered:
        if newest_head is not None and semver_key(version) > semver_key(newest_head):
            plan.kept.setdefault(version, "newer than every channel (not promoted yet)")
    plan.removed = [v for v in ordered if v not in plan.kept]
    return plan


def prune(registry: Registry, name: str, keep_previous: int = 1, dry_run: bool = False) -> PrunePlan:
    """Remove the versions of `name` that `plan_prune` does not keep; with `dry_run`, only say which."""
    if not dry_run:
        registry._require_writable()
    if name not in registry.index()["models"] and not registry.versions(name):
        raise EdgemodError(f"no model '{name}' in {registry.backend.url}", "see `edgemod list`")
    versions = _committed(registry, name)
    plan = plan_prune(name, versions, registry.history(name), keep_previous)
    plan.bytes_removed = sum(_size(registry, name, v) for v in plan.removed)
    if dry_run or not plan.removed:
        return plan
    recover(registry)
    intent = begin(registry.backend, "prune", name, channel=None, versions=plan.removed)
    crash_point("prune:after-intent")

    def event(events: list[dict]) -> dict | None:
        # Re-planned on the latest history: a promote that landed meanwhile keeps its version.
        fresh = plan_prune(name, versions, events, keep_previous)
        plan.kept, plan.removed = fresh.kept, [v for v in fresh.removed if v in plan.removed]
        if not plan.removed:
            return None
        return {"event": "prune", "versions": plan.removed, "keep_previous": keep_previous, "intent": intent.id}

    try:
        append_event(registry.backend, name, registry.user, event)
        crash_point("prune:after-history")
        complete(registry, intent)
    except BaseException:
        settle(registry, intent)
        raise
    return plan


def _committed(registry: Registry, name: str) -> list[str]:
    return sorted({k.split("/")[1] for k in registry.backend.list(f"{name}/") if k.count("/") == 2 and k.endswith(f"/{RELEASE}")},
                  key=semver_key)


def _size(registry: Registry, name: str, version: str) -> int:
    total = 0
    for key in registry.backend.list(f"{name}/{version}/"):
        blob = registry.backend.get(key)
        total += len(blob.data) if blob else 0
    return total
