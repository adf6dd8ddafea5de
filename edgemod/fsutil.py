"""File helpers: hashing and atomic writes (temp path, then rename)."""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_tree(path: str | Path) -> str:
    """One hash over every file below `path` (relative names and contents), order-independent."""
    root = Path(path)
    if root.is_file():
        return sha256_file(root)
    digest = hashlib.sha256()
    for file in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(file.relative_to(root).as_posix().encode())
        digest.update(sha256_file(file).encode())
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temp path beside `target`; rename it over `target` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_text_atomic(target: str | Path, text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json_atomic(target: str | Path, data: Any) -> Path:
    return write_text_atomic(target, json.dumps(data, indent=2, sort_keys=False, default=str) + "\n")


def read_user_text(path: str | Path, what: str) -> str:
    """The UTF-8 text of a file the user named (`what`: "recipe", "config file", ...).

    Raises:
        EdgemodError: the path is missing or a folder, cannot be read, or holds binary / non-UTF-8 bytes.
    """
    from edgemod.errors import EdgemodError, os_error

    path = Path(path)
    if path.is_dir():
        raise EdgemodError(f"{what} {path} is a folder, not a file", f"pass the {what} itself, e.g. {path}/<name>.yaml")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise EdgemodError(f"{what} {path} not found", "check the path") from None
    except OSError as error:
        raise os_error(error, f"cannot read the {what}") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise EdgemodError(f"{what} {path} is not UTF-8 text (byte {error.start} is {data[error.start]:#04x}); "
                           "is it a binary file?", f"pass the {what} as a UTF-8 YAML/JSON text file") from None
    if "\x00" in text:
        raise EdgemodError(f"{what} {path} is a binary file (it contains NUL bytes)",
                           f"pass the {what} as a UTF-8 YAML/JSON text file")
    return text


def read_json_object(path: str | Path, what: str, fix: str) -> dict[str, Any]:
    """The JSON object in a file an edgemod stage wrote (`what`: "gate result", ...), or an
    EdgemodError with `fix` when it is missing, binary, not UTF-8, not JSON or not an object."""
    from edgemod.errors import EdgemodError

    path = Path(path)
    try:
        text = read_user_text(path, what)
    except EdgemodError as error:
        raise EdgemodError(error.message, fix) from None
    try:
        data = json.loads(text)
    except ValueError as error:  # JSONDecodeError, and ints too long to convert
        problem = "it is empty" if not text.strip() else f"not valid JSON: {error}"
        raise EdgemodError(f"{what} {path} is damaged ({problem})", fix) from None
    if not isinstance(data, dict):
        raise EdgemodError(f"{what} {path} holds a JSON {type(data).__name__}, not an object", fix)
    return data
