"""The registry in a local folder: one machine, a shared drive, or the default registry."""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_bytes
from edgemod.registry.store import ABSENT, CHUNK, Blob, PreconditionFailed, check_key


class LocalBackend:
    """A folder. Create-only writes use `link()` of a finished temp file, so a key appears complete
    or not at all; compare-and-swap holds `<key>.lock` (O_EXCL) while it compares and renames."""

    writable = True
    lock_timeout_s = 30.0
    stale_lock_s = 60.0  # a lock older than this belongs to a crashed writer (writes take milliseconds)

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
            return
        self._write(path, data, exclusive=if_absent)

    def put_file(self, key: str, path: Path) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._temp_beside(target)
        try:
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def _write(self, path: Path, data: bytes, exclusive: bool) -> None:
        tmp = self._temp_beside(path)
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

    @staticmethod
    def _temp_beside(path: Path) -> Path:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        return Path(name)

    @contextlib.contextmanager
    def _locked(self, path: Path) -> Iterator[None]:
        lock = path.with_name(path.name + ".lock")
        deadline = time.monotonic() + self.lock_timeout_s
        while True:
            try:
                fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
                os.close(fd)
                break
            except FileExistsError:
                if self._break_stale(lock):
                    continue
                if time.monotonic() > deadline:
                    raise EdgemodError(f"{lock} has been held for {self.lock_timeout_s:.0f} s",
                                       "another edgemod is writing; if none is running, delete the .lock file") from None
                time.sleep(0.01)
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)

    def _break_stale(self, lock: Path) -> bool:
        try:
            age = time.time() - lock.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < self.stale_lock_s:
            return False
        # Rename first so that two waiters cannot both delete (and one of them a fresh lock).
        aside = lock.with_name(f"{lock.name}.stale.{os.getpid()}.{time.monotonic_ns()}")
        with contextlib.suppress(FileNotFoundError):
            os.rename(lock, aside)
            aside.unlink()
        return True

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def list(self, prefix: str) -> list[str]:
        base = self.root / prefix if prefix else self.root
        if not base.is_dir():
            return []
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.endswith((".tmp", ".lock")) and ".lock.stale." not in path.name:
                keys.append(path.relative_to(self.root).as_posix())
        return sorted(keys)

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0) -> Iterator[tuple[int, Iterator[bytes]]]:
        path = self._path(key)
        if not path.is_file():
            raise EdgemodError(f"{key} is missing from registry {self.url}", "the release is incomplete; republish it")
        with open(path, "rb") as handle:
            handle.seek(start)
            yield start, iter(lambda: handle.read(CHUNK), b"")
