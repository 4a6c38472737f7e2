#!/usr/bin/env bash
# Makes (or reuses) a virtualenv .venv-zigzag/ in the repository root with the ZigZag design-space
# explorer (zigzag-dse 3.9.1, from the lock scripts/locks/zigzag.txt, which scripts/lock_python.py
# writes), the peer scripts/zigzag_resnet50.py times, and prints its python. Separate from .venv/
# (scripts/onnx_check.sh); remade whenever the lock changes. Usage: scripts/zigzag_setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-zigzag
LOCK=scripts/locks/zigzag.txt
STAMP="$VENV/etch-lock.sha256"
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    echo "zigzag_setup: installing $LOCK into $VENV" >&2
    rm -rf "$VENV"
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r "$LOCK" >&2
    echo "$WANT" >"$STAMP"
fi
echo "$PWD/$VENV/bin/python"
