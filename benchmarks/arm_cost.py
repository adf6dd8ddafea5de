"""A deterministic ARM cost for TFLite artifacts: instructions executed per inference on emulated phone
cores, counted with no phone.

The artifact runs in ai-edge-litert's aarch64 build (XNNPACK, 1 thread) under `qemu-aarch64` user
mode with `-cpu cortex-a76` or `cortex-a53`; a QEMU plugin (benchmarks/qemu_plugin/, GPL-2.0-or-later)
counts the instructions executed between markers the guest sets around `invoke()`. Counts compare
artifacts within one CPU class, not across classes (each class runs kernels tuned for its core).
Everything runs from `.arm/`, which `bash scripts/setup_arm.sh` builds.

The guest is Debian's arm64 Python and cannot import edgemod: it gets a copy of the two stdlib-only
modules the TFLite runner needs (`edgemod.errors`, `edgemod.runtime.runners`), so inputs are bound,
quantized and dequantized exactly as the x86 runner does, with no second implementation.
"""
from __future__ import annotations

import importlib.util
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edgemod.errors import EdgemodError, unknown_choice

# CPU class (the device classes of recipes and reports) -> QEMU `-cpu` model.
ARM_CLASSES = {"arm64-a76": "cortex-a76", "arm64-a53": "cortex-a53"}

SETUP_FIX = "run `bash scripts/setup_arm.sh` (it builds .arm/ at the repository root; EDGEMOD_ARM_DIR: elsewhere)"
# The guest marks a point by calling close() on this fd minus k; the plugin records its total there.
MARKER_BASE = -0x5EED0000
# The line XNNPACK's delegate prints when LiteRT applies it (the notes' trap: without CPU files it is
# skipped silently and the counts are meaningless).
XNNPACK_LINE = "Created TensorFlow Lite XNNPACK delegate"
REPO = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class ArmSetup:
    """The tools `scripts/setup_arm.sh` left in one folder (`.arm/`), and its stamp."""

    root: Path
    stamp: dict = field(compare=False)

    @property
    def qemu(self) -> Path:
        return Path(self.stamp.get("qemu_path", "/usr/bin/qemu-aarch64"))

    @property
    def plugin(self) -> Path:
        return self.root / "plugin" / "libinsn_count.so"

    @property
    def python(self) -> Path:
        """The arm64 interpreter, by its path on the host (QEMU loads it from there)."""
        return self.root / "root" / "usr" / "bin" / "python3.11"

    @property
    def site(self) -> Path:
        return self.root / "site"

    def prefix(self, device_class: str) -> Path:
        """The `-L` folder of a CPU class: the arm64 root plus CPU files with that core's identity."""
        return self.root / "prefix" / device_class

    def describe(self) -> dict:
        """What a manifest records about the tools: versions and hashes that decide the counts."""
        packages = self.stamp.get("packages", {})
        return {"qemu": self.stamp.get("qemu"), "plugin_sha256": self.stamp.get("plugin_sha256"),
                "litert": packages.get("ai_edge_litert"), "numpy": packages.get("numpy"),
                "python": self.stamp.get("python"), "debian": self.stamp.get("debian"),
                "packages": dict(packages), "root": str(self.root)}


def find_setup(root: Path | None = None) -> ArmSetup | None:
    """The ARM tools folder, or None when `scripts/setup_arm.sh` has not completed there.

    Args:
        root: the folder; default `$EDGEMOD_ARM_DIR`, else `.arm/` at the repository root.
    """
    root = Path(root or os.environ.get("EDGEMOD_ARM_DIR") or REPO / ".arm")
    stamp = root / "setup.json"  # written last by the script: without it the folder is half made
    if not stamp.is_file():
        return None
    setup = ArmSetup(root.resolve(), json.loads(stamp.read_text()))
    needed = [setup.plugin, setup.python, *(setup.prefix(c) for c in ARM_CLASSES)]
    return setup if all(p.exists() for p in needed) else None


def require_setup(root: Path | None = None) -> ArmSetup:
    """`find_setup`, raising an error that says how to set up when it is missing."""
    setup = find_setup(root)
    if setup is None:
        where = root or os.environ.get("EDGEMOD_ARM_DIR") or REPO / ".arm"
        raise EdgemodError(f"the ARM cost tools are not set up in {where}", SETUP_FIX)
    return setup


def read_counts(path: Path) -> tuple[dict[int, int], int | None]:
    """The plugin's results file: {marker k: instructions executed until it}, and the final total."""
    markers, total = {}, None
    for line in Path(path).read_text().splitlines():
        kind, *values = line.split()
        if kind == "marker":
            markers[int(values[0])] = int(values[1])
        elif kind == "total":
            total = int(values[0])
    return markers, total


def count_tflite(setup: ArmSetup | None, model_path: str | Path, items: Sequence[dict[str, np.ndarray]], device_class: str,
                 *, input_names: tuple[str, ...] | None = None, warmup: int = 1, repeats: int = 2,
                 timeout: float = 1800.0) -> dict:
    """Instructions one inference of a TFLite model executes on an emulated ARM core, and its outputs.

    The guest builds edgemod's TFLite runner (XNNPACK, 1 thread), runs `warmup` inferences on item 0,
    then counts `repeats` bare `invoke()` calls on item 0 between markers, and the cost of an empty
    marker pair (Python's call and the marker itself), which is subtracted. Then it runs every item
    once and returns its scores, for golden replay against x86.

    Args:
        setup: from `find_setup()`; None: the default folder, or an error saying how to set it up.
        model_path: the .tflite file.
        items: input dicts `{input name: batch-1 array}`, as edgemod's runners take them.
        device_class: a key of `ARM_CLASSES`.
        input_names: the model's input names in argument order; default: the keys of `items[0]`.
        warmup: uncounted inferences first (the first one costs more: allocation, packing).
        repeats: counted inferences; the result is their median (the lower middle one for an even count).
        timeout: seconds before the emulated run is stopped (emulation is ~100-1000x slower).

    Returns:
        `{"class", "cpu", "threads": 1, "instructions_per_inference", "counted_invokes",
        "marker_overhead", "xnnpack": True, "delegate_partitions", "outputs", "wall_s"}`:
        `counted_invokes` are the raw spans (marker overhead included), `instructions_per_inference`
        is their median minus `marker_overhead`; `outputs` holds one `{"scores": float32 [1, C]}`
        per item, in order (what edgemod's runner returns).

    Raises:
        EdgemodError: unknown class, no items, the guest failed or timed out, or XNNPACK was not applied.
    """
    if device_class not in ARM_CLASSES:
        raise unknown_choice("ARM device class", device_class, ARM_CLASSES)
    if not items:
        raise EdgemodError("count_tflite needs at least one input item", "pass the golden items (batch-1 input dicts)")
    if warmup < 1 or repeats < 1:
        raise EdgemodError(f"warmup and repeats must be at least 1 (got {warmup}, {repeats})",
                           "count after one warm-up inference, at least once")
    setup = setup or require_setup()
    names = tuple(input_names or items[0])
    with tempfile.TemporaryDirectory(prefix="edgemod-arm-") as tmp:
        work = Path(tmp)
        spec = _write_guest(work, Path(model_path).resolve(), items, names, warmup, repeats)
        started = time.monotonic()
        proc = _run_guest(setup, device_class, work, spec, timeout)
        wall = time.monotonic() - started
        guest = _guest_report(work, proc, device_class)
        markers, _ = read_counts(work / "counts.txt")
        outputs = _read_outputs(work / "outputs.npz", len(items))
    counted, overhead = _invoke_counts(markers, repeats)
    return {"class": device_class, "cpu": ARM_CLASSES[device_class], "threads": 1,
            "instructions_per_inference": statistics.median_low(counted) - overhead,
            "counted_invokes": counted, "marker_overhead": overhead, "xnnpack": True,
            "delegate_partitions": guest["delegate_partitions"], "outputs": outputs, "wall_s": round(wall, 2)}


def _write_guest(work: Path, model: Path, items, names: tuple[str, ...], warmup: int, repeats: int) -> Path:
    """The guest's files in `work`: its script, the runner modules, the inputs and a spec."""
    if not model.is_file():
        raise EdgemodError(f"no TFLite model at {model}", "pass the path of an exported .tflite artifact")
    package = work / "guest" / "edgemod"
    (package / "runtime").mkdir(parents=True)
    for init in (package / "__init__.py", package / "runtime" / "__init__.py"):
        init.write_text("")
    for module in ("edgemod.errors", "edgemod.runtime.runners"):
        source = importlib.util.find_spec(module).origin
        shutil.copyfile(source, package.joinpath(*module.split(".")[1:]).with_suffix(".py"))
    (work / "guest" / "arm_guest.py").write_text(GUEST_SCRIPT)
    arrays = {}
    for i, item in enumerate(items):
        missing = set(names) - set(item)
        if missing:
            raise EdgemodError(f"input item {i} lacks {sorted(missing)}", f"give every item the inputs {list(names)}")
        arrays.update({f"{i}/{n}": np.asarray(item[n]) for n in names})
    np.savez(work / "items.npz", **arrays)
    spec = {"model": str(model), "input_names": list(names), "count": len(items), "warmup": warmup,
            "repeats": repeats, "marker_base": MARKER_BASE, "work": str(work)}
    (work / "spec.json").write_text(json.dumps(spec))
    return work / "spec.json"


def _run_guest(setup: ArmSetup, device_class: str, work: Path, spec: Path, timeout: float):
    """Runs the guest under QEMU with the counting plugin, in a fixed environment (`env -i`)."""
    # Same command line and environment every time: counts from process start move with them.
    env = {"PYTHONHASHSEED": "0", "PYTHONPATH": f"{work / 'guest'}:{setup.site}", "PYTHONNOUSERSITE": "1",
           "PYTHONDONTWRITEBYTECODE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "LC_ALL": "C"}
    command = [str(setup.qemu), "-L", str(setup.prefix(device_class)), "-cpu", ARM_CLASSES[device_class],
               "-plugin", f"{setup.plugin},out={work / 'counts.txt'}",
               str(setup.python), str(work / "guest" / "arm_guest.py"), str(spec)]
    try:
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise EdgemodError(f"the emulated ARM run ({device_class}) took longer than {timeout:.0f} s",
                           "raise `timeout`, or count fewer items and repeats") from None
    except OSError as error:
        raise EdgemodError(f"cannot start {setup.qemu}: {error}", SETUP_FIX) from None


def _guest_report(work: Path, proc, device_class: str) -> dict:
    """The guest's report, after checking that it succeeded and that XNNPACK ran the graph."""
    tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
    report = work / "guest.json"
    if proc.returncode < 0:  # a guest signal: typically XNNPACK's CPU detection reading the wrong CPU files
        raise EdgemodError(f"the emulated ARM run ({device_class}) crashed (signal {-proc.returncode}):\n{tail}",
                           "rebuild the ARM tools, whose per-class CPU files XNNPACK reads: "
                           "rm -rf .arm && bash scripts/setup_arm.sh")
    if proc.returncode != 0 or not report.is_file():
        raise EdgemodError(f"the emulated ARM run ({device_class}) failed (exit {proc.returncode}):\n{tail}",
                           "check that the model runs on x86 with edgemod's TFLite runner; if the ARM tools are "
                           "broken, rebuild them: rm -rf .arm && bash scripts/setup_arm.sh")
    guest = json.loads(report.read_text())
    if XNNPACK_LINE not in proc.stderr or guest["delegate_partitions"] < 1:
        raise EdgemodError(f"XNNPACK was not applied in the emulated ARM run ({device_class}): the count would "
                           f"measure LiteRT's reference kernels, not a phone's.\n{tail}",
                           "rebuild the CPU files XNNPACK reads: rm -rf .arm/prefix .arm/setup.json; "
                           "bash scripts/setup_arm.sh")
    return guest


def _invoke_counts(markers: dict[int, int], repeats: int) -> tuple[list[int], int]:
    """Instructions of each counted invoke and of an empty marker pair (median), from the markers."""
    expected = set(range(4 * repeats))
    if not expected <= set(markers):
        raise EdgemodError(f"the counting plugin recorded markers {sorted(markers)}, expected {sorted(expected)}",
                           f"rebuild the plugin: {SETUP_FIX}")
    empty = [markers[4 * r + 1] - markers[4 * r] for r in range(repeats)]
    counted = [markers[4 * r + 3] - markers[4 * r + 2] for r in range(repeats)]
    return counted, statistics.median_low(empty)


def _read_outputs(path: Path, count: int) -> list[dict[str, np.ndarray]]:
    with np.load(path) as data:
        outputs = [{} for _ in range(count)]
        for key in data.files:
            index, name = key.split("/", 1)
            outputs[int(index)][name] = data[key]
    return outputs


def reference_outputs(model_path: str | Path, items: Sequence[dict[str, np.ndarray]],
                      input_names: tuple[str, ...] | None = None) -> list[dict[str, np.ndarray]]:
    """The same items through edgemod's TFLite runner on this (x86) machine, 1 thread: the reference
    `replay_check` compares the ARM outputs with."""
    from edgemod.runtime.runners import load_runner

    runner = load_runner("tflite", model_path, tuple(input_names or items[0]), threads=1)
    return [{"scores": runner(item)} for item in items]


def argmax_decision(scores: np.ndarray) -> np.ndarray:
    """The default decision: the index of the highest score of each row."""
    return np.argmax(scores, axis=-1)


def replay_check(arm_outputs: Sequence[dict[str, np.ndarray]], x86_outputs: Sequence[dict[str, np.ndarray]],
                 decide: Callable[[np.ndarray], np.ndarray] = argmax_decision) -> dict:
    """Golden replay: do the ARM outputs reproduce the x86 ones?

    Args:
        arm_outputs: `count_tflite(...)["outputs"]`.
        x86_outputs: the same items' outputs on x86 (e.g. `reference_outputs`), in the same order.
        decide: scores -> decisions; default argmax (pass the recipe's threshold rule instead).

    Returns:
        `{"items", "max_abs_score_diff", "decision_mismatches", "mismatched_items", "decisions_identical"}`;
        the score difference is over every output tensor, the decisions over `scores`.
    """
    if len(arm_outputs) != len(x86_outputs):
        raise EdgemodError(f"{len(arm_outputs)} ARM outputs against {len(x86_outputs)} x86 outputs",
                           "replay the same items, in the same order, on both")
    max_diff, mismatched = 0.0, []
    for i, (arm, x86) in enumerate(zip(arm_outputs, x86_outputs)):
        if set(arm) != set(x86):
            raise EdgemodError(f"item {i}: ARM outputs {sorted(arm)} but x86 outputs {sorted(x86)}",
                               "compare outputs of the same model")
        for name in arm:
            diff = np.abs(np.asarray(arm[name], np.float64) - np.asarray(x86[name], np.float64))
            max_diff = max(max_diff, float(diff.max()) if diff.size else 0.0)
        key = "scores" if "scores" in arm else sorted(arm)[0]
        if not np.array_equal(decide(arm[key]), decide(x86[key])):
            mismatched.append(i)
    return {"items": len(arm_outputs), "max_abs_score_diff": max_diff, "decision_mismatches": len(mismatched),
            "mismatched_items": mismatched, "decisions_identical": not mismatched}


# The guest script: Debian's arm64 Python 3.11 with numpy and ai-edge-litert only. It imports the
# copied runner, so inputs are fed exactly as on x86.
GUEST_SCRIPT = '''\
"""Runs inside qemu-aarch64: counted invokes between markers, then every item's scores."""
import gc
import json
import os
import sys
from pathlib import Path

import numpy as np

from edgemod.runtime.runners import TFLiteRunner

WARM_MARKERS = 60000


def main(spec_path):
    spec = json.loads(Path(spec_path).read_text())
    work, names, base = Path(spec["work"]), tuple(spec["input_names"]), spec["marker_base"]

    def mark(k):
        try:
            os.close(base - k)  # fails with EBADF; the plugin records its instruction total here
        except OSError:
            pass

    with np.load(work / "items.npz") as data:
        items = [{n: data[f"{i}/{n}"] for n in names} for i in range(spec["count"])]
    runner = TFLiteRunner(spec["model"], names, threads=1)
    for _ in range(spec["warmup"]):
        runner(items[0])
    invoke = runner.interpreter.invoke

    def empty_span(k):
        mark(k)
        mark(k + 1)

    def invoke_span(k):
        mark(k)
        invoke()
        mark(k + 1)

    gc.collect()
    gc.disable()  # a collection inside a counted span adds hundreds of instructions now and then
    # Python 3.11 specializes bytecode after a few runs: warm the marker path so every span runs
    # the same code (markers from WARM_MARKERS on are not read).
    for i in range(32):
        empty_span(WARM_MARKERS + 2 * i)
    for r in range(spec["repeats"]):
        empty_span(4 * r)
        invoke_span(4 * r + 2)
    gc.enable()
    scores = {f"{i}/scores": runner(item) for i, item in enumerate(items)}
    np.savez(work / "outputs.npz", **scores)
    report = {"delegate_partitions": runner.delegate_partitions, "io": runner.io_details()}
    (work / "guest.json").write_text(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1])
'''
