"""Errors that tell the user how to fix the problem."""
from __future__ import annotations

import difflib
import errno
from collections.abc import Iterable


class EdgemodError(Exception):
    """A user-facing error: `message` says what is wrong, `hint` how to fix it."""

    def __init__(self, message: str, hint: str | None = None):
        self.message = message
        self.hint = hint
        super().__init__(f"{message}\n  fix: {hint}" if hint else message)


class MissingDependencyError(EdgemodError):
    """An optional package is needed for this feature."""

    def __init__(self, package: str, feature: str, extra: str | None = None):
        install = f"pip install 'edgemod[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"{feature} needs the package '{package}', which is not installed", install)


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def unknown_choice(kind: str, name: str, known: Iterable[str]) -> EdgemodError:
    """Error for a name that is not among the registered ones."""
    known = sorted(known)
    return EdgemodError(
        f"unknown {kind} '{name}'{did_you_mean(name, known)}",
        f"use one of: {', '.join(known)}",
    )


def validation_lines(error, fields: Iterable[str], noun: str = "key") -> str:
    """A pydantic ValidationError as indented lines: unknown names get a did-you-mean."""
    lines = []
    for item in error.errors():
        where = ".".join(str(p) for p in item["loc"])
        if item["type"] == "extra_forbidden":
            lines.append(f"  unknown {noun} '{where}'{did_you_mean(where, fields)}")
        else:
            lines.append(f"  {where}: {item['msg']}")
    return "\n".join(lines)


def yaml_problem(error: Exception) -> str:
    """The one-line gist of a YAML parse error: its problem and position when it has them."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{problem} at line {mark.line + 1}, column {mark.column + 1}" if mark else problem


# errno → what to do about it; the message names the path, the hint the remedy.
_OS_FIXES = {
    errno.ENOSPC: "free space on that disk (or write somewhere else), then run the command again",
    errno.EDQUOT: "free space within your disk quota (or write somewhere else), then run the command again",
    errno.EACCES: "check the permissions of that path (ls -ld), or write somewhere you own",
    errno.EPERM: "check the permissions and flags of that path (ls -ld, lsattr), or write somewhere you own",
    errno.EROFS: "that file system is mounted read-only: write somewhere else, or remount it read-write",
    errno.ENOTDIR: "a file stands where a folder is expected on that path: check the path, or move the file",
    errno.EISDIR: "that path is a folder: pass a file",
    errno.ENOENT: "check that the path exists",
    errno.EEXIST: "remove what is at that path, or choose another one",
    errno.ENAMETOOLONG: "use a shorter path",
    errno.ELOOP: "that path is a symbolic link (or a loop of them): pass the real path",
    errno.EMFILE: "too many open files: raise the limit (ulimit -n) and run again",
    errno.EIO: "the disk reported an I/O error: check the device (dmesg), then run again",
}


FILESYSTEM_ERRNOS = frozenset(_OS_FIXES)  # what a disk or folder raises (a dropped connection raises others)


def os_error(error: OSError, action: str = "") -> EdgemodError:
    """An OSError as a user-facing error naming the path, what was being done and the fix.

    Args:
        error: the error raised by the operating system (its `filename` names the path when known).
        action: what was being done, e.g. "writing the pulled files"; optional.
    """
    where = " → ".join(str(p) for p in (error.filename, error.filename2) if p is not None)
    reason = error.strerror or str(error) or type(error).__name__
    message = f"{action + ': ' if action else ''}{reason}" + (f": {where}" if where else "")
    return EdgemodError(message, _OS_FIXES.get(error.errno, "check the path and the disk, then run the command again"))
