#!/usr/bin/env bash
# The main job, recipe in -> verified release out, on real SMS spam data:
#   fine-tune a MiniLM teacher (once) -> edgemod run: label -> distil -> export -> bench -> gate
#   -> publish to a local signed registry -> pull the release back for Android and iOS, verified.
# Re-running does no work: every stage compares its inputs' hashes.
set -euo pipefail
cd "$(dirname "$0")/.."
edgemod=.venv/bin/edgemod
out=runs/quickstart
keys=runs/keys
[ -f "$out/teacher/manifest.json" ] || $edgemod teacher finetune recipes/quickstart.yaml --out "$out/teacher" --epochs 1
[ -f "$keys/edgemod-signing.key" ] || $edgemod registry keygen --out "$keys"
export EDGEMOD_REGISTRY="${EDGEMOD_REGISTRY:-runs/registry}"
export EDGEMOD_SIGNING_KEY="$keys/edgemod-signing.key" EDGEMOD_TRUSTED_KEYS="$keys/edgemod-signing.pub"
$edgemod run recipes/quickstart.yaml --out "$out"
for platform in android ios; do
  $edgemod pull quickstart@canary --platform "$platform" --out "$out/pulled/$platform"
done
