"""The artifact registry on real servers started here: a local folder, an S3-compatible server
(moto in server mode, on loopback) and a plain HTTP server with Range support serving a registry
folder. Publishing a tiny gated text pipeline, pulling each platform, channels, signatures and
tampering, the publish race, interrupted uploads (an exception and a killed process) and
interrupted pulls."""
from __future__ import annotations

import contextlib
import functools
import http.server
import itertools
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from edgemod.benchmarks import bench, gate
from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file, sha256_tree
from edgemod.registry.config import RegistryConfig, load_config
from edgemod.registry.core import Registry
from edgemod.registry.history import channel_stacks
from edgemod.registry.refs import parse_ref, semver_key
from edgemod.registry.signing import generate_keypair, load_private_key, sign_manifest
from edgemod.registry.store_local import LocalBackend

EXPORTS = "export=[{target: tflite, quant: int8_dynamic}, {target: coreml, quant: w8}, {target: onnx, quant: int8_dynamic}]"
GENEROUS = ["budgets.size_mb={tflite: 50}", "budgets.parity.min_decision_agreement=0.5"]
PROJECT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A tiny text pipeline with a passing gate (generous budgets) and a failing one (size budget)."""
    from conftest import tiny_text_export

    root = tiny_text_export(tmp_path_factory.mktemp("registry-runs"), EXPORTS)
    bench.run(root / "export", root / "bench", quick=True)
    assert gate.run(root / "bench", root / "gate", overrides=GENEROUS)["verdict"] == "pass"
    failing = gate.run(root / "bench", root / "gate-fail", overrides=[*GENEROUS, "budgets.size_mb={tflite: 0.0001}"])
    assert failing["verdict"] == "fail"
    return root


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    root = tmp_path_factory.mktemp("keys")
    private, public = generate_keypair(root / "publisher")
    other_private, other_public = generate_keypair(root / "stranger")
    return {"private": private, "public": public, "other_private": other_private, "other_public": other_public}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def s3_server():
    """moto's S3 server on loopback, with dummy credentials in the environment."""
    from moto_s3 import moto_s3_server

    with moto_s3_server("edgemod-models") as endpoint:
        yield endpoint


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with `Range: bytes=N-` (SimpleHTTPRequestHandler ignores Range) and, for tests,
    a one-shot cut: the first GET of a path sends only `cut[path]` bytes, then drops the connection."""

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        self.server.log.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        wanted = self.headers.get("Range")
        start = int(re.fullmatch(r"bytes=(\d+)-", wanted).group(1)) if wanted else 0
        if start >= len(data) and wanted:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(data)}")
            self.end_headers()
            return
        body = data[start:]
        self.send_response(206 if wanted else 200)
        if wanted:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        cut = self.server.cut.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        if cut is not None:
            self.close_connection = True


@pytest.fixture
def http_server():
    """Serve a folder over HTTP on loopback: `serve(folder)` returns the base URL."""
    servers = []

    def serve(folder: Path):
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(RangeHandler, directory=str(folder)))
        server.log, server.cut = [], {}
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}", server

    yield serve
    for server in servers:
        server.shutdown()
        server.server_close()


def config(url: str, keys: dict, **extra) -> RegistryConfig:
    return RegistryConfig(url=str(url), signing_key=keys["private"], trusted_keys=[keys["public"]], **extra)


@pytest.fixture(scope="module")
def published(runs, keys, tmp_path_factory):
    """A pristine local registry: 0.1.0 (stable) and 0.2.0 (canary). Tests copy it before damaging it."""
    root = tmp_path_factory.mktemp("published") / "registry"
    registry = Registry(config(root, keys))
    registry.publish(runs / "gate", "tiny-hate", "0.1.0", channel="stable")
    registry.publish(runs / "gate", "tiny-hate", "0.2.0", channel="canary")
    return root


@pytest.fixture
def registry_copy(published, keys, tmp_path):
    root = tmp_path / "registry"
    shutil.copytree(published, root)
    return Registry(config(root, keys)), root


# ---------------------------------------------------------------------------------------------- publish and pull


def _check_pulled(out: Path, runs: Path, platform: str) -> None:
    export = runs / "export"
    expected = {"android": ("model_int8_dynamic.tflite", export / "tflite/model_int8_dynamic.tflite"),
                "ios": ("model_w8.mlpackage", export / "coreml/model_w8.mlpackage"),
                "onnx": ("model_int8_dynamic.onnx", export / "onnx/model_int8_dynamic.onnx")}[platform]
    assert sha256_tree(out / expected[0]) == sha256_tree(expected[1])  # the bytes the gate judged
    for shared in ("thresholds.json", "student.json", "tokenizer/vocab.txt", "tokenizer/normalizer.json"):
        assert sha256_file(out / shared) == sha256_file(export / shared)
    assert len(list((out / "golden").iterdir())) == 1 and (out / "model_card.md").exists()
    others = {"android": "*.tflite", "ios": "*.mlpackage", "onnx": "*.onnx"}
    for other, pattern in others.items():
        if other != platform:
            assert not list(out.glob(pattern)), f"{platform} pull brought {other} files"
    record = json.loads((out / "pull.json").read_text())
    assert record["platform"] == platform and (out / "release.json").exists() and (out / "release.sig").exists()
    assert not list(out.parent.glob(f".{out.name}.partial"))  # staging renamed into place


@pytest.mark.parametrize("where", ["local", "s3", "http"])
def test_publish_then_pull_every_platform(where, runs, keys, tmp_path, s3_server, http_server):
    url = f"s3://edgemod-models/{tmp_path.name}" if where == "s3" else tmp_path / "registry"
    writer = Registry(config(url, keys, s3_endpoint_url=s3_server))
    result = writer.publish(runs / "gate", "tiny-hate", "1.4.0", channel="stable")
    assert result.files >= 15 and result.channel == "stable"
    if where == "http":
        url, _ = http_server(tmp_path / "registry")
    reader = Registry(config(url, keys, s3_endpoint_url=s3_server))
    for platform, ref in (("android", "tiny-hate@1.4.0"), ("ios", "tiny-hate@stable"), ("onnx", "tiny-hate@1.4.0")):
        pulled = reader.pull(parse_ref(ref), platform, tmp_path / "pulled" / platform)  # `pulled/` does not exist yet
        assert pulled.version == "1.4.0" and pulled.key_id
        _check_pulled(tmp_path / "pulled" / platform, runs, platform)
    models = reader.index()["models"]
    assert list(models["tiny-hate"]["versions"]) == ["1.4.0"] and models["tiny-hate"]["channels"] == {"stable": "1.4.0"}
    shown = reader.show(parse_ref("tiny-hate@stable"))
    assert shown["signature"].startswith("verified") and shown["channels"] == ["stable"]


def test_release_manifest_and_model_card(published):
    manifest = json.loads((published / "tiny-hate/0.1.0/release.json").read_text())
    assert manifest["name"] == "tiny-hate" and manifest["version"] == "0.1.0" and manifest["gate"]["verdict"] == "pass"
    assert set(manifest["platforms"]) == {"android", "ios", "onnx"}
    assert manifest["labels"] == ["normal", "offensive", "hatespeech"] and manifest["thresholds"]["per_class"]
    assert {"gate", "bench", "export", "recipe_sha256", "train"} <= set(manifest["sources"])
    assert manifest["budgets"]["size_mb"] == {"tflite": 50.0}
    for entry in manifest["files"]:
        assert sha256_file(published / "tiny-hate/0.1.0" / entry["path"]) == entry["sha256"]
    assert {"report.html", "gate.md", "bench.json", "model_card.md"} <= {f["path"] for f in manifest["files"]}
    card = (published / "tiny-hate/0.1.0/model_card.md").read_text()
    for heading in ("Intended use", "Labels and thresholds", "Data", "Metrics vs teacher", "Slices", "Known limits"):
        assert f"## {heading}" in card
    assert "Estimate, not measured" in card and "coreml_w8" in card  # Core ML parity was estimated on Linux


def test_publish_refuses_a_failing_gate_and_lists_its_checks(runs, keys, tmp_path):
    with pytest.raises(EdgemodError, match=r"did not pass") as error:
        Registry(config(tmp_path / "registry", keys)).publish(runs / "gate-fail", "tiny-hate", "1.0.0")
    assert re.search(r"size \(MB\) on tflite_int8_dynamic: [\d.]+ \(budget 0.0001\)", error.value.message)
    assert "re-run `edgemod gate`" in error.value.hint
    assert not (tmp_path / "registry" / "tiny-hate").exists()


@pytest.mark.skipif(not (PROJECT / "runs/text-hate/gate/manifest.json").exists(), reason="needs the text-hate runs")
def test_publish_refuses_the_real_failing_text_hate_gate(keys, tmp_path):
    with pytest.raises(EdgemodError, match="(?s)did not pass.*identity slice AUC, student - teacher"):
        Registry(config(tmp_path / "registry", keys)).publish(PROJECT / "runs/text-hate/gate", "text-hate", "1.4.0")


def test_publish_refuses_files_changed_after_the_gate(runs, keys, tmp_path):
    copy = tmp_path / "runs"
    for part in ("export", "bench", "gate"):
        shutil.copytree(runs / part, copy / part)
    for part, key in (("bench", "export_run"), ("gate", "bench_run")):  # point the copies at each other
        manifest = json.loads((copy / part / "manifest.json").read_text())
        manifest["details"][key] = str(copy / ("export" if part == "bench" else "bench"))
        (copy / part / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(EdgemodError, match="not the bench run the gate stage read"):
        Registry(config(tmp_path / "registry", keys)).publish(copy / "gate", "tiny-hate", "1.0.0")


def test_versions_are_immutable_semantic_and_sorted(registry_copy, runs):
    registry, _ = registry_copy
    with pytest.raises(EdgemodError, match="already published; versions are immutable"):
        registry.publish(runs / "gate", "tiny-hate", "0.1.0")
    for bad in ("1.4", "v1.4.0", "1.4.0+build.5", "01.4.0"):
        with pytest.raises(EdgemodError, match="not a semantic version"):
            registry.publish(runs / "gate", "tiny-hate", bad)
    with pytest.raises(EdgemodError, match="invalid model name"):
        registry.publish(runs / "gate", "Tiny Hate", "1.0.0")
    registry.publish(runs / "gate", "tiny-hate", "0.10.0-rc.1")
    registry.publish(runs / "gate", "tiny-hate", "0.10.0")
    assert registry.versions("tiny-hate") == ["0.1.0", "0.2.0", "0.10.0-rc.1", "0.10.0"]
    assert registry.index()["models"]["tiny-hate"]["latest"] == "0.10.0"
    assert sorted(["1.0.0", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "0.9.9"], key=semver_key) == \
        ["0.9.9", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-beta", "1.0.0"]


def test_channels_promote_rollback_and_append_only_history(registry_copy, runs, keys, tmp_path):
    registry, root = registry_copy
    history = root / "tiny-hate/history.jsonl"
    snapshots = [history.read_bytes()]
    registry.publish(runs / "gate", "tiny-hate", "0.3.0")
    snapshots.append(history.read_bytes())
    assert registry.promote("tiny-hate", "0.2.0", "stable") == {**registry.history("tiny-hate")[-1]}
    registry.promote("tiny-hate", "0.3.0", "stable")
    snapshots.append(history.read_bytes())
    assert registry.channels("tiny-hate")["stable"] == "0.3.0"
    assert registry.rollback("tiny-hate", "stable")["to"] == "0.2.0"
    assert registry.rollback("tiny-hate", "stable")["to"] == "0.1.0"  # back through history, not back and forth
    with pytest.raises(EdgemodError, match="no earlier version to roll back to"):
        registry.rollback("tiny-hate", "stable")
    with pytest.raises(EdgemodError, match="already points at 0.1.0"):
        registry.promote("tiny-hate", "0.1.0", "stable")
    with pytest.raises(EdgemodError, match="not in the registry"):
        registry.promote("tiny-hate", "9.9.9", "stable")
    with pytest.raises(EdgemodError, match="has no channel 'beta'"):
        registry.rollback("tiny-hate", "beta")
    snapshots.append(history.read_bytes())
    for before, after in itertools.pairwise(snapshots):
        assert after.startswith(before) and len(after) > len(before)  # append-only
    events = registry.history("tiny-hate")
    assert [e["event"] for e in events[-4:]] == ["promote", "promote", "rollback", "rollback"]
    assert all(e["by"] and e["at"] for e in events)
    assert (events[-1]["from"], events[-1]["to"]) == ("0.2.0", "0.1.0")
    assert registry.index()["models"]["tiny-hate"]["channels"] == {"stable": "0.1.0", "canary": "0.2.0"}
    assert registry.pull(parse_ref("tiny-hate@stable"), "android", tmp_path / "out").version == "0.1.0"
    assert channel_stacks(events)["stable"] == ["0.1.0"]


# ---------------------------------------------------------------------------------------------- signatures and tampering


def _flip_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _swap(a: Path, b: Path) -> None:
    tmp = a.with_name("swap.tmp")
    os.replace(a, tmp), os.replace(b, a), os.replace(tmp, b)


def _edit_manifest(path: Path) -> None:
    manifest = json.loads(path.read_text())
    manifest["thresholds"]["per_class"]["hatespeech"]["threshold"] = 0.99  # quietly make the model lenient
    path.write_text(json.dumps(manifest, indent=2))


TAMPERING = {
    "changed byte in the model": (lambda v, keys: _flip_byte(v / "android/model_int8_dynamic.tflite"),
                                  "does not match the sha256"),
    "swapped two files": (lambda v, keys: _swap(v / "shared/thresholds.json", v / "shared/student.json"),
                          "does not match the sha256"),
    "manifest replaced, not re-signed": (lambda v, keys: _edit_manifest(v / "release.json"), "signature does not match"),
    "signature removed": (lambda v, keys: (v / "release.sig").unlink(), "is unsigned"),
    "re-signed by an untrusted key": (
        lambda v, keys: (v / "release.sig").write_bytes(sign_manifest(json.loads((v / "release.json").read_text()),
                                                                      load_private_key(keys["other_private"]))),
        "not trusted here"),
    "another version's signed release moved in": (
        lambda v, keys: [shutil.copy(v.parent / "0.2.0" / f, v / f) for f in ("release.json", "release.sig")],
        "signed manifest is tiny-hate@0.2.0, not tiny-hate@0.1.0"),
}


@pytest.mark.parametrize("case", list(TAMPERING))
def test_pull_refuses_a_tampered_release(case, registry_copy, keys, tmp_path):
    registry, root = registry_copy
    damage, message = TAMPERING[case]
    damage(root / "tiny-hate/0.1.0", keys)
    with pytest.raises(EdgemodError, match=message):
        registry.pull(parse_ref("tiny-hate@0.1.0"), "android", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_pull_needs_trusted_keys_and_accepts_a_key_folder(registry_copy, keys, tmp_path):
    _, root = registry_copy
    no_keys = Registry(RegistryConfig(url=str(root)))
    with pytest.raises(EdgemodError, match="no trusted keys configured"):
        no_keys.pull(parse_ref("tiny-hate@0.1.0"), "android", tmp_path / "out")
    stranger = Registry(RegistryConfig(url=str(root), trusted_keys=[keys["other_public"]]))
    with pytest.raises(EdgemodError, match="not trusted here"):
        stranger.pull(parse_ref("tiny-hate@0.1.0"), "android", tmp_path / "out")
    folder = Registry(RegistryConfig(url=str(root), trusted_keys=[keys["public"].parent]))
    assert folder.pull(parse_ref("tiny-hate@0.1.0"), "ios", tmp_path / "out").files > 5


def test_publish_needs_a_signing_key(runs, keys, tmp_path):
    with pytest.raises(EdgemodError, match="no signing key configured") as error:
        Registry(RegistryConfig(url=str(tmp_path / "registry"))).publish(runs / "gate", "tiny-hate", "1.0.0")
    assert "edgemod registry keygen" in error.value.hint
    with pytest.raises(EdgemodError, match="already exists"):
        generate_keypair(keys["private"].parent)


# ---------------------------------------------------------------------------------------------- concurrency and faults


def _race(publish, contenders: int = 4) -> tuple[list, list]:
    barrier, wins, losses = threading.Barrier(contenders), [], []

    def contender() -> None:
        barrier.wait()
        try:
            wins.append(publish())
        except EdgemodError as error:
            losses.append(error.message)

    threads = [threading.Thread(target=contender) for _ in range(contenders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return wins, losses


@pytest.mark.parametrize("where", ["local", "s3"])
def test_racing_publishers_of_one_version_exactly_one_wins(where, runs, keys, tmp_path, s3_server):
    url = f"s3://edgemod-models/race-{tmp_path.name}" if where == "s3" else tmp_path / "registry"
    registry = Registry(config(url, keys, s3_endpoint_url=s3_server))
    for version in ("1.0.0", "1.0.1"):
        wins, losses = _race(functools.partial(registry.publish, runs / "gate", "tiny-hate", version))
        assert len(wins) == 1 and len(losses) == 3, losses
        assert all("claimed" in m or "already published" in m or "being uploaded" in m for m in losses), losses
    # Different versions at once: every one lands in the index (compare-and-swap, no lost update).
    versions = iter(["2.0.0", "2.1.0", "2.2.0", "2.3.0"])
    lock = threading.Lock()

    def next_version():
        with lock:
            return next(versions)

    wins, losses = _race(lambda: registry.publish(runs / "gate", "tiny-hate", next_version()))
    assert len(wins) == 4 and not losses
    assert registry.versions("tiny-hate") == ["1.0.0", "1.0.1", "2.0.0", "2.1.0", "2.2.0", "2.3.0"]
    assert registry.pull(parse_ref("tiny-hate@1.0.0"), "android", tmp_path / "out").files > 5


def test_racing_promotions_keep_history_and_channel_consistent(registry_copy):
    registry, _ = registry_copy
    targets = iter(["0.1.0", "0.2.0", "0.1.0", "0.2.0"])
    lock = threading.Lock()

    def promote():
        with lock:
            version = next(targets)
        return registry.promote("tiny-hate", version, "beta")

    wins, losses = _race(promote)
    promotes = [e for e in registry.history("tiny-hate") if e.get("channel") == "beta"]
    assert len(promotes) == len(wins) and len(wins) + len(losses) == 4  # a loser is a "already points at" no-op
    assert registry.channels("tiny-hate")["beta"] == promotes[-1]["to"]
    for before, after in itertools.pairwise(promotes):
        assert after["from"] == before["to"]  # each promote saw the one before it


class _Failing(LocalBackend):
    """A backend whose uploads fail after `limit` files, as a dropped connection would."""

    def __init__(self, root: Path, limit: int):
        super().__init__(root)
        self.limit = limit

    def put_file(self, key: str, path: Path) -> None:
        if self.limit == 0:
            raise ConnectionError("connection reset during upload")
        self.limit -= 1
        super().put_file(key, path)


def test_interrupted_upload_leaves_no_visible_release_and_a_retry_works(runs, keys, tmp_path):
    root = tmp_path / "registry"
    failing = Registry(config(root, keys), backend=_Failing(root, limit=3))
    with pytest.raises(ConnectionError):
        failing.publish(runs / "gate", "tiny-hate", "1.0.0", channel="stable")
    registry = Registry(config(root, keys))
    assert "tiny-hate" not in registry.index()["models"]
    with pytest.raises(EdgemodError, match="not in the registry"):
        registry.pull(parse_ref("tiny-hate@1.0.0"), "android", tmp_path / "out")
    leftovers = [p for p in (root / "tiny-hate/1.0.0").rglob("*") if p.is_file() and ".upload" not in p.parts]
    assert leftovers == []  # the failed publisher removed its files
    assert registry.publish(runs / "gate", "tiny-hate", "1.0.0", channel="stable").files > 15
    assert registry.pull(parse_ref("tiny-hate@stable"), "android", tmp_path / "out").version == "1.0.0"


KILLED_PUBLISHER = """
import os, sys
from pathlib import Path
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.store_local import LocalBackend

class Dies(LocalBackend):
    uploads = 0
    def put_file(self, key, path):
        if Dies.uploads == 4:
            os._exit(9)  # killed mid-upload: no cleanup, no exception handler runs
        Dies.uploads += 1
        super().put_file(key, path)

root, gate, key = map(Path, sys.argv[1:4])
Registry(RegistryConfig(url=str(root), signing_key=key), backend=Dies(root)).publish(gate, "tiny-hate", "1.0.0")
"""


def test_killed_publisher_leaves_no_visible_release_and_can_be_reclaimed(runs, keys, tmp_path):
    root = tmp_path / "registry"
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(KILLED_PUBLISHER), str(root), str(runs / "gate"),
                           str(keys["private"])], check=False, cwd=PROJECT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 9, done.stderr
    partial = [p for p in (root / "tiny-hate/1.0.0").rglob("*") if p.is_file() and ".upload" not in p.parts]
    assert len(partial) == 4 and not (root / "tiny-hate/1.0.0/release.json").exists()
    registry = Registry(config(root, keys))
    assert registry.index()["models"] == {}
    # Its pid is gone on this host: the next publish rolls the half-upload back at once, no --reclaim, no wait.
    registry.publish(runs / "gate", "tiny-hate", "1.0.0")
    assert registry.pull(parse_ref("tiny-hate@1.0.0"), "ios", tmp_path / "out").files > 5
    claims = [json.loads(p.read_text())["state"] for p in sorted((root / "tiny-hate/1.0.0/.upload").iterdir())]
    assert claims == ["uploading", "rolled-back", "committed"]


def test_upload_of_a_live_publisher_on_another_host_is_not_taken_over(runs, keys, tmp_path):
    root = tmp_path / "registry"
    claim = root / "tiny-hate/1.0.0/.upload/claim-000000.json"
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"state": "uploading", "by": "ci@elsewhere", "host": "elsewhere", "pid": 1,
                                 "started_unix": time.time()}))
    registry = Registry(config(root, keys))
    with pytest.raises(EdgemodError, match="is being uploaded by") as error:
        registry.publish(runs / "gate", "tiny-hate", "1.0.0")
    assert "--reclaim" in error.value.hint
    registry.publish(runs / "gate", "tiny-hate", "1.0.0", reclaim=True)
    assert registry.versions("tiny-hate") == ["1.0.0"]


def test_stale_upload_is_taken_over_after_the_timeout(runs, keys, tmp_path):
    root = tmp_path / "registry"
    claim = root / "tiny-hate/1.0.0/.upload/claim-000000.json"
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"state": "uploading", "by": "ci@gone", "started_unix": 0}))
    (root / "tiny-hate/1.0.0/android").mkdir()
    (root / "tiny-hate/1.0.0/android/junk.bin").write_bytes(b"half an upload")
    Registry(config(root, keys, stale_upload_after_s=60)).publish(runs / "gate", "tiny-hate", "1.0.0")
    assert not (root / "tiny-hate/1.0.0/android/junk.bin").exists()


def test_interrupted_http_pull_resumes_with_a_range_request(registry_copy, keys, tmp_path, http_server):
    _, root = registry_copy
    url, server = http_server(root)
    model = "/tiny-hate/0.1.0/android/model_int8_dynamic.tflite"
    server.cut[model] = 5000  # the connection drops after 5000 bytes of the model
    reader = Registry(config(url, keys))
    out = tmp_path / "pulled"
    with pytest.raises(EdgemodError, match="download of .* failed"):
        reader.pull(parse_ref("tiny-hate@stable"), "android", out)
    assert not out.exists()
    part = tmp_path / ".pulled.partial/model_int8_dynamic.tflite.part"
    assert part.stat().st_size == 5000
    result = reader.pull(parse_ref("tiny-hate@stable"), "android", out)
    assert result.resumed == ["android/model_int8_dynamic.tflite"]
    assert (model, "bytes=5000-") in server.log
    assert sha256_file(out / "model_int8_dynamic.tflite") == sha256_file(root / model.lstrip("/"))
    assert result.downloaded < result.bytes  # finished files were not fetched again


class _CutOnce:
    """Wrap a backend's `stream`: the first download of `key` stops after `cut` bytes, as a killed pull would."""

    def __init__(self, backend, key: str, cut: int):
        self.stream, self.key, self.cut, self.starts = backend.stream, key, cut, []
        backend.stream = self

    @contextlib.contextmanager
    def __call__(self, key: str, start: int = 0):
        with self.stream(key, start) as (offset, chunks):
            if key != self.key:
                yield offset, chunks
                return
            self.starts.append(offset)
            if self.cut is None:
                yield offset, chunks
                return
            cut, self.cut = self.cut, None

            def dropped():
                yield b"".join(chunks)[:cut]
                raise ConnectionError("connection lost mid-file")

            yield offset, dropped()


@pytest.mark.parametrize("partial", ["intact", "corrupted"])
def test_interrupted_s3_pull_resumes_or_restarts_cleanly(partial, runs, keys, tmp_path, s3_server):
    registry = Registry(config(f"s3://edgemod-models/resume-{partial}-{tmp_path.name}", keys, s3_endpoint_url=s3_server))
    registry.publish(runs / "gate", "tiny-hate", "1.0.0")
    cut = _CutOnce(registry.backend, "tiny-hate/1.0.0/android/model_int8_dynamic.tflite", 7000)
    out = tmp_path / "out"
    with pytest.raises(ConnectionError):
        registry.pull(parse_ref("tiny-hate@1.0.0"), "android", out)
    part = tmp_path / ".out.partial/model_int8_dynamic.tflite.part"
    assert part.stat().st_size == 7000 and not out.exists()
    if partial == "corrupted":  # e.g. a disk that lost the tail of a write: resuming cannot verify, so restart
        part.write_bytes(b"\0" * 7000)
    result = registry.pull(parse_ref("tiny-hate@1.0.0"), "android", out)
    model = runs / "export/tflite/model_int8_dynamic.tflite"
    assert sha256_file(out / "model_int8_dynamic.tflite") == sha256_file(model)
    assert cut.starts == ([0, 7000] if partial == "intact" else [0, 7000, 0])
    assert result.resumed == ["android/model_int8_dynamic.tflite"]


def test_pull_into_a_foreign_folder_is_refused_and_a_repeat_pull_replaces(registry_copy, tmp_path):
    registry, _ = registry_copy
    foreign = tmp_path / "app-sources"
    foreign.mkdir()
    (foreign / "main.swift").write_text("// not ours")
    with pytest.raises(EdgemodError, match="not an earlier edgemod pull"):
        registry.pull(parse_ref("tiny-hate@0.1.0"), "ios", foreign)
    out = tmp_path / "model"
    registry.pull(parse_ref("tiny-hate@0.1.0"), "android", out)
    registry.pull(parse_ref("tiny-hate@0.2.0"), "ios", out)
    assert json.loads((out / "pull.json").read_text())["version"] == "0.2.0" and not list(out.glob("*.tflite"))
    with pytest.raises(EdgemodError, match="unknown platform 'andriod' \\(did you mean 'android'"):
        registry.pull(parse_ref("tiny-hate@0.1.0"), "andriod", out)


# ---------------------------------------------------------------------------------------------- config and CLI


def test_config_from_file_then_environment(tmp_path, monkeypatch):
    (tmp_path / "edgemod.yaml").write_text("registry:\n  url: models\n  signing_key: keys/k.key\n  trusted_keys: keys/\n")
    loaded = load_config(tmp_path / "edgemod.yaml")
    assert loaded.url == str(tmp_path / "models") and loaded.signing_key == tmp_path / "keys/k.key"
    assert loaded.trusted_keys == [tmp_path / "keys"]
    monkeypatch.setenv("EDGEMOD_REGISTRY", "s3://bucket/models")
    monkeypatch.setenv("EDGEMOD_TRUSTED_KEYS", os.pathsep.join(["/a.pub", "/b.pub"]))
    loaded = load_config(tmp_path / "edgemod.yaml")
    assert loaded.url == "s3://bucket/models" and loaded.trusted_keys == [Path("/a.pub"), Path("/b.pub")]
    (tmp_path / "bad.yaml").write_text("registry:\n  urll: x\n")
    with pytest.raises(EdgemodError, match="unknown key 'urll' \\(did you mean 'url'"):
        load_config(tmp_path / "bad.yaml")
    with pytest.raises(EdgemodError, match="neither a semantic version nor a channel"):
        parse_ref("tiny-hate@1.x")
    with pytest.raises(EdgemodError, match="names no version or channel"):
        parse_ref("tiny-hate")


def test_http_registry_is_read_only(registry_copy, keys, runs, http_server):
    _, root = registry_copy
    url, _ = http_server(root)
    with pytest.raises(EdgemodError, match="read-only HTTP registry"):
        Registry(config(url, keys)).publish(runs / "gate", "tiny-hate", "3.0.0")


def test_cli_round_trip(runs, tmp_path, monkeypatch, capsys):
    from edgemod.cli import app, main
    from edgemod.cli_registry import register_registry_commands

    register_registry_commands(app)
    register_registry_commands(app)  # idempotent: cli.py may already have mounted them
    monkeypatch.setenv("EDGEMOD_REGISTRY", str(tmp_path / "registry"))
    monkeypatch.chdir(tmp_path)
    assert main(["registry", "keygen", "--out", "keys"]) == 0
    monkeypatch.setenv("EDGEMOD_TRUSTED_KEYS", str(tmp_path / "keys/edgemod-signing.pub"))
    key = ["--key", "keys/edgemod-signing.key"]
    assert main(["publish", str(runs / "gate"), "--name", "text-hate", "--version", "1.4.0", "--channel", "canary", *key]) == 0
    assert main(["publish", str(runs / "gate"), "--version", "1.5.0", *key]) == 0  # name from the recipe
    assert main(["promote", "text-hate", "1.4.0", "--channel", "stable"]) == 0
    for platform in ("android", "ios"):
        assert main(["pull", "text-hate@stable", "--platform", platform, "--out", f"pulled-{platform}"]) == 0
    assert (tmp_path / "pulled-ios/model_w8.mlpackage/Manifest.json").exists()
    assert main(["list"]) == 0 and main(["show", "text-hate"]) == 0 and main(["show", "text-hate@1.4.0"]) == 0
    capsys.readouterr()
    assert main(["show", "text-hate@canary", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["manifest"]["version"] == "1.4.0"
    assert main(["rollback", "text-hate", "--channel", "stable"]) == 2  # nothing earlier: a user error
    assert "fix:" in capsys.readouterr().err
    assert main(["publish", str(runs / "gate-fail"), "--version", "2.0.0", *key]) == 2
    err = capsys.readouterr().err
    assert "did not pass" in err and "size (MB)" in err
    assert main(["show", "tiny-hate@1.5.0"]) == 0


# ---------------------------------------------------------------------------------------------- MediaPipe Tasks


def test_tasks_ready_models_ship_to_every_app_platform_and_the_web(tasks_text_export, keys, tmp_path):
    """A `mediapipe` artifact is pulled with android and ios (under mediapipe/) and is the whole of a web
    pull, with the tasks.json the page loads; its Tasks agreement was gated."""
    bench.run(tasks_text_export, tmp_path / "bench", quick=True)
    gate_dir = tmp_path / "gate"
    result = gate.run(tmp_path / "bench", gate_dir, overrides=["budgets.parity.min_tasks_decision_agreement=0.99"])
    tasks_checks = [c for c in result["checks"] if c["name"].startswith("Tasks decision agreement")]
    assert [c["subject"] for c in tasks_checks] == ["mediapipe_fp32", "mediapipe_int8_dynamic"]
    assert all(c["passed"] and c["value"] >= 0.99 for c in tasks_checks), tasks_checks
    registry = Registry(config(tmp_path / "registry", keys))
    registry.publish(gate_dir, "tiny-tasks", "1.0.0")
    web = tmp_path / "web"
    registry.pull(parse_ref("tiny-tasks@1.0.0"), "web", web)
    index = json.loads((web / "tasks.json").read_text())
    assert index["task"] == "text" and index["version"] == "1.0.0" and index["thresholds"] == "thresholds.json"
    for artifact in index["artifacts"]:
        model = web / artifact["model"]
        assert sha256_file(model) == sha256_file(tasks_text_export / f"mediapipe/{model.name}")
        assert (web / artifact["golden"]).is_file()
    assert (web / "thresholds.json").is_file() and not list(web.glob("*.onnx")) and not list(web.glob("model_*.tflite"))
    android = tmp_path / "android"
    registry.pull(parse_ref("tiny-tasks@1.0.0"), "android", android)
    assert (android / "mediapipe/model_int8_dynamic.tflite").is_file() and not (android / "tasks.json").exists()
