"""Latency of each exported artifact in its runtime, batch 1 (see conftest.py for how to run)."""
from edgemod.manifest import read_manifest
from edgemod.runtime.runners import load_runner


def test_artifact_latency(benchmark, export_dir, one_item, artifact, threads):
    record = read_manifest(export_dir, "export").details["artifacts"][artifact]
    names, item = one_item
    runner = load_runner(record["target"], export_dir / record["file"], names, threads)
    benchmark.extra_info.update({"target": record["target"], "scheme": record["scheme"], "threads": threads})
    scores = benchmark(runner, item)
    assert scores.shape == (1, len(read_manifest(export_dir, "export").details["labels"]))
