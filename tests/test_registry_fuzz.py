"""Property-based tests (hypothesis) of the registry's parsers and of pull, against inputs an attacker
with write access to a bucket could plant: references and version strings, channels.json, index.json
and history.jsonl of any shape, and validly signed release manifests whose file paths try to leave
`--out` (traversal, absolute, links' names, clashes with the pull's own files), whose sha256s lie,
or whose shape is wrong. Whatever the input: the only exception is EdgemodError, nothing is written
outside `--out` and its staging folder, and no file whose bytes differ from the signed sha256 lands.

About 2,000 examples in all; the pure parsers run in-process, pull against an in-memory backend.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from edgemod.errors import EdgemodError
from edgemod.registry.documents import channel_versions, index_models, parse_events
from edgemod.registry.pull import fetch_release
from edgemod.registry.refs import Ref, check_channel, check_name, check_version, parse_ref, semver_key
from edgemod.registry.signing import generate_keypair, load_private_key, load_trusted_keys, sign_manifest
from edgemod.registry.store import Blob


def examples(count: int) -> settings:
    """`count` examples, no deadline (the machine may be busy), no example database left in the tree."""
    return settings(max_examples=count, deadline=None, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)  # no lone surrogates: JSON-encodable
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4), max_leaves=12)


# ---------------------------------------------------------------------------------------------- references and documents


@examples(400)
@given(st.one_of(TEXT, st.from_regex(r"\A[a-z0-9._-]{1,8}@[0-9A-Za-z.+-]{1,12}\Z"),
                 st.from_regex(r"\A(0|[1-9]\d?)\.\d{1,2}\.\d{1,2}(-[0-9A-Za-z.-]{1,6})?\Z")))
def test_references_and_versions_parse_or_are_refused(text):
    for check in (parse_ref, check_name, check_version, check_channel, lambda t: parse_ref(t, need_target=False)):
        with contextlib.suppress(EdgemodError):
            check(text)
    assert isinstance(semver_key(text), tuple)


@examples(400)
@given(st.one_of(JSON, st.fixed_dictionaries({"channels": st.dictionaries(TEXT, JSON, max_size=3)}),
                 st.fixed_dictionaries({"models": st.dictionaries(TEXT, st.fixed_dictionaries(
                     {"versions": JSON, "channels": st.dictionaries(TEXT, JSON, max_size=2), "latest": JSON}), max_size=2)})))
def test_index_and_channels_of_any_shape(data):
    with contextlib.suppress(EdgemodError):
        assert all(isinstance(v, str) for v in channel_versions(data, "channels.json").values())
    with contextlib.suppress(EdgemodError):
        assert all(isinstance(entry, dict) for entry in index_models(data, "index.json").values())


EVENT = st.fixed_dictionaries({"event": st.sampled_from(["publish", "promote", "rollback", "other"]) | JSON},
                              optional={"channel": JSON | TEXT, "to": JSON | TEXT, "from": JSON, "version": JSON})


@examples(400)
@given(st.one_of(st.binary(max_size=64),
                 st.lists(st.one_of(EVENT.map(json.dumps), JSON.map(json.dumps), TEXT), max_size=5).map(
                     lambda lines: "\n".join(lines).encode())))
def test_history_of_any_bytes(data):
    from edgemod.registry.history import channel_stacks

    try:
        events = parse_events(data, "history.jsonl")
    except EdgemodError:
        return
    stacks = channel_stacks(events)  # replaying checked events never fails
    assert all(isinstance(v, str) for stack in stacks.values() for v in stack)


# ---------------------------------------------------------------------------------------------- pull


class MemoryBackend:
    """A read-only registry in a dict; `stream` honours `start` like a range request."""

    url = "memory://fuzz"
    writable = False

    def __init__(self, blobs: dict[str, bytes]):
        self.blobs = blobs

    def get(self, key: str) -> Blob | None:
        data = self.blobs.get(key)
        return None if data is None else Blob(data, hashlib.sha256(data).hexdigest())

    @contextlib.contextmanager
    def stream(self, key: str, start: int = 0):
        if key not in self.blobs:
            raise EdgemodError(f"{key} is missing from registry {self.url}", "republish it")
        yield start, iter([self.blobs[key][start:]])


GOOD_PATHS = ["onnx/model.onnx", "onnx/golden/onnx_fp32.json", "shared/tokenizer/vocab.txt", "model_card.md",
              "shared/thresholds.json"]
HOSTILE_PATHS = ["../escaped", "onnx/../../escaped", "/tmp/escaped", "onnx//x", "./onnx/x", "onnx/.", "onnx/..", "",
                 "onnx\\..\\escaped", "onnx/release.json", "shared/pull.json", "onnx/.edgemod-pull", "release.sig",
                 "onnx/model.onnx.part", "onnx/model.onnx/inner", "onnx", "shared/a\x00b", "onnx/" + "x" * 300,
                 "onnx/link -> /etc", "onnx/~/escaped", "onnx/escaped\n", "C:/escaped", "onnx/ü.bin"]
PATH = st.sampled_from(GOOD_PATHS + HOSTILE_PATHS) | st.builds("/".join, st.lists(
    st.sampled_from(["onnx", "shared", "..", ".", "", "a", "release.json", "x.part", "golden"]), min_size=1, max_size=4))


def _often(draw, good, bad, one_in: int = 4):
    """`good` most of the time, `bad` once in `one_in` draws (so that many pulls get through, and are checked)."""
    return draw(bad) if draw(st.integers(1, one_in)) == 1 else draw(good)


@st.composite
def releases(draw):
    """(manifest, backend blobs): each file's stored bytes match its signed sha256 or not; shapes vary."""
    files, blobs = [], {}
    for _ in range(draw(st.integers(0, 4))):
        data = draw(st.binary(max_size=40))
        path = _often(draw, st.sampled_from(GOOD_PATHS) | st.from_regex(r"\A(onnx|shared)/[a-z]{1,6}(/[a-z]{1,6})?\Z"),
                      PATH, one_in=5)
        stored = _often(draw, st.just(data), st.sampled_from([data + b"!", data[:-1], b"", b"x" * 41]), one_in=6)
        entry = {"path": path, "sha256": hashlib.sha256(data).hexdigest(),
                 "bytes": _often(draw, st.just(len(data)), st.sampled_from([len(data) + 1, max(len(data) - 1, 0)]), 8),
                 "platforms": _often(draw, st.just(["onnx"]), st.sampled_from([[], ["android"], ["onnx", "ios"]])),
                 "role": "model"}
        if draw(st.integers(0, 19)) == 0:  # a malformed entry
            entry[draw(st.sampled_from(["path", "sha256", "bytes", "platforms"]))] = draw(JSON)
        files.append(entry)
        blobs[f"tiny/1.0.0/{path}"] = stored
    manifest = {"name": "tiny", "version": "1.0.0", "platforms": {"onnx": ["onnx_fp32"]}, "files": files}
    shape = draw(st.integers(0, 19))
    if shape == 0:
        manifest = draw(JSON)
    elif shape == 1:
        manifest[draw(st.sampled_from(["platforms", "files"]))] = draw(JSON)
    return manifest, blobs


@pytest.fixture(scope="module")
def signer(tmp_path_factory):
    private, public = generate_keypair(tmp_path_factory.mktemp("fuzz-keys"))
    return load_private_key(private), load_trusted_keys([public])


@examples(800)
@given(case=releases())
def test_pull_stays_inside_out_and_lands_only_verified_files(signer, case):
    private, trusted = signer
    manifest, blobs = case
    release = json.dumps(manifest).encode()
    backend = MemoryBackend({**blobs, "tiny/1.0.0/release.json": release,
                             "tiny/1.0.0/release.sig": sign_manifest(manifest, private)})
    root = Path(tempfile.mkdtemp(prefix="edgemod-fuzz-"))
    try:
        (root / "inside").mkdir()
        out = root / "inside" / "out"
        try:
            result = fetch_release(backend, Ref("tiny", version="1.0.0"), "1.0.0", Blob(release, ""), trusted,
                                   "onnx", out, 0.0)
        except EdgemodError as error:
            event("refused: " + error.message.split(": ", 1)[-1][:40])
            result = None
        else:
            event(f"pulled {result.files} file(s)")
        assert [p.name for p in root.iterdir()] == ["inside"]  # nothing beside --out's parent
        assert {p.name for p in (root / "inside").iterdir()} <= {"out", ".out.partial"}
        assert not any(p.is_symlink() for p in root.rglob("*"))
        if result is not None:
            record = json.loads((out / "pull.json").read_text())
            for path, sha in record["files"].items():
                assert hashlib.sha256((out / path).read_bytes()).hexdigest() == sha
            landed = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
            assert landed == {*record["files"], "release.json", "release.sig", "pull.json"}
        staging = root / "inside" / ".out.partial"
        if staging.exists():  # only verified files are kept for a resume (and partial ones, as .part)
            signed = {f["sha256"] for f in manifest["files"]} if isinstance(manifest, dict) else set()
            for file in staging.rglob("*"):
                if file.is_file() and not file.name.endswith(".part") and file.name != ".edgemod-pull":
                    assert hashlib.sha256(file.read_bytes()).hexdigest() in signed
    finally:
        shutil.rmtree(root)
