"""Optional heavy packages shared by several stages, imported on first use.

A missing one raises MissingDependencyError, which says how to install it.
"""
from __future__ import annotations

from edgemod.errors import MissingDependencyError


def coremltools():
    """The `coremltools` module, for Core ML conversion (export) and compression (quantization).

    Raises:
        MissingDependencyError: coremltools is not installed.
    """
    try:
        import triton  # noqa: F401  (must load before TensorFlow, which coremltools imports if present)
    except ImportError:
        pass
    try:
        import coremltools as ct
    except ImportError:
        raise MissingDependencyError("coremltools", "Core ML export") from None
    return ct
