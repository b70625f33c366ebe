#!/usr/bin/env bash
# Create the separate NNCodec venv (bench/.nncodec-venv, gitignored) used by the NNR round-trip
# test, bench/export.py and bench/vs_nncodec.py. `make test` runs this first (about 2 minutes cold).
# nncodec 2.1.3 is an sdist (builds a C++ extension), needs numpy<2 and pulls a torchvision that
# cannot import against CPU torch, so torchvision is removed and stubbed at import (nnc_driver.py).
# The venv is marked ready ($VENV/.ready) once NNCodec's C++ coder imports.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="${NNCODEC_VENV:-$HERE/../.nncodec-venv}"
PY="${PY:-python3.11}"
check() { "$VENV/bin/python" -c "from nncodec.extensions import deepCABAC; deepCABAC.Encoder()"; }
if [ -f "$VENV/.ready" ] && [ -x "$VENV/bin/python" ]; then
  echo "nncodec venv ready: $VENV"; exit 0
fi
if [ -x "$VENV/bin/python" ] && check 2>/dev/null; then
  touch "$VENV/.ready"; echo "nncodec venv ready: $VENV"; exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q --upgrade pip wheel setuptools
"$VENV/bin/pip" install -q torch==2.13.0
"$VENV/bin/pip" install -q nncodec==2.1.3 torch==2.13.0
"$VENV/bin/pip" uninstall -y -q torchvision || true
check
touch "$VENV/.ready"
echo "nncodec venv ready: $VENV"
