"""The `Registry`: reads (index, versions, channels, history, show) on every backend; publish,
promote and rollback on a writable one; pull. Plus the one-call functions the CLI uses.

Index and channel updates are compare-and-swap loops (`history.compare_and_swap`); channels.json
and index.json are derived from what is committed, so they can always be rebuilt.
"""
from __future__ import annotations

import getpass
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.registry.config import RegistryConfig, load_config
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.documents import channel_versions, index_models, release_manifest
from edgemod.registry.history import append_event, channel_stacks, compare_and_swap, now, pruned_versions, read_events
from edgemod.registry.journal import Intent, begin, complete, recover, settle
from edgemod.registry.publish import Publisher, PublishResult
from edgemod.registry.pull import PullResult, check_out, check_platform, fetch_release
from edgemod.registry.refs import SEMVER, Ref, check_channel, check_name, check_version, parse_ref, semver_key
from edgemod.registry.release import assemble
from edgemod.registry.signing import key_id, load_private_key, load_trusted_keys, sign_manifest, verify_release
from edgemod.registry.store import INDEX, RELEASE, SIGNATURE, Backend, Blob, read_json
from edgemod.registry.store_http import HttpBackend
from edgemod.registry.store_local import LocalBackend
from edgemod.registry.store_s3 import S3Backend

INDEX_SCHEMA = "edgemod.registry-index/1"


def open_backend(url: str, s3_endpoint_url: str | None = None) -> Backend:
    """`s3://bucket/prefix`, `http(s)://host/path` (read-only) or a local folder (`file://` optional)."""
    if url.startswith("s3://"):
        bucket, _, prefix = url[len("s3://"):].partition("/")
        if not bucket:
            raise EdgemodError(f"registry URL '{url}' names no bucket", "use s3://BUCKET/optional/prefix")
        return S3Backend(bucket, prefix, s3_endpoint_url)
    if url.startswith(("http://", "https://")):
        return HttpBackend(url)
    if "://" in url and not url.startswith("file://"):
        raise EdgemodError(f"unsupported registry URL '{url}'",
                           "use a folder path, file:///path, s3://bucket/prefix or https://host/path")
    root = Path(url.removeprefix("file://")).expanduser()
    if root.exists() and not root.is_dir():
        raise EdgemodError(f"registry {root} is a file, not a folder",
                           "point --registry (or EDGEMOD_REGISTRY, registry.url in edgemod.yaml) at the registry's folder")
    return LocalBackend(root)


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return os.environ.get("USER") or f"uid{os.getuid()}"


class Registry:
    """One registry (any backend). Reads work on every backend; writes need a local folder or a bucket."""

    def __init__(self, config: RegistryConfig | None = None, backend: Backend | None = None):
        self.config = config or load_config()
        self.backend = backend or open_backend(self.config.url, self.config.s3_endpoint_url)
        self.user = self.config.user or f"{_login()}@{socket.gethostname()}"

    # ----- reads

    def index(self) -> dict[str, Any]:
        data = read_json(self.backend, INDEX)
        data = {"schema": INDEX_SCHEMA, "models": {}} if data is None else data
        index_models(data, f"{self.backend.url}/{INDEX}")
        return data

    def versions(self, name: str) -> list[str]:
        return list(self.index()["models"].get(name, {}).get("versions", {}))

    def channels(self, name: str) -> dict[str, str]:
        key = f"{name}/channels.json"
        data = read_json(self.backend, key)
        return channel_versions({} if data is None else data, f"{self.backend.url}/{key}")

    def history(self, name: str) -> list[dict[str, Any]]:
        key = f"{name}/history.jsonl"
        return read_events(self.backend.get(key), f"{self.backend.url}/{key}")

    def resolve(self, ref: Ref) -> str:
        """The version a ref names; a channel is looked up in channels.json."""
        if ref.version:
            return ref.version
        channels = self.channels(ref.name)
        if ref.channel not in channels:
            known = ", ".join(f"{c} → {v}" for c, v in sorted(channels.items())) or "none"
            raise EdgemodError(f"{ref.name} has no channel '{ref.channel}'{did_you_mean(ref.channel, channels)} "
                               f"(channels: {known})",
                               f"promote a version first: edgemod promote {ref.name} VERSION --channel {ref.channel}")
        return channels[ref.channel]

    def _release_blob(self, name: str, version: str) -> Blob:
        blob = self.backend.get(f"{name}/{version}/{RELEASE}")
        if blob is None:
            known = self.versions(name)
            raise EdgemodError(f"{name}@{version} is not in the registry {self.backend.url}"
                               + (f" (versions: {', '.join(known)})" if known else f" (no versions of {name})"),
                               "check the name and version with `edgemod list`")
        return blob

    def show(self, ref: Ref, trusted_keys: list[Path] | None = None) -> dict[str, Any]:
        """A release's manifest with its signature status, or a model's versions, channels and history."""
        if not ref.version and not ref.channel:
            entry = self.index()["models"].get(ref.name)
            if entry is None:
                raise EdgemodError(f"no model '{ref.name}' in {self.backend.url}{did_you_mean(ref.name, self.index()['models'])}",
                                   "see `edgemod list`")
            return {"name": ref.name, **entry, "history": self.history(ref.name)}
        version = self.resolve(ref)
        blob = self._release_blob(ref.name, version)
        manifest = release_manifest(blob.data, f"{self.backend.url}/{ref.name}/{version}/{RELEASE}")
        keys = trusted_keys if trusted_keys is not None else self.config.trusted_keys
        if keys:
            signature = self.backend.get(f"{ref.name}/{version}/{SIGNATURE}")
            _, signer = verify_release(blob.data, signature.data if signature else None, load_trusted_keys(keys),
                                       ref.name, version)
            status = f"verified (ed25519 key {signer})"
        else:
            status = "not verified here (no trusted keys configured)"
        channels = [c for c, v in self.channels(ref.name).items() if v == version]
        return {"manifest": manifest, "signature": status, "channels": channels,
                "location": f"{self.backend.url}/{ref.name}/{version}"}

    def require_found(self) -> None:
        """Listing or checking a local registry folder that does not exist is an error, not an empty
        registry: it is most often a typo in --registry. (`publish` creates the folder.)"""
        if isinstance(self.backend, LocalBackend) and not self.backend.root.is_dir():
            raise EdgemodError(f"no registry at {self.backend.url}: the folder does not exist",
                               "check --registry (or EDGEMOD_REGISTRY, registry.url in edgemod.yaml); "
                               "`edgemod publish` creates a new registry there")

    # ----- publish, promote, rollback

    def _require_writable(self) -> None:
        if not self.backend.writable:
            raise EdgemodError(f"{self.backend.url} is a read-only HTTP registry",
                               "publish, promote and roll back against the folder or bucket it serves "
                               "(EDGEMOD_REGISTRY=s3://bucket/prefix or a path)")

    def publish(self, gate_dir: Path, name: str, version: str, channel: str | None = None,
                reclaim: bool = False) -> PublishResult:
        """Publish the passing gate run at `gate_dir` as `name@version`, optionally pointing `channel` at it."""
        started = time.perf_counter()
        check_name(name)
        check_version(version)
        if channel is not None:  # `--channel ""` is a mistake to report, not "no channel"
            check_channel(channel)
        self._require_writable()
        private = load_private_key(self.config.signing_key)
        release = assemble(Path(gate_dir), name, version, self.user)
        signature = sign_manifest(release.manifest, private)
        recover(self)
        self._refuse_pruned(name, version)
        publisher = Publisher(self.backend, self.user, self.config.stale_upload_after_s)
        intent = begin(self.backend, "publish", name, version=version, channel=channel)
        crash_point("publish:after-intent")
        try:
            claim = publisher.claim(name, version, reclaim, intent.id)
            crash_point("publish:after-claim")
            publisher.upload(release, signature, claim)
            complete(self, intent)
        except BaseException:
            settle(self, intent)
            raise
        return PublishResult(name, version, f"{self.backend.url}/{name}/{version}", len(release.files),
                             sum(f.bytes for f in release.files), key_id(private.public_key()), channel,
                             time.perf_counter() - started)

    def _refuse_pruned(self, name: str, version: str) -> None:
        if version in pruned_versions(self.history(name)):
            raise EdgemodError(f"{name}@{version} was published and later pruned; versions are immutable, "
                               "so its number is not reused", "publish this build under a new version")

    def promote(self, name: str, version: str, channel: str) -> dict[str, Any]:
        """Point `channel` at `version` (which must be published); recorded in history."""
        for check, value in ((check_name, name), (check_version, version), (check_channel, channel)):
            check(value)
        self._require_writable()
        recover(self)
        self._release_blob(name, version)
        intent = begin(self.backend, "promote", name, version=version, channel=channel)
        crash_point("promote:after-intent")

        def event(events: list[dict]) -> dict:
            current = (channel_stacks(events).get(channel) or [None])[-1]
            if current == version:
                raise EdgemodError(f"{name} channel '{channel}' already points at {version}", "nothing to do")
            return {"event": "promote", "channel": channel, "from": current, "to": version, "intent": intent.id}

        return self._move_channel(intent, event)

    def rollback(self, name: str, channel: str) -> dict[str, Any]:
        """Move `channel` back to the version it pointed at before its latest promote (per history)."""
        check_name(name)
        check_channel(channel)
        self._require_writable()
        recover(self)
        intent = begin(self.backend, "rollback", name, channel=channel)
        crash_point("rollback:after-intent")

        def event(events: list[dict]) -> dict:
            stack = channel_stacks(events).get(channel)
            if not stack:
                raise EdgemodError(f"{name} has no channel '{channel}'",
                                   f"promote a version first: edgemod promote {name} VERSION --channel {channel}")
            if len(stack) < 2:
                raise EdgemodError(f"{name} channel '{channel}' has no earlier version to roll back to "
                                   f"(it points at {stack[-1]})",
                                   f"promote the version you want instead: edgemod promote {name} VERSION --channel {channel}")
            return {"event": "rollback", "channel": channel, "from": stack[-1], "to": stack[-2], "intent": intent.id}

        return self._move_channel(intent, event)

    def _move_channel(self, intent: Intent, event: Callable[[list[dict]], dict]) -> dict[str, Any]:
        """The history event of a promote or rollback (its commit point), then channels.json and the index."""
        try:
            recorded = append_event(self.backend, intent.name, self.user, event)
            crash_point(f"{intent.body['op']}:after-history")
            complete(self, intent)
        except BaseException:
            settle(self, intent)
            raise
        return recorded

    def _sync_channels(self, name: str) -> None:
        """Rewrite channels.json from history."""

        def render(blob: Blob | None) -> bytes | None:
            events = self.history(name)
            channels = {}
            for channel, stack in sorted(channel_stacks(events).items()):
                last = next(e for e in reversed(events) if e.get("channel") == channel)
                channels[channel] = {"version": stack[-1], "updated_at": last["at"], "by": last["by"]}
            data = (json.dumps({"name": name, "channels": channels}, indent=2) + "\n").encode()
            return None if blob is not None and blob.data == data else data

        compare_and_swap(self.backend, f"{name}/channels.json", render)

    def _refresh_index(self) -> None:
        """Rebuild index.json from what is committed (release.json keys) and channels.json."""

        def render(blob: Blob | None) -> bytes | None:
            try:
                old = index_models(json.loads(blob.data), INDEX) if blob else {}
            except (ValueError, EdgemodError):  # a damaged index is rebuilt from the releases themselves
                old = {}
            models = self._scan(old)
            if blob is not None and models == old:
                return None
            return (json.dumps({"schema": INDEX_SCHEMA, "updated_at": now(), "models": models}, indent=2) + "\n").encode()

        compare_and_swap(self.backend, INDEX, render)

    def _scan(self, old: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, dict[str, Any]] = {}
        for key in self.backend.list(""):
            parts = key.split("/")
            if len(parts) == 3 and parts[2] == RELEASE and SEMVER.match(parts[1]):
                found.setdefault(parts[0], {})[parts[1]] = None
        models = {}
        for name in sorted(found):
            known = old.get(name, {}).get("versions", {})
            versions = {v: known.get(v) or self._summary(name, v) for v in sorted(found[name], key=semver_key)}
            releases = [v for v in versions if "-" not in v] or list(versions)
            models[name] = {"versions": versions, "channels": self.channels(name), "latest": releases[-1]}
        return models

    def _summary(self, name: str, version: str) -> dict[str, Any]:
        try:
            manifest = read_json(self.backend, f"{name}/{version}/{RELEASE}")
        except EdgemodError:
            manifest = None
        manifest = manifest if isinstance(manifest, dict) else {}  # `show` of that version says what is wrong
        platforms, gate = manifest.get("platforms"), manifest.get("gate")
        return {"created_at": manifest.get("created_at"),
                "platforms": sorted(map(str, platforms)) if isinstance(platforms, dict) else [],
                "gate": gate.get("verdict") if isinstance(gate, dict) else None}

    # ----- pull

    def pull(self, ref: Ref, platform: str, out: Path, trusted_keys: list[Path] | None = None) -> PullResult:
        """Download `platform`'s files of a release into `out`, verifying the signature and every sha256.

        Files land in a staging folder beside `out` (a re-run resumes there: finished files are kept,
        a partial file continues with a range request); `out` appears, complete, in one rename.
        """
        started = time.perf_counter()
        check_platform(platform)
        trusted = load_trusted_keys(trusted_keys if trusted_keys is not None else self.config.trusted_keys)
        version = self.resolve(ref)
        out = check_out(Path(out))
        release = self._release_blob(ref.name, version)
        return fetch_release(self.backend, ref, version, release, trusted, platform, out, started)


# ---------------------------------------------------------------------------------------------- API for the CLI


def publish(gate_dir: Path, name: str, version: str, channel: str | None = None, reclaim: bool = False,
            config: RegistryConfig | None = None) -> PublishResult:
    return Registry(config).publish(gate_dir, name, version, channel, reclaim)


def promote(name: str, version: str, channel: str, config: RegistryConfig | None = None) -> dict[str, Any]:
    return Registry(config).promote(name, version, channel)


def rollback(name: str, channel: str, config: RegistryConfig | None = None) -> dict[str, Any]:
    return Registry(config).rollback(name, channel)


def pull(ref: str, platform: str, out: Path, config: RegistryConfig | None = None) -> PullResult:
    return Registry(config).pull(parse_ref(ref), platform, out)


def list_models(config: RegistryConfig | None = None) -> dict[str, Any]:
    registry = Registry(config)
    registry.require_found()
    return registry.index()["models"]


def show(ref: str, config: RegistryConfig | None = None) -> dict[str, Any]:
    return Registry(config).show(parse_ref(ref, need_target=False))
