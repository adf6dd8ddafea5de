"""`edgemod registry prune`: old versions go, channel heads and their rollback predecessors stay,
history, channels and the index stay consistent, and a pruned version number is never reused.
(Kills at every step of a prune are in tests/test_registry_crash.py.)"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edgemod.errors import EdgemodError
from edgemod.registry.check import check
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.history import channel_stacks
from edgemod.registry.prune import plan_prune, prune
from edgemod.registry.refs import parse_ref
from edgemod.registry.signing import generate_keypair

PROJECT = Path(__file__).resolve().parent.parent
NAME = "tiny"


@pytest.fixture(scope="module")
def gate_dir(tmp_path_factory):
    from conftest import tiny_text_export

    from edgemod.benchmarks import bench, gate

    root = tmp_path_factory.mktemp("prune")
    tiny_text_export(root, "export=[{target: onnx, quant: int8_dynamic}]")
    bench.run(root / "export", root / "bench", quick=True)
    overrides = ["budgets.size_mb={onnx: 50}", "budgets.parity.min_decision_agreement=0.5"]
    assert gate.run(root / "bench", root / "gate", overrides=overrides)["verdict"] == "pass"
    return root / "gate"


@pytest.fixture
def registry(gate_dir, tmp_path) -> Registry:
    """stable: 1.0.0 → 1.1.0 → 1.2.0; canary: 1.3.0; 1.4.0 published, not promoted."""
    private, public = generate_keypair(tmp_path / "keys")
    target = Registry(RegistryConfig(url=str(tmp_path / "registry"), signing_key=private, trusted_keys=[public]))
    for version in ("1.0.0", "1.1.0", "1.2.0"):
        target.publish(gate_dir, NAME, version, channel="stable")
    target.publish(gate_dir, NAME, "1.3.0", channel="canary")
    target.publish(gate_dir, NAME, "1.4.0")
    return target


def committed(registry: Registry) -> list[str]:
    return registry.versions(NAME)


def test_plan_keeps_channel_heads_their_predecessors_and_unpromoted_versions():
    events = [{"event": "promote", "channel": "stable", "to": v} for v in ("1.0.0", "1.1.0", "1.0.0", "1.2.0")]
    events.append({"event": "promote", "channel": "canary", "to": "1.3.0"})
    versions = ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0", "0.9.0"]
    plan = plan_prune(NAME, versions, events, keep_previous=1)
    assert plan.kept == {"1.2.0": "stable", "1.0.0": "stable's previous", "1.3.0": "canary",
                         "1.4.0": "newer than every channel (not promoted yet)"}
    assert plan.removed == ["0.9.0", "1.1.0"]
    assert plan_prune(NAME, versions, events, keep_previous=2).removed == ["0.9.0"]
    no_channels = plan_prune(NAME, ["1.0.0", "2.0.0", "1.5.0"], [], keep_previous=1)
    assert no_channels.kept == {"2.0.0": "latest", "1.5.0": "latest's previous"} and no_channels.removed == ["1.0.0"]
    with pytest.raises(EdgemodError, match="negative"):
        plan_prune(NAME, versions, events, keep_previous=-1)


def test_prune_removes_old_versions_and_history_channels_index_stay_consistent(registry, tmp_path):
    root = Path(registry.backend.url)
    dry = prune(registry, NAME, keep_previous=1, dry_run=True)
    assert dry.removed == ["1.0.0"] and dry.bytes_removed > 0
    assert committed(registry) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    plan = prune(registry, NAME, keep_previous=1)
    assert plan.removed == ["1.0.0"]
    assert committed(registry) == ["1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    assert not (root / NAME / "1.0.0").exists(), "a pruned version leaves no folder behind"
    assert registry.history(NAME)[-1]["event"] == "prune" and registry.history(NAME)[-1]["versions"] == ["1.0.0"]
    assert registry.channels(NAME) == {"stable": "1.2.0", "canary": "1.3.0"}
    assert channel_stacks(registry.history(NAME))["stable"] == ["1.1.0", "1.2.0"]
    assert check(registry).findings == []
    assert check(registry, deep=True).findings == []
    # rollback goes to the kept predecessor, then no further: the pruned version is not a target
    assert registry.rollback(NAME, "stable")["to"] == "1.1.0"
    with pytest.raises(EdgemodError, match="no earlier version"):
        registry.rollback(NAME, "stable")
    with pytest.raises(EdgemodError, match="not in the registry"):
        registry.pull(parse_ref(f"{NAME}@1.0.0"), "onnx", tmp_path / "out")
    assert registry.pull(parse_ref(f"{NAME}@stable"), "onnx", tmp_path / "out").version == "1.1.0"
    # 1.2.0, rolled back from, is no channel's head nor predecessor, and older than canary's 1.3.0
    assert prune(registry, NAME, keep_previous=1).removed == ["1.2.0"]
    assert committed(registry) == ["1.1.0", "1.3.0", "1.4.0"] and check(registry).findings == []


def test_a_pruned_version_number_is_never_published_again(registry, gate_dir):
    prune(registry, NAME, keep_previous=0)
    assert committed(registry) == ["1.2.0", "1.3.0", "1.4.0"]
    with pytest.raises(EdgemodError, match="pruned; versions are immutable") as error:
        registry.publish(gate_dir, NAME, "1.0.0")
    assert "new version" in error.value.hint
    assert check(registry).findings == []


def test_leftover_files_of_a_pruned_version_are_found_and_repaired(registry):
    prune(registry, NAME, keep_previous=0)
    root = Path(registry.backend.url)
    stray = root / NAME / "1.1.0" / "onnx" / "model.onnx"
    stray.parent.mkdir(parents=True)
    stray.write_bytes(b"left over by a pruner killed mid-way, whose intent was lost")
    findings = check(registry).findings
    assert [f.problem for f in findings] == ["pruned in history, but its files remain"]
    report = check(registry, repair=True)
    assert any("pruned" in action for action in report.repaired) and report.findings == []
    assert not stray.exists()


def test_prune_cli_on_every_model_prints_what_it_kept_and_removed(registry):
    run = subprocess.run([sys.executable, "-m", "edgemod.cli", "registry", "prune", "--keep-previous", "0", "--dry-run",
                          "--registry", registry.backend.url], cwd=PROJECT, capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    assert "tiny: kept 1.2.0 (stable), 1.3.0 (canary), 1.4.0 (newer than every channel" in " ".join(run.stderr.split())
    assert "would remove 1.0.0, 1.1.0" in run.stderr
    assert committed(registry) == ["1.0.0", "1.1.0", "1.2.0", "1.3.0", "1.4.0"]
    missing = subprocess.run([sys.executable, "-m", "edgemod.cli", "registry", "prune", "nope", "--registry",
                              registry.backend.url], cwd=PROJECT, capture_output=True, text=True, check=False)
    assert missing.returncode == 2 and "no model 'nope'" in missing.stderr and "fix:" in missing.stderr
