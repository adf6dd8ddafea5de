"""pytest-benchmark suite over the artifacts of one export:
`pytest benchmarks/ --export-dir runs/text-hate/export --benchmark-json bench.json`
(or set EDGEMOD_BENCH_EXPORT). One benchmark per artifact and thread count, batch 1."""
from __future__ import annotations

import os
from pathlib import Path

import pytest


def pytest_addoption(parser):
    parser.addoption("--export-dir", default=os.environ.get("EDGEMOD_BENCH_EXPORT"),
                     help="folder written by `edgemod export` (default: $EDGEMOD_BENCH_EXPORT)")


def _export_dir(config) -> Path:
    value = config.getoption("--export-dir")
    if not value:
        raise pytest.UsageError("pass --export-dir DIR (a folder written by `edgemod export`) or set EDGEMOD_BENCH_EXPORT")
    return Path(value)


def pytest_generate_tests(metafunc):
    if "artifact" in metafunc.fixturenames:
        from edgemod.manifest import read_manifest
        from edgemod.runtime.runners import coreml_can_predict

        export = read_manifest(_export_dir(metafunc.config), "export")
        names = [n for n, a in export.details["artifacts"].items() if a["target"] != "coreml" or coreml_can_predict()]
        metafunc.parametrize("artifact", names)
    if "threads" in metafunc.fixturenames:
        metafunc.parametrize("threads", [1, 2])


@pytest.fixture(scope="session")
def export_dir(request) -> Path:
    return _export_dir(request.config)


@pytest.fixture(scope="session")
def one_item(export_dir):
    """The first golden item's exact inputs: what a device feeds the model."""
    import json

    from edgemod.manifest import read_manifest
    from edgemod.runtime.golden import decode_tensor

    export = read_manifest(export_dir, "export")
    first = next(iter(export.details["artifacts"].values()))
    record = json.loads((export_dir / first["golden"]["file"]).read_text())
    return tuple(record["input_names"]), {n: decode_tensor(t) for n, t in record["items"][0]["inputs"].items()}
