"""Where a registry's bytes live, as a protocol: a local folder (`store_local`), an S3-compatible
bucket (`store_s3`) or, read-only, HTTPS (`store_http`).

Every backend stores the same keys (`index.json`, `<name>/channels.json`, `<name>/<version>/...`)
so that a bucket served by a CDN is itself a readable registry. Writers need two conditional
writes, which is all the concurrency control the registry uses:

- `put(key, data, if_absent=True)`: create-only (S3 `If-None-Match: *`, local `link()`), so two
  publishers racing for one key get exactly one winner;
- `put(key, data, if_match=token)`: compare-and-swap on the token `get` returned (S3 ETag with
  `If-Match`; local: a lock file around a content-hash comparison), for index and channel updates.

A local folder also has temp files and lock files that a killed writer can leave behind;
`leftovers()` names them for `edgemod registry check` (a bucket has none: each PUT is atomic).
"""
from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Protocol

from edgemod.errors import EdgemodError

# Keys every registry holds beside the release files (the whole layout: edgemod/registry/__init__.py).
INDEX = "index.json"
RELEASE = "release.json"  # written last: its presence commits a release
SIGNATURE = "release.sig"

CHUNK = 1 << 16  # small enough that a dropped download keeps nearly everything it received, for resuming
ABSENT = ""  # an if_match token meaning "the key must not exist yet"


class PreconditionFailed(Exception):
    """A conditional write lost: the key exists (if_absent) or changed since it was read (if_match)."""


@dataclass
class Blob:
    data: bytes
    token: str  # S3 ETag or local content hash: what `put(..., if_match=)` compares against


class Backend(Protocol):
    url: str
    writable: bool

    def get(self, key: str) -> Blob | None: ...
    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None: ...
    def put_file(self, key: str, path: Path) -> None: ...
    def delete(self, key: str) -> None: ...
    def list(self, prefix: str) -> list[str]: ...
    def stream(self, key: str, start: int = 0) -> contextlib.AbstractContextManager[tuple[int, Iterator[bytes]]]: ...
    def leftovers(self) -> list[tuple[str, str]]: ...  # (where, why): stale locks, temp files of dead writers
    def remove_leftover(self, where: str) -> None: ...
    def sweep_leftovers(self) -> None: ...  # remove `leftovers()`; every writer calls it before replaying intents


def check_key(key: str) -> str:
    """Keys are relative POSIX paths without `..`: a tampered manifest must not reach outside the registry."""
    path = PurePosixPath(key)
    if not key or path.is_absolute() or ".." in path.parts or "\\" in key or key != path.as_posix():
        raise EdgemodError(f"invalid registry key '{key}'", "keys are relative paths like name/1.0.0/android/model.tflite")
    return key


def read_json(backend: Backend, key: str) -> Any:
    """The parsed JSON at `key`, or None when the key does not exist."""
    blob = backend.get(key)
    if blob is None:
        return None
    try:
        return json.loads(blob.data)
    except ValueError:
        derived = key == INDEX or key.endswith("/channels.json")  # rebuilt from releases and history
        raise EdgemodError(f"{backend.url}/{key} is not valid JSON",
                           "run `edgemod registry check --repair`, which rebuilds it" if derived
                           else "restore it from a backup (or the bucket's object versions)") from None
