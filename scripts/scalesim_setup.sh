#!/usr/bin/env bash
# Makes (or reuses) a virtualenv with SCALE-Sim 3.0.0 (from the lock scripts/locks/scalesim.txt), the
# peer simulator etch's systolic timing is checked against, and prints its python. The venv lives
# under target/ (gitignored, thrown away by `cargo clean`). Usage: scripts/scalesim_setup.sh
set -euo pipefail
exec "$(dirname "$0")/venv_from_lock.sh" target/scalesim-venv scripts/locks/scalesim.txt
