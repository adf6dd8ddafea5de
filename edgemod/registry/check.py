"""`edgemod registry check [--repair]`: compare what a registry holds with what it records, and
finish what dead writers left.

A consistent registry has: every committed release (its release.json) published exactly once in
its model's history and not pruned there and listed in index.json; channels (channels.json, and history replayed) only
pointing at committed releases; channels.json and the index's channels equal to history replayed;
no intents of dead writers in `.pending/`; no half-uploads without a live publisher; no stale locks
or temp files. `--repair` replays dead writers' intents (complete or roll back, as the next writer
would), records unrecorded releases, deletes half-uploads and leftovers, and rebuilds channels.json
and index.json. What it cannot decide (a damaged history line, a history entry whose release is
gone) stays a finding with the manual fix.

`--deep` also reads every committed release: its signature must verify against the trusted keys and
every file its signed manifest lists must be there with that sha256 (as a pull checks), and no other
file may sit beside them. A changed byte or a lost file cannot be repaired from the registry itself:
those findings say how to restore or replace the release.
"""
from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgemod.errors import EdgemodError
from edgemod.registry.documents import release_files
from edgemod.registry.history import channel_stacks, pruned_versions
from edgemod.registry.holders import is_alive
from edgemod.registry.journal import delete_versions, is_dead, pending, record_publish, recover, roll_back_version
from edgemod.registry.refs import SEMVER, semver_key
from edgemod.registry.signing import load_trusted_keys, tampered, verify_release
from edgemod.registry.store import RELEASE, SIGNATURE, Backend, read_json

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
    releases_read: int = 0  # --deep: releases whose signature was checked,
    files_read: int = 0  # files hashed,
    bytes_read: int = 0  # and their bytes


@dataclass
class _Model:
    releases: set[str] = field(default_factory=set)
    files: dict[str, int] = field(default_factory=dict)  # version → files besides .upload/ and release.json
    claims: dict[str, list[str]] = field(default_factory=dict)


def check(registry: Registry, repair: bool = False, deep: bool = False) -> CheckReport:
    """Inspect the registry; with `repair`, fix what can be fixed first and report what remains; with
    `deep`, also verify every committed release's signature (against the configured trusted keys) and
    the sha256 of every file it lists."""
    trusted = _trusted_keys(registry) if deep else {}
    report = CheckReport()
    if repair:
        report.repaired = _repair(registry)
    report.findings, report.in_progress = _inspect(registry)
    if deep:
        for name, model in sorted(_scan(registry.backend.list("")).items()):
            for version in sorted(model.releases, key=semver_key):
                report.findings += _release_contents(registry.backend, name, version, trusted, report)
    return report


def _trusted_keys(registry: Registry) -> dict[str, Any]:
    if not registry.config.trusted_keys:
        raise EdgemodError("`registry check --deep` verifies every release's signature, but no trusted keys are configured",
                           "pass the publisher's public key: --trusted-key keys/edgemod-signing.pub "
                           "(or set EDGEMOD_TRUSTED_KEYS, or registry.trusted_keys in edgemod.yaml)")
    return load_trusted_keys(registry.config.trusted_keys)


def _restore(key: str, what: str) -> str:
    return (f"restore {key} from a backup or the bucket's object versions ({what}), or publish the gate run again "
            "under a new version and promote that one; pulls of this release fail until then")


def _release_contents(backend: Backend, name: str, version: str, trusted: dict[str, Any],
                      report: CheckReport) -> list[Finding]:
    """What differs between `name@version`'s files and its signed manifest (empty: it verifies, as a pull would)."""
    prefix, where = f"{name}/{version}", f"{name}@{version}"
    release, signature = backend.get(f"{prefix}/{RELEASE}"), backend.get(f"{prefix}/{SIGNATURE}")
    if release is None:
        return []  # deleted meanwhile: the other findings say so
    report.releases_read += 1
    try:
        manifest, _ = verify_release(release.data, signature.data if signature else None, trusted, name, version)
        files = release_files(manifest, where, None)
    except EdgemodError as error:
        fix = error.hint or ""
        if fix == tampered(where, "").hint:  # the pull's advice; the registry's owner restores instead
            fix = _restore(f"{prefix}/{RELEASE} and {SIGNATURE}", "as published, together")
        return [Finding(f"{prefix}/{RELEASE}", error.message, fix, False)]
    present = set(backend.list(prefix + "/"))
    findings, listed = [], {f"{prefix}/{RELEASE}", f"{prefix}/{SIGNATURE}"}
    for entry in files:
        key = f"{prefix}/{entry['path']}"
        listed.add(key)
        want = f"sha256 {entry['sha256']}, {entry['bytes']} bytes"
        if key not in present:
            findings.append(Finding(key, f"missing: {where}'s signed manifest lists it", _restore(key, want), False))
            continue
        digest, size = _sha256(backend, key)
        report.files_read += 1
        report.bytes_read += size
        if digest != entry["sha256"]:
            findings.append(Finding(key, f"changed since it was published: sha256 {digest[:16]}..., {size} bytes; "
                                         f"{where}'s signed manifest says {entry['sha256'][:16]}..., {entry['bytes']} bytes",
                                    _restore(key, want), False))
    for key in sorted(k for k in present - listed if "/.upload/" not in k):
        findings.append(Finding(key, f"not in {where}'s signed manifest (no pull fetches it)",
                                "find out who put it there, then delete it (no pull needs it)", False))
    return findings


def _sha256(backend: Backend, key: str) -> tuple[str, int]:
    digest, size = hashlib.sha256(), 0
    with backend.stream(key) as (_, chunks):
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


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
    try:
        pruned = pruned_versions(registry.history(name))
    except EdgemodError:
        pruned = set()  # reported below
    for version, count in sorted(model.files.items()):
        if version not in model.releases | pruned and not _live_upload(registry, model.claims.get(version, []), stale):
            findings.append(Finding(f"{name}/{version}/", f"{count} file(s) of an unfinished upload, no live publisher",
                                    "delete them"))
    try:
        events = registry.history(name)
    except EdgemodError as error:
        return [*findings, Finding(f"{name}/history.jsonl", error.message, error.hint or "fix history.jsonl by hand", False)]
    published = Counter(e.get("version") for e in events if e.get("event") == "publish")
    for version in sorted(model.releases - pruned_versions(events)):
        if published[version] == 0:
            findings.append(Finding(f"{name}@{version}", "committed release without a publish entry in history",
                                    "record its publish event"))
        elif published[version] > 1:
            findings.append(Finding(f"{name}@{version}", f"published {published[version]} times in history",
                                    "history is append-only: leave it, or edit history.jsonl by hand", False))
    pruned = pruned_versions(events)
    for version in sorted(set(published) - model.releases - pruned):
        findings.append(Finding(f"{name}@{version}", "history records a publish but release.json is missing",
                                "restore the release from a backup, or republish it", False))
    for version in sorted(pruned & (model.releases | set(model.files))):
        findings.append(Finding(f"{name}@{version}", "pruned in history, but its files remain", "delete them"))
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
        try:
            events = registry.history(name)
        except EdgemodError as error:
            events = None
            done.append(f"left {name}'s history alone: {error.message}")
        leftover = sorted(pruned_versions(events or []) & (model.releases | set(model.files)))
        if leftover:
            delete_versions(registry, name, leftover)
            done.append(f"deleted the files of pruned {', '.join(f'{name}@{v}' for v in leftover)}")
        for version in sorted(set(model.files) - model.releases - set(leftover)):
            claims = sorted(model.claims.get(version, []))
            if not _live_upload(registry, claims, stale):
                last = (claims[-1], read_json(backend, claims[-1]) or {}) if claims else None
                roll_back_version(registry, name, version, last, None)
                done.append(f"deleted the unfinished upload of {name}@{version}")
        if events is None:
            continue
        recorded = {e.get("version") for e in events if e.get("event") == "publish"}
        for version in sorted(model.releases - recorded - set(leftover)):
            record_publish(registry, name, version, None)
            done.append(f"recorded the publish of {name}@{version}")
        registry._sync_channels(name)
    registry._refresh_index()
    return done

