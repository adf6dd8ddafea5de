"""Fault injection: a real `edgemod publish | promote | rollback` subprocess is killed (SIGKILL, and
SIGINT for some) at every named step of the registry's commit protocol (edgemod/registry/crashpoints.py),
on a local folder and on an S3 server (moto, on loopback). Then the invariants must hold once the next
writer (or `edgemod registry check --repair`) has run: every committed release is in the index and the
history exactly once, channels point only at committed releases, nothing is pending, no temp or lock
file is left, and the next command did not wait for a lock. On a local folder the next writer also
meets dead writers' lock and temp files planted beside what the kill left, some on keys it never
writes itself (another model's, or channels.json under a publish without --channel): it must clear
them all. A killed `edgemod pull` leaves `--out` as the previous complete pull or the new one, never
a mix, writes nowhere else, and a re-run finishes."""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from edgemod.fsutil import sha256_bytes
from edgemod.registry.check import check
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.crashpoints import CRASH_AT, CRASH_POINTS, CRASH_SIGNAL
from edgemod.registry.history import channel_stacks
from edgemod.registry.pull import PULL_RECORD, plan_files
from edgemod.registry.refs import parse_ref
from edgemod.registry.signing import generate_keypair, load_trusted_keys, verify_release
from edgemod.registry.store import RELEASE, SIGNATURE

PROJECT = Path(__file__).resolve().parent.parent
NAME = "tiny"
NO_WAIT_S = 10.0  # far below the 30 s a lock used to be waited for: the next writer must not wait at all
SIGINT_POINTS = ("publish:after-files", "publish:after-release-written", "lock:held")
# What the killed command did, once recovered: (committed 2.0.0?, where `stable` points).
BEFORE, AFTER = "before", "after"
# The command after the kill: a writer that moves a channel (and so rewrites channels.json, history and
# index), a writer that publishes without --channel (leaves channels.json alone), or `check --repair`.
PROMOTE, PUBLISH, REPAIR = "promote canary", "publish 3.0.0", "check --repair"


def outcome(point: str) -> str:
    """Whether a kill at `point` lands before or after the operation's commit point."""
    op, _, step = point.partition(":")
    if op == "publish":
        order = [p for p in CRASH_POINTS if p.startswith("publish:")]
        return AFTER if order.index(point) >= order.index("publish:after-release-written") else BEFORE
    if op == "lock":
        return AFTER  # the first lock a publish takes guards its history append, after the commit
    return BEFORE if step == "after-intent" else AFTER


def command(point: str, gate: Path, channel: bool = True) -> list[str]:
    op = point.split(":")[0]
    if op in ("publish", "lock"):
        return ["publish", str(gate), "--name", NAME, "--version", "2.0.0", *(["--channel", "stable"] if channel else [])]
    if op == "prune":  # stable: 1.0.0 then 1.1.0; keeping no earlier version removes 1.0.0
        return ["registry", "prune", NAME, "--keep-previous", "0"]
    if op == "promote":
        return ["promote", NAME, "1.0.0", "--channel", "stable"]
    return ["rollback", NAME, "--channel", "stable"]


def expected_stable(point: str, channel: bool = True) -> str:
    op = point.split(":")[0]
    if outcome(point) == BEFORE or not channel or op == "prune":
        return "1.1.0"
    return "2.0.0" if op in ("publish", "lock") else "1.0.0"


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A passing gate run (one ONNX export: cheap), keys, and a pristine registry folder with
    tiny@1.0.0 and tiny@1.1.0, `stable` promoted to each in turn (so a rollback has somewhere to go)."""
    from conftest import tiny_text_export

    from edgemod.benchmarks import bench, gate

    root = tmp_path_factory.mktemp("crash")
    tiny_text_export(root, "export=[{target: onnx, quant: int8_dynamic}]")
    bench.run(root / "export", root / "bench", quick=True)
    overrides = ["budgets.size_mb={onnx: 50}", "budgets.parity.min_decision_agreement=0.5"]
    assert gate.run(root / "bench", root / "gate", overrides=overrides)["verdict"] == "pass"
    private, public = generate_keypair(root / "keys")
    pristine = root / "pristine"
    registry = Registry(RegistryConfig(url=str(pristine), signing_key=private, trusted_keys=[public]))
    for version in ("1.0.0", "1.1.0"):
        registry.publish(root / "gate", NAME, version, channel="stable")
    return {"gate": root / "gate", "key": private, "public": public, "pristine": pristine}


@pytest.fixture(scope="module")
def s3_endpoint():
    """moto's S3 server on loopback, with dummy credentials in the environment."""
    from moto_s3 import moto_s3_server

    with moto_s3_server("crash") as endpoint:
        yield endpoint


def copy_registry(world, where: str, tmp_path: Path, endpoint: str | None, source: Path | None = None) -> Registry:
    """A copy of the pristine registry (or of `source`): a folder, or a fresh prefix in the bucket."""
    source = source or world["pristine"]
    if where == "local":
        root = tmp_path / "registry"
        shutil.copytree(source, root)
        url = str(root)
    else:
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        prefix = f"{tmp_path.name}-{time.monotonic_ns()}"
        for path in sorted(source.rglob("*")):
            relative = path.relative_to(source).as_posix()
            if path.is_file() and not relative.startswith(".tmp"):
                client.put_object(Bucket="crash", Key=f"{prefix}/{relative}", Body=path.read_bytes())
        url = f"s3://crash/{prefix}"
    return Registry(RegistryConfig(url=url, signing_key=world["key"], trusted_keys=[world["public"]],
                                   s3_endpoint_url=endpoint))


def cli(registry: Registry, args: list[str], world, endpoint: str | None, **env: str) -> subprocess.CompletedProcess:
    """The real CLI in a subprocess, from the tree under test (cwd = its repo root)."""
    environment = {**os.environ, "EDGEMOD_SIGNING_KEY": str(world["key"]), **env}
    for name in (CRASH_AT, CRASH_SIGNAL):
        if name not in env:
            environment.pop(name, None)
    if endpoint:
        environment["EDGEMOD_S3_ENDPOINT_URL"] = endpoint
    return subprocess.run([sys.executable, "-c", INTERRUPTIBLE_CLI, *args, "--registry", registry.backend.url],
                          cwd=PROJECT, env=environment, capture_output=True, text=True, timeout=120, check=False)


# `python -m edgemod.cli` with Ctrl-C as in a terminal: a CI job started in the background inherits SIGINT
# ignored, and Python then never raises KeyboardInterrupt, so the SIGINT crash points would do nothing.
INTERRUPTIBLE_CLI = ("import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
                     "runpy.run_module('edgemod.cli', run_name='__main__', alter_sys=True)")


# ---------------------------------------------------------------------------------------------- invariants


def assert_consistent(registry: Registry) -> None:
    """Every invariant of the commit protocol, checked directly, and `registry check` agrees."""
    keys = registry.backend.list("")
    assert not [k for k in keys if k.startswith(".pending/")], "an intent is still pending"
    releases = {k.split("/")[1] for k in keys if k.startswith(f"{NAME}/") and k.endswith("/release.json")}
    uncommitted = {k for k in keys if k.startswith(f"{NAME}/") and k.count("/") >= 2
                   and k.split("/")[1] not in releases and "/.upload/" not in k}
    assert not uncommitted, f"files of an uncommitted version remain: {sorted(uncommitted)}"
    events = registry.history(NAME)
    pruned = {v for e in events if e["event"] == "prune" for v in e["versions"]}
    assert not pruned & releases, "a pruned version is still committed"
    published = Counter(e["version"] for e in events if e["event"] == "publish" and e["version"] not in pruned)
    assert published == Counter(dict.fromkeys(releases, 1)), "each committed release is published exactly once"
    derived = {channel: stack[-1] for channel, stack in channel_stacks(events).items()}
    assert set(derived.values()) <= releases, "a channel points at an uncommitted version"
    assert registry.channels(NAME) == derived
    entry = registry.index()["models"][NAME]
    assert set(entry["versions"]) == releases and entry["channels"] == derived
    if registry.backend.url.startswith("/"):
        root = Path(registry.backend.url)
        leftovers = [p for p in root.rglob("*") if p.is_file() and p.name.endswith((".tmp", ".lock"))]
        assert not leftovers, f"temp or lock files remain: {leftovers}"
    report = check(registry)
    assert report.findings == [] and report.in_progress == [], report


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def plant_dead_writers_leftovers(root: Path) -> list[Path]:
    """What killed writers leave in a local folder, as a dead pid's: unheld lock files (with their holder
    record) on every key a writer locks, also another model's, and temp files in `.tmp/`."""
    pid = dead_pid()
    holder = json.dumps({"host": socket.gethostname(), "pid": pid, "process_start": "1", "started_unix": time.time()})
    locks = [root / "index.json.lock", root / NAME / "channels.json.lock", root / NAME / "history.jsonl.lock",
             root / "other-model" / "channels.json.lock"]
    temps = [root / ".tmp" / f"{socket.gethostname()}-{pid}-plant{i}.tmp" for i in range(2)]
    for path in [*locks, *temps]:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(holder)
    return [*locks, *temps]


def crash_and_recover(point: str, signal_name: str, where: str, world, tmp_path, endpoint, recovery: str,
                      channel: bool = True) -> Registry:
    """Kill `command(point)` at `point`, then run `recovery` and check every invariant. On a local folder,
    dead writers' lock and temp files are planted before `recovery`: a writer must clear them as
    `check --repair` does, even those on keys it never writes itself."""
    registry = copy_registry(world, where, tmp_path, endpoint)
    crashed = cli(registry, command(point, world["gate"], channel), world, endpoint,
                  **{CRASH_AT: point, CRASH_SIGNAL: signal_name})
    if signal_name == "KILL":
        assert crashed.returncode == -signal.SIGKILL, (point, crashed.returncode, crashed.stderr[-2000:])
        assert check(registry).findings, f"a kill at {point} left nothing for `registry check` to report"
    else:
        assert crashed.returncode == 130, (point, crashed.returncode, crashed.stderr[-2000:])
        assert "Traceback" not in crashed.stderr
    planted = plant_dead_writers_leftovers(Path(registry.backend.url)) if where == "local" else []
    started = time.monotonic()
    if recovery == REPAIR:
        recovered = cli(registry, ["registry", "check", "--repair"], world, endpoint)
    elif recovery == PUBLISH:  # the next writer publishes, without --channel: it does not write channels.json
        recovered = cli(registry, ["publish", str(world["gate"]), "--name", NAME, "--version", "3.0.0"], world, endpoint)
    else:  # the next writer, on another channel, completes or rolls back what the dead one left
        recovered = cli(registry, ["promote", NAME, "1.1.0", "--channel", "canary"], world, endpoint)
    elapsed = time.monotonic() - started
    assert recovered.returncode == 0, (point, recovered.stderr[-2000:])
    assert elapsed < NO_WAIT_S, f"the next command after a kill at {point} took {elapsed:.1f} s"
    assert not [p for p in planted if p.exists()], f"{recovery} left dead writers' files: {planted}"
    assert_consistent(registry)
    committed = registry.backend.get(f"{NAME}/2.0.0/release.json") is not None
    assert committed == (outcome(point) == AFTER and point.split(":")[0] in ("publish", "lock"))
    assert (registry.backend.get(f"{NAME}/3.0.0/release.json") is not None) == (recovery == PUBLISH)
    assert registry.channels(NAME)["stable"] == expected_stable(point, channel), point
    if point.startswith("prune:"):
        assert (registry.backend.get(f"{NAME}/1.0.0/release.json") is None) == (outcome(point) == AFTER), point
    return registry


# ---------------------------------------------------------------------------------------------- the tests


WRITER_POINTS = [p for p in CRASH_POINTS if not p.startswith("pull:")]  # a pull writes only --out: below
# A publish without --channel passes every publish step but the promote event.
NO_CHANNEL_POINTS = [p for p in WRITER_POINTS if p.startswith("publish:") and p != "publish:after-promote-event"]
# The default suite kills a publish without --channel before and at its commit point; the rest is `slow`.
NO_CHANNEL_DEFAULT = ("publish:during-upload", "publish:after-release-written")
# The next writer is mostly a promote (the cheaper subprocess); the planted locks of another model are
# on keys it never writes. A publish without --channel follows the kill that leaves channels.json.lock
# (a promote would retake that lock itself) and every fourth point. A kill that leaves history.jsonl's
# lock is `slow`: every writer of the model takes that lock anyway.
LOCAL_CASES = [pytest.param(p, True, PUBLISH if p == "lock:wrote-channels" or i % 4 == 0 else PROMOTE, id=p,
                            marks=pytest.mark.slow if p == "lock:wrote-history" else ())
               for i, p in enumerate(WRITER_POINTS)] + [
    pytest.param(p, False, (PROMOTE, PUBLISH)[i % 2], id=f"{p}-no-channel",
                 marks=() if p in NO_CHANNEL_DEFAULT else pytest.mark.slow) for i, p in enumerate(NO_CHANNEL_POINTS)]
S3_POINTS = [p for p in WRITER_POINTS if not p.startswith("lock:")]  # a bucket has no lock files
# Each S3 case costs ~4 s (boto3 starts in every subprocess): the default suite covers each phase on S3
# (before, at and after a commit point); the full S3 sweep is `slow`.
S3_DEFAULT = ("publish:during-upload", "publish:after-release-written", "publish:after-history", "promote:after-history")
S3_CASES = [pytest.param(p, True, (REPAIR, PROMOTE)[i % 2], id=p, marks=() if p in S3_DEFAULT else pytest.mark.slow)
            for i, p in enumerate(S3_POINTS)] + [
    pytest.param(p, False, (PUBLISH, REPAIR)[i % 2], id=f"{p}-no-channel", marks=pytest.mark.slow)
    for i, p in enumerate(NO_CHANNEL_POINTS)]


@pytest.mark.parametrize(("point", "channel", "recovery"), LOCAL_CASES)
def test_sigkill_at_every_step_on_a_local_registry(point, channel, recovery, world, tmp_path):
    """The next writer (a publish or a promote: `check --repair` is below) clears what the kill left."""
    crash_and_recover(point, "KILL", "local", world, tmp_path, None, recovery, channel)


@pytest.mark.slow
@pytest.mark.parametrize("point", WRITER_POINTS)
def test_sigkill_then_repair_at_every_step_on_a_local_registry(point, world, tmp_path):
    crash_and_recover(point, "KILL", "local", world, tmp_path, None, REPAIR)


@pytest.mark.parametrize(("point", "channel", "recovery"), S3_CASES)
def test_sigkill_at_every_step_on_an_s3_registry(point, channel, recovery, world, tmp_path, s3_endpoint):
    crash_and_recover(point, "KILL", "s3", world, tmp_path, s3_endpoint, recovery, channel)


@pytest.mark.parametrize(("point", "recovery"), zip(SIGINT_POINTS, (PROMOTE, PUBLISH, REPAIR), strict=True))
def test_sigint_at_a_step_finishes_or_rolls_back_before_exiting(point, recovery, world, tmp_path):
    crash_and_recover(point, "INT", "local", world, tmp_path, None, recovery)


@pytest.mark.slow
@pytest.mark.parametrize(("point", "where"), [(p, w) for p in WRITER_POINTS for w in ("local", "s3")
                                              if not (w == "s3" and p.startswith("lock:"))])
def test_sigint_at_every_step_on_both_backends(point, where, world, tmp_path, s3_endpoint):
    endpoint = s3_endpoint if where == "s3" else None
    crash_and_recover(point, "INT", where, world, tmp_path, endpoint, REPAIR)


def test_every_named_step_is_a_listed_crash_point():
    """The production code only names steps; each must be in CRASH_POINTS, so the sweep above covers it."""
    import re

    named = set()
    for path in (PROJECT / "edgemod/registry").glob("*.py"):
        named |= set(re.findall(r'crash_point\("([a-z]+:[a-z-]+)"\)', path.read_text()))
    assert named and named <= set(CRASH_POINTS)


def test_what_an_older_edgemod_left_is_reported_and_repaired(world, tmp_path):
    """The states the issue found: a release committed with no history or index entry (and no intent),
    an empty lock file, temp files inside a committed version. `check` reports each with exit 2 and a
    fix line; the next promote does not wait for the lock; `check --repair` leaves a clean registry."""
    registry = copy_registry(world, "local", tmp_path, None)
    root = Path(registry.backend.url)
    shutil.copytree(root / NAME / "1.1.0", root / NAME / "1.2.0")  # a release.json nobody recorded
    (root / NAME / "history.jsonl.lock").write_bytes(b"")
    (root / NAME / "1.1.0" / ".bench.json.k2j3h4.tmp").write_bytes(b"half")
    reported = cli(registry, ["registry", "check"], world, None)
    assert reported.returncode == 2 and "\nfix: " in "\n" + reported.stderr, reported.stderr
    for problem in ("without a publish entry", "temp file", "stale lock", "does not list"):
        assert problem in reported.stderr.replace("\n", " "), (problem, reported.stderr)
    started = time.monotonic()
    assert cli(registry, ["promote", NAME, "1.0.0", "--channel", "beta"], world, None).returncode == 0
    assert time.monotonic() - started < NO_WAIT_S
    repaired = cli(registry, ["registry", "check", "--repair"], world, None)
    assert repaired.returncode == 0, repaired.stderr
    assert "recorded the publish of tiny@1.2.0" in repaired.stderr
    assert_consistent(registry)
    signed = json.loads((root / NAME / "1.2.0" / "release.sig").read_text())
    assert signed["signed_sha256"] in (root / NAME / "history.jsonl").read_text()


def test_a_live_writers_intent_is_in_progress_not_an_inconsistency(world, tmp_path):
    registry = copy_registry(world, "local", tmp_path, None)
    from edgemod.registry.journal import begin

    begin(registry.backend, "promote", NAME, version="1.0.0", channel="stable")  # this process: alive
    report = check(registry, repair=True)
    assert report.findings == [] and len(report.in_progress) == 1 and report.repaired == []
    assert registry.channels(NAME)["stable"] == "1.1.0"


# ---------------------------------------------------------------------------------------------- pull


PULL_POINTS = [p for p in CRASH_POINTS if p.startswith("pull:")]
OLD, NEW = "1.1.0", "3.0.0"  # NEW is synthetic: other files than OLD's export, so a mix of the two would show
# A previous pull in --out for every other point, and both ways at the swap (rename vs exchange).
LOCAL_PULLS = [(p, i % 2 == 0) for i, p in enumerate(PULL_POINTS)] + [
    (p, PULL_POINTS.index(p) % 2 == 1) for p in ("pull:before-swap", "pull:after-swap")]
# Each S3 case runs two boto3 subprocesses (~4 s each): the default suite kills one pull mid-download
# and one right after the swap; the rest of the S3 sweep is `slow`.
S3_PULL_DEFAULT = (("pull:during-download", False), ("pull:after-swap", True))


@pytest.fixture(scope="module")
def pull_world(world, tmp_path_factory):
    """The pristine registry plus tiny@3.0.0 (synthetic: three small files), and a finished pull of
    tiny@1.1.0 to copy in as the previous `--out`."""
    from synthetic_release import publish_synthetic

    root = tmp_path_factory.mktemp("pull")
    registry = Registry(RegistryConfig(url=str(root / "pristine"), signing_key=world["key"],
                                       trusted_keys=[world["public"]]))
    shutil.copytree(world["pristine"], root / "pristine")
    publish_synthetic(registry, NAME, NEW)
    registry.pull(parse_ref(f"{NAME}@{OLD}"), "onnx", root / "previous")
    return {"pristine": root / "pristine", "previous": root / "previous"}


def pulled_version(out: Path, registry: Registry, public: Path) -> str | None:
    """The release `out` holds (None if there is no `out`), asserting it is that release complete:
    its signed release.json, exactly the files the manifest gives `onnx`, each matching its sha256."""
    if not out.exists():
        return None
    version = json.loads((out / PULL_RECORD).read_text())["version"]
    release = registry.backend.get(f"{NAME}/{version}/{RELEASE}").data
    signature = registry.backend.get(f"{NAME}/{version}/{SIGNATURE}").data
    manifest, _ = verify_release(release, signature, load_trusted_keys([public]), NAME, version)
    assert (out / RELEASE).read_bytes() == release and (out / SIGNATURE).read_bytes() == signature
    planned = dict(plan_files(manifest, f"{NAME}@{version}", "onnx"))
    present = {p.relative_to(out).as_posix() for p in out.rglob("*") if not p.is_dir()}
    assert present == {*planned, RELEASE, SIGNATURE, PULL_RECORD}, f"{out} is incomplete or a mix of releases"
    for path, entry in planned.items():
        assert sha256_bytes((out / path).read_bytes()) == entry["sha256"], f"{out / path} is not {version}'s"
    return version


def files_of(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in folder.rglob("*") if p.is_file()}


def crash_a_pull(point: str, previous: bool, where: str, world, pull_world, tmp_path, endpoint,
                 signal_name: str = "KILL") -> None:
    """SIGKILL (or SIGINT) `edgemod pull tiny@3.0.0 --out pulls/models` at `point` (over a pull of 1.1.0 if
    `previous`): --out is the old or the new release, whole; only --out and its .partial were
    written; the same pull run again finishes at once and leaves no .partial."""
    registry = copy_registry(world, where, tmp_path, endpoint, source=pull_world["pristine"])
    registry_files = files_of(tmp_path / "registry") if where == "local" else {}
    pulls = tmp_path / "pulls"
    pulls.mkdir()
    out = pulls / "models"
    if previous:
        shutil.copytree(pull_world["previous"], out)
    args = ["pull", f"{NAME}@{NEW}", "--platform", "onnx", "--out", str(out), "--trusted-key", str(world["public"])]
    crashed = cli(registry, args, world, endpoint, **{CRASH_AT: point, CRASH_SIGNAL: signal_name})
    expected = -signal.SIGKILL if signal_name == "KILL" else 130  # Ctrl-C: the CLI's interrupted exit
    assert crashed.returncode == expected, (point, crashed.returncode, crashed.stderr[-2000:])
    assert {p.name for p in pulls.iterdir()} <= {"models", ".models.partial"}
    assert {p.name for p in tmp_path.iterdir()} == ({"registry", "pulls"} if where == "local" else {"pulls"})
    swapped = point == "pull:after-swap"
    assert pulled_version(out, registry, world["public"]) == (NEW if swapped else OLD if previous else None), point
    started = time.monotonic()
    rerun = cli(registry, args, world, endpoint)
    elapsed = time.monotonic() - started
    assert rerun.returncode == 0, (point, rerun.stderr[-2000:])
    assert elapsed < NO_WAIT_S, f"the pull after a kill at {point} took {elapsed:.1f} s"
    assert pulled_version(out, registry, world["public"]) == NEW
    assert [p.name for p in pulls.iterdir()] == ["models"]
    if where == "local":
        assert files_of(tmp_path / "registry") == registry_files, "a pull wrote into the registry"


@pytest.mark.parametrize(("point", "previous"), LOCAL_PULLS)
def test_sigkill_a_pull_at_every_step_on_a_local_registry(point, previous, world, pull_world, tmp_path):
    crash_a_pull(point, previous, "local", world, pull_world, tmp_path, None)


@pytest.mark.parametrize(("point", "previous"), [
    pytest.param(p, previous, marks=() if (p, previous) in S3_PULL_DEFAULT else pytest.mark.slow)
    for p, previous in LOCAL_PULLS])
def test_sigkill_a_pull_at_every_step_on_an_s3_registry(point, previous, world, pull_world, tmp_path, s3_endpoint):
    crash_a_pull(point, previous, "s3", world, pull_world, tmp_path, s3_endpoint)


# Ctrl-C at every pull step on a local registry: the pull's own clean-up must keep the same invariants.
SIGINT_PULL_DEFAULT = (("pull:during-download", True), ("pull:before-swap", True))


@pytest.mark.parametrize(("point", "previous"), [
    pytest.param(p, previous, marks=() if (p, previous) in SIGINT_PULL_DEFAULT else pytest.mark.slow)
    for p, previous in LOCAL_PULLS])
def test_sigint_a_pull_at_every_step_on_a_local_registry(point, previous, world, pull_world, tmp_path):
    crash_a_pull(point, previous, "local", world, pull_world, tmp_path, None, signal_name="INT")
