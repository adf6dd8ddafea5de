#!/usr/bin/env bash
# The main job: teacher fine-tune -> label -> distil, on real SMS spam data. Re-running skips
# finished stages (the teacher folder is kept; label and train compare input hashes).
set -euo pipefail
cd "$(dirname "$0")/.."
edgemod=.venv/bin/edgemod
out=runs/quickstart
[ -f "$out/teacher/manifest.json" ] || $edgemod teacher finetune recipes/quickstart.yaml --out "$out/teacher" --epochs 1
$edgemod label recipes/quickstart.yaml --out "$out/label"
$edgemod train "$out/label" --out "$out/train"
