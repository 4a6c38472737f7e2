#!/usr/bin/env bash
# Makes (or reuses) a virtualenv from a hash-pinned lock (scripts/locks/*.txt, written by
# scripts/lock_python.py) and prints its python. The venv is remade whenever the lock changes (a
# stamp file holds the lock's hash), so every machine tests against exactly the locked versions.
# Usage: scripts/venv_from_lock.sh VENV LOCK   (paths relative to the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$1"
lock="$2"
stamp="$venv/etch-lock.sha256"
want="$(sha256sum "$lock" | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    echo "venv_from_lock: installing $lock into $venv" >&2
    rm -rf "$venv"
    mkdir -p "$(dirname "$venv")"
    python3 -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps --require-hashes -r "$lock" >&2
    echo "$want" >"$stamp"
fi
echo "$PWD/$venv/bin/python"
