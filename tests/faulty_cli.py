"""The real `edgemod` CLI with one filesystem fault injected below a folder, for tests/test_cli_errors.py.

    EDGEMOD_TEST_FAULT=ENOSPC:/some/folder[:BYTES] python -m tests.faulty_cli ARGS...
    EDGEMOD_TEST_FAULT=EACCES:/some/folder        (or EROFS, EPERM)
    EDGEMOD_TEST_SYNTHETIC_RELEASE=1 ...          `publish` publishes tests/synthetic_release.py's release

ENOSPC: once BYTES (default 0) bytes have been written to files below the folder, every further
write there fails the way it does on a full disk. EACCES / EROFS / EPERM: creating, opening for
writing, renaming or removing anything below the folder fails, the way it does in a read-only
folder or on a read-only mount, whoever runs the tests (root ignores permission bits, so `chmod`
alone cannot test this). Run with cwd = the repository root, so `edgemod` is this tree's.
"""
from __future__ import annotations

import builtins
import errno
import io
import os
import sys

KIND, _, REST = os.environ.get("EDGEMOD_TEST_FAULT", "").partition(":")
FOLDER, _, BUDGET = REST.partition(":")
WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_real = {name: getattr(os, name) for name in ("open", "mkdir", "replace", "rename", "link", "unlink", "rmdir", "fdopen")}
_real_open = io.open
_written = [0]


def _below(path, dir_fd=None) -> bool:
    if isinstance(path, int):
        path, dir_fd = "", path
    path = os.fsdecode(path)
    if dir_fd is not None and not os.path.isabs(path):
        path = os.path.join(os.readlink(f"/proc/self/fd/{dir_fd}"), path)
    return os.path.abspath(path).startswith(FOLDER.rstrip("/") + "/") or os.path.abspath(path) == FOLDER


def _fail(path) -> OSError:
    code = getattr(errno, KIND)
    return OSError(code, os.strerror(code), None if isinstance(path, int) else os.fsdecode(path))


class _FullDisk:
    """A file object whose writes fail once the byte budget below FOLDER is spent."""

    def __init__(self, handle):
        self._handle = handle

    def write(self, data) -> int:
        _written[0] += len(data)
        if _written[0] > int(BUDGET or 0):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._handle.close()

    def __iter__(self):
        return iter(self._handle)


def _open(file, mode="r", *args, **kwargs):
    writing = any(c in mode for c in "wax+")
    if writing and not isinstance(file, int) and _below(file):
        if KIND != "ENOSPC":
            raise _fail(file)
        return _FullDisk(_real_open(file, mode, *args, **kwargs))
    return _real_open(file, mode, *args, **kwargs)


def _fdopen(fd, mode="r", *args, **kwargs):
    handle = _real["fdopen"](fd, mode, *args, **kwargs)
    return _FullDisk(handle) if KIND == "ENOSPC" and any(c in mode for c in "wax+") and _below(fd) else handle


def _os_open(path, flags, mode=0o777, *, dir_fd=None):
    if KIND != "ENOSPC" and flags & WRITE_FLAGS and _below(path, dir_fd):
        raise _fail(path)
    return _real["open"](path, flags, mode, dir_fd=dir_fd)


def _refusing(name: str):
    real = _real[name]

    def call(*args, **kwargs):
        if KIND != "ENOSPC" and any(_below(a, kwargs.get("dir_fd") or kwargs.get("src_dir_fd"))
                                    for a in args[:2] if isinstance(a, (str, bytes, os.PathLike))):
            raise _fail(args[0])
        return real(*args, **kwargs)

    return call


def install() -> None:
    if not KIND:
        return
    builtins.open = io.open = _open
    os.open, os.fdopen = _os_open, _fdopen
    for name in ("mkdir", "replace", "rename", "link", "unlink", "rmdir"):
        setattr(os, name, _refusing(name))
    import shutil

    shutil._USE_CP_SENDFILE = False  # copies go through file.write, where the full disk is simulated


if __name__ == "__main__":
    install()
    if os.environ.get("EDGEMOD_TEST_SYNTHETIC_RELEASE"):  # publish without a gate run (pass --name)
        from edgemod import pipeline_publish
        from edgemod.registry import core
        from tests.synthetic_release import synthetic_release

        core.assemble = lambda gate_dir, name, version, user: synthetic_release(name, version, user)
        pipeline_publish.verify_gate = lambda gate_dir: None  # there is no gate run to re-check
    sys.argv[0] = "edgemod"
    from edgemod.cli import main

    sys.exit(main(sys.argv[1:]))
