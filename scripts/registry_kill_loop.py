"""Kill `edgemod publish` with SIGKILL at random times, then check that the registry recovers.

Each trial copies a small local registry (tiny@1.0.0 on `stable`), starts
`edgemod publish GATE --name tiny --version 2.0.0 --channel stable` (every other trial without
`--channel`) in a subprocess, kills it after a delay drawn uniformly from the window in which a publish
writes to the registry (from its first write to its exit, measured on three untouched publishes first;
`--whole` draws from [0, exit] instead, most of which is interpreter start-up), and then runs:

1. `edgemod registry check` — what the kill left (a pending intent is expected: that is not damage);
2. the next writer, which must succeed at once: `edgemod promote tiny 1.0.0 --channel canary` (it
   rewrites history, channels.json and the index) or, in alternate pairs of trials, `edgemod publish
   GATE --name tiny --version 3.0.0` without --channel (it leaves channels.json alone, so it clears a
   dead writer's `channels.json.lock` only by sweeping dead writers' leftovers);
3. a look for dead writers' files — any `.lock`, `.tmp` or `.pending/` file left now is a failure;
4. `edgemod registry check` again — any finding now is an inconsistent state.

Prints per-trial lines and the totals; exits 1 if any state stayed inconsistent, a dead writer's file
survived the next writer, or a next command waited.

    .venv/bin/python scripts/registry_kill_loop.py [--trials 100] [--gate runs/x/gate] [--seed 0]

Without --gate it builds the tiny text pipeline of the test suite (tests/conftest.py) in a temp folder.
"""
from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
NO_WAIT_S = 10.0


def edgemod(*args: str, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "edgemod.cli", *args], cwd=PROJECT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run(*args: str, env: dict[str, str]) -> tuple[int, str, float]:
    started = time.monotonic()
    process = edgemod(*args, env=env)
    _, err = process.communicate(timeout=120)
    return process.returncode, err, time.monotonic() - started


def time_publish(publish: list[str], pristine: Path, registry: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds to the first registry write, seconds to exit) of one untouched publish: the first write
    is its intent, which creates `.pending/` (polled every millisecond)."""
    shutil.copytree(pristine, registry)
    shutil.rmtree(registry / ".pending", ignore_errors=True)
    started = time.monotonic()
    process = edgemod(*publish, str(registry), env=env)
    first_write = None
    while process.poll() is None:
        if first_write is None and (registry / ".pending").exists():
            first_write = time.monotonic() - started
        time.sleep(0.001)
    exited = time.monotonic() - started
    assert process.returncode == 0, process.stderr.read()
    return (first_write if first_write is not None else 0.0), exited


def build_gate(work: Path) -> Path:
    sys.path.insert(0, str(PROJECT / "tests"))
    from conftest import tiny_text_export

    from edgemod.benchmarks import bench, gate

    tiny_text_export(work, "export=[{target: onnx, quant: int8_dynamic}]")
    bench.run(work / "export", work / "bench", quick=True)
    gate.run(work / "bench", work / "gate", overrides=["budgets.size_mb={onnx: 50}", "budgets.parity.min_decision_agreement=0.5"])
    return work / "gate"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=100)
    parser.add_argument("--gate", type=Path, help="a passing gate run (default: build the tiny test pipeline)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--whole", action="store_true", help="kill uniformly over the whole command, start-up included")
    args = parser.parse_args()
    sys.path.insert(0, str(PROJECT))
    from edgemod.registry.config import RegistryConfig
    from edgemod.registry.core import Registry
    from edgemod.registry.signing import generate_keypair

    rng = random.Random(args.seed)
    work = Path(tempfile.mkdtemp(prefix="edgemod-kill-loop-"))
    try:
        gate = (args.gate or build_gate(work / "run")).resolve()
        private, _ = generate_keypair(work / "keys")
        pristine = work / "pristine"
        Registry(RegistryConfig(url=str(pristine), signing_key=private)).publish(gate, "tiny", "1.0.0", channel="stable")
        env = {**os.environ, "EDGEMOD_SIGNING_KEY": str(private)}
        env.pop("EDGEMOD_CRASH_AT", None)
        publish = ["publish", str(gate), "--name", "tiny", "--version", "2.0.0", "--channel", "stable", "--registry"]
        windows = sorted(time_publish(publish, pristine, work / f"timing-{attempt}", env) for attempt in range(3))
        first_write, duration = (0.0, windows[1][1]) if args.whole else windows[1]
        print(f"one publish (subprocess) writes to the registry from {windows[1][0]:.3f} s to its exit at "
              f"{windows[1][1]:.3f} s; killing uniformly within [{first_write:.3f}, {duration:.3f}] s")
        next_writers = (["promote", "tiny", "1.0.0", "--channel", "canary"],
                        ["publish", str(gate), "--name", "tiny", "--version", "3.0.0"])
        dirty = inconsistent = waited = committed = survived = 0
        for trial in range(args.trials):
            registry = work / f"trial-{trial}"
            shutil.copytree(pristine, registry)
            delay = rng.uniform(first_write, duration)
            killed = publish if trial % 2 == 0 else [a for a in publish if a not in ("--channel", "stable")]
            process = edgemod(*killed, str(registry), env=env)
            time.sleep(delay)
            process.send_signal(signal.SIGKILL)
            process.communicate()
            before, _, _ = run("registry", "check", "--registry", str(registry), env=env)
            writer = next_writers[trial // 2 % 2]
            code, err, seconds = run(*writer, "--registry", str(registry), env=env)
            left = sorted(p.relative_to(registry).as_posix() for p in registry.rglob("*") if p.is_file() and (
                p.name.endswith((".lock", ".tmp")) or p.parent.name == ".pending"))
            after, report, _ = run("registry", "check", "--registry", str(registry), env=env)
            dirty += before != 0
            waited += code != 0 or seconds > NO_WAIT_S
            survived += bool(left)
            inconsistent += after != 0
            committed += (registry / "tiny/2.0.0/release.json").exists()
            state = "committed" if (registry / "tiny/2.0.0/release.json").exists() else "rolled back"
            print(f"trial {trial:3d}: publish{' --channel' if killed is publish else ''} killed at {delay:.3f} s "
                  f"(exit {process.returncode}); check right after: {'found leftovers' if before else 'clean'}; "
                  f"next writer ({writer[0]}) {code} in {seconds:.2f} s; 2.0.0 {state}; "
                  f"dead writers' files after it: {left or 'none'}; check after: {'INCONSISTENT' if after else 'clean'}")
            if after or code:
                print(report if after else err)
            shutil.rmtree(registry)
        print(f"\n{args.trials} kills: {dirty} left work for the next writer, {committed} had committed 2.0.0, "
              f"{waited} next commands failed or waited > {NO_WAIT_S:.0f} s, {survived} left dead writers' lock, "
              f"temp or pending files behind the next writer, {inconsistent} inconsistent states")
        return 1 if inconsistent or waited or survived else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
