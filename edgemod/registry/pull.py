"""Pulling one platform's files of a release: verify the signature, download with resume, and
swap the finished folder into place.

Files land in a staging folder beside the destination (`.<out>.partial`): a re-run resumes
there, keeping finished files and continuing a partial one with a range request. The folder
appears, complete, in one rename (over an earlier pull: one atomic exchange), with `release.json`,
`release.sig` and `pull.json` (what was pulled, from where, signed by whom) beside the model files.
Each step of that protocol is a named crash point (edgemod/registry/crashpoints.py) for the
fault-injection tests.

Nothing is written through a symbolic link the pull did not create: the staging folder is made
with `mkdir` (or, to resume, opened with O_NOFOLLOW and checked for links), every folder and file
inside it is opened relative to its parent's descriptor with O_NOFOLLOW, and new files are created
with O_EXCL. Nor into a file it did not create: the staging mark records the inode of every file the
pull creates, and a file is resumed (appended to) or kept only if it is one of those, a regular file
with a single link (no hard link to a file elsewhere) owned by this user, in a staging folder owned by
this user; any other file there is unlinked (its contents elsewhere untouched) and downloaded afresh.
A disk that fills up mid-pull gets its space back: the staging folder is removed and the previous
`--out` stays as it was.
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import shutil
import stat
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgemod.errors import FILESYSTEM_ERRNOS, EdgemodError, did_you_mean, os_error
from edgemod.fsutil import sha256_bytes
from edgemod.registry.crashpoints import crash_point
from edgemod.registry.documents import malformed_release, release_files
from edgemod.registry.history import now
from edgemod.registry.refs import Ref
from edgemod.registry.release import PLATFORMS, pulled_path
from edgemod.registry.signing import tampered, verify_release
from edgemod.registry.store import RELEASE, SIGNATURE, Backend, Blob

PULL_RECORD = "pull.json"
STAGING_MARK = ".edgemod-pull"
RESERVED = (RELEASE, SIGNATURE, PULL_RECORD, STAGING_MARK)  # written by the pull itself
DISK_FULL = (errno.ENOSPC, errno.EDQUOT)
AT_FDCWD, RENAME_EXCHANGE = -100, 2  # <fcntl.h>, <linux/fs.h>


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


def check_out(out: Path) -> Path:
    """`out` as an absolute path, if a pull may replace it: not the current folder or one above it, not a
    symbolic link, and new, empty or an earlier pull."""
    absolute = Path(os.path.abspath(out))
    if absolute == Path(absolute.anchor) or Path.cwd().is_relative_to(absolute):
        raise EdgemodError(f"--out {out} is the current folder or one above it; a pull replaces --out as a whole",
                           f"pull into a new folder, e.g. --out {absolute / 'models'}")
    if absolute.is_symlink():
        raise EdgemodError(f"--out {out} is a symbolic link (to {os.readlink(absolute)}); a pull never writes through one",
                           "pass the real folder, or remove the link")
    if absolute.exists() and (not absolute.is_dir()
                              or (any(absolute.iterdir()) and not (absolute / PULL_RECORD).exists())):
        raise EdgemodError(f"{out} exists and is not an earlier edgemod pull", "pull into a new or empty folder")
    return absolute


def plan_files(manifest: Any, where: str, platform: str) -> list[tuple[str, dict[str, Any]]]:
    """(path in the pulled folder, manifest entry) of every file `platform` gets, refused unless each
    lands at its own place inside the folder: no `..`, no two files at one path, no file where
    another needs a folder, none over the pull's own records or another file's `.part`."""
    planned: dict[str, dict[str, Any]] = {}
    for entry in release_files(manifest, where, platform):
        path = pulled_path(entry["path"])
        if any(part in ("", ".", "..") for part in path.split("/")) or "\x00" in path or path in planned:
            raise malformed_release(where, f"the signed manifest puts two files at, or a file outside, {path!r}")
        planned[path] = entry
    files = set(planned)
    folders = {"/".join(parts[:i]) for parts in (p.split("/") for p in files) for i in range(1, len(parts))}
    clashes = (files & folders) | ((files | folders) & {*RESERVED, *(p + ".part" for p in files)})
    if clashes:
        raise malformed_release(where, f"the signed manifest's paths clash: {', '.join(sorted(clashes))}")
    return list(planned.items())


def fetch_release(backend: Backend, ref: Ref, version: str, release: Blob, trusted: dict[str, Any], platform: str,
                  out: Path, started: float) -> PullResult:
    """Verify `release` (the release.json of `ref` at `version`) against its signature and `trusted`
    keys, then download its `platform` files into `out`; `started` is when the whole pull began."""
    signature = backend.get(f"{ref.name}/{version}/{SIGNATURE}")
    manifest, signer = verify_release(release.data, signature.data if signature else None, trusted, ref.name, version)
    where = f"{ref.name}@{version}"
    files = plan_files(manifest, where, platform)
    staging = out.with_name(f".{out.name}.partial")
    downloaded, resumed, folder = 0, [], None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)  # `--out a/b/android` on a fresh clone: make a/b
        ours = _open_staging(staging, f"{sha256_bytes(release.data)} {platform}\n")
        folder = ours.folder
        crash_point("pull:after-staging")
        for path, file in files:
            size, was_resumed = _download(backend, f"{ref.name}/{version}/{file['path']}", ours, path, file, where)
            downloaded += size
            if was_resumed:
                resumed.append(file["path"])
        crash_point("pull:after-files")  # every file is in place and matches its signed sha256
        record = {"name": ref.name, "version": version, "ref": str(ref), "platform": platform, "registry": backend.url,
                  "pulled_at": now(), "signed_by": signer, "files": {path: f["sha256"] for path, f in files}}
        for name, data in ((RELEASE, release.data), (SIGNATURE, signature.data),
                           (PULL_RECORD, (json.dumps(record, indent=2) + "\n").encode())):
            _write_new(folder, name, data)
        crash_point("pull:after-records")
        os.unlink(STAGING_MARK, dir_fd=folder)
        _swap_into(staging, folder, out)
    except OSError as error:
        if error.errno not in FILESYSTEM_ERRNOS:  # the connection, not the disk: keep the staging to resume
            raise
        if error.errno in DISK_FULL:  # a kept partial would fill the disk again: give the space back
            shutil.rmtree(staging, ignore_errors=True)
        raise _write_error(error, staging, out) from None
    finally:
        if folder is not None:
            os.close(folder)
    return PullResult(ref.name, version, platform, out, len(files), sum(f["bytes"] for _, f in files), downloaded,
                      resumed, signer, time.perf_counter() - started)


def _write_error(error: OSError, staging: Path, out: Path) -> EdgemodError:
    if error.errno in DISK_FULL:
        return EdgemodError(f"the disk filled up while pulling into {out}: the partial download {staging} was "
                            f"removed and {out} is as it was", "free space on that disk (or pull somewhere else), "
                                                               "then pull again")
    if error.errno == errno.ELOOP:
        return _planted(Path(error.filename or staging))
    return os_error(error, f"cannot write the pull into {out}")


def _planted(path: Path) -> EdgemodError:
    return EdgemodError(f"{path} is a symbolic link where the pull keeps its partial download; edgemod never creates "
                        "one there, so it refuses to write through it", f"check who created it, remove it (rm {path}), "
                                                                        "then pull again")


@dataclass
class _Staging:
    """The open staging folder, and the inodes of the files this pull (or the interrupted pull it
    resumes) created there, as its mark records them after the mark's first line."""

    folder: int
    mark: str  # first line of the staging mark: sha256 of release.json and the platform
    created: set[int] = field(default_factory=set)

    def record(self, fd: int) -> None:
        """Note the file open as `fd` (just created with O_EXCL) as this pull's, in the mark too (rewritten
        as a new file, so never through a link)."""
        self.created.add(os.fstat(fd).st_ino)
        _write_new(self.folder, STAGING_MARK, f"{self.mark}{json.dumps(sorted(self.created))}\n".encode())

    def created_here(self, info: os.stat_result) -> bool:
        """Whether a file may be resumed or kept: one this pull created, not linked from anywhere else."""
        return (stat.S_ISREG(info.st_mode) and info.st_nlink == 1 and info.st_uid == os.getuid()
                and info.st_ino in self.created)

    def discard_unless_created_here(self, folder: int, name: str) -> None:
        """Unlink `name` in `folder` unless this pull created it: a planted hard link loses only its name
        here, the file it links to keeps its bytes."""
        try:
            info = os.stat(name, dir_fd=folder, follow_symlinks=False)
        except FileNotFoundError:
            return
        if not self.created_here(info):
            os.unlink(name, dir_fd=folder)


def _open_staging(staging: Path, mark: str) -> _Staging:
    """The staging folder: made here with mkdir, or an interrupted pull of the same release and platform
    (marked `mark`, in a folder of this user) to resume; anything else there is removed first."""
    if staging.is_symlink():
        raise _planted(staging)
    try:
        os.mkdir(staging)
        folder = _open_folder(staging)
        _write_new(folder, STAGING_MARK, mark.encode())
        return _Staging(folder, mark)
    except FileExistsError:
        pass
    folder = _open_folder(staging)
    links = [Path(root, name) for root, dirs, names in os.walk(staging)
             for name in (*dirs, *names) if os.path.islink(os.path.join(root, name))]
    if links:
        os.close(folder)
        raise _planted(links[0])
    first, _, created = (_read(folder, STAGING_MARK) or b"").partition(b"\n")
    if first + b"\n" == mark.encode() and os.fstat(folder).st_uid == os.getuid():
        return _Staging(folder, mark, _inodes(created))
    os.close(folder)
    shutil.rmtree(staging)  # another release or platform: start afresh (rmtree does not follow links)
    return _open_staging(staging, mark)


def _inodes(recorded: bytes) -> set[int]:
    """The inodes a staging mark lists after its first line (none from an older edgemod's mark)."""
    try:
        inodes = json.loads(recorded or b"[]")
    except ValueError:
        return set()
    return {i for i in inodes if type(i) is int} if isinstance(inodes, list) else set()


def _open_folder(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as error:
        if error.errno == errno.ELOOP:  # planted between our check and the open
            raise _planted(path) from None
        raise


def _folder_of(staging: int, path: str) -> tuple[int, str]:
    """(descriptor of the folder that holds `path` inside the staging folder, created as needed, its file name)."""
    *parents, name = path.split("/")
    folder = os.dup(staging)
    for part in parents:
        with contextlib.suppress(FileExistsError):
            os.mkdir(part, dir_fd=folder)
        try:
            inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=folder)
        finally:
            os.close(folder)
        folder = inner
    return folder, name


def _download(backend: Backend, key: str, staging: _Staging, path: str, file: dict[str, Any],
              where: str) -> tuple[int, bool]:
    """Fetch one file to `path` in the staging folder via `path.part`, resuming a partial file this
    pull created; returns (bytes fetched, resumed)."""
    folder, name = _folder_of(staging.folder, path)
    try:
        part, fetched, resumed = name + ".part", 0, False
        for existing in (name, part):
            staging.discard_unless_created_here(folder, existing)
        if _sha256(folder, name) == file["sha256"]:
            return 0, False  # finished by an interrupted earlier pull
        for _ in range(2):  # a resumed file that does not verify is fetched once more from byte 0
            start = _size(folder, part)
            if start > file["bytes"]:
                os.unlink(part, dir_fd=folder)
                start = 0
            with backend.stream(key, start) as (offset, chunks):
                resumed = resumed or offset > 0
                written, fetched = _receive(staging, folder, part, offset, chunks, file["bytes"], fetched)
            if written <= file["bytes"] and _sha256(folder, part) == file["sha256"]:
                os.replace(part, name, src_dir_fd=folder, dst_dir_fd=folder)
                crash_point("pull:after-file")
                return fetched, resumed
            os.unlink(part, dir_fd=folder)
            if not offset:
                break
        raise tampered(where, f"{file['path']} does not match the sha256 in the signed manifest")
    finally:
        os.close(folder)


def _receive(staging: _Staging, folder: int, part: str, offset: int, chunks, limit: int,
             fetched: int) -> tuple[int, int]:
    """Write `chunks` to `part` (appending from `offset` to a file this pull created, or a new file),
    stopping past `limit` bytes."""
    if not offset and _size(folder, part, missing=-1) >= 0:
        os.unlink(part, dir_fd=folder)
    flags = os.O_WRONLY | os.O_NOFOLLOW | (os.O_APPEND if offset else os.O_CREAT | os.O_EXCL)
    written = offset
    with os.fdopen(os.open(part, flags, 0o644, dir_fd=folder), "ab" if offset else "wb") as handle:
        if not offset:
            staging.record(handle.fileno())
        elif not staging.created_here(os.fstat(handle.fileno())):  # replaced since `_download` looked
            raise EdgemodError(f"{part} in the staging folder was replaced while this pull resumed it",
                               "let one pull at a time write to that --out, then pull again")
        for chunk in chunks:
            written += len(chunk)
            fetched += len(chunk)
            if written > limit:
                break
            handle.write(chunk)
            handle.flush()  # a kill now leaves every byte received so far in the .part file, to resume from
            crash_point("pull:during-download")
    return written, fetched


def _size(folder: int, name: str, missing: int = 0) -> int:
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except FileNotFoundError:
        return missing
    if not stat.S_ISREG(info.st_mode):
        raise OSError(errno.ELOOP, "not a regular file", name)
    return info.st_size


def _read(folder: int, name: str) -> bytes | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except FileNotFoundError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def _sha256(folder: int, name: str) -> str | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    except FileNotFoundError:
        return None
    digest = hashlib.sha256()
    with os.fdopen(fd, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _write_new(folder: int, name: str, data: bytes) -> None:
    """Create `name` in `folder` exclusively (replacing a regular file an interrupted pull left), never through a link."""
    if _size(folder, name, missing=-1) >= 0:
        os.unlink(name, dir_fd=folder)
    with os.fdopen(os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=folder), "wb") as handle:
        handle.write(data)


def _swap_into(staging: Path, folder: int, out: Path) -> None:
    """Replace `out` by the finished staging folder (the one open as `folder`): `out` is at every instant
    the previous pull or this one, complete. An existing `out` is exchanged with the staging folder in
    one step, which then holds the previous pull until it is removed; a kill in between leaves that at
    `<out>.partial`, which the next pull recognises (it has no staging mark) and clears."""
    here, ours = os.stat(staging, follow_symlinks=False), os.fstat(folder)
    if (here.st_dev, here.st_ino) != (ours.st_dev, ours.st_ino):
        raise _planted(staging)  # swapped for something else while we wrote
    crash_point("pull:before-swap")
    if not out.exists() or not any(out.iterdir()):
        os.replace(staging, out)  # onto nothing, or onto an empty folder: rename(2) replaces it atomically
    elif _exchange(staging, out):
        crash_point("pull:after-swap")
        shutil.rmtree(staging, ignore_errors=True)
        return
    else:  # no atomic exchange here (not Linux, or a filesystem without it): out is briefly absent
        aside = out.with_name(f".{out.name}.old-{uuid.uuid4().hex[:8]}")
        os.replace(out, aside)
        os.replace(staging, out)
        shutil.rmtree(aside, ignore_errors=True)
    crash_point("pull:after-swap")


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically with Linux's renameat2(RENAME_EXCHANGE); False where the C library or
    the filesystem does not offer it."""
    import ctypes

    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = (ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint)
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second), RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(second))
