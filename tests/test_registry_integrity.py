"""What an independent fault-injection probe found (issue 27, points 5-7), through the real `edgemod` in
subprocesses: a dead writer's lock that the next writer never takes itself, release files changed or
lost after publishing (`registry check --deep`), and a staging folder whose `.part` file is a hard link
to a file outside it. Each failing command exits 2 with a `fix:` line and no traceback; the state is
checked afterwards. The registry is built once per module from synthetic releases (milliseconds)."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from synthetic_release import FILES, publish_synthetic

from edgemod.fsutil import sha256_bytes
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.pull import STAGING_MARK
from edgemod.registry.signing import generate_keypair

PROJECT = Path(__file__).resolve().parent.parent
MODEL = "onnx/model.onnx"


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """Keys and a registry: tiny@1.0.0 (stable) and tiny@1.1.0 (canary)."""
    base = tmp_path_factory.mktemp("integrity")
    private, public = generate_keypair(base / "keys")
    registry = Registry(RegistryConfig(url=str(base / "registry"), signing_key=private, trusted_keys=[public]))
    publish_synthetic(registry, "tiny", "1.0.0", channel="stable")
    publish_synthetic(registry, "tiny", "1.1.0", channel="canary")
    return {"registry": base / "registry", "private": private, "public": public}


@pytest.fixture
def case(pristine, tmp_path):
    """This test's own folder, holding a copy of the pristine registry at `registry/`."""
    shutil.copytree(pristine["registry"], tmp_path / "registry")
    return tmp_path


def edgemod(case: Path, pristine, *args: str, trusted: bool = True) -> subprocess.CompletedProcess:
    """The CLI of this tree in a subprocess, run in the case folder against its registry copy. `publish`
    publishes tests/synthetic_release.py's release (through tests/faulty_cli.py, with no fault)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMOD_")}
    env.update({"EDGEMOD_REGISTRY": str(case / "registry"), "EDGEMOD_SIGNING_KEY": str(pristine["private"]),
                "EDGEMOD_TEST_SYNTHETIC_RELEASE": "1", "COLUMNS": "200",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))})
    if trusted:
        env["EDGEMOD_TRUSTED_KEYS"] = str(pristine["public"])
    return subprocess.run([sys.executable, "-m", "tests.faulty_cli", *args], cwd=case, env=env, capture_output=True,
                          text=True, timeout=120)


def assert_refused(done: subprocess.CompletedProcess, *says: str) -> None:
    """Exit 2, a line starting with `fix:`, no traceback, and each of `says` in the output."""
    output = done.stdout + done.stderr
    assert done.returncode == 2, (done.returncode, output[-3000:])
    assert any(line.startswith("fix:") for line in output.splitlines()), output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    flat = " ".join(output.split())
    for text in says:
        assert text in flat, (text, output[-3000:])


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every file under `folder` with its bytes and mtime, to show a read-only command wrote nothing."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.endswith((".lock", ".tmp"))] + list(
        (root / ".pending").glob("*"))


# ---------------------------------------------------------------------------------------------- 5: stale locks


def plant_dead_writers(root: Path) -> list[Path]:
    """Lock files (unheld, naming a dead pid) on every key a writer locks, and a dead pid's temp file."""
    process = subprocess.Popen(["true"])
    process.wait()
    holder = json.dumps({"host": socket.gethostname(), "pid": process.pid, "started_unix": time.time()})
    planted = [root / "index.json.lock", root / "tiny/channels.json.lock", root / "tiny/history.jsonl.lock",
               root / ".tmp" / f"{socket.gethostname()}-{process.pid}-x1y2.tmp"]
    for path in planted:
        path.parent.mkdir(exist_ok=True)
        path.write_text(holder)
    return planted


def test_a_writer_clears_dead_writers_locks_it_never_takes_itself(case, pristine):
    """The probe's state: a writer killed after rewriting a key but before removing its lock. A publish
    without --channel leaves channels.json alone and a no-op promote writes nothing at all; each must
    still remove every lock and temp file of a dead writer, so `registry check` passes without --repair."""
    root = case / "registry"
    planted = plant_dead_writers(root)
    assert_refused(edgemod(case, pristine, "registry", "check"), "stale lock", "temp file of a dead writer")
    assert_refused(edgemod(case, pristine, "promote", "tiny", "1.0.0", "--channel", "stable"), "already points at 1.0.0")
    assert leftovers(root) == [], "a writer that replayed nothing left dead writers' files"
    planted = plant_dead_writers(root)
    published = edgemod(case, pristine, "publish", str(case), "--name", "tiny", "--version", "1.2.0")
    assert published.returncode == 0, published.stderr
    assert [p for p in planted if p.exists()] == [] and leftovers(root) == []
    done = edgemod(case, pristine, "registry", "check")
    assert done.returncode == 0, done.stderr


# ---------------------------------------------------------------------------------------------- 6: check --deep


def _flip_a_byte(root: Path) -> str:
    path = root / "tiny/1.0.0" / MODEL
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    return "tiny/1.0.0/onnx/model.onnx: changed since it was published"


def _remove_a_file(root: Path) -> str:
    (root / "tiny/1.1.0/shared/labels.json").unlink()
    return "tiny/1.1.0/shared/labels.json: missing"


def _add_a_file(root: Path) -> str:
    (root / "tiny/1.1.0/onnx/model2.onnx").write_bytes(b"extra")
    return "tiny/1.1.0/onnx/model2.onnx: not in tiny@1.1.0's signed manifest"


def _edit_the_manifest(root: Path) -> str:
    path = root / "tiny/1.0.0/release.json"
    path.write_text(path.read_text().replace('"labels": [', '"labels": ["sneaky", '))
    return "the signature does not match release.json"


def test_check_deep_passes_an_intact_registry_and_needs_trusted_keys(case, pristine):
    done = edgemod(case, pristine, "registry", "check", "--deep")
    assert done.returncode == 0 and "sha256 of its 6 files" in " ".join(done.stderr.split()), done.stderr
    assert_refused(edgemod(case, pristine, "registry", "check", "--deep", trusted=False), "no trusted keys", "--trusted-key")
    other = generate_keypair(case / "other")[1]
    assert_refused(edgemod(case, pristine, "registry", "check", "--deep", "--trusted-key", str(other)),
                   "not trusted here", "2 inconsistencies")


@pytest.mark.parametrize("damage", [_flip_a_byte, _remove_a_file, _add_a_file, _edit_the_manifest],
                         ids=["flipped byte", "missing file", "extra file", "edited release.json"])
def test_check_deep_reads_every_release_file(damage, case, pristine):
    """`registry check` compares records (a changed byte passes it: see the flipped byte); `--deep` also
    reads every byte against the signed manifest, and says how to restore. It writes nothing."""
    finding = damage(case / "registry")
    before = snapshot(case)
    if damage is _flip_a_byte:
        assert edgemod(case, pristine, "registry", "check").returncode == 0
    deep = edgemod(case, pristine, "registry", "check", "--deep")
    assert_refused(deep, finding, "1 inconsistencies", "by hand:")
    fix = next(line for line in deep.stderr.splitlines() if line.startswith("fix:"))
    assert "restore" in fix or "delete it" in fix, fix
    assert snapshot(case) == before, "a check wrote something"


# ---------------------------------------------------------------------------------------------- 7: planted hard links


@pytest.mark.parametrize("mark", ["valid", "listing the planted inodes"])
def test_pull_never_resumes_into_a_hard_link_to_an_outside_file(mark, case, pristine):
    """A staging folder with a valid mark (as the probe planted it; or also listing the planted files'
    inodes as the pull's own) where the model's `.part` is a hard link to an outside file holding a true
    prefix of the model (so appending would verify), and a finished golden file is a hard link to an
    outside copy: the pull discards both links and downloads afresh; the outside files keep their bytes
    and their single link."""
    model = FILES[MODEL]
    outside = {"prefix.bin": model[:300], "golden-copy.json": FILES["onnx/golden/onnx_fp32.json"]}
    for name, data in outside.items():
        (case / name).write_bytes(data)
    staging = case / ".out.partial"
    (staging / "golden").mkdir(parents=True)
    os.link(case / "prefix.bin", staging / "model.onnx.part")
    os.link(case / "golden-copy.json", staging / "golden" / "onnx_fp32.json")
    release = (case / "registry/tiny/1.0.0/release.json").read_bytes()
    inodes = sorted(os.stat(case / name).st_ino for name in outside)
    listed = f"{json.dumps(inodes)}\n" if mark != "valid" else ""
    (staging / STAGING_MARK).write_text(f"{sha256_bytes(release)} onnx\n{listed}")
    done = edgemod(case, pristine, "pull", "tiny@1.0.0", "--platform", "onnx", "--out", str(case / "out"))
    assert done.returncode == 0, done.stderr
    assert "resumed" not in done.stderr, done.stderr
    for name, data in outside.items():
        assert (case / name).read_bytes() == data, f"the pull wrote into {name}"
        assert (case / name).stat().st_nlink == 1
    out = case / "out"
    assert (out / "model.onnx").read_bytes() == model
    assert all(p.stat().st_nlink == 1 for p in out.rglob("*") if p.is_file())
    assert sorted(p.name for p in case.iterdir()) == ["golden-copy.json", "out", "prefix.bin", "registry"]


class _Drop:
    """Wrap a backend's `stream`: the next download of `key` after `arm()` stops after `cut` bytes."""

    def __init__(self, backend, key: str, cut: int):
        self.stream, self.key, self.cut, self.armed = backend.stream, key, cut, False
        backend.stream = self

    def arm(self) -> None:
        self.armed = True

    @contextlib.contextmanager
    def __call__(self, key: str, start: int = 0):
        with self.stream(key, start) as (offset, chunks):
            if key != self.key or not self.armed:
                yield offset, chunks
                return
            self.armed = False

            def dropped():
                yield b"".join(chunks)[:self.cut]
                raise ConnectionError("connection lost mid-file")

            yield offset, dropped()


def test_pull_resumes_only_files_it_created(case, pristine):
    """An interrupted pull's own `.part` is resumed; a regular `.part` it did not create (not in the mark)
    is downloaded afresh, and so is every file of a staging folder that belongs to another user."""
    from edgemod.registry.refs import parse_ref

    registry = Registry(RegistryConfig(url=str(case / "registry"), trusted_keys=[pristine["public"]]))
    drop, ref, out = _Drop(registry.backend, f"tiny/1.0.0/{MODEL}", 200), parse_ref("tiny@1.0.0"), case / "out"
    part = case / ".out.partial" / "model.onnx.part"

    def interrupted() -> None:
        shutil.rmtree(out, ignore_errors=True)
        drop.arm()
        with pytest.raises(ConnectionError):
            registry.pull(ref, "onnx", out)
        assert part.stat().st_size == 200

    interrupted()
    assert registry.pull(ref, "onnx", out).resumed == [MODEL]
    interrupted()
    (part.parent / "copy").write_bytes(part.read_bytes())
    os.replace(part.parent / "copy", part)  # the same bytes in a file the pull did not create (another inode)
    result = registry.pull(ref, "onnx", out)
    assert result.resumed == [] and (out / "model.onnx").read_bytes() == FILES[MODEL]
    if os.getuid() != 0:
        return  # only root can give the staging folder to another user
    interrupted()
    os.chown(part.parent, 65534, 65534)
    result = registry.pull(ref, "onnx", out)
    assert result.resumed == [] and (out / "model.onnx").read_bytes() == FILES[MODEL]
