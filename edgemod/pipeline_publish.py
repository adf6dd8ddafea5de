"""The publish stage of `edgemod run`: a passing gate becomes the next patch version of the recipe's
model in the registry (the local one by default) and moves the `canary` channel to it. The same
gate published again is not a new version: the stage is up to date."""
from __future__ import annotations

from pathlib import Path

from edgemod.console import say
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


def next_version(existing: list[str]) -> str:
    """The patch after the highest released version."""
    from edgemod.registry.refs import semver_key

    if not existing:
        return FIRST_VERSION
    major, minor, patch = (int(part) for part in max(existing, key=semver_key).split("-")[0].split(".")[:3])
    return f"{major}.{minor}.{patch + 1}"
