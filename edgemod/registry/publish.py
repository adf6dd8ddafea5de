"""Publishing one version: the claim, the upload, the read-back check and the commit.

A publisher first wins a create-only claim (`<name>/<version>/.upload/claim-N.json`, naming its
intent and its host and pid), uploads, reads every file back and checks its sha256, writes the
signature, then creates release.json (create-only again): its presence commits the release, so
readers never see a half-upload. A publisher that fails cleans up and marks its claim aborted, so a
retry starts at once. One that was killed leaves its claim "uploading": a retry on the same host
takes over at once when that pid is gone, one elsewhere after `stale_upload_after_s` (or at once
with `--reclaim`), removing the half-upload first. What follows the commit (history, channel, index)
is journal.complete's.
"""
from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass

from edgemod.errors import EdgemodError
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.history import now
from edgemod.registry.holders import describe, is_alive, this_holder
from edgemod.registry.release import Release
from edgemod.registry.store import RELEASE, SIGNATURE, Backend, PreconditionFailed, read_json


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


class Publisher:
    """One publisher's side of the upload protocol on `backend`; `user` is recorded in its claims."""

    def __init__(self, backend: Backend, user: str, stale_upload_after_s: float):
        self.backend = backend
        self.user = user
        self.stale_upload_after_s = stale_upload_after_s

    def claim(self, name: str, version: str, reclaim: bool, intent_id: str) -> str:
        """Win the create-only claim on `name@version` for the journal intent `intent_id`, or say why
        not (published, or being published by a live writer)."""
        prefix = f"{name}/{version}"
        if self.backend.get(f"{prefix}/{RELEASE}") is not None:
            raise _already_published(name, version)
        claims = sorted(k for k in self.backend.list(f"{prefix}/.upload/") if k.endswith(".json"))
        number = 0
        if claims:
            last = read_json(self.backend, claims[-1]) or {}
            if last.get("state") == "uploading" and is_alive(last, self.stale_upload_after_s) and not reclaim:
                age = time.time() - float(last.get("started_unix", 0))
                raise EdgemodError(
                    f"{name}@{version} is being uploaded by {last.get('by')} ({describe(last)}) since "
                    f"{last.get('started_at')}, {age:.0f} s ago; it is not published yet",
                    "wait for that publisher; if it died on another host, run the same publish with --reclaim "
                    f"(an upload older than {self.stale_upload_after_s:.0f} s is taken over automatically)")
            number = int(claims[-1].rsplit("-", 1)[1].split(".")[0]) + 1
        key = f"{prefix}/.upload/claim-{number:06d}.json"
        body = {"state": "uploading", "by": self.user, "intent": intent_id, "started_at": now(), **this_holder()}
        try:
            self.backend.put(key, json.dumps(body).encode(), if_absent=True)
        except PreconditionFailed:
            raise EdgemodError(f"another publisher claimed {name}@{version} at the same moment and is uploading it",
                               "versions are immutable: publish your build as a new version") from None
        if self.backend.get(f"{prefix}/{RELEASE}") is not None:  # the previous claimant committed meanwhile
            self._set_claim(key, "aborted")
            raise _already_published(name, version)
        if number:  # a crashed or aborted upload may have left files: remove them before ours land
            for stale in self.backend.list(prefix + "/"):
                if "/.upload/" not in stale:
                    self.backend.delete(stale)
        return key

    def _set_claim(self, key: str, state: str) -> None:
        with contextlib.suppress(Exception):
            body = read_json(self.backend, key) or {}
            self.backend.put(key, json.dumps({**body, "state": state, "ended_at": now()}).encode())

    def _owns(self, claim: str) -> bool:
        prefix = claim.rsplit("/", 1)[0] + "/"
        claims = sorted(k for k in self.backend.list(prefix) if k.endswith(".json"))
        return bool(claims) and claims[-1] == claim

    def upload(self, release: Release, signature: bytes, claim: str) -> None:
        """Files, read-back check, signature, then release.json (create-only): the commit. The claim is
        marked committed by journal.complete, with the rest of what follows the commit."""
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
                if len(uploaded) == 2:
                    crash_point("publish:during-upload")
            crash_point("publish:after-files")
            self._check_uploaded(release, prefix)
            uploaded.append(f"{prefix}/{SIGNATURE}")
            self.backend.put(f"{prefix}/{SIGNATURE}", signature)
            crash_point("publish:after-signature")
            if not self._owns(claim):
                raise EdgemodError(f"the upload of {prefix} was taken over by another publisher (--reclaim or stale)",
                                   "check `edgemod show` for the result; publish your build as a new version")
            manifest_bytes = (json.dumps(release.manifest, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
            self.backend.put(f"{prefix}/{RELEASE}", manifest_bytes, if_absent=True)
            crash_point("publish:after-release-written")
        except PreconditionFailed:  # release.json appeared: another publisher committed; its files are not ours to delete
            self._set_claim(claim, "aborted")
            raise _already_published(release.manifest["name"], release.manifest["version"]) from None
        except BaseException:
            if not self._maybe_committed(prefix):  # after the commit, journal.complete finishes instead
                self._abandon(claim, uploaded)
            raise

    def _maybe_committed(self, prefix: str) -> bool:
        """Whether release.json exists; True when the store cannot tell, so a release is never deleted."""
        try:
            return self.backend.get(f"{prefix}/{RELEASE}") is not None
        except Exception:
            return True

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


def _already_published(name: str, version: str) -> EdgemodError:
    return EdgemodError(f"{name}@{version} is already published; versions are immutable",
                        "publish this build under a new version (e.g. bump the patch number); if `edgemod list` "
                        "does not show it, run `edgemod registry check --repair` to record it")
