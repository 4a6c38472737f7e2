#!/usr/bin/env bash
# Makes (or reuses) a virtualenv with SCALE-Sim 3.0.0, the peer simulator etch's systolic timing is
# checked against, and prints its python. The venv lives under target/ (gitignored, thrown away by
# `cargo clean`). Usage: scripts/scalesim_setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/scalesim-venv
if [ ! -x "$VENV/bin/python" ] || ! "$VENV/bin/python" -c 'import scalesim' 2>/dev/null; then
    mkdir -p target
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check "scalesim==3.0.0" "numpy<2.4" >&2
fi
echo "$PWD/$VENV/bin/python"
