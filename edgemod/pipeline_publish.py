"""The publish stage of `edgemod run`: a passing gate becomes the next patch version of the recipe's
model in the registry (the local one by default) and moves the `canary` channel to it. The same
gate published again is not a new version: the stage is up to date."""
from __future__ import annotations

from pathlib import Path

from edgemod.console import say
from edgemod.errors import EdgemodError
from edgemod.manifest import Manifest, finished_run, inputs_key, read_manifest, write_manifest

STAGE = "publish"
CHANNEL = "canary"
FIRST_VERSION = "0.1.0"


def publish_run(state, recipe, folder: Path, console) -> str:
    from edgemod.registry.config import load_config
    from edgemod.registry.core import Registry

    gate_dir = state.out / "gate"
    gate = read_manifest(gate_dir, "gate")
    # The same benched artifacts, still passing, are the same release: a budget change alone
    # re-runs the gate but publishes no new version.
    used = {"bench": gate.inputs["bench"]}
    config = load_config(url=state.registry)
    key = inputs_key(used["bench"].sha256, used, extra={"registry": config.url, "verdict": gate.metrics["verdict"]})
    if (done := finished_run(folder, STAGE, key)) is not None:
        say(console, f"publish: nothing to do, this gate run is already {done.details['release']}")
        return done.details["release"]
    registry = Registry(config)
    version = next_version(registry.versions(recipe.name))
    verify_gate(gate_dir)
    result = registry.publish(gate_dir, recipe.name, version, channel=CHANNEL)
    release = f"{recipe.name}@{version}"
    folder.mkdir(parents=True, exist_ok=True)
    write_manifest(folder, Manifest(
        stage=STAGE, name=recipe.name, recipe=recipe.model_dump(mode="json"), recipe_sha256=recipe.fingerprint(),
        inputs=used, inputs_key=key, metrics={"files": result.files, "bytes": result.bytes, "seconds": round(result.seconds, 2)},
        details={"release": release, "url": result.url, "channel": CHANNEL, "key_id": result.key_id}))
    say(console, f"published {release} ({result.files} files, {result.bytes / 1e6:.2f} MB) "
                 f"to {config.url}; {CHANNEL} -> {version}")
    return release


def verify_gate(gate_dir: Path) -> None:
    """Refuse a gate folder whose recorded verdict is not the one its checks give now.

    `gate.json` and the gate manifest are plain files: edit the verdict and the checks, then the
    manifest's sha256 and size of gate.json and its `metrics.verdict`, and every file still matches.
    So the checks are re-run in memory (nothing is written) from the bench folder the gate read,
    with the budgets its manifest records, and the verdict and the set of failed checks must be
    the ones on file. The registry (core) cannot import the gate (a later stage), so the
    dispatchers of a publish (the CLI and `edgemod run`) call this before `Registry.publish`.
    """
    from edgemod.benchmarks.gate import evaluate
    from edgemod.registry.release import read_gate_result

    gate_dir = Path(gate_dir)
    gate = read_manifest(gate_dir, "gate")
    recorded = read_gate_result(gate_dir)
    fix = ("re-run `edgemod gate` on the bench folder (gate.json and the gate manifest are never edited by hand), "
           "then publish the new gate folder")
    bench_dir, baseline = gate.details.get("bench_run"), gate.details.get("baseline")
    budgets = gate.recipe.get("budgets")
    if not isinstance(bench_dir, str) or not isinstance(budgets, dict) or not isinstance(baseline, str | None):
        raise EdgemodError(f"the gate manifest in {gate_dir} does not say which bench run and budgets it judged", fix)
    if baseline is not None and not (Path(baseline) / "manifest.json").exists():
        raise EdgemodError(f"the baseline bench run {baseline} the gate in {gate_dir} compared against is gone, "
                           "so its checks cannot be re-run", f"restore that folder, or {fix}")
    device_results = gate.details.get("device_results") or []
    missing = [p for p in device_results if not Path(p).is_file()]
    if missing:
        raise EdgemodError(f"the device results the gate in {gate_dir} read are gone ({', '.join(missing)}), "
                           "so its checks cannot be re-run", f"restore them, or {fix}")
    now = evaluate(Path(bench_dir), Path(baseline) if baseline else None, budgets=budgets,
                   device_results=[Path(p) for p in device_results])
    on_file = {_key(c) for c in recorded["checks"] if not c["passed"]}
    failed = {_key(c): c for c in now["checks"] if not c["passed"]}
    verdicts = {gate.metrics.get("verdict"), recorded["verdict"]}
    if verdicts == {now["verdict"]} and on_file == set(failed):
        return
    lines = [f"  - now failing, recorded as passed: {_line(failed[k])}" for k in sorted(set(failed) - on_file)]
    lines += [f"  - recorded as failed, passes now: {' on '.join(k[:2])}" for k in sorted(on_file - set(failed))]
    raise EdgemodError(
        f"the gate in {gate_dir} records the verdict {'/'.join(sorted(map(str, verdicts)))} with {len(on_file)} failed "
        f"check(s), but its checks, re-run on {bench_dir}, give {now['verdict']} with {len(failed)} failed: "
        "gate.json was edited or its inputs changed since\n" + "\n".join(lines), fix)


def _key(check: dict) -> tuple[str, str, str]:
    return str(check["name"]), str(check["subject"]), str(check.get("device") or "")


def _line(check: dict) -> str:
    on = f" ({check['device']})" if check.get("device") else ""
    return f"{check['name']} on {check['subject']}{on}: {check['value']} (budget {check['budget']})"


def next_version(existing: list[str]) -> str:
    """The patch after the highest released version."""
    from edgemod.registry.refs import semver_key

    if not existing:
        return FIRST_VERSION
    major, minor, patch = (int(part) for part in max(existing, key=semver_key).split("-")[0].split(".")[:3])
    return f"{major}.{minor}.{patch + 1}"
