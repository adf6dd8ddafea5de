"""Published, versioned, signed model releases: publish, channels (promote / rollback), pull.

One layout on every backend (local folder, S3-compatible bucket, read-only HTTPS), so a bucket
behind a CDN is itself a registry apps can pull from:

    index.json                            catalogue for readers that cannot list (HTTPS, CDNs)
    <name>/history.jsonl                  append-only events: publish, promote, rollback (time, user, from → to)
    <name>/channels.json                  channel → version, derived from history.jsonl
    <name>/<version>/release.json         the release manifest; written LAST: its presence commits the release
    <name>/<version>/release.sig          ed25519 signature over the canonical JSON of release.json
    <name>/<version>/.upload/claim-N.json who uploads this version (create-only: one winner per N)
    <name>/<version>/android/ ios/ onnx/ shared/ model_card.md report.html gate.md gate.json bench.json

Versions are immutable. A publisher first wins a create-only claim, uploads, reads every file back
and checks its sha256, writes the signature, then creates release.json (create-only again). Readers
see a version only once release.json exists, so an interrupted upload is invisible. A publisher that
fails cleans up and marks its claim aborted, so a retry starts at once; one that was killed leaves
its claim "uploading", and a retry takes over after `stale_upload_after_s` (or at once with
`--reclaim`), removing the half-upload first. Index and channel updates are compare-and-swap loops.
"""
from __future__ import annotations

import base64
import contextlib
import datetime as dt
import getpass
import json
import os
import random
import re
import shutil
import socket
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgemod.errors import EdgemodError, MissingDependencyError, did_you_mean, validation_lines
from edgemod.fsutil import sha256_bytes, sha256_file, write_json_atomic
from edgemod.registry_backends import (
    ABSENT,
    Backend,
    Blob,
    PreconditionFailed,
    check_key,
    open_backend,
)
from edgemod.registry_release import PLATFORMS, Release, assemble, pulled_path

CONFIG_FILE = "edgemod.yaml"
INDEX = "index.json"
RELEASE = "release.json"
SIGNATURE = "release.sig"
PULL_RECORD = "pull.json"
SIGNATURE_SCHEMA = "edgemod.signature/1"
INDEX_SCHEMA = "edgemod.registry-index/1"
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
CHANNEL = re.compile(r"^[a-z][a-z0-9_-]*$")
# Semantic Versioning 2.0.0, without build metadata: `1.4.0+a` and `1.4.0+b` would share a precedence,
# which makes "which one is 1.4.0?" ambiguous for an immutable registry.
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$")
CAS_ATTEMPTS = 50


# ---------------------------------------------------------------------------------------------- config


def default_registry_url() -> str:
    """The embedded default: a folder in the user's data directory."""
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return str(Path(base) / "edgemod" / "registry")


class RegistryConfig(BaseModel):
    """The `registry:` section of edgemod.yaml; EDGEMOD_* variables and command-line flags override it."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(default_factory=default_registry_url, description="folder, s3://bucket/prefix or https://host/path")
    s3_endpoint_url: str | None = Field(None, description="S3-compatible server (MinIO, R2, ...); default AWS")
    signing_key: Path | None = Field(None, description="ed25519 private key (PEM) used by publish")
    trusted_keys: list[Path] = Field(default_factory=list, description="public keys (PEM files or folders) pull accepts")
    stale_upload_after_s: float = Field(900.0, gt=0, description="an unfinished upload older than this may be taken over")
    user: str | None = Field(None, description="name recorded in history; default user@host")


ENV = {"url": "EDGEMOD_REGISTRY", "s3_endpoint_url": "EDGEMOD_S3_ENDPOINT_URL", "signing_key": "EDGEMOD_SIGNING_KEY",
       "trusted_keys": "EDGEMOD_TRUSTED_KEYS", "user": "EDGEMOD_USER"}


def load_config(config_file: str | Path | None = None, **overrides: Any) -> RegistryConfig:
    """edgemod.yaml (`config_file`, $EDGEMOD_CONFIG or ./edgemod.yaml), then EDGEMOD_* variables, then `overrides`."""
    data = _config_file_section(config_file)
    for key, variable in ENV.items():
        value = os.environ.get(variable)
        if value:
            data[key] = [p for p in value.split(os.pathsep) if p] if key == "trusted_keys" else value
    data.update({k: v for k, v in overrides.items() if v not in (None, [], ())})
    try:
        return RegistryConfig.model_validate(data)
    except ValidationError as error:
        raise EdgemodError(_config_errors(error), f"edit the `registry:` section of {CONFIG_FILE} or the EDGEMOD_* variables") from None


def _config_file_section(config_file: str | Path | None) -> dict[str, Any]:
    import yaml

    path = Path(config_file or os.environ.get("EDGEMOD_CONFIG") or CONFIG_FILE)
    if not path.exists():
        if config_file or os.environ.get("EDGEMOD_CONFIG"):
            raise EdgemodError(f"config file {path} not found", "check the path, or drop it to use the defaults")
        return {}
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise EdgemodError(f"{path} is not valid YAML: {error}", "fix the file") from None
    section = loaded.get("registry") or {} if isinstance(loaded, dict) else None
    if not isinstance(section, dict):
        raise EdgemodError(f"{path}: `registry:` must be a mapping", "write e.g.\nregistry:\n  url: s3://bucket/models")
    # Paths in the file are relative to the file, not to wherever the command runs.
    for key in ("signing_key",):
        if section.get(key):
            section[key] = str(path.parent / Path(section[key]).expanduser())
    if section.get("trusted_keys"):
        keys = section["trusted_keys"]
        section["trusted_keys"] = [str(path.parent / Path(k).expanduser()) for k in ([keys] if isinstance(keys, str) else keys)]
    url = section.get("url")
    if isinstance(url, str) and "://" not in url and not Path(url).expanduser().is_absolute():
        section["url"] = str(path.parent / url)
    return dict(section)


def _config_errors(error: ValidationError) -> str:
    return "invalid registry config:\n" + validation_lines(error, RegistryConfig.model_fields)


# ---------------------------------------------------------------------------------------------- names


@dataclass(frozen=True)
class Ref:
    name: str
    version: str | None = None
    channel: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.version or self.channel}" if (self.version or self.channel) else self.name


def parse_ref(text: str, need_target: bool = True) -> Ref:
    """`name@1.4.0` (a version) or `name@stable` (a channel); `name` alone when `need_target` is false."""
    name, sep, target = text.partition("@")
    check_name(name)
    if not sep:
        if need_target:
            raise EdgemodError(f"'{text}' names no version or channel", f"write {name}@1.4.0 or {name}@stable")
        return Ref(name)
    if SEMVER.match(target):
        return Ref(name, version=target)
    if CHANNEL.match(target):
        return Ref(name, channel=target)
    raise EdgemodError(f"'{target}' in '{text}' is neither a semantic version nor a channel name",
                       "versions look like 1.4.0 or 2.0.0-rc.1; channels like stable, canary")


def check_name(name: str) -> str:
    if not NAME.match(name or ""):
        raise EdgemodError(f"invalid model name '{name}'", "use lowercase letters, digits, '.', '_' and '-', e.g. text-hate")
    return name


def check_version(version: str) -> str:
    if not SEMVER.match(version or ""):
        hint = "drop the build metadata (+...); use a pre-release instead, e.g. 1.4.0-rc.1" if "+" in (version or "") \
            else "use MAJOR.MINOR.PATCH, optionally with a pre-release: 1.4.0, 2.0.0-rc.1"
        raise EdgemodError(f"'{version}' is not a semantic version", hint)
    return version


def check_channel(channel: str) -> str:
    if not CHANNEL.match(channel or "") or SEMVER.match(channel or ""):
        raise EdgemodError(f"invalid channel name '{channel}'", "use lowercase letters, digits, '_' and '-': stable, canary, beta")
    return channel


def semver_key(version: str) -> tuple:
    """Semantic-version precedence: 1.0.0-alpha < 1.0.0-alpha.1 < 1.0.0-beta < 1.0.0."""
    match = SEMVER.match(version)
    if not match:
        return (-1,)
    core = tuple(int(match.group(i)) for i in (1, 2, 3))
    if match.group(4) is None:
        return (*core, 1, ())
    parts = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in match.group(4).split("."))
    return (*core, 0, parts)


# ---------------------------------------------------------------------------------------------- signing


def _crypto():
    try:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:
        raise MissingDependencyError("cryptography", "signing and verifying releases") from None
    return serialization, ed25519, InvalidSignature


def canonical_json(data: Any) -> bytes:
    """The bytes a signature covers: sorted keys, no whitespace, UTF-8; independent of how the file is indented."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def key_id(public_key) -> str:
    serialization, _, _ = _crypto()
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return sha256_bytes(raw)[:16]


def generate_keypair(out_dir: str | Path, name: str = "edgemod-signing") -> tuple[Path, Path]:
    """Write `<name>.key` (private, PEM PKCS8, mode 0600) and `<name>.pub` (public, PEM) into `out_dir`."""
    serialization, ed25519, _ = _crypto()
    out_dir = Path(out_dir)
    private_path, public_path = out_dir / f"{name}.key", out_dir / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise EdgemodError(f"{path} already exists", "choose another --out folder or --name; keys are never overwritten")
    out_dir.mkdir(parents=True, exist_ok=True)
    private = ed25519.Ed25519PrivateKey.generate()
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # never world-readable, not even briefly
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    public_path.write_bytes(private.public_key().public_bytes(serialization.Encoding.PEM,
                                                              serialization.PublicFormat.SubjectPublicKeyInfo))
    return private_path, public_path


def load_private_key(path: Path | None):
    serialization, ed25519, _ = _crypto()
    if path is None:
        raise EdgemodError("no signing key configured: releases must be signed",
                           "create one with `edgemod registry keygen --out keys/`, then pass --key keys/edgemod-signing.key "
                           "or set EDGEMOD_SIGNING_KEY (or registry.signing_key in edgemod.yaml)")
    path = Path(path).expanduser()
    if not path.exists():
        raise EdgemodError(f"signing key {path} not found", "check EDGEMOD_SIGNING_KEY / --key")
    passphrase = os.environ.get("EDGEMOD_SIGNING_KEY_PASSPHRASE")
    try:
        key = serialization.load_pem_private_key(path.read_bytes(), password=passphrase.encode() if passphrase else None)
    except (ValueError, TypeError) as error:
        raise EdgemodError(f"cannot read the signing key {path}: {error}",
                           "pass an ed25519 private key in PEM; an encrypted one needs EDGEMOD_SIGNING_KEY_PASSPHRASE") from None
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise EdgemodError(f"{path} is not an ed25519 key", "create one with `edgemod registry keygen`")
    return key


def load_trusted_keys(paths: list[Path]) -> dict[str, Any]:
    """key id → public key, from PEM files and folders of *.pub / *.pem files."""
    serialization, ed25519, _ = _crypto()
    if not paths:
        raise EdgemodError("no trusted keys configured: pulled releases cannot be verified",
                           "set EDGEMOD_TRUSTED_KEYS (or --trusted-key, or registry.trusted_keys) to the publisher's "
                           "public key, e.g. keys/edgemod-signing.pub")
    keys = {}
    for path in (Path(p).expanduser() for p in paths):
        files = sorted([*path.glob("*.pub"), *path.glob("*.pem")]) if path.is_dir() else [path]
        if not path.exists():
            raise EdgemodError(f"trusted key {path} not found", "check EDGEMOD_TRUSTED_KEYS / --trusted-key")
        for file in files:
            try:
                key = serialization.load_pem_public_key(file.read_bytes())
            except ValueError as error:
                raise EdgemodError(f"{file} is not a PEM public key: {error}", "pass the .pub file keygen wrote") from None
            if isinstance(key, ed25519.Ed25519PublicKey):
                keys[key_id(key)] = key
    if not keys:
        raise EdgemodError(f"no ed25519 public keys in {', '.join(map(str, paths))}", "pass the .pub file keygen wrote")
    return keys


def sign_manifest(manifest: dict[str, Any], private_key) -> bytes:
    payload = canonical_json(manifest)
    signature = {"schema": SIGNATURE_SCHEMA, "algorithm": "ed25519", "key_id": key_id(private_key.public_key()),
                 "signed_sha256": sha256_bytes(payload), "signature": base64.b64encode(private_key.sign(payload)).decode()}
    return (json.dumps(signature, indent=2) + "\n").encode("utf-8")


def verify_release(release: bytes, signature: bytes | None, trusted: dict[str, Any], name: str, version: str) -> tuple[dict, str]:
    """The release manifest, if `signature` is a valid ed25519 signature of it by a trusted key and it is
    the release asked for (a validly signed manifest of another version moved here is refused too)."""
    _, _, invalid_signature = _crypto()
    where = f"{name}@{version}"
    if signature is None:
        raise EdgemodError(f"{where} is unsigned (no {SIGNATURE}): refusing it", "publish it again with a signing key")
    try:
        manifest, sig = json.loads(release), json.loads(signature)
        raw = base64.b64decode(sig["signature"], validate=True)
    except (ValueError, KeyError, TypeError):
        raise _tampered(where, f"{RELEASE} or {SIGNATURE} is not valid JSON / base64") from None
    if sig.get("algorithm") != "ed25519":
        raise _tampered(where, f"signature algorithm '{sig.get('algorithm')}' is not ed25519")
    key = trusted.get(sig.get("key_id"))
    if key is None:
        raise EdgemodError(f"{where} is signed by key {sig.get('key_id')}, which is not trusted here "
                           f"(trusted: {', '.join(sorted(trusted))})",
                           "if you trust that publisher, add its public key to EDGEMOD_TRUSTED_KEYS / --trusted-key")
    try:
        key.verify(raw, canonical_json(manifest))
    except invalid_signature:
        raise _tampered(where, f"the signature does not match {RELEASE}") from None
    if manifest.get("name") != name or manifest.get("version") != version:
        raise _tampered(where, f"the signed manifest is {manifest.get('name')}@{manifest.get('version')}, not {where}")
    return manifest, sig["key_id"]


def _tampered(where: str, why: str) -> EdgemodError:
    return EdgemodError(f"{where} failed verification: {why}; the release was changed after it was published: refusing it",
                        "do not use it; ask the publisher to check the registry (an intact copy verifies on pull)")


# ---------------------------------------------------------------------------------------------- results


@dataclass
class PublishResult:
    name: str
    version: str
    url: str
    files: int
    bytes: int
    key_id: str
    channel: str | None
    seconds: float


@dataclass
class PullResult:
    name: str
    version: str
    platform: str
    out: Path
    files: int
    bytes: int
    downloaded: int
    resumed: list[str] = field(default_factory=list)
    key_id: str = ""
    seconds: float = 0.0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # containers without a passwd entry for the uid
        return os.environ.get("USER") or f"uid{os.getuid()}"


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _backoff(attempt: int) -> None:
    time.sleep(min(0.2, 0.005 * 2 ** min(attempt, 6)) * random.random())


# ---------------------------------------------------------------------------------------------- registry


class Registry:
    """One registry (any backend). Reads work on every backend; writes need a local folder or a bucket."""

    def __init__(self, config: RegistryConfig | None = None, backend: Backend | None = None):
        self.config = config or load_config()
        self.backend = backend or open_backend(self.config.url, self.config.s3_endpoint_url)
        self.user = self.config.user or f"{_login()}@{socket.gethostname()}"

    # ----- reads

    def _json(self, key: str) -> Any:
        blob = self.backend.get(key)
        if blob is None:
            return None
        try:
            return json.loads(blob.data)
        except ValueError:
            raise EdgemodError(f"{self.backend.url}/{key} is not valid JSON", "restore it from the registry's history") from None

    def index(self) -> dict[str, Any]:
        return self._json(INDEX) or {"schema": INDEX_SCHEMA, "models": {}}

    def versions(self, name: str) -> list[str]:
        return list(self.index()["models"].get(name, {}).get("versions", {}))

    def channels(self, name: str) -> dict[str, str]:
        data = self._json(f"{name}/channels.json") or {}
        return {channel: entry["version"] for channel, entry in data.get("channels", {}).items()}

    def history(self, name: str) -> list[dict[str, Any]]:
        blob = self.backend.get(f"{name}/history.jsonl")
        return _events(blob)

    def resolve(self, ref: Ref) -> str:
        """The version a ref names; a channel is looked up in channels.json."""
        if ref.version:
            return ref.version
        channels = self.channels(ref.name)
        if ref.channel not in channels:
            known = ", ".join(f"{c} → {v}" for c, v in sorted(channels.items())) or "none"
            raise EdgemodError(f"{ref.name} has no channel '{ref.channel}'{did_you_mean(ref.channel, channels)} (channels: {known})",
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
        manifest = json.loads(blob.data)
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

    # ----- publish

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
        if channel:
            check_channel(channel)
        self._require_writable()
        private = load_private_key(self.config.signing_key)
        release = assemble(Path(gate_dir), name, version, self.user)
        signature = sign_manifest(release.manifest, private)
        claim = self._claim(name, version, reclaim)
        self._upload(release, signature, claim)
        signed = json.loads(signature)
        self._append(name, lambda events: {"event": "publish", "version": version, "key_id": signed["key_id"],
                                           "release_sha256": signed["signed_sha256"]})
        if channel:
            self.promote(name, version, channel)
        else:
            self._refresh_index()
        return PublishResult(name, version, f"{self.backend.url}/{name}/{version}", len(release.files),
                             sum(f.bytes for f in release.files), key_id(private.public_key()), channel,
                             time.perf_counter() - started)

    def _claim(self, name: str, version: str, reclaim: bool) -> str:
        """Win the create-only claim on `name@version`, or say why not (published, or being published)."""
        prefix = f"{name}/{version}"
        if self.backend.get(f"{prefix}/{RELEASE}") is not None:
            raise _exists(name, version)
        claims = sorted(k for k in self.backend.list(f"{prefix}/.upload/") if k.endswith(".json"))
        number = 0
        if claims:
            last = self._json(claims[-1]) or {}
            age = time.time() - float(last.get("started_unix", 0))
            if last.get("state") == "uploading" and age < self.config.stale_upload_after_s and not reclaim:
                raise EdgemodError(
                    f"{name}@{version} is being uploaded by {last.get('by')} (pid {last.get('pid')}) since "
                    f"{last.get('started_at')}, {age:.0f} s ago; it is not published yet",
                    "wait for that publisher; if it died, run the same publish with --reclaim "
                    f"(an upload older than {self.config.stale_upload_after_s:.0f} s is taken over automatically)")
            number = int(claims[-1].rsplit("-", 1)[1].split(".")[0]) + 1
        key = f"{prefix}/.upload/claim-{number:06d}.json"
        body = {"state": "uploading", "by": self.user, "pid": os.getpid(), "host": socket.gethostname(),
                "started_at": _now(), "started_unix": time.time(), "id": uuid.uuid4().hex}
        try:
            self.backend.put(key, json.dumps(body).encode(), if_absent=True)
        except PreconditionFailed:
            raise EdgemodError(f"another publisher claimed {name}@{version} at the same moment and is uploading it",
                               "versions are immutable: publish your build as a new version") from None
        if self.backend.get(f"{prefix}/{RELEASE}") is not None:  # the previous claimant committed meanwhile
            self._set_claim(key, "aborted")
            raise _exists(name, version)
        if number:  # a crashed or aborted upload may have left files: remove them before ours land
            for stale in self.backend.list(prefix + "/"):
                if "/.upload/" not in stale:
                    self.backend.delete(stale)
        return key

    def _set_claim(self, key: str, state: str) -> None:
        with contextlib.suppress(Exception):
            body = self._json(key) or {}
            self.backend.put(key, json.dumps({**body, "state": state, "ended_at": _now()}).encode())

    def _owns(self, claim: str) -> bool:
        prefix = claim.rsplit("/", 1)[0] + "/"
        claims = sorted(k for k in self.backend.list(prefix) if k.endswith(".json"))
        return bool(claims) and claims[-1] == claim

    def _upload(self, release: Release, signature: bytes, claim: str) -> None:
        """Files, read-back check, signature, then release.json (create-only): the commit."""
        prefix = f"{release.manifest['name']}/{release.manifest['version']}"
        uploaded: list[str] = []
        try:
            for file in release.files:
                key = f"{prefix}/{file.key}"
                uploaded.append(key)
                if file.content is not None:
                    self.backend.put(key, file.content)
                else:
                    self.backend.put_file(key, file.source)
            self._check_uploaded(release, prefix)
            uploaded.append(f"{prefix}/{SIGNATURE}")
            self.backend.put(f"{prefix}/{SIGNATURE}", signature)
            if not self._owns(claim):
                raise EdgemodError(f"the upload of {prefix} was taken over by another publisher (--reclaim or stale)",
                                   "check `edgemod show` for the result; publish your build as a new version")
            manifest_bytes = (json.dumps(release.manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            self.backend.put(f"{prefix}/{RELEASE}", manifest_bytes, if_absent=True)
        except PreconditionFailed:  # release.json appeared: another publisher committed; its files are not ours to delete
            self._set_claim(claim, "aborted")
            raise _exists(release.manifest["name"], release.manifest["version"]) from None
        except BaseException:
            self._abandon(claim, uploaded)
            raise
        self._set_claim(claim, "committed")

    def _check_uploaded(self, release: Release, prefix: str) -> None:
        """Read every uploaded file back: a release is committed only if the registry holds exactly what is signed."""
        import hashlib

        for file in release.files:
            digest = hashlib.sha256()
            with self.backend.stream(f"{prefix}/{file.key}") as (_, chunks):
                for chunk in chunks:
                    digest.update(chunk)
            if digest.hexdigest() != file.sha256:
                raise EdgemodError(f"{prefix}/{file.key} reads back with a different sha256 than was uploaded",
                                   "another writer touched this version, or the store corrupted it: publish again")

    def _abandon(self, claim: str, uploaded: list[str]) -> None:
        """Best effort after a failed upload: remove our files and mark the claim aborted so a retry starts at once."""
        for key in uploaded:
            with contextlib.suppress(Exception):
                self.backend.delete(key)
        self._set_claim(claim, "aborted")

    # ----- history, channels, index

    def _append(self, name: str, make_event: Callable[[list[dict]], dict]) -> dict[str, Any]:
        """Append one event to `<name>/history.jsonl` with compare-and-swap; `make_event` sees the latest events."""
        key = f"{name}/history.jsonl"
        for attempt in range(CAS_ATTEMPTS):
            blob = self.backend.get(key)
            event = {"at": _now(), **make_event(_events(blob)), "by": self.user}
            data = (blob.data if blob else b"") + (json.dumps(event, ensure_ascii=False) + "\n").encode("utf-8")
            try:
                self.backend.put(key, data, if_match=blob.token if blob else ABSENT)
                return event
            except PreconditionFailed:
                _backoff(attempt)
        raise _contention(key)

    def promote(self, name: str, version: str, channel: str) -> dict[str, Any]:
        """Point `channel` at `version` (which must be published); recorded in history."""
        for check, value in ((check_name, name), (check_version, version), (check_channel, channel)):
            check(value)
        self._require_writable()
        self._release_blob(name, version)

        def event(events: list[dict]) -> dict:
            current = (channel_stacks(events).get(channel) or [None])[-1]
            if current == version:
                raise EdgemodError(f"{name} channel '{channel}' already points at {version}", "nothing to do")
            return {"event": "promote", "channel": channel, "from": current, "to": version}

        recorded = self._append(name, event)
        self._sync_channels(name)
        self._refresh_index()
        return recorded

    def rollback(self, name: str, channel: str) -> dict[str, Any]:
        """Move `channel` back to the version it pointed at before its latest promote (per history)."""
        check_name(name)
        check_channel(channel)
        self._require_writable()

        def event(events: list[dict]) -> dict:
            stack = channel_stacks(events).get(channel)
            if not stack:
                raise EdgemodError(f"{name} has no channel '{channel}'", f"promote a version first: edgemod promote {name} VERSION --channel {channel}")
            if len(stack) < 2:
                raise EdgemodError(f"{name} channel '{channel}' has no earlier version to roll back to (it points at {stack[-1]})",
                                   f"promote the version you want instead: edgemod promote {name} VERSION --channel {channel}")
            return {"event": "rollback", "channel": channel, "from": stack[-1], "to": stack[-2]}

        recorded = self._append(name, event)
        self._sync_channels(name)
        self._refresh_index()
        return recorded

    def _compare_and_swap(self, key: str, render: Callable[[Blob | None], bytes | None]) -> None:
        """Write `render(current)` over `key` only if nobody changed it meanwhile; None means up to date.
        Retried with backoff, so a slower writer cannot restore an old state."""
        for attempt in range(CAS_ATTEMPTS):
            blob = self.backend.get(key)
            data = render(blob)
            if data is None:
                return
            try:
                self.backend.put(key, data, if_match=blob.token if blob else ABSENT)
                return
            except PreconditionFailed:
                _backoff(attempt)
        raise _contention(key)

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

        self._compare_and_swap(f"{name}/channels.json", render)

    def _refresh_index(self) -> None:
        """Rebuild index.json from what is committed (release.json keys) and channels.json."""

        def render(blob: Blob | None) -> bytes | None:
            try:
                old = json.loads(blob.data).get("models", {}) if blob else {}
            except ValueError:  # a damaged index is rebuilt from the releases themselves
                old = {}
            models = self._scan(old)
            if blob is not None and models == old:
                return None
            return (json.dumps({"schema": INDEX_SCHEMA, "updated_at": _now(), "models": models}, indent=2) + "\n").encode()

        self._compare_and_swap(INDEX, render)

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
        manifest = self._json(f"{name}/{version}/{RELEASE}") or {}
        return {"created_at": manifest.get("created_at"), "platforms": sorted(manifest.get("platforms", {})),
                "gate": manifest.get("gate", {}).get("verdict")}

    # ----- pull

    def pull(self, ref: Ref, platform: str, out: Path, trusted_keys: list[Path] | None = None) -> PullResult:
        """Download `platform`'s files of a release into `out`, verifying the signature and every sha256.

        Files land in a staging folder beside `out` (a re-run resumes there: finished files are kept,
        a partial file continues with a range request); `out` appears, complete, in one rename.
        """
        started = time.perf_counter()
        if platform not in PLATFORMS:
            raise EdgemodError(f"unknown platform '{platform}'{did_you_mean(platform, PLATFORMS)}", f"use one of: {', '.join(PLATFORMS)}")
        trusted = load_trusted_keys(trusted_keys if trusted_keys is not None else self.config.trusted_keys)
        version = self.resolve(ref)
        out = Path(out)
        _check_out(out)
        release = self._release_blob(ref.name, version)
        signature = self.backend.get(f"{ref.name}/{version}/{SIGNATURE}")
        manifest, signer = verify_release(release.data, signature.data if signature else None, trusted, ref.name, version)
        if platform not in manifest.get("platforms", {}):
            raise EdgemodError(f"{ref.name}@{version} has no {platform} model (platforms: {', '.join(manifest.get('platforms', {}))})",
                               "pull one of those platforms, or publish a release that exports this target")
        files = [f for f in manifest["files"] if platform in f["platforms"]]
        staging = _staging(out, sha256_bytes(release.data), platform)
        downloaded, resumed = 0, []
        for file in files:
            size, was_resumed = self._download(f"{ref.name}/{version}/{file['path']}", staging / check_key(pulled_path(file["path"])),
                                               file, f"{ref.name}@{version}")
            downloaded += size
            if was_resumed:
                resumed.append(file["path"])
        (staging / RELEASE).write_bytes(release.data)
        (staging / SIGNATURE).write_bytes(signature.data)
        write_json_atomic(staging / PULL_RECORD, {"name": ref.name, "version": version, "ref": str(ref), "platform": platform,
                                                  "registry": self.backend.url, "pulled_at": _now(), "signed_by": signer,
                                                  "files": {pulled_path(f["path"]): f["sha256"] for f in files}})
        (staging / STAGING_MARK).unlink(missing_ok=True)
        _swap_into(staging, out)
        return PullResult(ref.name, version, platform, out, len(files), sum(f["bytes"] for f in files), downloaded,
                          resumed, signer, time.perf_counter() - started)

    def _download(self, key: str, dest: Path, file: dict[str, Any], where: str) -> tuple[int, bool]:
        """Fetch one file to `dest` via `dest.part`, resuming a partial file; returns (bytes fetched, resumed)."""
        if dest.exists() and sha256_file(dest) == file["sha256"]:
            return 0, False  # finished by an interrupted earlier pull
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        fetched, resumed = 0, False
        for _ in range(2):  # a resumed file that does not verify is fetched once more from byte 0
            start = part.stat().st_size if part.exists() else 0
            if start > file["bytes"]:
                part.unlink()
                start = 0
            with self.backend.stream(key, start) as (offset, chunks):
                resumed = resumed or offset > 0
                with open(part, "ab" if offset else "wb") as handle:
                    written = offset
                    for chunk in chunks:
                        written += len(chunk)
                        fetched += len(chunk)
                        if written > file["bytes"]:
                            break
                        handle.write(chunk)
            if written <= file["bytes"] and sha256_file(part) == file["sha256"]:
                os.replace(part, dest)
                return fetched, resumed
            part.unlink(missing_ok=True)
            if not offset:
                break
        raise _tampered(where, f"{file['path']} does not match the sha256 in the signed manifest")


STAGING_MARK = ".edgemod-pull"


def _check_out(out: Path) -> None:
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / PULL_RECORD).exists())):
        raise EdgemodError(f"{out} exists and is not an earlier edgemod pull", "pull into a new or empty folder")


def _staging(out: Path, release_sha: str, platform: str) -> Path:
    """The resumable staging folder beside `out`; emptied if it holds another release or platform."""
    staging = out.with_name(f".{out.name}.partial")
    mark = f"{release_sha} {platform}\n"
    marker = staging / STAGING_MARK
    if staging.exists() and (not marker.exists() or marker.read_text() != mark):
        shutil.rmtree(staging)
    staging.mkdir(parents=True, exist_ok=True)
    marker.write_text(mark)
    return staging


def _swap_into(staging: Path, out: Path) -> None:
    """Replace `out` by the finished staging folder; `out` is never seen half-written."""
    if out.exists() and not any(out.iterdir()):
        out.rmdir()
    if not out.exists():
        os.replace(staging, out)
        return
    aside = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
    os.replace(out, aside)
    os.replace(staging, out)
    shutil.rmtree(aside, ignore_errors=True)


def _events(blob: Blob | None) -> list[dict[str, Any]]:
    if blob is None:
        return []
    return [json.loads(line) for line in blob.data.decode("utf-8").splitlines() if line.strip()]


def channel_stacks(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Replay history: a promote pushes its version on the channel's stack, a rollback pops it."""
    stacks: dict[str, list[str]] = {}
    for event in events:
        if event.get("event") == "promote":
            stacks.setdefault(event["channel"], []).append(event["to"])
        elif event.get("event") == "rollback" and stacks.get(event["channel"]):
            stacks[event["channel"]].pop()
    return stacks


def _exists(name: str, version: str) -> EdgemodError:
    return EdgemodError(f"{name}@{version} is already published; versions are immutable",
                        "publish this build under a new version (e.g. bump the patch number)")


def _contention(key: str) -> EdgemodError:
    return EdgemodError(f"could not update {key}: other writers kept changing it", "run the command again")


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
    return Registry(config).index()["models"]


def show(ref: str, config: RegistryConfig | None = None) -> dict[str, Any]:
    return Registry(config).show(parse_ref(ref, need_target=False))
