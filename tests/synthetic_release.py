"""A release built without a pipeline run: a few small files and a manifest with every field `show`
reads, published through the real `Registry.publish` with `assemble` (which walks gate → bench →
export folders) replaced. Lets registry error tests build a registry in milliseconds."""
from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

from edgemod.fsutil import sha256_bytes
from edgemod.registry.release import Release, ReleaseFile

FILES = {"onnx/model.onnx": b"not really onnx " * 64, "onnx/golden/onnx_fp32.json": b'{"items": []}\n',
         "shared/labels.json": b'["ok", "bad"]\n'}


def synthetic_release(name: str, version: str, published_by: str = "tests") -> Release:
    """`name@version` with an onnx model, its golden vectors and a shared labels file."""
    files = [ReleaseFile(key, None, sha256_bytes(data), len(data), ["onnx"], "model", data) for key, data in FILES.items()]
    manifest = {
        "schema": "edgemod.release/1", "name": name, "version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "published_by": published_by,
        "labels": ["ok", "bad"], "platforms": {"onnx": ["onnx_fp32"]},
        "artifacts": {"onnx_fp32": {"target": "onnx", "scheme": "fp32", "platform": "onnx", "size_mb": 0.001}},
        "metrics": {"artifacts": {}}, "gate": {"verdict": "pass", "checks": []},
        "files": [f.entry() for f in files],
    }
    return Release(manifest, files)


@contextlib.contextmanager
def publishing_synthetic_releases() -> Iterator[None]:
    """While inside, `Registry.publish(any_folder, name, version)` publishes `synthetic_release(name, version)`."""
    from edgemod.registry import core

    real = core.assemble
    core.assemble = lambda gate_dir, name, version, user: synthetic_release(name, version, user)
    try:
        yield
    finally:
        core.assemble = real


def publish_synthetic(registry, name: str, version: str, channel: str | None = None) -> None:
    with publishing_synthetic_releases():
        registry.publish(Path("."), name, version, channel)
