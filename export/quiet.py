"""Converters and quantizers print a lot of their internals; an export shows its own steps instead.
Their warnings that signal real problems still surface as exceptions or in the parity numbers."""
from __future__ import annotations

import contextlib
import io
import logging
import warnings
from collections.abc import Iterator

# Known noise: untested-version notices, missing macOS-only bindings, internal pass progress.
NOISY_LOGGERS = ("coremltools", "onnx_ir", "onnxscript", "torch.onnx", "absl")


@contextlib.contextmanager
def quiet_converters(verbose: bool = False) -> Iterator[None]:
    if verbose:
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
