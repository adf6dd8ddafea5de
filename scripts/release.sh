#!/usr/bin/env bash
# Publish a recipe's gate-passing run into the committed registry `releases/` (the release manager's
# step after `bash scripts/reproduce.sh RECIPE`; README, "Releases anyone can pull"):
#   EDGEMOD_RELEASE_KEY=/secure/edgemod-release-2026.key bash scripts/release.sh text-hate 1.1.0
# 1. refuse a signing key whose public half is not in releases/keys (pulls would reject the release);
# 2. publish runs/RECIPE/gate as RECIPE@VERSION with --public (refused when a dataset the model was
#    trained on does not allow shipping models: datasets.yaml `ship_models`), channel stable;
# 3. prune: keep stable and its predecessor only (`edgemod registry prune --keep-previous 1`);
# 4. `edgemod registry check --deep` against releases/keys: every signature and every file's sha256;
# 5. results/RECIPE.json re-collected naming the release, and the README's tables regenerated.
# Then commit releases/, results/ and README.md together.
set -euo pipefail
cd "$(dirname "$0")/.."
recipe="${1:?usage: EDGEMOD_RELEASE_KEY=KEY bash scripts/release.sh RECIPE VERSION}"
version="${2:?usage: EDGEMOD_RELEASE_KEY=KEY bash scripts/release.sh RECIPE VERSION}"
key="${EDGEMOD_RELEASE_KEY:?set EDGEMOD_RELEASE_KEY to the private key of the release manager (never commit it)}"
run="${RELEASE_RUN:-runs/$recipe}"
edgemod=.venv/bin/edgemod
registry=releases
$edgemod registry trusts "$key" --trusted-key "$registry/keys"
$edgemod publish "$run/gate" --version "$version" --channel stable --public --key "$key" --registry "$registry"
$edgemod registry prune "$recipe" --keep-previous 1 --registry "$registry"
$edgemod registry check --deep --trusted-key "$registry/keys" --registry "$registry"
$edgemod results collect "$run" --out "results/$recipe.json" --releases "$registry"
$edgemod results readme
du -sh "$registry"
