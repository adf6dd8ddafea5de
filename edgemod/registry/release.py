"""Turn a passing gate folder into a release: the files per platform and the release manifest.

Walks gate → bench → export through their manifests, refusing anything that changed after it was
gated (a gate verdict is only worth something for the exact bytes it judged). The manifest built
here is what `release.sig` signs; it lists every file with its sha256 and the platforms it ships to.
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgemod.data_sources import data_sources, weight_sources
from edgemod.errors import EdgemodError
from edgemod.fsutil import read_json_object, sha256_bytes, sha256_file
from edgemod.manifest import Manifest, git_commit, read_manifest, verify_artifacts

SCHEMA = "edgemod.release/1"
# Where each target's files sit in a release: a platform folder, or `mediapipe/`, whose Tasks-ready
# models run in MediaPipe Tasks on every app platform and keep their folder in a pulled copy.
PLATFORM_OF_TARGET = {"tflite": "android", "coreml": "ios", "onnx": "onnx", "mediapipe": "mediapipe"}
SHIPS_TO = {"android": ("android",), "ios": ("ios",), "onnx": ("onnx",), "mediapipe": ("android", "ios", "web")}
PLATFORMS = ("android", "ios", "onnx", "web")
TASKS_INDEX = "web/tasks.json"  # what the web page (mobile_harness/web) loads first
TASKS_SCHEMA = "edgemod.tasks/1"
SHARED = "shared"  # device files every platform needs: tokenizer or preprocess.json, thresholds, student.json
# Export keeps the fp32 student and its scored test split so it can be benched alone; phones need neither
# (mirrors export.student.REFERENCE_FILES, not imported: that module loads torch).
REFERENCE_FILES = ("model.safetensors", "predictions.parquet")
CARD = "model_card.md"
DOCS = ("report.html", "gate.md", "gate.json")  # registry-only: `show` points at them, pulls skip them


@dataclass
class ReleaseFile:
    key: str  # path inside the release folder, e.g. android/model_int8_dynamic.tflite
    source: Path | None  # None: written from `content`
    sha256: str
    bytes: int
    platforms: list[str]  # where a pull takes it; [] = kept in the registry only
    role: str  # model | golden | device | card | report
    content: bytes | None = None

    def entry(self) -> dict[str, Any]:
        return {"path": self.key, "sha256": self.sha256, "bytes": self.bytes, "platforms": self.platforms, "role": self.role}


@dataclass
class Release:
    manifest: dict[str, Any]
    files: list[ReleaseFile]


@dataclass
class _Runs:
    gate_dir: Path
    gate: Manifest
    gate_result: dict
    bench_dir: Path
    bench: Manifest
    export_dir: Path
    export: Manifest


def pulled_path(key: str) -> str:
    """Where a pull writes a release file: the platform or shared folder is dropped, so a pulled
    folder reads model, golden/, tokenizer/, thresholds.json, model_card.md."""
    head, _, rest = key.partition("/")
    return rest if rest and head in (*PLATFORMS, SHARED) else key


def assemble(gate_dir: Path, name: str, version: str, published_by: str) -> Release:
    """The release for the gate run at `gate_dir`, refused unless its gate passed and nothing changed since."""
    from edgemod.model_card import render_model_card

    runs = _load_runs(Path(gate_dir))
    artifacts = _shipped(runs)
    files = _model_files(runs, artifacts)
    platforms = sorted({p for a in artifacts.values() for p in SHIPS_TO[a["platform"]]})
    files += _device_files(runs, platforms) + _doc_files(runs) + _tasks_index(runs, name, version, artifacts)
    manifest = _manifest(runs, name, version, published_by, artifacts, platforms)
    card = render_model_card(manifest, runs.bench.metrics).encode("utf-8")
    files.append(ReleaseFile(CARD, None, sha256_bytes(card), len(card), platforms, "card", card))
    manifest["files"] = [f.entry() for f in sorted(files, key=lambda f: f.key)]
    return Release(manifest, files)


def _load_runs(gate_dir: Path) -> _Runs:
    gate = read_manifest(gate_dir, "gate")
    result = read_gate_result(gate_dir)
    _require_pass(gate_dir, gate, result)
    _require_intact(gate_dir, gate, "gate")
    bench_dir = Path(gate.details["bench_run"])
    bench = read_manifest(bench_dir, "bench")
    _require_same(bench_dir / "manifest.json", gate.inputs["bench"].sha256, "bench", "gate")
    _require_intact(bench_dir, bench, "bench")
    export_dir = Path(bench.details["export_run"])
    export = read_manifest(export_dir, "export")
    _require_same(export_dir / "manifest.json", bench.inputs["export_manifest"].sha256, "export", "bench")
    _require_intact(export_dir, export, "export")
    return _Runs(gate_dir, gate, result, bench_dir, bench, export_dir, export)


GATE_CHECK_KEYS = ("name", "subject", "value", "budget", "passed", "detail")


def read_gate_result(gate_dir: Path) -> dict[str, Any]:
    """`gate.json` of a gate run, refused unless it has the shape publish reads: a verdict and a
    list of checks (a damaged file is an error with a fix, never a traceback)."""
    gate_dir = Path(gate_dir)
    path = gate_dir / "gate.json"
    fix = f"re-run `edgemod gate` (it rewrites {path}), then publish that gate folder"
    result = read_json_object(path, "gate result", fix)
    checks = result.get("checks")
    if result.get("verdict") not in ("pass", "fail") or not isinstance(checks, list) or not all(
            isinstance(c, dict) and all(k in c for k in GATE_CHECK_KEYS) and isinstance(c["passed"], bool)
            and isinstance(c["detail"], str) for c in checks):
        raise EdgemodError(f"gate result {path} is not one `edgemod gate` writes "
                           "(it needs a verdict, pass or fail, and a list of checks)", fix)
    return result


def _require_pass(gate_dir: Path, gate: Manifest, result: dict) -> None:
    if gate.metrics.get("verdict") == "pass" and result.get("verdict") == "pass":
        return
    failed = [c for c in result.get("checks", []) if not c["passed"]]
    # No square brackets: the CLI prints messages through rich, which would read them as markup.
    lines = [f"  - {c['name']} on {c['subject']}: {c['value']} (budget {c['budget']})"
             + (f"; {c['detail']}" if c["detail"] else "")
             for c in failed]
    raise EdgemodError(
        f"the gate in {gate_dir} did not pass ({len(failed)} of {len(result.get('checks', []))} checks failed); "
        "only a passing gate can be published:\n" + "\n".join(lines),
        "fix the model, or change the budgets in the recipe if they are wrong, re-run `edgemod gate`, "
        "then publish the passing gate folder")


def _require_intact(run_dir: Path, manifest: Manifest, stage: str) -> None:
    bad = verify_artifacts(run_dir, manifest)
    if bad:
        raise EdgemodError(f"{stage} files changed or went missing after the gate judged them: {', '.join(sorted(bad))}",
                           f"re-run `edgemod {stage}` and the stages after it, then publish the new gate folder")


def _require_same(path: Path, expected: str, stage: str, reader: str) -> None:
    if not path.exists() or sha256_file(path) != expected:
        raise EdgemodError(f"{path} is not the {stage} run the {reader} stage read (it was re-run or edited since)",
                           f"re-run `edgemod {reader}` on it and publish the new gate folder")


def _shipped(runs: _Runs) -> dict[str, dict]:
    """The artifacts the recipe ships (its `export` list), with their platform."""
    from edgemod.recipe import ExportSpec

    records = runs.export.details["artifacts"]
    shipped = {}
    for entry in runs.export.recipe.get("export") or []:
        spec = ExportSpec(**entry)
        name = f"{spec.target}_{spec.scheme}"
        if name not in records:
            raise EdgemodError(f"the recipe ships {name}, which the export run {runs.export_dir} lacks",
                               "re-run `edgemod export` with this recipe")
        shipped[name] = {**records[name], "platform": PLATFORM_OF_TARGET[spec.target]}
    if not shipped:
        raise EdgemodError("the recipe's `export` list is empty: nothing to publish",
                           "list the artifacts to ship under `export:` in the recipe and re-run export, bench and gate")
    return shipped


def _files_of(root: Path, relative: str) -> list[tuple[str, Path]]:
    """A file, or every file of a folder artifact such as an .mlpackage (each gets its own sha256)."""
    path = root / relative
    if path.is_dir():
        return [(p.relative_to(root).as_posix(), p) for p in sorted(path.rglob("*")) if p.is_file()]
    return [(relative, path)]


def _file(key: str, path: Path, platforms: list[str], role: str) -> ReleaseFile:
    return ReleaseFile(key, path, sha256_file(path), path.stat().st_size, platforms, role)


def _model_files(runs: _Runs, artifacts: dict[str, dict]) -> list[ReleaseFile]:
    files = []
    for name, record in artifacts.items():
        platform, parent = record["platform"], str(Path(record["file"]).parent)
        keys = []
        ships_to = list(SHIPS_TO[platform])
        for relative, path in _files_of(runs.export_dir, record["file"]):
            key = f"{platform}/{Path(relative).relative_to(parent).as_posix()}"
            files.append(_file(key, path, ships_to, "model"))
            keys.append(key)
        golden = runs.export.artifacts[f"golden:{name}"]
        record["release_files"] = {"model": f"{platform}/{Path(record['file']).name}", "golden": f"{platform}/golden/{name}.json",
                                   "files": keys}
        files.append(_file(record["release_files"]["golden"], runs.export_dir / golden.path, ships_to, "golden"))
    return files


def tasks_index(name: str, version: str | None, task: str, labels: list[str], artifacts: list[dict],
                crop_pct: float | None = None) -> dict:
    """`tasks.json`: the Tasks-ready models of a web folder (`artifacts`: name, model and golden paths
    inside the folder) and, for images, the `crop_pct` of the center crop the page hands Tasks as
    its region of interest. `edgemod pull --platform web` and `edgemod harness web` both write it."""
    image = task == "image-classification"
    return {"schema": TASKS_SCHEMA, "name": name, "version": version, "task": "image" if image else "text",
            "labels": labels, **({"image": {"crop_pct": crop_pct}} if image else {}),
            "thresholds": "thresholds.json", "artifacts": artifacts}


def _tasks_index(runs: _Runs, name: str, version: str, artifacts: dict[str, dict]) -> list[ReleaseFile]:
    if not any(a["target"] == "mediapipe" for a in artifacts.values()):
        return []
    preprocess = runs.export_dir / "preprocess.json"
    crop_pct = json.loads(preprocess.read_text(encoding="utf-8"))["crop_pct"] if preprocess.exists() else None
    listed = [{"name": n, "model": pulled_path(a["release_files"]["model"]), "golden": pulled_path(a["release_files"]["golden"])}
              for n, a in sorted(artifacts.items()) if a["target"] == "mediapipe"]
    index = tasks_index(name, version, runs.gate.recipe.get("task", ""), runs.export.details["labels"], listed, crop_pct)
    content = (json.dumps(index, indent=2) + "\n").encode("utf-8")
    return [ReleaseFile(TASKS_INDEX, None, sha256_bytes(content), len(content), ["web"], "device", content)]


def _device_files(runs: _Runs, platforms: list[str]) -> list[ReleaseFile]:
    models = set(runs.export.details["artifacts"])
    names = [n for n in runs.export.artifacts
             if n not in models and not n.startswith("golden:") and n not in REFERENCE_FILES]
    return [_file(f"{SHARED}/{runs.export.artifacts[n].path}", runs.export_dir / runs.export.artifacts[n].path,
                  platforms, "device") for n in sorted(names)]


def _doc_files(runs: _Runs) -> list[ReleaseFile]:
    files = [_file(name, runs.gate_dir / name, [], "report") for name in DOCS if (runs.gate_dir / name).exists()]
    bench_json = runs.bench_dir / "bench.json"
    if bench_json.exists():
        files.append(_file("bench.json", bench_json, [], "report"))
    return files


def _manifest(runs: _Runs, name: str, version: str, published_by: str, artifacts: dict[str, dict],
              platforms: list[str]) -> dict[str, Any]:
    export, recipe = runs.export, runs.gate.recipe
    return {
        "schema": SCHEMA, "name": name, "version": version,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "published_by": published_by, "recipe": recipe.get("name"), "task": recipe.get("task"),
        "multi_label": recipe.get("multi_label", False),
        "labels": export.details["labels"], "thresholds": export.details["thresholds"],
        "student": export.details["student"], "teachers": export.details.get("teachers", []),
        "data": recipe.get("data", {}),
        "data_sources": data_sources(recipe.get("data", {})),
        "weight_sources": weight_sources(recipe),
        "platforms": {p: sorted(n for n, a in artifacts.items() if p in SHIPS_TO[a["platform"]]) for p in platforms},
        "artifacts": {n: _artifact_entry(a) for n, a in sorted(artifacts.items())},
        "metrics": metrics_summary(runs.bench.metrics, list(artifacts)),
        "gate": {"verdict": runs.gate_result["verdict"], "baseline": runs.gate_result.get("baseline"),
                 "checks": runs.gate_result["checks"]},
        "budgets": recipe.get("budgets", {}),
        "sources": _sources(runs),
        "git_commit": {"publisher": git_commit(), "export": export.git_commit, "gate": runs.gate.git_commit},
        "tool_versions": export.tool_versions,
    }


def _artifact_entry(record: dict) -> dict[str, Any]:
    keep = ("target", "scheme", "platform", "size_mb", "interface", "parity", "parity_mode", "release_files")
    entry = {k: record[k] for k in keep if k in record}
    quantization = record.get("quantization") or {}
    # The quantizer's full op recipe stays in the export manifest (sources.export); the scheme is enough here.
    entry["quantization"] = {k: v for k, v in quantization.items() if k not in ("recipe", "seconds")}
    entry["golden_items"] = (record.get("golden") or {}).get("items")
    return entry


def _sources(runs: _Runs) -> dict[str, Any]:
    def ref(run_dir: Path, manifest: Manifest) -> dict[str, Any]:
        return {"path": str(run_dir.resolve()), "manifest_sha256": sha256_file(run_dir / "manifest.json"),
                "created_at": manifest.created_at, "inputs_key": manifest.inputs_key}

    return {"gate": ref(runs.gate_dir, runs.gate), "bench": ref(runs.bench_dir, runs.bench),
            "export": ref(runs.export_dir, runs.export), "recipe_sha256": runs.export.recipe_sha256,
            "train": {"path": runs.export.details.get("train_run"),
                      "inputs": {k: v.sha256 for k, v in runs.export.inputs.items()}}}


def metrics_summary(bench: dict, shipped: list[str]) -> dict[str, Any]:
    """Per shipped artifact and for the fp32 student and the teacher: what a reader compares first."""
    def accuracy(source: dict) -> dict[str, Any]:
        acc = source.get("accuracy_at_thresholds") or {}
        return {k: acc.get(k) for k in ("macro_f1", "accuracy", "macro_auroc", "n")}

    summary: dict[str, Any] = {"reference": {k: accuracy(v) for k, v in bench.get("reference", {}).items()},
                               "latency_device_class": (bench.get("device") or {}).get("class", "host"),
                               "artifacts": {}}
    arm = (bench.get("arm") or {}).get("classes", {})
    for name in shipped:
        artifact, latency = bench["artifacts"].get(name, {}), bench.get("latency", {}).get(name, {})
        parity = artifact.get("export_parity") or {}
        summary["artifacts"][name] = {
            "size_mb": artifact.get("size_mb"), "measured": artifact.get("measured", False),
            **({"accuracy_at_thresholds": accuracy(artifact)} if artifact.get("measured") else {}),
            "decision_agreement_vs_fp32": (1 - artifact["decision_flip_rate"]) if artifact.get("measured")
            and artifact.get("decision_flip_rate") is not None else parity.get("decision_agreement"),
            "parity_mode": artifact.get("parity_mode", "measured in its runtime" if artifact.get("measured") else None),
            "p50_ms_1thread": latency.get("1_thread", {}).get("p50_ms"),
            "p50_ms_2threads": latency.get("2_thread", {}).get("p50_ms"),
            "cold_start_ms": artifact.get("cold_start_ms"),
            "arm_instructions_per_inference": {device: record["artifacts"][name].get("instructions_per_inference")
                                               for device, record in arm.items() if name in record.get("artifacts", {})},
        }
    return summary
