"""`edgemod train` under torchrun: 2 CPU workers (gloo) against 1 process, and a killed worker.

Equivalence tolerance: with dropout off, the 2-worker run sees the same global batches and takes the
same updates, so weights agree to float reduction order (max |diff| < 1e-4; measured ~1.5e-6 after
40 steps) and test metrics to 1e-3. With dropout on, masks differ per rank; only the step count is
asserted equal and macro-F1 within 0.05.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgemod.errors import EdgemodError
from edgemod.manifest import read_manifest
from edgemod.training import label, train
from edgemod.training.distributed import DistributedContext, GlobalBatches

PROJECT = Path(__file__).resolve().parent.parent
WEAPONS = ["none", "firearm", "knife", "other_weapon"]  # the tiny vision recipe of test_export.py
EXACT = ["distill.epochs=3", "distill.patience=9", "student.options.dropout=0.0"]


@pytest.fixture(scope="module")
def text_label(tmp_path_factory):
    from conftest import tiny_text_recipe

    from edgemod.recipe import parse_recipe

    out = tmp_path_factory.mktemp("ddp") / "label"
    label.run(parse_recipe(tiny_text_recipe()), out)
    return out


def torchrun(label_dir: Path, out: Path, overrides: list[str], workers: int = 2, restarts: int = 0,
             extra_env: dict | None = None, program: tuple[str, ...] = ("-m", "edgemod.cli")) -> str:
    """Run `edgemod train` (or `program`, which takes edgemod's arguments) under torchrun; its output."""
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "EDGEMOD_CATALOG": str(PROJECT / "datasets.yaml"),
           "OMP_NUM_THREADS": "1", **(extra_env or {})}
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={workers}",
               f"--max-restarts={restarts}", *program, "train", str(label_dir), "--out", str(out)]
    for item in overrides:
        command += ["--set", item]
    log = out.parent / f"{out.name}.log"
    with log.open("w") as sink:  # a file: readable even after a timeout
        code = subprocess.run(command, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=120,
                              check=False).returncode
    text = log.read_text()
    assert code == 0, text[-4000:]
    return text


@pytest.fixture(scope="module")
def two_workers(text_label, tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "two"
    torchrun(text_label, out, EXACT)
    return read_manifest(out, "train"), out


def max_weight_diff(a: Path, b: Path) -> float:
    from safetensors.torch import load_file

    first, second = load_file(str(a / "model.safetensors")), load_file(str(b / "model.safetensors"))
    assert first.keys() == second.keys()
    return max(float((first[k] - second[k]).abs().max()) for k in first)


def test_two_workers_match_one_process(text_label, two_workers, tmp_path):
    one = train.run(text_label, tmp_path / "one", overrides=EXACT)
    two, two_dir = two_workers
    assert [h["step"] for h in two.metrics["history"]] == [h["step"] for h in one.metrics["history"]] == [10, 20, 30]
    assert max_weight_diff(tmp_path / "one", two_dir) < 1e-4
    for metric in ("macro_f1", "macro_auroc"):
        assert two.metrics["test"]["student"][metric] == pytest.approx(one.metrics["test"]["student"][metric], abs=1e-3)


def test_obfuscation_augment_draws_the_same_rows_on_every_rank(text_label, tmp_path):
    """Each epoch's clean-or-copy draw depends on (seed, epoch) only, so 2 workers still match 1 process."""
    overrides = [*EXACT, "distill.obfuscation_augment=0.5"]
    torchrun(text_label, tmp_path / "two", overrides)
    one = train.run(text_label, tmp_path / "one", overrides=overrides)
    assert [h["step"] for h in read_manifest(tmp_path / "two", "train").metrics["history"]] == \
        [h["step"] for h in one.metrics["history"]]
    assert max_weight_diff(tmp_path / "one", tmp_path / "two") < 1e-4


def test_with_dropout_steps_match_and_f1_is_close(text_label, tmp_path):
    one = train.run(text_label, tmp_path / "one")
    torchrun(text_label, tmp_path / "two", [])
    two = read_manifest(tmp_path / "two", "train")
    assert [h["step"] for h in two.metrics["history"]] == [h["step"] for h in one.metrics["history"]]
    assert abs(two.metrics["test"]["student"]["macro_f1"] - one.metrics["test"]["student"]["macro_f1"]) <= 0.05


def test_killed_worker_resumes_from_the_saved_step(text_label, two_workers, tmp_path):
    """Rank 1 dies after step 13 (mid epoch 2); torchrun restarts both; no finished step is repeated."""
    died = tmp_path / "rank-1-died"
    log = torchrun(text_label, tmp_path / "killed", EXACT, restarts=1, extra_env={"EDGEMOD_CHECKPOINT_EVERY": "2"},
                   program=(str(PROJECT / "tests" / "kill_rank_after_step.py"), "13", str(died)))
    assert died.exists()
    assert "resuming at step 12 (after epoch 1, batch 2 of epoch 2)" in log
    resumed = read_manifest(tmp_path / "killed", "train")
    reference, reference_dir = two_workers
    assert resumed.metrics["history"] == [{**h, "samples_per_s": r["samples_per_s"]} for h, r in
                                          zip(reference.metrics["history"], resumed.metrics["history"])]
    assert max_weight_diff(tmp_path / "killed", reference_dir) == 0.0


def test_global_batches_split_the_one_process_batches():
    import torch

    order = train._loader(torch.arange(10), 4, 0, 0)

    def epoch(batches):  # _fit re-seeds the order's generator at every epoch, on every rank
        order.generator.manual_seed(5)
        return [[int(i) for i in b] for b in batches]

    expected = epoch(order)
    shards = [epoch(GlobalBatches(order, rank, 3)) for rank in range(3)]
    for number, batch in enumerate(expected):
        assert sorted(i for rank in range(len(batch[:3])) for i in shards[rank][number]) == sorted(batch)
    assert expected[-1] == expected[-1][:2] and shards[2][-1] == expected[-1][:1]  # a short last batch: rank 2
    context = DistributedContext(world=3, rank=2)
    assert train._rank_share(2, 10, 4, context) == 0.0  # gets a padding row, weighted 0


def test_global_batch_must_split_evenly():
    with pytest.raises(EdgemodError, match="multiple of 3"):
        DistributedContext(world=3).rank_batch_size(32)
    assert DistributedContext(world=2).rank_batch_size(32) == 16


def test_single_process_context_is_a_no_op(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    context = DistributedContext.from_env().init()
    assert not context.enabled and context.is_main
    assert context.all_reduce_mean(2.5) == 2.5 and context.broadcast_object({"a": 1}) == {"a": 1}
    model = object()
    assert context.wrap(model) is model


def test_tiny_vision_two_workers_match_one_process(tmp_path):
    """Per-rank BatchNorm statistics (batch 8 vs 16) and augmentation draws differ: steps must match
    exactly, test macro-F1 within 0.05 (weights are not compared)."""
    import pandas as pd

    from edgemod.catalog import load_split
    from edgemod.recipe import parse_recipe

    rows = [{"key": row["key"], **{name: 0.85 if name == row["label"] else 0.05 for name in WEAPONS}}
            for split in ("train", "validation", "test")
            for _, row in load_split(f"weapons:{split}", max_items=40).iterrows()]
    pd.DataFrame(rows).to_parquet(tmp_path / "scores.parquet")
    recipe = {"name": "tiny-weapons", "task": "image-classification", "labels": WEAPONS,
              "data": {"train": "weapons:train", "validation": "weapons:validation", "test": "weapons:test",
                       "max_items_per_split": 40},
              "teachers": [{"name": "scores", "kind": "scores", "path": str(tmp_path / "scores.parquet")}],
              "student": {"arch": "test_vision_tiny", "image_size": 64},
              "distill": {"epochs": 2, "batch_size": 16, "lr": 0.003, "num_workers": 0},
              "thresholds": {"policy": "max_f1", "benign": "none"}}
    label.run(parse_recipe(recipe), tmp_path / "label")
    one = train.run(tmp_path / "label", tmp_path / "one")
    torchrun(tmp_path / "label", tmp_path / "two", [])
    two = read_manifest(tmp_path / "two", "train")
    assert [h["step"] for h in two.metrics["history"]] == [h["step"] for h in one.metrics["history"]] == [3, 6]
    assert abs(two.metrics["test"]["student"]["macro_f1"] - one.metrics["test"]["student"]["macro_f1"]) <= 0.05
