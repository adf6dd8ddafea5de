#!/usr/bin/env bash
# What the browser test (tests/test_web_page.py) needs: Debian's Chromium and the page's pinned npm
# packages (@mediapipe/tasks-text, @mediapipe/tasks-vision, playwright-core; package-lock.json).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x /usr/bin/chromium ]; then
  as_root=""
  if [ "$(id -u)" -ne 0 ]; then as_root="sudo"; fi
  $as_root apt-get update
  $as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
fi
npm ci --prefix mobile_harness/web --no-audit --no-fund
