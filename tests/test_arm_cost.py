"""The ARM cost (benchmarks/arm_cost.py): the plugin counts exactly, counts of a model repeat, its ARM
outputs replay the x86 ones, and a bigger model costs more.

Skipped when `bash scripts/setup_arm.sh` has not run; EDGEMOD_REQUIRE_ARM=1 (CI) fails instead.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import numpy as np
import pytest

from edgemod.benchmarks import arm_cost
from edgemod.errors import EdgemodError

REQUIRED = os.environ.get("EDGEMOD_REQUIRE_ARM") == "1"

# marker k = close(-0x5EED0000 - k): 4 instructions, `svc` last; LOOP n: 1 + 2n instructions.
PROGRAM = """
.macro MARK k
    mov w0, #((-0x5EED0000 - \\k) & 0xffff)
    movk w0, #(((-0x5EED0000 - \\k) >> 16) & 0xffff), lsl #16
    mov x8, #57
    svc #0
.endm
.macro LOOP n
    ldr x1, =\\n
1:  subs x1, x1, #1
    b.ne 1b
.endm
.global _start
_start:
    MARK 0
    LOOP {n1}
    MARK 1
    LOOP {n2}
    MARK 2
    mov x0, #0
    mov x8, #93
    svc #0
"""


def _missing(what: str):
    message = f"{what}; run `bash scripts/setup_arm.sh`"
    if REQUIRED:
        pytest.fail(f"EDGEMOD_REQUIRE_ARM=1 but {message}")
    pytest.skip(message)


@pytest.fixture(scope="module")
def arm():
    setup = arm_cost.find_setup()
    if setup is None:
        _missing("the ARM cost tools are not set up")
    return setup


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Two tiny image classifiers (3x16x16 -> 3 scores), the second with twice the channels."""
    torch = pytest.importorskip("torch")
    from edgemod.export.tflite import export_tflite

    class Tiny(torch.nn.Module):
        def __init__(self, channels):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, channels, 3, padding=1)
            self.head = torch.nn.Linear(channels, 3)

        def forward(self, image):
            return self.head(torch.relu(self.conv(image)).mean((2, 3)))

    out = tmp_path_factory.mktemp("arm-models")
    models = {}
    for channels in (8, 16):
        torch.manual_seed(channels)
        sample = {"image": np.zeros((1, 3, 16, 16), np.float32)}
        models[channels] = export_tflite(Tiny(channels).eval(), sample, ("image",), out / f"tiny{channels}.tflite")
    return models


@pytest.fixture(scope="module")
def items():
    rng = np.random.default_rng(0)
    return [{"image": rng.standard_normal((1, 3, 16, 16)).astype(np.float32)} for _ in range(3)]


@pytest.fixture(scope="module")
def counts(arm, tiny_models, items):
    """count_tflite results, computed once per (channels, class, run)."""
    cache = {}

    def get(channels, device_class, run=0):
        key = (channels, device_class, run)
        if key not in cache:
            cache[key] = arm_cost.count_tflite(arm, tiny_models[channels], items, device_class)
        return cache[key]

    return get


def test_plugin_counts_exactly(arm, tmp_path):
    gcc = shutil.which("aarch64-linux-gnu-gcc")
    if gcc is None:
        _missing("aarch64-linux-gnu-gcc is not installed")
    n1, n2 = 1000, 100_000
    (tmp_path / "prog.S").write_text(PROGRAM.format(n1=n1, n2=n2))
    subprocess.run([gcc, "-static", "-nostdlib", "-o", str(tmp_path / "prog"), str(tmp_path / "prog.S")], check=True)
    out = tmp_path / "counts.txt"
    subprocess.run([str(arm.qemu), "-plugin", f"{arm.plugin},out={out}", str(tmp_path / "prog")], check=True)
    markers, total = arm_cost.read_counts(out)
    # A marker's total includes its own 4 instructions; between markers: the loop and the next marker.
    assert markers == {0: 4, 1: 4 + (1 + 2 * n1) + 4, 2: 4 + (1 + 2 * n1) + 4 + (1 + 2 * n2) + 4}
    assert total == markers[2] + 3  # mov, mov, svc (exit)


@pytest.mark.parametrize("device_class", sorted(arm_cost.ARM_CLASSES))
def test_counts_repeat_and_outputs_replay_x86(counts, tiny_models, items, device_class):
    first, second = counts(8, device_class, 0), counts(8, device_class, 1)
    assert first["xnnpack"] and first["delegate_partitions"] >= 1
    assert first["cpu"] == arm_cost.ARM_CLASSES[device_class] and first["threads"] == 1
    a, b = first["instructions_per_inference"], second["instructions_per_inference"]
    assert a > 10_000 and abs(a - b) <= 1e-4 * a, (first["counted_invokes"], second["counted_invokes"])
    reference = arm_cost.reference_outputs(tiny_models[8], items)
    replay = arm_cost.replay_check(first["outputs"], reference)
    assert replay["items"] == len(items) and replay["decisions_identical"]
    assert replay["max_abs_score_diff"] < 1e-5


@pytest.mark.parametrize("device_class", sorted(arm_cost.ARM_CLASSES))
def test_twice_the_channels_executes_more(counts, device_class):
    small, big = counts(8, device_class), counts(16, device_class)
    assert big["instructions_per_inference"] > 1.3 * small["instructions_per_inference"]


def test_replay_check_names_flipped_decisions():
    x86 = [{"scores": np.array([[0.1, 0.9]], np.float32)}, {"scores": np.array([[0.6, 0.4]], np.float32)}]
    arm = [{"scores": np.array([[0.1, 0.9]], np.float32)}, {"scores": np.array([[0.4, 0.6]], np.float32)}]
    replay = arm_cost.replay_check(arm, x86)
    assert replay["decision_mismatches"] == 1 and replay["mismatched_items"] == [1]
    assert replay["max_abs_score_diff"] == pytest.approx(0.2)
    assert arm_cost.replay_check(arm, x86, decide=lambda s: s[..., 1] > 0.3)["decisions_identical"]


def test_missing_setup_says_how_to_fix(tmp_path):
    assert arm_cost.find_setup(tmp_path) is None
    with pytest.raises(EdgemodError, match="setup_arm.sh"):
        arm_cost.require_setup(tmp_path)
