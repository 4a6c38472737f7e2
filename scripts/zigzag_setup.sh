#!/usr/bin/env bash
# Makes (or reuses) a virtualenv .venv-zigzag/ in the repository root with the ZigZag design-space
# explorer (zigzag-dse 3.9.1, from the lock scripts/locks/zigzag.txt, which scripts/lock_python.py
# writes), the peer scripts/zigzag_resnet50.py times, and prints its python. Separate from .venv/
# (scripts/onnx_check.sh); remade whenever the lock changes. Usage: scripts/zigzag_setup.sh
set -euo pipefail
exec "$(dirname "$0")/venv_from_lock.sh" .venv-zigzag scripts/locks/zigzag.txt
