"""The registry in a local folder: one machine, a shared drive, or the default registry."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_bytes
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.holders import describe, pid_alive, this_holder
from edgemod.registry.store import ABSENT, CHUNK, Blob, PreconditionFailed, check_key

TEMP_DIR = ".tmp"  # every temp file lives here, never inside a version folder


class LocalBackend:
    """A folder. Every write goes to a temp file in `<root>/.tmp/` (named after its host and pid) and
    then appears in one `link()` (create-only) or `rename()`, so a key is never seen half-written and
    a killed writer leaves nothing inside a version. Compare-and-swap holds `<key>.lock`: an `flock`
    (which the kernel drops the instant its holder dies, so a crashed writer's lock is taken over at
    once) on a file that records the holder's host, pid and start time for messages and `check`."""

    writable = True
    lock_timeout_s = 30.0  # how long to wait for a live holder (writes take milliseconds)

    def __init__(self, root: Path):
        self.root = Path(root)
        self.url = str(self.root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def get(self, key: str) -> Blob | None:
        try:
            data = self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return None
        return Blob(data, sha256_bytes(data))

    def put(self, key: str, data: bytes, *, if_absent: bool = False, if_match: str | None = None) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if if_match is not None:
            with self._locked(path):
                current = self.get(key)
                if (current.token if current else ABSENT) != if_match:
                    raise PreconditionFailed(key)
                self._write(path, data, exclusive=False)
                crash_point(f"lock:wrote-{path.name.split('.')[0]}")  # the key is new, its lock not yet removed
            return
        self._write(path, data, exclusive=if_absent)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp()
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes, exclusive: bool) -> None:
        tmp = self._temp()
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            if exclusive:
                try:
                    os.link(tmp, path)  # fails if the key exists; the key is never seen half-written
                except FileExistsError:
                    raise PreconditionFailed(str(path)) from None
            else:
                os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    def _temp(self) -> Path:
        """A new temp file in `<root>/.tmp/`, named `<host>-<pid>-<random>.tmp` so `leftovers` can tell
        a dead writer's from a live one's (same filesystem as every key, so rename and link work)."""
        folder = self.root / TEMP_DIR
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f"{socket.gethostname()}-{os.getpid()}-", suffix=".tmp", dir=folder)
        os.close(fd)
        return Path(name)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock = path.with_name(path.name + ".lock")
        fd = self._acquire(lock)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(this_holder()).encode(), 0)
            crash_point("lock:held")
            yield
        finally:
            lock.unlink(missing_ok=True)  # before unlocking: a waiter on this inode sees it is gone and retries
            os.close(fd)

    def _acquire(self, lock: Path) -> int:
        """An open, flock-ed descriptor of `lock` that is still the file at that path."""
        import fcntl

        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            fd = os.open(lock, os.O_CREAT | os.O_RDWR, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                if time.monotonic() > deadline:
                    raise EdgemodError(f"{lock} has been held for {self.lock_timeout_s:.0f} s by {_holder(lock)}",
                                       "another edgemod is writing this key; wait for it, or stop it") from None
                time.sleep(0.01)
                continue
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:  # the previous holder removed it between our open and flock
                same = False
            if same:
                return fd
            os.close(fd)

    def leftovers(self) -> list[tuple[str, str]]:
        """What dead writers left here: (path relative to the root, why), for `edgemod registry check`."""
        found = []
        for path in sorted(self.root.rglob("*")) if self.root.is_dir() else []:
            relative = path.relative_to(self.root).as_posix()
            if path.name.endswith(".lock") and path.is_file() and not self._lock_held(path):
                found.append((relative, f"stale lock of a dead writer ({_holder(path)})"))
            elif path.name.endswith(".tmp") and path.is_file() and not _temp_owner_alive(path):
                found.append((relative, "temp file of a dead writer"))
        return found

    def remove_leftover(self, relative: str) -> None:
        """Remove one of `leftovers()`; a lock only while nobody holds it."""
        path = self.root / relative
        if path.name.endswith(".lock"):
            import fcntl

            fd = os.open(path, os.O_RDWR) if path.exists() else None
            if fd is None:
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                with contextlib.suppress(FileNotFoundError):
                    if os.fstat(fd).st_ino == os.stat(path).st_ino:
                        path.unlink()
            except BlockingIOError:  # a live writer took it meanwhile
                pass
            finally:
                os.close(fd)
            return
        path.unlink(missing_ok=True)

    def sweep_leftovers(self) -> None:
        """Remove everything `leftovers()` names: dead writers' temp files and lock files nobody holds.
        Each writer calls this when it starts, because it may never take a dead writer's lock itself: a
        writer killed after writing `channels.json` but before removing `channels.json.lock` leaves a lock
        that a publish without --channel (which leaves channels.json as it is) would otherwise never clear.
        Removing an unheld lock is safe: a writer that opened it but has not flock-ed it yet finds the
        path gone or another inode after its flock and retries (`_acquire`)."""
        for where, _ in self.leftovers():
            self.remove_leftover(where)

    @staticmethod
    def _lock_held(lock: Path) -> bool:
        import fcntl

        try:
            fd = os.open(lock, os.O_RDONLY)
        except FileNotFoundError:
            return True  # gone: nothing to report
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            return False
        except BlockingIOError:
            return True
        finally:
            os.close(fd)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def remove_empty_folders(self, prefix: str) -> None:
        """Remove `prefix`'s folder and the folders under it that hold nothing (after a prune)."""
        base = self._path(prefix)
        if not base.is_dir():
            return
        for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()
        with contextlib.suppress(OSError):
            base.rmdir()

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            relative = path.relative_to(self.root)
            if relative.parts[0] == TEMP_DIR or path.name.endswith((".tmp", ".lock")) or not path.is_file():
                continue
            keys.append(relative.as_posix())
        return sorted(keys)

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        path = self._path(key)
        if not path.is_file():
            raise EdgemodError(f"{key} is missing from registry {self.url}", "the release is incomplete; republish it")
        with open(path, "rb") as handle:
            handle.seek(start)
            yield start, iter(lambda: handle.read(CHUNK), b"")


def _holder(lock: Path) -> str:
    try:
        return describe(json.loads(lock.read_text()))
    except (OSError, ValueError, AttributeError):
        return "an unknown writer"


def _temp_owner_alive(path: Path) -> bool:
    """Temp files in `.tmp/` name their writer; any other `.tmp` was left by an older edgemod, which is gone."""
    if path.parent.name != TEMP_DIR:
        return False
    host, _, rest = path.name.rpartition("-")[0].rpartition("-")
    if host != socket.gethostname():
        return time.time() - path.stat().st_mtime < 3600  # another host's writer: assume alive for an hour
    return rest.isdigit() and pid_alive(int(rest))
