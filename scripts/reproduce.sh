#!/usr/bin/env bash
# Reproduce a recipe's published numbers from a clean checkout, as a new user would:
#   bash scripts/reproduce.sh text-hate      (or text-spam)
# 1. the environment (scripts/setup.sh) when .venv is missing;
# 2. the recipe's teacher, fine-tuned here when its folder is missing (text-hate: ~20 min on 2 idle
#    cores; copy runs/teachers/<name> from an earlier checkout to skip it: the fine-tune is exact);
# 3. `edgemod run` (label -> train -> export -> bench -> gate -> publish) into runs/<recipe>;
# 4. results/<recipe>.json from that run, and the README tables regenerated from results/*.json;
# 5. with RELEASE_VERSION and EDGEMOD_RELEASE_KEY set and a passing gate, the release into the
#    committed registry releases/ (scripts/release.sh: publish, prune, deep check, results again).
# Every figure in the README's results section comes from step 4, never from a hand edit.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:?usage: scripts/reproduce.sh RECIPE (text-hate | text-spam)}"
case "$recipe" in
  text-hate) teacher=runs/teachers/hatexplain-minilm; finetune=() ;;
  text-spam) teacher=runs/teachers/sms-minilm; finetune=(--epochs 3) ;;
  *) echo "reproduce.sh: no teacher recipe for '$recipe'; known: text-hate, text-spam" >&2; exit 2 ;;
esac
[ -x .venv/bin/edgemod ] || bash scripts/setup.sh dev
edgemod=.venv/bin/edgemod
out="${REPRODUCE_OUT:-runs/$recipe}"
[ -f "$teacher/manifest.json" ] || $edgemod teacher finetune "recipes/$recipe.yaml" --out "$teacher" "${finetune[@]}"
keys=runs/keys
[ -f "$keys/edgemod-signing.key" ] || $edgemod registry keygen --out "$keys"
export EDGEMOD_REGISTRY="${EDGEMOD_REGISTRY:-runs/registry}"
export EDGEMOD_SIGNING_KEY="$keys/edgemod-signing.key" EDGEMOD_TRUSTED_KEYS="$keys/edgemod-signing.pub"
# the gate's verdict is part of the results: a FAIL is recorded, not hidden, so do not stop on it
$edgemod run "recipes/$recipe.yaml" --out "$out" || echo "reproduce.sh: edgemod run exited $? (see $out/gate)" >&2
mkdir -p results
$edgemod results collect "$out" --out "results/$recipe.json" --releases releases
$edgemod results readme
verdict=$(.venv/bin/python -c 'import json,sys; print(json.load(open(sys.argv[1]))["verdict"])' "$out/gate/gate.json")
if [ "$verdict" = pass ] && [ -n "${RELEASE_VERSION:-}" ] && [ -n "${EDGEMOD_RELEASE_KEY:-}" ]; then
  RELEASE_RUN="$out" bash scripts/release.sh "$recipe" "$RELEASE_VERSION"
elif [ "$verdict" = pass ]; then
  echo "reproduce.sh: gate passed; to ship it in releases/: EDGEMOD_RELEASE_KEY=KEY bash scripts/release.sh $recipe VERSION" >&2
fi
