"""Ed25519 release signatures: key pairs, signing a release manifest and verifying one on pull.

The signature (`release.sig`) covers the canonical JSON of `release.json`, so re-indenting the file
does not break it, while any change to its content does.
"""
from __future__ import annotations

import base64
import json
import os
import re
from pathlib import Path
from typing import Any

from edgemod.errors import EdgemodError, MissingDependencyError
from edgemod.fsutil import sha256_bytes
from edgemod.registry.store import RELEASE, SIGNATURE

SIGNATURE_SCHEMA = "edgemod.signature/1"
# A key pair's file stem: one plain file name, so `--name` can never point outside `--out`.
KEY_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


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
    check_key_name(name)
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


def check_key_name(name: str) -> str:
    """A key pair's file stem: letters, digits, '.', '_' and '-', at most 100, no path, no `..`."""
    if not KEY_NAME.fullmatch(name or "") or ".." in name:
        raise EdgemodError(f"invalid key name {name!r}: it must be a plain file name, not a path",
                           "use letters, digits, '.', '_' and '-' (e.g. --name edgemod-signing); "
                           "choose the folder with --out")
    return name


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
        raise tampered(where, f"{RELEASE} or {SIGNATURE} is not valid JSON / base64") from None
    if not isinstance(sig, dict) or not isinstance(sig.get("key_id"), str):
        raise tampered(where, f"{SIGNATURE} is not an edgemod signature")
    if sig.get("algorithm") != "ed25519":
        raise tampered(where, f"signature algorithm '{sig.get('algorithm')}' is not ed25519")
    key = trusted.get(sig.get("key_id"))
    if key is None:
        raise EdgemodError(f"{where} is signed by key {sig.get('key_id')}, which is not trusted here "
                           f"(trusted: {', '.join(sorted(trusted))})",
                           "if you trust that publisher, add its public key to EDGEMOD_TRUSTED_KEYS / --trusted-key")
    try:
        key.verify(raw, canonical_json(manifest))
    except (invalid_signature, ValueError):  # ValueError: text no signer could have encoded (lone surrogates)
        raise tampered(where, f"the signature does not match {RELEASE}") from None
    if not isinstance(manifest, dict):
        raise EdgemodError(f"{where}: the signed {RELEASE} is a JSON {type(manifest).__name__}, not a release manifest; "
                           "refusing it", "do not use this release; ask its publisher to publish a fixed one under a new version")
    if manifest.get("name") != name or manifest.get("version") != version:
        raise tampered(where, f"the signed manifest is {manifest.get('name')}@{manifest.get('version')}, not {where}")
    return manifest, sig["key_id"]


def tampered(where: str, why: str) -> EdgemodError:
    return EdgemodError(f"{where} failed verification: {why}; the release was changed after it was published: refusing it",
                        "do not use it; ask the publisher to check the registry (an intact copy verifies on pull)")
