#!/usr/bin/env bash
# The one command that tests etch: installs what the tests need when it is missing, builds once
# (the dev profile), runs every Rust test, then checks etch's ONNX text against onnx's own parser and
# etch's CPU executor against onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need (later stages add Verilator, Icarus, Yosys, Mesa's Vulkan driver).
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v g++ >/dev/null || need_apt+=(g++)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
cargo build --bin etch
scripts/onnx_check.sh target/debug/etch
scripts/ort_check.sh target/debug/etch
scripts/quant_check.sh target/debug/etch
