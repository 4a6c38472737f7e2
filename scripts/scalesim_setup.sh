#!/usr/bin/env bash
# Makes (or reuses) a virtualenv with SCALE-Sim 3.0.0 (from the lock scripts/locks/scalesim.txt), the peer simulator etch's systolic timing is
# checked against, and prints its python. The venv lives under target/ (gitignored, thrown away by
# `cargo clean`). Usage: scripts/scalesim_setup.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=target/scalesim-venv
LOCK=scripts/locks/scalesim.txt
STAMP="$VENV/etch-lock.sha256"
WANT="$(sha256sum "$LOCK" | cut -d' ' -f1)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$STAMP" 2>/dev/null)" != "$WANT" ]; then
    rm -rf "$VENV"
    mkdir -p target
    python3 -m venv "$VENV" >&2
    "$VENV/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r "$LOCK" >&2
    echo "$WANT" >"$STAMP"
fi
echo "$PWD/$VENV/bin/python"
