#!/usr/bin/env bash
# Reproduce a recipe's published numbers from a clean checkout, as a new user would:
#   bash scripts/reproduce.sh text-hate      (or text-spam, vision-weapons)
# 1. the environment (scripts/setup.sh) when .venv is missing;
# 2. the recipe's teacher, fine-tuned here when its folder is missing (text-hate: MiniLM 20 min + MPNet 34 min on 2
#    cores, vision-weapons: 35-48 min; copy runs/teachers/<name> from an earlier checkout to skip it);
# 3. `edgemod run` (label -> train -> export -> bench -> gate -> publish) into runs/<recipe>;
# 4. results/<recipe>.json from that run, and the README tables regenerated from results/*.json;
# 5. with RELEASE_VERSION and EDGEMOD_RELEASE_KEY set and a passing gate, the release into the
#    committed registry releases/ (scripts/release.sh: publish, prune, deep check, results again).
# Every figure in the README's results section comes from step 4, never from a hand edit.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:?usage: scripts/reproduce.sh RECIPE (text-hate | text-spam | vision-weapons)}"
# the teacher folders each recipe reads, and how each is made (`edgemod` arguments before --out)
case "$recipe" in
  # the ensemble: MiniLM-L6 fine-tuned whole, MPNet-base on its top 2 layers over cached lower ones
  text-hate) teachers=(runs/teachers/hatexplain-minilm runs/teachers/hatexplain-mpnet) ;;
  text-spam) teachers=(runs/teachers/sms-minilm) ;;
  vision-weapons) teachers=(runs/teachers/weapons-lite2) ;;
  *) echo "reproduce.sh: no teacher recipe for '$recipe'; known: text-hate, text-spam, vision-weapons" >&2; exit 2 ;;
esac
make_teacher() {  # FOLDER
  local args
  case "$1" in
    */hatexplain-minilm) args=(teacher finetune) ;;
    */hatexplain-mpnet) args=(teacher finetune --base mpnet-base --train-top-layers 2 --epochs 3 --lr 1e-4) ;;
    */sms-minilm) args=(teacher finetune --epochs 3) ;;
    # Lite2 fine-tuned on gold labels at 260 px, its first stages frozen (the recipe's header)
    */weapons-lite2) args=(teacher train --arch efficientnet_lite2 --pretrained imagenet:efficientnet_lite2
                          --image-size 260 --epochs 5 --set distill.gold_only=true
                          --set 'distill.freeze=[conv_stem, bn1, "blocks.[0-3]"]' --set distill.int8_weights=false) ;;
  esac
  $edgemod "${args[@]:0:2}" "recipes/$recipe.yaml" --out "$1" "${args[@]:2}"
}
[ -x .venv/bin/edgemod ] || bash scripts/setup.sh dev
edgemod=.venv/bin/edgemod
out="${REPRODUCE_OUT:-runs/$recipe}"
for teacher in "${teachers[@]}"; do
  [ -f "$teacher/manifest.json" ] || make_teacher "$teacher"
done
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
