"""Pulling one platform's files of a release: verify the signature, download with resume, and
swap the finished folder into place.

Files land in a staging folder beside the destination (`.<out>.partial`): a re-run resumes
there, keeping finished files and continuing a partial one with a range request. The folder
appears, complete, in one rename, with `release.json`, `release.sig` and `pull.json` (what was
pulled, from where, signed by whom) beside the model files.
"""
from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemod.errors import EdgemodError, did_you_mean
from edgemod.fsutil import sha256_bytes, sha256_file, write_json_atomic
from edgemod.registry.history import now
from edgemod.registry.refs import Ref
from edgemod.registry.release import PLATFORMS, pulled_path
from edgemod.registry.signing import tampered, verify_release
from edgemod.registry.store import RELEASE, SIGNATURE, Backend, Blob, check_key

PULL_RECORD = "pull.json"
STAGING_MARK = ".edgemod-pull"


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


def check_platform(platform: str) -> None:
    """Refuse a platform no release can have."""
    if platform not in PLATFORMS:
        raise EdgemodError(f"unknown platform '{platform}'{did_you_mean(platform, PLATFORMS)}",
                           f"use one of: {', '.join(PLATFORMS)}")


def check_out(out: Path) -> None:
    """Refuse to pull into a file or into a folder that holds something other than an earlier pull."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / PULL_RECORD).exists())):
        raise EdgemodError(f"{out} exists and is not an earlier edgemod pull", "pull into a new or empty folder")


def fetch_release(backend: Backend, ref: Ref, version: str, release: Blob, trusted: dict[str, Any], platform: str,
                  out: Path, started: float) -> PullResult:
    """Verify `release` (the release.json of `ref` at `version`) against its signature and `trusted`
    keys, then download its `platform` files into `out`; `started` is when the whole pull began."""
    signature = backend.get(f"{ref.name}/{version}/{SIGNATURE}")
    manifest, signer = verify_release(release.data, signature.data if signature else None, trusted, ref.name, version)
    if platform not in manifest.get("platforms", {}):
        raise EdgemodError(f"{ref.name}@{version} has no {platform} model "
                           f"(platforms: {', '.join(manifest.get('platforms', {}))})",
                           "pull one of those platforms, or publish a release that exports this target")
    files = [f for f in manifest["files"] if platform in f["platforms"]]
    staging = _staging(out, sha256_bytes(release.data), platform)
    downloaded, resumed = 0, []
    for file in files:
        size, was_resumed = _download(backend, f"{ref.name}/{version}/{file['path']}",
                                      staging / check_key(pulled_path(file["path"])), file, f"{ref.name}@{version}")
        downloaded += size
        if was_resumed:
            resumed.append(file["path"])
    (staging / RELEASE).write_bytes(release.data)
    (staging / SIGNATURE).write_bytes(signature.data)
    write_json_atomic(staging / PULL_RECORD, {"name": ref.name, "version": version, "ref": str(ref), "platform": platform,
                                              "registry": backend.url, "pulled_at": now(), "signed_by": signer,
                                              "files": {pulled_path(f["path"]): f["sha256"] for f in files}})
    (staging / STAGING_MARK).unlink(missing_ok=True)
    _swap_into(staging, out)
    return PullResult(ref.name, version, platform, out, len(files), sum(f["bytes"] for f in files), downloaded,
                      resumed, signer, time.perf_counter() - started)


def _download(backend: Backend, key: str, dest: Path, file: dict[str, Any], where: str) -> tuple[int, bool]:
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
        with backend.stream(key, start) as (offset, chunks):
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
    raise tampered(where, f"{file['path']} does not match the sha256 in the signed manifest")


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
