#!/usr/bin/env bash
# Create the separate NNCodec venv used by bench/vs_nncodec.py (bench/.nncodec-venv, gitignored).
# nncodec 2.1.3 is an sdist (builds a C++ extension), needs numpy<2 and pulls a torchvision that
# cannot import against CPU torch, so torchvision is removed and stubbed at import (nnc_driver.py).
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${NNCODEC_VENV:-$HERE/../.nncodec-venv}"
PY="${PY:-python3.11}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import deepCABAC" 2>/dev/null; then
  echo "nncodec venv ready: $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip wheel setuptools
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q nncodec==2.1.3 torch==2.13.0
"$VENV/bin/pip" uninstall -y -q torchvision || true
echo "nncodec venv ready: $VENV"
