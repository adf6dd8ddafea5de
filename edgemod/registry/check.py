"""`edgemod registry check [--repair]`: compare what a registry holds with what it records, and
finish what dead writers left.

A consistent registry has: every committed release (its release.json) published exactly once in
its model's history and listed in index.json; channels (channels.json, and history replayed) only
pointing at committed releases; channels.json and the index's channels equal to history replayed;
no intents of dead writers in `.pending/`; no half-uploads without a live publisher; no stale locks
or temp files. `--repair` replays dead writers' intents (complete or roll back, as the next writer
would), records unrecorded releases, deletes half-uploads and leftovers, and rebuilds channels.json
and index.json. What it cannot decide (a damaged history line, a history entry whose release is
gone) stays a finding with the manual fix.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgemod.errors import EdgemodError
from edgemod.registry.history import channel_stacks
from edgemod.registry.holders import is_alive
from edgemod.registry.journal import is_dead, pending, record_publish, recover, roll_back_version
from edgemod.registry.refs import SEMVER
from edgemod.registry.store import RELEASE, read_json

if TYPE_CHECKING:
    from edgemod.registry.core import Registry

REPLAY = "replay it: complete it if it was committed, else roll it back"
REBUILD_INDEX = "rebuild index.json"


@dataclass
class Finding:
    where: str
    problem: str
    fix: str  # what --repair does about it, or (when not `repairable`) what to do by hand
    repairable: bool = True


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    in_progress: list[str] = field(default_factory=list)  # live writers' intents: not findings
    repaired: list[str] = field(default_factory=list)


@dataclass
class _Model:
    releases: set[str] = field(default_factory=set)
    files: dict[str, int] = field(default_factory=dict)  # version → files besides .upload/ and release.json
    claims: dict[str, list[str]] = field(default_factory=dict)


def check(registry: Registry, repair: bool = False) -> CheckReport:
    """Inspect the registry; with `repair`, fix what can be fixed first and report what remains."""
    report = CheckReport()
    if repair:
        report.repaired = _repair(registry)
    report.findings, report.in_progress = _inspect(registry)
    return report


def _inspect(registry: Registry) -> tuple[list[Finding], list[str]]:
    backend, stale = registry.backend, registry.config.stale_upload_after_s
    findings: list[Finding] = []
    in_progress, busy = [], set()
    intents, damaged = pending(backend)
    for intent in intents:
        if is_dead(intent, stale):
            findings.append(Finding(intent.key, f"unfinished {intent.describe()}, whose writer is gone", REPLAY))
        else:
            in_progress.append(intent.describe())
            busy.add(intent.name)
    findings += [Finding(key, "an unreadable intent", "delete it") for key in damaged]
    findings += [Finding(where, why, "remove it") for where, why in backend.leftovers()]
    models = _scan(backend.list(""))
    try:
        index = registry.index()["models"]
    except EdgemodError as error:
        findings.append(Finding("index.json", error.message, REBUILD_INDEX))
        index = None
    for name in sorted(set(models) | set(index or {})):
        if name not in busy:
            findings += _model_findings(registry, name, models.get(name, _Model()), index)
    return findings, in_progress


def _scan(keys: list[str]) -> dict[str, _Model]:
    models: dict[str, _Model] = {}
    for key in keys:
        parts = key.split("/")
        if len(parts) < 3 or parts[0].startswith(".") or not SEMVER.match(parts[1]):
            continue
        model = models.setdefault(parts[0], _Model())
        if parts[2] == ".upload":
            model.claims.setdefault(parts[1], []).append(key)
        elif len(parts) == 3 and parts[2] == RELEASE:
            model.releases.add(parts[1])
        else:
            model.files[parts[1]] = model.files.get(parts[1], 0) + 1
    return models


def _model_findings(registry: Registry, name: str, model: _Model, index: dict[str, Any] | None) -> list[Finding]:
    findings = []
    stale = registry.config.stale_upload_after_s
    for version, count in sorted(model.files.items()):
        if version not in model.releases and not _live_upload(registry, model.claims.get(version, []), stale):
            findings.append(Finding(f"{name}/{version}/", f"{count} file(s) of an unfinished upload, no live publisher",
                                    "delete them"))
    try:
        events = registry.history(name)
    except EdgemodError as error:
        return [*findings, Finding(f"{name}/history.jsonl", error.message, error.hint or "fix history.jsonl by hand", False)]
    published = Counter(e.get("version") for e in events if e.get("event") == "publish")
    for version in sorted(model.releases):
        if published[version] == 0:
            findings.append(Finding(f"{name}@{version}", "committed release without a publish entry in history",
                                    "record its publish event"))
        elif published[version] > 1:
            findings.append(Finding(f"{name}@{version}", f"published {published[version]} times in history",
                                    "history is append-only: leave it, or edit history.jsonl by hand", False))
    for version in sorted(set(published) - model.releases):
        findings.append(Finding(f"{name}@{version}", "history records a publish but release.json is missing",
                                "restore the release from a backup, or republish it", False))
    derived = {channel: stack[-1] for channel, stack in channel_stacks(events).items()}
    for channel, version in sorted(derived.items()):
        if version not in model.releases:
            findings.append(Finding(f"{name}@{channel}", f"channel points at {version}, which is not committed",
                                    f"promote a committed version: edgemod promote {name} VERSION --channel {channel}", False))
    try:
        channels = registry.channels(name)
    except EdgemodError as error:
        channels = None
        findings.append(Finding(f"{name}/channels.json", error.message, "rewrite it from history"))
    if channels is not None and channels != derived:
        findings.append(Finding(f"{name}/channels.json", f"says {channels}, history says {derived}", "rewrite it from history"))
    if index is not None:
        entry = index.get(name) or {}
        listed = set(entry.get("versions", {}))
        if listed != model.releases:
            missing, extra = sorted(model.releases - listed), sorted(listed - model.releases)
            problem = f"does not list {missing}" if missing else f"lists {extra}, which are not committed"
            findings.append(Finding(f"index.json: {name}", problem, REBUILD_INDEX))
        elif model.releases and entry.get("channels", {}) != derived:
            findings.append(Finding(f"index.json: {name}", "its channels differ from history", REBUILD_INDEX))
    return findings


def _live_upload(registry: Registry, claims: list[str], stale: float) -> bool:
    if not claims:
        return False
    try:
        last = read_json(registry.backend, sorted(claims)[-1])
    except EdgemodError:
        return False
    return isinstance(last, dict) and last.get("state") == "uploading" and is_alive(last, stale)


def _repair(registry: Registry) -> list[str]:
    backend, stale = registry.backend, registry.config.stale_upload_after_s
    done = recover(registry)
    intents, damaged = pending(backend)
    for key in damaged:
        backend.delete(key)
        done.append(f"deleted unreadable intent {key}")
    busy = {intent.name for intent in intents if not is_dead(intent, stale)}
    for where, why in backend.leftovers():
        backend.remove_leftover(where)
        done.append(f"removed {where} ({why})")
    for name, model in sorted(_scan(backend.list("")).items()):
        if name in busy:
            continue
        for version in sorted(set(model.files) - model.releases):
            claims = sorted(model.claims.get(version, []))
            if not _live_upload(registry, claims, stale):
                last = (claims[-1], read_json(backend, claims[-1]) or {}) if claims else None
                roll_back_version(registry, name, version, last, None)
                done.append(f"deleted the unfinished upload of {name}@{version}")
        try:
            events = registry.history(name)
        except EdgemodError as error:
            done.append(f"left {name} alone: {error.message}")
            continue
        recorded = {e.get("version") for e in events if e.get("event") == "publish"}
        for version in sorted(model.releases - recorded):
            record_publish(registry, name, version, None)
            done.append(f"recorded the publish of {name}@{version}")
        registry._sync_channels(name)
    registry._refresh_index()
    return done

