"""Make a C locale (e.g. `en_US.UTF-8`) loadable without root.

Some models need a named locale at load time: onnxruntime's `StringNormalizer` (used by every
sklearn-onnx text pipeline, e.g. the `hatesonar` model) builds `std::locale("en_US.UTF-8")` when the
session is created and fails with `Failed to construct locale with name:en_US.UTF-8` on slim images
that ship only `C.UTF-8`. glibc reads `LOCPATH` on every locale lookup, so compiling the locale
with `localedef` into a user cache and pointing `LOCPATH` there works from inside a running process:
no restart and no root needed.

Note: while `LOCPATH` is set glibc skips the system locale archive, so `locale_scope` restores the
previous value once the model has loaded (the loaded locale stays valid).
"""
from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from edgemod.errors import EdgemodError

LOCALE_DIR_ENV = "EDGEMOD_LOCALE_DIR"
# glibc's compiled-in search path; kept after ours so `C.utf8`-style folders still resolve.
SYSTEM_LOCALE_DIR = "/usr/lib/locale"


def locale_dir() -> Path:
    """Where compiled locales are cached: $EDGEMOD_LOCALE_DIR or ~/.cache/edgemod/locales."""
    override = os.environ.get(LOCALE_DIR_ENV)
    return Path(override).expanduser() if override else Path.home() / ".cache" / "edgemod" / "locales"


def locale_loads(name: str) -> bool:
    """Whether the C library can load `name` with the current environment (LOCPATH included)."""
    return _locale_loads(name, os.environ.get("LOCPATH", ""))


@functools.lru_cache(maxsize=32)
def _locale_loads(name: str, locpath: str) -> bool:
    # A child process keeps this process's locale untouched (setlocale is process-global and not
    # thread-safe); `-I -S` keeps it to ~20 ms. The environment, LOCPATH included, is inherited.
    probe = "import locale, sys; locale.setlocale(locale.LC_ALL, sys.argv[1])"
    result = subprocess.run([sys.executable, "-I", "-S", "-c", probe, name], capture_output=True)
    return result.returncode == 0


def compile_locale(name: str, root: Path) -> Path:
    """Compile `name` (e.g. `en_US.UTF-8`) into `root/name` with localedef; return that folder."""
    target = root / name
    if (target / "LC_CTYPE").exists():
        return target
    localedef = shutil.which("localedef")
    if localedef is None:
        raise _missing_locale(name, "localedef is not installed to build it")
    root.mkdir(parents=True, exist_ok=True)
    source, charmap = _split_name(name)
    # Build beside the target, then rename: a concurrent run never sees a half-written locale.
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{name}.") as tmp:
        built = Path(tmp) / name
        # -c writes the locale even when localedef only warns (some glibc versions exit 1 then).
        result = subprocess.run([localedef, "-c", "-i", source, "-f", charmap, str(built)],
                                capture_output=True, text=True)
        if not (built / "LC_CTYPE").exists():
            output = (result.stderr or result.stdout).strip()[-300:]
            raise _missing_locale(name, f"localedef failed: {output}")
        with contextlib.suppress(OSError):  # another process won the race: its copy is as good
            os.replace(built, target)
    return target


def _split_name(name: str) -> tuple[str, str]:
    """`de_DE.UTF-8@euro` -> (`de_DE@euro`, `UTF-8`): localedef's -i source and -f charmap."""
    base, _, modifier = name.partition("@")
    source, _, charmap = base.partition(".")
    if not charmap:
        raise EdgemodError(f"locale name '{name}' has no charmap", "use a name such as en_US.UTF-8")
    return source + (f"@{modifier}" if modifier else ""), charmap


def _missing_locale(name: str, why: str) -> EdgemodError:
    source, _, charmap = name.partition(".")
    return EdgemodError(
        f"the locale {name} is not installed and could not be built ({why})",
        f"install it (Debian/Ubuntu: apt-get install locales && localedef -i {source} "
        f"-f {charmap or 'UTF-8'} {name}), or set LOCPATH to a folder holding a compiled {name}",
    )


def ensure_locale(name: str = "en_US.UTF-8") -> Path | None:
    """Make a C locale loadable in this process and the processes it starts.

    Args:
        name: locale name as a program asks for it, e.g. `en_US.UTF-8`.

    Returns:
        None when the system already has the locale; otherwise the folder it was compiled into
        (`locale_dir()`), which is now first on LOCPATH.

    Raises:
        EdgemodError: the locale is missing and cannot be built (no localedef or no locale
            sources); the hint says what to install.
    """
    if locale_loads(name):
        return None
    root = locale_dir()
    compile_locale(name, root)
    previous = os.environ.get("LOCPATH") or SYSTEM_LOCALE_DIR
    os.environ["LOCPATH"] = os.pathsep.join([str(root), previous])
    if not locale_loads(name):
        raise _missing_locale(name, f"the copy compiled into {root} does not load; delete it and retry")
    return root


@contextlib.contextmanager
def locale_scope(name: str = "en_US.UTF-8") -> Iterator[Path | None]:
    """`ensure_locale` for the duration of a block (e.g. creating an onnxruntime session), then
    LOCPATH goes back to what it was, so other programs still see the system locale archive."""
    before = os.environ.get("LOCPATH")
    try:
        yield ensure_locale(name)
    finally:
        if before is None:
            os.environ.pop("LOCPATH", None)
        else:
            os.environ["LOCPATH"] = before
