"""On-disk cache of API teacher scores: SQLite keyed by (teacher identity, sha256 of the text).

API calls cost money and quota, so a score once paid for is never requested again. The file holds
only identities, text hashes and scores: never texts (privacy) and never keys.
"""
from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path

from edgemod.errors import EdgemodError

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scores (
    identity TEXT NOT NULL,
    text_sha256 TEXT NOT NULL,
    scores TEXT NOT NULL,
    created REAL NOT NULL,
    PRIMARY KEY (identity, text_sha256)
) WITHOUT ROWID
"""
# Old SQLite builds allow 999 bound variables per statement; stay well under.
_QUERY_CHUNK = 500


class ScoreCache:
    """Thread-safe score store in one SQLite file (WAL, so other processes may read meanwhile)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # One connection shared by the worker threads; the lock serialises its use, which costs
        # nothing next to an HTTP round trip.
        self._lock = threading.Lock()
        try:
            self._db = _open(self.path)
        except sqlite3.DatabaseError as error:
            raise _corrupt_file_error(self.path, error) from None

    def get_many(self, identity: str, shas: Iterable[str]) -> dict[str, list[float]]:
        """Cached scores for the given text hashes (missing hashes are simply absent)."""
        wanted = list(dict.fromkeys(shas))
        found: dict[str, list[float]] = {}
        for start in range(0, len(wanted), _QUERY_CHUNK):
            part = wanted[start:start + _QUERY_CHUNK]
            marks = ",".join("?" * len(part))
            rows = self._run(f"SELECT text_sha256, scores FROM scores WHERE identity = ? "
                             f"AND text_sha256 IN ({marks})", [identity, *part])
            for sha, raw in rows:
                found[sha] = json.loads(raw)
        return found

    def put_many(self, identity: str, scores: dict[str, list[float]]) -> None:
        """Store scores for text hashes in one transaction."""
        now = time.time()
        rows = [(identity, sha, json.dumps([float(v) for v in values]), now) for sha, values in scores.items()]
        with self._lock:
            try:
                with self._db:  # one transaction: a crash leaves all or nothing
                    self._db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?, ?, ?)", rows)
            except sqlite3.DatabaseError as error:
                raise _broken_file_error(self.path, error) from None

    def count(self, identity: str | None = None) -> int:
        if identity is None:
            return self._run("SELECT COUNT(*) FROM scores", [])[0][0]
        return self._run("SELECT COUNT(*) FROM scores WHERE identity = ?", [identity])[0][0]

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _run(self, sql: str, params: list) -> list[tuple]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.DatabaseError as error:
                raise _broken_file_error(self.path, error) from None


def _open(path: Path) -> sqlite3.Connection:
    # timeout: wait for another process's write lock instead of failing at once.
    db = sqlite3.connect(path, timeout=30, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        # A damaged file often opens fine and fails later on a read; check it up front.
        verdict = db.execute("PRAGMA quick_check").fetchone()[0]
        if verdict != "ok":
            raise sqlite3.DatabaseError(f"integrity check failed: {verdict}")
        db.execute(_SCHEMA)
        db.commit()
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


def _corrupt_file_error(path: Path, error: Exception) -> EdgemodError:
    """Move the unreadable file aside (so the next run starts clean) and say so."""
    aside = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        path.rename(aside)
        for suffix in ("-wal", "-shm"):  # SQLite's side files belong to the damaged database
            side = path.with_name(path.name + suffix)
            if side.exists():
                side.rename(aside.with_name(aside.name + suffix))
    except OSError:
        return EdgemodError(f"the API score cache {path} is not a readable SQLite database ({error})",
                            f"delete {path} and run again (its items will be requested again)")
    log.warning("API score cache %s was unreadable and has been moved to %s", path, aside)
    return EdgemodError(
        f"the API score cache {path} is not a readable SQLite database ({error}); "
        f"it has been moved aside to {aside}",
        "run again to start a fresh cache (uncached items are requested again); "
        f"delete {aside.name} once you no longer need it",
    )


def _broken_file_error(path: Path, error: Exception) -> EdgemodError:
    return EdgemodError(f"the API score cache {path} failed while in use ({error})",
                        f"check the disk is not full; if the file is damaged, delete {path} and run again")
