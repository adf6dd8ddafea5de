#!/usr/bin/env bash
# README command 3: a released moderation model in your browser, no training (after scripts/setup.sh):
#   bash scripts/try_release.sh [MODEL] [--check]     MODEL: one in releases/ (default: text-hate if
#                                                     shipped, else the first; README says which ship)
# 1. pulls the stable release of every model in the committed registry releases/ for the web,
#    each verified: the ed25519 signature against releases/keys and every file's sha256;
# 2. installs the page's pinned npm packages once (mobile_harness/web, MediaPipe Tasks for the web);
# 3. serves mobile_harness/web with MODEL's release: open the printed URL, type a message, see the
#    decision (MediaPipe Tasks tokenizes the raw text in the page; the shipped thresholds decide).
# --check instead decides every golden item of both pulled releases in headless Chromium and exits
# (needs Chromium: bash scripts/setup_browser.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
model="" check=0
for arg in "$@"; do
  case "$arg" in
    --check) check=1 ;;
    -*) echo "try_release.sh: unknown option $arg (use --check)" >&2; exit 2 ;;
    *) model="$arg" ;;
  esac
done
edgemod=.venv/bin/edgemod
if [ ! -x "$edgemod" ]; then
  echo "try_release.sh: no .venv here; fix: bash scripts/setup.sh" >&2; exit 2
fi
out="${TRY_RELEASE_OUT:-runs/try}"
# every model with a stable channel, from the registry's own catalogue
shipped=$(.venv/bin/python -c 'import json; m = json.load(open("releases/index.json"))["models"]
print(" ".join(sorted(n for n, e in m.items() if "stable" in e["channels"])))')
for name in $shipped; do
  $edgemod pull "$name@stable" --platform web --out "$out/$name-web" --registry releases --trusted-key releases/keys
done
case " $shipped " in *" text-hate "*) model="${model:-text-hate}" ;; esac
model="${model:-${shipped%% *}}"
if [ ! -d "$out/$model-web" ]; then
  echo "try_release.sh: no release '$model' in releases/; fix: use one of: $shipped" >&2; exit 2
fi
[ -d mobile_harness/web/node_modules/@mediapipe/tasks-text ] || npm ci --prefix mobile_harness/web --no-audit --no-fund
if [ "$check" = 1 ]; then
  for name in $shipped; do
    $edgemod harness web "$out/$name-web"
  done
else
  $edgemod harness web "$out/$model-web" --serve --port "${PORT:-8000}"
fi
