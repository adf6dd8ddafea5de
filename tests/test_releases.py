"""The committed registry `releases/`: what a fresh clone can pull without training.

README command 3 (scripts/try_release.sh) pulls the stable release of every shipped model from it,
verified against `releases/keys`; the web release decides every golden item in headless Chromium
(skipped without Chromium unless EDGEMOD_REQUIRE_BROWSER=1). A tampered byte fails the pull with a
fix, the folder stays small and pruned, no private key is committed, every model card names its
data sources and licences, and results/*.json describe exactly the committed artifacts.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from edgemod.fsutil import sha256_file, sha256_tree
from edgemod.registry.check import check
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.prune import plan_prune
from edgemod.registry.refs import parse_ref

PROJECT = Path(__file__).resolve().parent.parent
RELEASES = PROJECT / "releases"
KEYS = RELEASES / "keys"
# text-hate is not shipped: its gate fails (README, "Releases anyone can pull")
SHIPPED = ("text-spam",)
MAX_BYTES = 25 * 1024 * 1024


def committed() -> Registry:
    return Registry(RegistryConfig(url=str(RELEASES), trusted_keys=[KEYS]))


def cli(*args: str, cwd: Path = PROJECT) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgemod.cli", *args], cwd=cwd, capture_output=True, text=True,
                          check=False, timeout=300)


@pytest.fixture(scope="module")
def pulled_web(tmp_path_factory) -> dict[str, Path]:
    """README command 3's pulls, through the CLI as a user runs them."""
    out = tmp_path_factory.mktemp("pulled")
    folders = {}
    for name in SHIPPED:
        done = cli("pull", f"{name}@stable", "--platform", "web", "--out", str(out / name), "--registry", str(RELEASES),
                   "--trusted-key", str(KEYS))
        assert done.returncode == 0, done.stderr
        assert "verified" in done.stderr or "signature" in done.stderr, done.stderr
        folders[name] = out / name
    return folders


def test_stable_releases_of_both_text_recipes_pull_and_verify_on_every_platform(pulled_web, tmp_path):
    registry = committed()
    for name in SHIPPED:
        version = registry.resolve(parse_ref(f"{name}@stable"))
        for platform in ("android", "ios", "web"):
            result = registry.pull(parse_ref(f"{name}@stable"), platform, tmp_path / f"{name}-{platform}")
            assert result.version == version and result.files > 0
        tasks = json.loads((pulled_web[name] / "tasks.json").read_text())
        assert tasks["name"] == name and tasks["version"] == version and tasks["task"] == "text"


def test_the_web_releases_decide_every_golden_item_in_headless_chromium(pulled_web):
    from test_web_page import _assert_reproduces_golden, _require_browser

    from edgemod.mobile_harness import web_check

    _require_browser()
    for folder in pulled_web.values():
        _assert_reproduces_golden(web_check.check_web(folder), folder)


def test_a_tampered_byte_in_a_committed_artifact_fails_the_pull_with_a_fix(tmp_path):
    copy = tmp_path / "releases"
    shutil.copytree(RELEASES, copy)
    name = SHIPPED[0]
    version = committed().resolve(parse_ref(f"{name}@stable"))
    model = next((copy / name / version / "mediapipe").glob("model_*.tflite"))
    data = bytearray(model.read_bytes())
    data[len(data) // 2] ^= 0x01
    model.write_bytes(bytes(data))
    done = cli("pull", f"{name}@stable", "--platform", "web", "--out", str(tmp_path / "out"), "--registry", str(copy),
               "--trusted-key", str(KEYS))
    assert done.returncode == 2, done.stderr
    assert "sha256" in done.stderr and "fix:" in done.stderr, done.stderr
    assert not (tmp_path / "out").exists(), "a failed pull leaves no folder behind"


def test_the_committed_registry_is_consistent_signed_small_and_pruned():
    registry = committed()
    report = check(registry, deep=True)
    assert report.findings == [], report.findings
    assert report.releases_read >= len(SHIPPED)
    files = [p for p in RELEASES.rglob("*") if p.is_file()]
    assert sum(p.stat().st_size for p in files) < MAX_BYTES
    assert not [p for p in files if b"PRIVATE KEY" in p.read_bytes()], "a private key is committed"
    assert not [p for p in files if p.suffix in (".tmp", ".lock") or ".pending" in p.parts]
    for name in registry.index()["models"]:
        plan = plan_prune(name, registry.versions(name), registry.history(name), keep_previous=1)
        assert plan.removed == [], f"{name}: run `edgemod registry prune --registry releases` ({plan.removed})"
        assert len(registry.versions(name)) <= 2
    assert sorted(registry.index()["models"]) == sorted(SHIPPED)


def test_every_model_card_names_each_data_source_and_its_licence():
    from edgemod.catalog import load_catalog
    from edgemod.catalog import parse_ref as dataset_ref
    from edgemod.data_sources import recipe_refs

    catalog = load_catalog()
    for card in RELEASES.glob("*/*/model_card.md"):
        text = card.read_text()
        release = json.loads((card.parent / "release.json").read_text())
        names = {dataset_ref(ref)[0] for _, ref in recipe_refs(release["data"])}
        assert names, card
        for name in names:
            assert f"| {name} |" in text and catalog.datasets[name].license in text, (card, name)
            assert catalog.datasets[name].ship_models is True, (card, name)
        assert "models may be redistributed" in text


def test_results_files_describe_the_committed_releases():
    """results/R.json and the release it names hold the same artifacts (sha256 of every shipped model)."""
    for name in SHIPPED:
        results = json.loads((PROJECT / "results" / f"{name}.json").read_text())
        release_ref = results.get("release")
        assert release_ref, f"results/{name}.json names no release: run scripts/release.sh"
        version = release_ref["version"]
        assert committed().resolve(parse_ref(f"{name}@stable")) == version
        folder = RELEASES / name / version
        manifest = json.loads((folder / "release.json").read_text())
        for artifact, entry in manifest["artifacts"].items():
            shipped = folder / entry["release_files"]["model"]
            digest = sha256_tree(shipped) if shipped.is_dir() else sha256_file(shipped)
            assert results["artifacts"][artifact]["sha256"] == digest, (name, artifact)


def test_readme_command_3_is_the_script_and_names_both_models():
    readme = (PROJECT / "README.md").read_text()
    assert "bash scripts/try_release.sh" in readme
    script = (PROJECT / "scripts" / "try_release.sh").read_text()
    assert "--registry releases --trusted-key releases/keys" in script
    assert os.access(PROJECT / "scripts" / "try_release.sh", os.X_OK)
