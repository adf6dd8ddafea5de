"""Keep third-party chatter out of the user's terminal; `edgemod --verbose` or EDGEMOD_DEBUG=1 shows it.

The noise comes three ways, so it is stopped in three places:
- settings read once by libraries at import (TensorFlow's C++ log level, transformers' verbosity and
  its LOAD REPORT of missing checkpoint keys, tqdm bars): environment variables, set before those
  libraries are imported (`quiet_process`);
- Python loggers (torch's pytree deprecation notices, absl, converters): their levels;
- lines native code writes straight to file descriptor 2 (LiteRT's "INFO: Created TensorFlow Lite
  XNNPACK delegate", absl's notice before `InitializeLog`): fd 2 goes through a small filter process
  that drops those known lines and passes every other one, so a native crash message still shows.
Converters also print their internals while they run: `quiet_converters` hides those around an export.
Warnings that signal real problems still surface as exceptions or in the parity numbers.
"""
from __future__ import annotations

import contextlib
import io
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Iterator

DEBUG_VARIABLE = "EDGEMOD_DEBUG"
LIBRARY_SETTINGS = {"TF_CPP_MIN_LOG_LEVEL": "2", "TRANSFORMERS_VERBOSITY": "error", "TQDM_DISABLE": "1"}
# Known noise: untested-version notices, missing macOS-only bindings, internal pass progress.
NOISY_LOGGERS = ("coremltools", "onnx_ir", "onnxscript", "torch.onnx", "absl")
START_UP_LOGGERS = ("torch.utils._pytree", "absl")  # Enum register_constant deprecation, at torchao import
NATIVE_NOISE = (r"WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
                r"|[IW]\d{4} [\d:.]+ +\d+ \S+:\d+\] "  # absl INFO/WARNING lines (TensorFlow, LiteRT)
                r"|INFO: "  # TFLite's logger: "Created TensorFlow Lite XNNPACK delegate for CPU."
                r"|To enable the following instructions: .* rebuild TensorFlow")
# Runs in its own small interpreter: it must outlive a crash of the main process to pass on its last words.
_FILTER_PROGRAM = """
import re, sys
noise = re.compile(sys.argv[1])
for line in sys.stdin.buffer:
    if not noise.match(line.decode("utf-8", "replace")):
        sys.stdout.buffer.write(line)
        sys.stdout.buffer.flush()
"""


def debug_requested() -> bool:
    """Whether the user asked for the libraries' own output (EDGEMOD_DEBUG=1, set by `--verbose`)."""
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


@contextlib.contextmanager
def quiet_process() -> Iterator[None]:
    """Silence the libraries' start-up output while a command runs; enter it before they are imported.

    Logger levels stay for the rest of the process. The environment is restored on exit, so a caller
    of `main()` in-process (and its later subprocesses) keeps its own settings; fd 2 is handed back
    from the filter process.
    """
    added = [name for name in LIBRARY_SETTINGS if name not in os.environ]
    for name in added:
        os.environ[name] = LIBRARY_SETTINGS[name]
    for name in START_UP_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    try:
        with _filtered_native_stderr():
            yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _filtered_native_stderr() -> Iterator[None]:
    """Point fd 2 at the noise filter; Python's `sys.stderr` keeps writing where fd 2 wrote before."""
    try:
        sys.stderr.flush()
        python_fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # a test runner's in-memory stderr never touches fd 2
        python_fd = None
    try:
        before = os.dup(2)
    except OSError:  # no fd 2 at all: nothing native can be heard
        yield
        return
    noise_filter = subprocess.Popen([sys.executable, "-I", "-S", "-c", _FILTER_PROGRAM, NATIVE_NOISE],
                                    stdin=subprocess.PIPE, stdout=before, start_new_session=True)
    os.dup2(noise_filter.stdin.fileno(), 2)
    noise_filter.stdin.close()
    python_stderr = sys.stderr
    if python_fd == 2:
        # left open on exit: log handlers created meanwhile keep writing through it
        sys.stderr = open(os.dup(before), "w", buffering=1, encoding=python_stderr.encoding, errors="backslashreplace")
    try:
        yield
    finally:
        sys.stderr.flush()
        sys.stderr = python_stderr
        os.dup2(before, 2)  # the filter sees end-of-file once no process holds the pipe
        os.close(before)
        with contextlib.suppress(subprocess.TimeoutExpired):  # a lingering child may still hold the pipe
            noise_filter.wait(timeout=2)


@contextlib.contextmanager
def quiet_converters() -> Iterator[None]:
    """Hide converters' and quantizers' own logging, warnings and prints (shown with EDGEMOD_DEBUG=1)."""
    if debug_requested():
        yield
        return
    levels = {name: logging.getLogger(name).level for name in NOISY_LOGGERS}
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    progress = _litert_progress_console()
    was_quiet = getattr(progress, "quiet", False)
    if progress is not None:
        progress.quiet = True
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            for category in (FutureWarning, DeprecationWarning, RuntimeWarning, UserWarning):
                warnings.simplefilter("ignore", category)
            yield
    finally:
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)
        if progress is not None:
            progress.quiet = was_quiet


def _litert_progress_console():
    try:
        from litert_torch import progress
    except ImportError:
        return None
    return progress.console
