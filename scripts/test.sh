#!/usr/bin/env bash
# The one command that tests etch: installs what the tests need when it is missing, builds once
# (the dev profile), runs every Rust test, then checks etch's ONNX text against onnx's own parser and
# etch's CPU executor against onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each stage prints its wall time, and the total at the end.
started=$SECONDS
stage() {
    local name="$1" t0=$SECONDS
    shift
    echo "== $name" >&2
    "$@"
    echo "== $name: $((SECONDS - t0)) s (total $((SECONDS - started)) s)" >&2
}

# System packages the tests need.
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v g++ >/dev/null || need_apt+=(g++)
# the emitted RTL is verified under both simulators and synthesized by Yosys
command -v verilator >/dev/null || need_apt+=(verilator)
command -v iverilog >/dev/null || need_apt+=(iverilog)
command -v yosys >/dev/null || need_apt+=(yosys)
# Verilator builds put ccache in front of g++ when it is installed (its runtime compiled once)
command -v ccache >/dev/null || need_apt+=(ccache)
# the GPU tests run on Mesa's lavapipe (Vulkan on the CPU) where there is no GPU; without an
# adapter they fail, they do not skip
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers libvulkan1)
# etch sweep's Slurm test starts a real single-node Slurm (scripts/slurm_local.sh)
command -v slurmctld >/dev/null || need_apt+=(slurm-wlm)
command -v munged >/dev/null || need_apt+=(munge)
if [ ${#need_apt[@]} -gt 0 ]; then
  stage "apt-get install ${need_apt[*]}" bash -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"' _ "${need_apt[@]}"
fi
# Mesa's Vulkan driver prints "XDG_RUNTIME_DIR is invalid or not set" without one: give it a private one
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
  trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi

# ccache's cache inside the build tree: a fresh clone starts empty, and nothing outside it is written
export CCACHE_DIR="$PWD/target/ccache"

# Python packages: exact versions and hashes from scripts/locks/test.txt
stage "python venv (scripts/locks/test.txt)" scripts/onnx_check.sh --setup >/dev/null
stage "cargo fmt" cargo fmt --all -- --check
stage "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
# Build every test binary once (the dev profile); cargo prints their paths as JSON.
stage "cargo test --no-run" bash -c \
  'mkdir -p target && cargo test --workspace --locked --no-run --message-format=json-render-diagnostics >target/test-binaries.json'
# Run them, and the checks against the peers, one per core at a time, the longest first: most of
# them wait on one single-threaded simulator or Python process. The checks use target/debug/etch,
# which the build above made for the CLI tests (one build). A hung job fails the run in time to say
# which, instead of running into CI's own limit.
stage "tests and checks" python3 scripts/run_tests.py target/test-binaries.json \
  --jobs "$(nproc)" --timeout 2400 \
  --check "scripts/onnx_check.sh target/debug/etch" \
  --check "scripts/ort_check.sh target/debug/etch" \
  --check "scripts/quant_check.sh target/debug/etch" \
  --check "scripts/qonnx_check.sh target/debug/etch" \
  --check "scripts/export_check.sh target/debug/etch"
echo "== all stages passed in $((SECONDS - started)) s" >&2
