"""Run manifests: what a stage read (with hashes), what it wrote, how well it did, with which tools."""
from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import platform
import subprocess
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edgemod.errors import EdgemodError
from edgemod.fsutil import sha256_file, sha256_text, sha256_tree, write_json_atomic

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1
TRACKED_PACKAGES = (
    "edgemod", "torch", "timm", "transformers", "tokenizers", "onnx", "onnxruntime", "coremltools",
    "ai-edge-litert", "litert-torch", "ai-edge-quantizer", "scikit-learn", "numpy", "pydantic",
)


class FileRef(BaseModel):
    """A file a stage read or wrote. Artifact paths are relative to the run folder."""

    model_config = ConfigDict(extra="forbid")
    path: str
    sha256: str
    bytes: int = 0


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    schema_version: int = SCHEMA_VERSION
    stage: str
    name: str
    created_at: str = Field(default_factory=lambda: dt.datetime.now(dt.UTC).isoformat())
    recipe: dict[str, Any]
    recipe_sha256: str
    inputs: dict[str, FileRef] = Field(default_factory=dict)
    inputs_key: str = ""
    artifacts: dict[str, FileRef] = Field(default_factory=dict)
    metrics: dict[str, Any] = Field(default_factory=dict)
    details: dict[str, Any] = Field(default_factory=dict)
    tool_versions: dict[str, str] = Field(default_factory=dict)
    git_commit: str | None = None
    platform: str = Field(default_factory=platform.platform)


def file_ref(path: str | Path, relative_to: str | Path | None = None) -> FileRef:
    """A file, or a folder artifact such as an .mlpackage (hashed over its relative paths and bytes)."""
    path = Path(path)
    shown = path.relative_to(relative_to).as_posix() if relative_to else str(path)
    if path.is_dir():
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
        return FileRef(path=shown, sha256=sha256_tree(path), bytes=size)
    return FileRef(path=shown, sha256=sha256_file(path), bytes=path.stat().st_size)


def _sha256_of(path: Path) -> str:
    return sha256_tree(path) if path.is_dir() else sha256_file(path)


def inputs_key(recipe_sha256: str, inputs: dict[str, FileRef], extra: Any = None) -> str:
    """One hash over everything that determines a stage's output."""
    payload = {"recipe": recipe_sha256, "inputs": {k: v.sha256 for k, v in sorted(inputs.items())}}
    payload["extra"] = extra
    return sha256_text(json.dumps(payload, sort_keys=True, default=str))


def tool_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in packages:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def git_commit(cwd: str | Path | None = None) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=cwd or Path(__file__).parent,
            capture_output=True, text=True, timeout=5, check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def write_manifest(out_dir: str | Path, manifest: Manifest) -> Path:
    manifest.tool_versions = manifest.tool_versions or tool_versions()
    manifest.git_commit = manifest.git_commit or git_commit()
    return write_json_atomic(Path(out_dir) / MANIFEST_NAME, manifest.model_dump(mode="json"))


def read_manifest(run_dir: str | Path, expect_stage: str | None = None) -> Manifest:
    """Read `run_dir/manifest.json`, checking that it comes from the expected stage."""
    path = Path(run_dir) / MANIFEST_NAME
    if not path.exists():
        hint = f"run `edgemod {expect_stage}` first" if expect_stage else "point at a finished run folder"
        raise EdgemodError(f"no {MANIFEST_NAME} in {run_dir}", hint)
    try:
        manifest = Manifest.model_validate_json(path.read_text(encoding="utf-8"))
    except (ValidationError, ValueError) as error:
        raise EdgemodError(f"{path} is not a valid edgemod manifest: {error}",
                           "re-run the stage that wrote it") from None
    if expect_stage and manifest.stage != expect_stage:
        raise EdgemodError(f"{run_dir} holds a '{manifest.stage}' run, expected '{expect_stage}'",
                           f"pass the folder written by `edgemod {expect_stage}`")
    return manifest


def verify_artifacts(run_dir: str | Path, manifest: Manifest) -> list[str]:
    """Names of artifacts that are missing or whose sha256 no longer matches."""
    bad = []
    for name, ref in manifest.artifacts.items():
        path = Path(run_dir) / ref.path
        if not path.exists() or _sha256_of(path) != ref.sha256:
            bad.append(name)
    return bad


def finished_run(out_dir: str | Path, stage: str, key: str) -> Manifest | None:
    """The existing manifest in `out_dir` if it finished `stage` with the same inputs and intact files."""
    try:
        manifest = read_manifest(out_dir, stage)
    except EdgemodError:
        return None
    if manifest.inputs_key != key or verify_artifacts(out_dir, manifest):
        return None
    return manifest
