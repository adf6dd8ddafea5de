#!/usr/bin/env bash
# Create .venv and install edgemod into it. Idempotent: does nothing when pyproject.toml is unchanged.
#   bash scripts/setup.sh        # the toolkit, the pretrained image backbones and MediaPipe Tasks
#   bash scripts/setup.sh dev    # + test tools, the optional TensorFlow teacher and the MPNet-base text base
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3.11}
command -v "$python" >/dev/null || python=python3
if ! "$python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
  echo "edgemod needs Python 3.11 (found $("$python" --version)); set PYTHON=/path/to/python3.11" >&2
  exit 2
fi
extras="[vision-pretrained,mediapipe]"
[ "${1:-}" = "dev" ] && extras="[dev,tf,vision-pretrained,mediapipe,text-mpnet]"
stamp=".venv/.edgemod-installed"
want="$(sha256sum pyproject.toml | cut -d' ' -f1) ${extras}"
if [ -f "$stamp" ] && grep -qxF "$want" "$stamp"; then
  exit 0
fi
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".${extras}"
echo "$want" > "$stamp"
