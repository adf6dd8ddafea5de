"""Checked readers of the registry's JSON documents: index.json, channels.json, history.jsonl and a
release manifest's file list.

Anyone who can write to a bucket can put any bytes at these keys, so every reader checks the shape
before it indexes into the data: a document of the wrong shape is an `EdgemodError` that names the
key and says how to repair it, never a KeyError or a traceback.
"""
from __future__ import annotations

import json
import re
from typing import Any

from edgemod.errors import EdgemodError
from edgemod.registry.store import check_key

SHA256 = re.compile(r"^[0-9a-f]{64}$")
REPAIR = "run `edgemod registry check --repair`: index.json and channels.json are rebuilt from the releases and history"


def _shape_error(where: str, what: str, hint: str = REPAIR) -> EdgemodError:
    return EdgemodError(f"{where} is damaged: {what}", hint)


def _mapping(value: Any, where: str, what: str) -> dict:
    if not isinstance(value, dict):
        raise _shape_error(where, f"{what} must be a JSON object, not {type(value).__name__}")
    return value


def index_models(data: Any, where: str) -> dict[str, dict[str, Any]]:
    """The `models` of index.json (name → versions, channels, latest), checked."""
    models = _mapping(_mapping(data, where, "the index").get("models", {}), where, "`models`")
    for name, entry in models.items():
        _mapping(entry, where, f"models.{name}")
        _mapping(entry.get("versions", {}), where, f"models.{name}.versions")
        channels = _mapping(entry.get("channels", {}), where, f"models.{name}.channels")
        if not all(isinstance(v, str) for v in channels.values()) or not isinstance(entry.get("latest", ""), str):
            raise _shape_error(where, f"models.{name} has a channel or `latest` that is not a version string")
    return models


def channel_versions(data: Any, where: str) -> dict[str, str]:
    """channel → version from channels.json, checked."""
    channels = _mapping(_mapping(data, where, "channels.json").get("channels", {}), where, "`channels`")
    versions = {}
    for channel, entry in channels.items():
        version = _mapping(entry, where, f"channels.{channel}").get("version")
        if not isinstance(version, str):
            raise _shape_error(where, f"channels.{channel}.version must be a version string, not {version!r}")
        versions[channel] = version
    return versions


def parse_events(data: bytes, where: str) -> list[dict[str, Any]]:
    """The events of history.jsonl, oldest first; every line must be one JSON event object."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        raise _shape_error(where, "it is not UTF-8 text", _history_hint(where)) from None
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            event = json.loads(line)
        except ValueError:
            raise _shape_error(where, f"line {number} is not JSON: {line[:60]!r}", _history_hint(where, number)) from None
        if not isinstance(event, dict) or not isinstance(event.get("event"), str):
            raise _shape_error(where, f"line {number} is not an event object", _history_hint(where, number))
        moves = event["event"] in ("promote", "rollback")
        if moves and not all(isinstance(event.get(k), str) for k in ("channel", "to")):
            raise _shape_error(where, f"line {number}: a {event['event']} event needs `channel` and `to`",
                               _history_hint(where, number))
        versions = event.get("versions")
        if event["event"] == "prune" and not (isinstance(versions, list) and all(isinstance(v, str) for v in versions)):
            raise _shape_error(where, f"line {number}: a prune event needs `versions`, a list of version strings",
                               _history_hint(where, number))
        events.append(event)
    return events


def _history_hint(where: str, line: int | None = None) -> str:
    at = f"line {line} of " if line else ""
    return (f"history is append-only and is the record channels are rebuilt from: restore {at}{where} from a backup "
            "(or the bucket's object versions); delete only a line you know is garbage")


def release_files(manifest: Any, where: str, platform: str | None) -> list[dict[str, Any]]:
    """The files of a verified release manifest that `platform` gets (every file: None), each checked: a
    relative key without `..`, a sha256, a byte count and its platforms. Raises if the manifest has
    another shape."""
    if not isinstance(manifest, dict) or not isinstance(manifest.get("platforms"), dict) \
            or not isinstance(manifest.get("files"), list):
        raise malformed_release(where, "the signed manifest is not an edgemod release (no `platforms` / `files` lists)")
    if platform is not None and platform not in manifest["platforms"]:
        raise EdgemodError(f"{where} has no {platform} model (platforms: {', '.join(map(str, manifest['platforms']))})",
                           "pull one of those platforms, or publish a release that exports this target")
    files = []
    for entry in manifest["files"]:
        if not (isinstance(entry, dict) and isinstance(entry.get("path"), str) and isinstance(entry.get("sha256"), str)
                and SHA256.match(entry["sha256"]) and type(entry.get("bytes")) is int and entry["bytes"] >= 0
                and isinstance(entry.get("platforms"), list)):
            raise malformed_release(where, f"a file entry of the signed manifest is malformed: {str(entry)[:80]}")
        try:
            check_key(entry["path"])
        except EdgemodError:
            raise malformed_release(where, f"the signed manifest names the file path {entry['path']!r}") from None
        if platform is None or platform in entry["platforms"]:
            files.append(entry)
    return files


def malformed_release(where: str, what: str) -> EdgemodError:
    """A signed or stored release manifest that is not shaped like one: refused, with what to do instead."""
    return EdgemodError(f"{where}: {what}; refusing it",
                        "do not use this release; ask its publisher to publish a fixed one under a new version")


def release_manifest(data: bytes, where: str) -> dict[str, Any]:
    """A release.json as `show` prints it: the fields it reads must be there, with their types."""
    try:
        manifest = json.loads(data)
    except ValueError:
        raise malformed_release(where, "release.json is not valid JSON") from None
    text = ("name", "version", "created_at", "published_by")
    ok = (isinstance(manifest, dict) and all(isinstance(manifest.get(k), str) for k in text)
          and isinstance(manifest.get("gate"), dict) and isinstance(manifest["gate"].get("verdict"), str)
          and isinstance(manifest.get("labels"), list) and isinstance(manifest.get("files"), list)
          and isinstance(manifest.get("artifacts"), dict)
          and all(isinstance(a, dict) and isinstance(a.get("platform"), str) for a in manifest["artifacts"].values())
          and isinstance(manifest.get("metrics"), dict) and isinstance(manifest["metrics"].get("artifacts", {}), dict)
          and all(isinstance(m, dict) for m in manifest["metrics"].get("artifacts", {}).values())
          and all(isinstance(f, dict) and isinstance(f.get("path"), str) and isinstance(f.get("sha256"), str)
                  and isinstance(f.get("platforms"), list) for f in manifest["files"]))
    if not ok:
        raise malformed_release(where, "release.json does not have the shape of an edgemod release")
    return manifest
