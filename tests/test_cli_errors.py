"""One error contract for the whole CLI: every bad invocation below, run through the real `edgemod`
in a subprocess, exits 2 with the problem and a line starting with `fix:`, and prints no traceback.

Bad files (binary, non-UTF-8, wrong YAML/JSON shape, a folder where a file belongs), bad overrides,
registry files of the wrong shape, a tampered or malformed signed manifest, planted symlinks, and
filesystem faults (a full disk, a read-only folder or mount: injected by tests/faulty_cli.py, since
the tests may run as root). The registry is built once per module from synthetic releases.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from synthetic_release import publish_synthetic

from edgemod.fsutil import sha256_bytes
from edgemod.registry.config import RegistryConfig
from edgemod.registry.core import Registry
from edgemod.registry.signing import generate_keypair, load_private_key, sign_manifest

PROJECT = Path(__file__).resolve().parent.parent
RECIPE = PROJECT / "recipes" / "quickstart.yaml"


@dataclass
class Run:
    """One invocation: CLI arguments, extra environment, and what must hold afterwards."""

    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    says: tuple[str, ...] = ()  # substrings of the output
    after: Callable[[], None] | None = None  # state checks once the command has exited
    faulty: bool = False  # run through tests/faulty_cli.py (EDGEMOD_TEST_FAULT in env)


@dataclass
class World:
    root: Path  # this case's own folder
    registry: Path  # pristine registry: copy it with `own_registry` before damaging it
    keys: dict[str, Path]

    def file(self, name: str, data: str | bytes) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path

    def own_registry(self) -> Path:
        copy = self.root / "registry"
        shutil.copytree(self.registry, copy)
        return copy

    def pulled(self, version: str = "1.0.0") -> Path:
        """An earlier, successful pull of tiny@version at ROOT/pulled."""
        out = self.root / "pulled"
        Registry(_config(self.registry, self.keys)).pull(_ref(f"tiny@{version}"), "onnx", out)
        return out


def _ref(text: str):
    from edgemod.registry.refs import parse_ref

    return parse_ref(text)


def _config(root: Path, keys: dict[str, Path]) -> RegistryConfig:
    return RegistryConfig(url=str(root), signing_key=keys["private"], trusted_keys=[keys["public"]])


def _resign(registry: Path, version: str, manifest, private: Path) -> None:
    """Replace tiny@version's release.json by `manifest`, validly signed by `private` (a trusted key)."""
    folder = registry / "tiny" / version
    (folder / "release.json").write_text(json.dumps(manifest))
    (folder / "release.sig").write_bytes(sign_manifest(manifest, load_private_key(private)))


def _release(world: World, version: str = "1.0.0") -> dict:
    return json.loads((world.registry / "tiny" / version / "release.json").read_text())


# ---------------------------------------------------------------------------------------------- the table


def _recipe(text: str | bytes, *extra: str) -> Callable[[World], Run]:
    return lambda w: Run(["recipe", "validate", str(w.file("recipe.yaml", text)), *extra])


def _override(value: str, says: str = "") -> Callable[[World], Run]:
    return lambda w: Run(["recipe", "validate", str(RECIPE), "--set", value], says=(says,) if says else ())


def _config_file(text: str | bytes) -> Callable[[World], Run]:
    return lambda w: Run(["list", "--config", str(w.file("edgemod.yaml", text))])


def _damaged(key: str, data: str, *args: str, append: bool = False, says: str = "damaged") -> Callable[[World], Run]:
    def build(w: World) -> Run:
        registry = w.own_registry()
        path = registry / key
        path.write_text((path.read_text() if append else "") + data)
        return Run([*args, "--registry", str(registry)], says=(says,))
    return build


def _resigned(change: Callable[[dict], object], says: str, *args: str) -> Callable[[World], Run]:
    def build(w: World) -> Run:
        registry = w.own_registry()
        _resign(registry, "1.0.0", change(_release(w)), w.keys["private"])
        out = w.root / "out"
        return Run(["pull", "tiny@1.0.0", "--platform", "onnx", "--out", str(out), "--registry", str(registry), *args],
                   says=(says,), after=lambda: _nothing_escaped(w.root))
    return build


def _nothing_escaped(root: Path) -> None:
    """Only the registry, and the staging folder of verified files a re-run resumes from, are in the case folder."""
    assert {p.name for p in root.iterdir()} <= {"registry", ".out.partial"}, sorted(p.name for p in root.iterdir())
    assert not any((folder / "escaped").exists() for folder in (root.parent, root.parent.parent, Path("/tmp")))


def _nothing_outside(root: Path, allowed: set[str]) -> None:
    assert {p.name for p in root.iterdir()} <= allowed, sorted(p.name for p in root.iterdir())


def _pull_out(out: Callable[[World], Path], says: str, cwd_inside: bool = False) -> Callable[[World], Run]:
    def build(w: World) -> Run:
        return Run(["pull", "tiny@stable", "--platform", "onnx", "--out", str(out(w))], says=(says,))
    return build


def _planted_staging(w: World) -> Run:
    victim = w.root / "victim"
    victim.mkdir()
    (w.root / ".out.partial").symlink_to(victim)

    def after() -> None:
        assert not list(victim.iterdir()) and not (w.root / "out").exists()
        assert (w.root / ".out.partial").is_symlink()
    return Run(["pull", "tiny@stable", "--platform", "onnx", "--out", str(w.root / "out")],
               says=("symbolic link", ".out.partial"), after=after)


def _planted_part(w: World) -> Run:
    """A resumable-looking staging folder (the right marker) whose partial model file links to a victim."""
    victim = w.file("victim.txt", "precious\n")
    staging = w.root / ".out.partial"
    staging.mkdir()
    release = (w.registry / "tiny" / "1.0.0" / "release.json").read_bytes()
    (staging / ".edgemod-pull").write_text(f"{sha256_bytes(release)} onnx\n")
    (staging / "model.onnx.part").symlink_to(victim)

    def after() -> None:
        assert victim.read_text() == "precious\n" and not (w.root / "out").exists()
    return Run(["pull", "tiny@1.0.0", "--platform", "onnx", "--out", str(w.root / "out")],
               says=("symbolic link",), after=after)


def _full_disk_pull(w: World) -> Run:
    out = w.pulled("1.0.0")
    before = sorted(p.name for p in out.iterdir())

    def after() -> None:
        assert json.loads((out / "pull.json").read_text())["version"] == "1.0.0"
        assert sorted(p.name for p in out.iterdir()) == before
        assert sorted(p.name for p in w.root.iterdir()) == ["pulled"]  # no .pulled.partial left to fill the disk
    return Run(["pull", "tiny@1.1.0", "--platform", "onnx", "--out", str(out)], faulty=True,
               env={"EDGEMOD_TEST_FAULT": f"ENOSPC:{w.root}:300"}, says=("disk filled up",), after=after)


def _read_only_parent(kind: str) -> Callable[[World], Run]:
    def build(w: World) -> Run:
        parent = w.root / "ro"
        parent.mkdir()
        return Run(["pull", "tiny@stable", "--platform", "onnx", "--out", str(parent / "out")], faulty=True,
                   env={"EDGEMOD_TEST_FAULT": f"{kind}:{parent}"}, says=(str(parent),),
                   after=lambda: _nothing_outside(parent, set()))
    return build


def _faulty_registry(kind: str, *args: str, budget: str = "") -> Callable[[World], Run]:
    def build(w: World) -> Run:
        registry = w.own_registry()
        return Run([*args, "--registry", str(registry)], faulty=True,
                   env={"EDGEMOD_TEST_FAULT": f"{kind}:{registry}{budget}", "EDGEMOD_TEST_SYNTHETIC_RELEASE": "1"},
                   says=(str(registry),) if kind != "ENOSPC" else ("No space left",))
    return build


def _listing(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*"))


def _gate_json(data: bytes) -> Callable[[World], Run]:
    """Publish a gate folder whose manifest is fine and whose gate.json is `data` (issue 27)."""
    def build(w: World) -> Run:
        w.file("gate/manifest.json", '{"stage": "gate", "name": "qs", "recipe": {}, "recipe_sha256": "x"}')
        gate_dir = w.file("gate/gate.json", data).parent
        registry = w.root / "registry"
        return Run(["publish", str(gate_dir), "--name", "qs", "--version", "1.0.0", "--registry", str(registry)],
                   says=("gate.json",), after=lambda: _nothing_outside(w.root, {"gate"}))
    return build


def _synthetic_publish(*args: str, says: str) -> Callable[[World], Run]:
    """`publish` of a gate folder whose recipe is named `tiny`, through faulty_cli's synthetic release (no
    fault set): a flag the command failed to refuse would publish, and the registry would change."""
    def build(w: World) -> Run:
        registry = w.own_registry()
        before = _listing(registry)
        gate_dir = w.file("gate/manifest.json", '{"stage": "gate", "name": "tiny", "recipe": {}, "recipe_sha256": "x"}').parent

        def after() -> None:
            assert _listing(registry) == before, "the registry changed"
        return Run(["publish", str(gate_dir), *args, "--registry", str(registry)], faulty=True,
                   env={"EDGEMOD_TEST_SYNTHETIC_RELEASE": "1"}, says=(says,), after=after)
    return build


def _keygen(name: str) -> Callable[[World], Run]:
    def build(w: World) -> Run:
        out = w.root / "bad" / "k3"

        def after() -> None:
            assert not list(w.root.parent.rglob("evilkey*")) and not list(w.root.parent.parent.glob("evilkey*"))
            assert not (w.root / "bad").exists()  # refused before anything was created
        return Run(["registry", "keygen", "--out", str(out), "--name", name], says=("key name",), after=after)
    return build


def _registry_path(command: tuple[str, ...], kind: str) -> Callable[[World], Run]:
    """`list` / `registry check` with --registry at a regular file, or at a folder that does not exist."""
    def build(w: World) -> Run:
        path = w.file("registry.txt", "not a registry\n") if kind == "file" else w.root / "no-such-registry"

        def after() -> None:
            assert (path.read_text() == "not a registry\n") if kind == "file" else not path.exists()
        return Run([*command, "--registry", str(path)], says=(str(path),), after=after)
    return build


PUBLISH = ("publish", ".", "--name", "tiny", "--version", "2.0.0")
CASES: dict[str, Callable[[World], Run]] = {
    # recipes
    "recipe is a list": _recipe("- a\n- b\n"),
    "recipe is a scalar": _recipe("hello\n"),
    "recipe is empty": _recipe(""),
    "recipe is invalid YAML": _recipe("name: [unclosed\nlabels: x\n"),
    "recipe is binary": _recipe(b"\x00\x01\x02name: x\x00"),
    "recipe is not UTF-8": _recipe(b"name: caf\xe9\nlabels: [a]\n"),
    "recipe has an unknown key": _recipe(RECIPE.read_text() + "nosuch: 1\n"),
    "recipe path is a folder": lambda w: Run(["recipe", "validate", str(w.root)], says=("is a folder",)),
    "recipe path is missing": lambda w: Run(["recipe", "validate", str(w.root / "nope.yaml")]),
    "--set labels.0=x": _override("labels.0=x", "not a mapping"),
    "--set distill={": _override("distill={", "not valid YAML"),
    "--set without =": _override("distill.epochs"),
    "--set with an empty key": _override(".epochs=3"),
    "--set of an unknown key": _override("distill.nosuch=3", "unknown key"),
    # --config
    "--config is a list": _config_file("- registry\n"),
    "--config is invalid YAML": _config_file("registry: {url: [\n"),
    "--config is binary": _config_file(b"\x00\x00registry:\x00"),
    "--config is not UTF-8": _config_file(b"registry:\n  url: \xff\xfe\n"),
    "--config registry is a scalar": _config_file("registry: 5\n"),
    "--config trusted_keys is a number": _config_file("registry:\n  trusted_keys: 5\n"),
    "--config has an unknown key": _config_file("registry:\n  nosuch: 1\n"),
    "--config is a folder": lambda w: Run(["list", "--config", str(w.root)], says=("is a folder",)),
    "--config is missing": lambda w: Run(["list", "--config", str(w.root / "nope.yaml")]),
    # registry files of the wrong shape
    "index.json is a list": _damaged("index.json", "[]", "list"),
    "index.json is not JSON": _damaged("index.json", "{", "list", says="not valid JSON"),
    "index.json models is a list": _damaged("index.json", '{"models": []}', "show", "tiny"),
    "channels.json is a list": _damaged("tiny/channels.json", "[]", "pull", "tiny@stable", "--platform", "onnx",
                                        "--out", "/nonexistent-edgemod-out"),
    "channels.json entry is a string": _damaged("tiny/channels.json", '{"channels": {"stable": "1.0.0"}}',
                                                "show", "tiny@stable"),
    "history.jsonl has a non-JSON line (show)": _damaged("tiny/history.jsonl", "garbage\n", "show", "tiny",
                                                          append=True, says="line"),
    "history.jsonl has a non-JSON line (promote)": _damaged("tiny/history.jsonl", "garbage\n", "promote", "tiny",
                                                             "1.0.0", "--channel", "beta", append=True, says="line"),
    "history.jsonl line is not an object": _damaged("tiny/history.jsonl", "5\n", "rollback", "tiny", "--channel",
                                                    "stable", append=True),
    "release.json is a list (show)": _damaged("tiny/1.0.0/release.json", "[]", "show", "tiny@1.0.0",
                                              says="refusing it"),
    # signed manifests: tampered or validly signed but malformed
    "release.json edited after signing": _damaged("tiny/1.0.0/release.json", '{"name": "tiny"}', "pull", "tiny@1.0.0",
                                                  "--platform", "onnx", "--out", "/nonexistent-edgemod-out",
                                                  says="failed verification"),
    "signed manifest is a list": _resigned(lambda m: [m], "not a release manifest"),
    "signed manifest files is a mapping": _resigned(lambda m: {**m, "files": {}}, "not an edgemod release"),
    "signed manifest file escapes --out": _resigned(
        lambda m: {**m, "files": [{**m["files"][0], "path": "onnx/../../../escaped"}]}, "file path"),
    "signed manifest file is absolute": _resigned(
        lambda m: {**m, "files": [{**m["files"][0], "path": "/tmp/escaped"}]}, "file path"),
    "signed manifest file over pull.json": _resigned(
        lambda m: {**m, "files": [{**m["files"][0], "path": "onnx/pull.json"}]}, "clash"),
    "signed manifest sha256 is wrong": _resigned(
        lambda m: {**m, "files": [{**m["files"][0], "sha256": "0" * 64}, *m["files"][1:]]}, "does not match"),
    "signed manifest bytes is text": _resigned(
        lambda m: {**m, "files": [{**m["files"][0], "bytes": "12"}]}, "malformed"),
    # pull destinations
    "pull --out .": lambda w: Run(["pull", "tiny@stable", "--platform", "onnx", "--out", "."], says=("current folder",)),
    "pull --out /": _pull_out(lambda w: Path("/"), "current folder or one above"),
    "pull --out an existing file": _pull_out(lambda w: w.file("model.bin", "x"), "not an earlier edgemod pull"),
    "pull --out a foreign folder": _pull_out(lambda w: w.file("mine/notes.txt", "x").parent, "not an earlier edgemod pull"),
    "pull --out a symlink": _pull_out(lambda w: _symlink(w.root / "link", w.pulled()), "symbolic link"),
    "pull into a planted .partial symlink": _planted_staging,
    "pull with a planted .part symlink": _planted_part,
    "pull --platform windows": lambda w: Run(["pull", "tiny@stable", "--platform", "windows", "--out", str(w.root / "o")]),
    "pull a malformed ref": lambda w: Run(["pull", "tiny@@x", "--platform", "onnx", "--out", str(w.root / "o")]),
    "pull an unknown channel": lambda w: Run(["pull", "tiny@beta", "--platform", "onnx", "--out", str(w.root / "o")]),
    "pull with a binary trusted key": lambda w: Run(["pull", "tiny@stable", "--platform", "onnx", "--out",
                                                     str(w.root / "o"), "--trusted-key", str(w.file("k.pub", b"\x00\xff"))]),
    # filesystem faults
    "pull: disk full": _full_disk_pull,
    "pull: read-only --out parent (EACCES)": _read_only_parent("EACCES"),
    "pull: read-only mount (EROFS)": _read_only_parent("EROFS"),
    "publish: disk full": _faulty_registry("ENOSPC", *PUBLISH, budget=":200"),
    "publish: read-only registry (EACCES)": _faulty_registry("EACCES", *PUBLISH),
    "publish: read-only registry (EROFS)": _faulty_registry("EROFS", *PUBLISH),
    "promote: read-only registry (EPERM)": _faulty_registry("EPERM", "promote", "tiny", "1.1.0", "--channel", "beta"),
    "publish --key is a folder": lambda w: Run([*PUBLISH, "--key", str(w.root)],
                                               env={"EDGEMOD_TEST_SYNTHETIC_RELEASE": "1"}, faulty=True),
    # issue 27: damaged gate.json, paths out of --out, empty or absurd values, registries that are not there
    "publish: gate.json is binary": _gate_json(b"\x00\x01\x02\xff{}"),
    "publish: gate.json is Latin-1": _gate_json('{"verdict": "pass", "recipe": "café"}'.encode("latin-1")),
    "publish: gate.json is empty": _gate_json(b""),
    "publish: gate.json is truncated": _gate_json(b'{"verdict": "pass", "checks": [{"name": "si'),
    "publish: gate.json is a list": _gate_json(b'[{"verdict": "pass"}]'),
    "publish: gate.json has no checks": _gate_json(b'{"verdict": "pass"}'),
    "keygen --name ../../evilkey": _keygen("../../evilkey"),
    "keygen --name evilkey/b": _keygen("evilkey/b"),
    "keygen --name with a newline": _keygen("evilkey\n"),
    "keygen --name empty": _keygen(""),
    "publish --name empty": _synthetic_publish("--name", "", "--version", "2.0.0", says="invalid model name"),
    "publish --channel empty": _synthetic_publish("--name", "tiny", "--version", "2.0.0", "--channel", "",
                                                  says="invalid channel name"),
    "publish a 5,000-digit version": _synthetic_publish("--name", "tiny", "--version", "1" * 5000 + ".0.0",
                                                        says="characters long"),
    "list --registry a file": _registry_path(("list",), "file"),
    "registry check --registry a file": _registry_path(("registry", "check"), "file"),
    "list --registry missing": _registry_path(("list",), "missing"),
    "registry check --registry missing": _registry_path(("registry", "check"), "missing"),
    "--set budgets.size_mb.tflite=1e999": _override("budgets.size_mb.tflite=1e999", "finite"),
    "--set a 400-digit distill.epochs": _override("distill.epochs=" + "9" * 400, "out of range"),
    "--set a 5,000-digit distill.epochs": _override("distill.epochs=" + "9" * 5000, "out of range"),
    # other commands
    "show an unknown model": lambda w: Run(["show", "nosuch"]),
    "data show nosuch": lambda w: Run(["data", "show", "nosuch"], says=("unknown dataset",)),
    "data list with a catalog that is a list": lambda w: Run(["data", "list"],
                                                             env={"EDGEMOD_CATALOG": str(w.file("c.yaml", "- a\n"))}),
    "publish a folder that is no run": lambda w: Run(["publish", str(w.root), "--version", "1.0.0"]),
    "publish a run whose manifest is a list": lambda w: Run(["publish", str(w.file("run/manifest.json", "[1]").parent),
                                                            "--version", "1.0.0"]),
    "keygen over an existing key": lambda w: Run(["registry", "keygen", "--out", str(w.keys["private"].parent)]),
    "usage error: pull without --out": lambda w: Run(["pull", "tiny@stable", "--platform", "onnx"]),
}


def _symlink(link: Path, target: Path) -> Path:
    link.symlink_to(target)
    return link


# ---------------------------------------------------------------------------------------------- running it


@pytest.fixture(scope="module")
def world_factory(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli-errors")
    keys_dir = base / "keys"
    private, public = generate_keypair(keys_dir)
    keys = {"private": private, "public": public}
    registry = base / "registry"
    built = Registry(_config(registry, keys))
    publish_synthetic(built, "tiny", "1.0.0", channel="stable")
    publish_synthetic(built, "tiny", "1.1.0", channel="canary")

    def make(number: int) -> World:
        root = base / f"case-{number:03d}"
        root.mkdir()
        return World(root, registry, keys)

    return make


def _execute(run: Run, world: World) -> subprocess.CompletedProcess:
    """Run the CLI of this tree (PYTHONPATH) in the case's own folder, so `--out .` is that folder."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("EDGEMOD_")}
    env.update({"EDGEMOD_REGISTRY": str(world.registry), "EDGEMOD_TRUSTED_KEYS": str(world.keys["public"]),
                "EDGEMOD_SIGNING_KEY": str(world.keys["private"]), "COLUMNS": "200",
                "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")])), **run.env})
    module = "tests.faulty_cli" if run.faulty else "edgemod.cli"
    return subprocess.run([sys.executable, "-m", module, *run.args], cwd=world.root, env=env,
                          capture_output=True, text=True, timeout=120)


def _problems(name: str, run: Run, done: subprocess.CompletedProcess) -> list[str]:
    output = done.stdout + done.stderr
    problems = []
    if done.returncode != 2:
        problems.append(f"exit {done.returncode}, not 2")
    if not any(line.startswith("fix:") for line in output.splitlines()):
        problems.append("no line starts with 'fix:'")
    if "Traceback" in output:
        problems.append("a traceback")
    problems += [f"does not say {s!r}" for s in run.says if s not in output]
    if run.after and not problems:
        try:
            run.after()
        except AssertionError as error:
            problems.append(f"state afterwards: {error}")
    return [f"{name}: {p}\n    $ edgemod {' '.join(run.args)}\n    " + output.strip().replace("\n", "\n    ")
            for p in problems]


def test_every_bad_invocation_exits_2_with_a_fix_line_and_no_traceback(world_factory):
    assert len(CASES) >= 40
    worlds = [world_factory(number) for number in range(len(CASES))]
    runs = [(name, build(world), world) for (name, build), world in zip(CASES.items(), worlds, strict=True)]

    def one(item) -> list[str]:
        name, run, world = item
        return _problems(name, run, _execute(run, world))

    with ThreadPoolExecutor(max_workers=4) as pool:
        problems = [p for found in pool.map(one, runs) for p in found]
    assert not problems, f"{len(problems)} of {len(CASES)} cases broke the contract:\n" + "\n".join(problems)


def test_debug_variable_shows_the_traceback(world_factory):
    world = world_factory(len(CASES))
    run = Run(["recipe", "validate", str(world.root)], env={"EDGEMOD_DEBUG": "1"})
    done = _execute(run, world)
    assert done.returncode == 2 and "Traceback" in done.stderr and "\nfix:" in "\n" + done.stderr


def test_promote_rebuilds_an_index_of_the_wrong_shape(world_factory):
    """index.json is derived from the releases: a write rebuilds a damaged one instead of failing half-way."""
    world = world_factory(len(CASES) + 1)
    root = world.own_registry()
    (root / "index.json").write_text("[]")
    registry = Registry(_config(root, world.keys))
    registry.promote("tiny", "1.1.0", "stable")
    assert registry.index()["models"]["tiny"]["channels"] == {"stable": "1.1.0", "canary": "1.1.0"}
