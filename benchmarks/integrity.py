"""Whether each exported artifact is still the file the export wrote. Read by bench (it measures only
intact artifacts) and by the gate (files as they are now, also when publish re-checks a gate), so it
imports no runtime: a publish stays fast."""
from __future__ import annotations

from pathlib import Path

from edgemod.manifest import Manifest
from edgemod.manifest import _sha256_of as sha256_of


def integrity_of(export_dir: Path, export: Manifest) -> dict[str, str]:
    """Per artifact of the export run: `ok`, `missing` or `sha256 mismatch`."""
    status = {}
    for name, record in export.details["artifacts"].items():
        path, ref = export_dir / record["file"], export.artifacts.get(name)
        if not path.exists():
            status[name] = "missing"
        elif ref is None or sha256_of(path) != ref.sha256:
            status[name] = "sha256 mismatch"
        else:
            status[name] = "ok"
    return status
