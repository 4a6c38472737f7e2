#!/usr/bin/env bash
# The one command that tests etch: installs what the tests need when it is missing, builds once
# (the dev profile), runs every Rust test, then checks etch's ONNX text against onnx's own parser and
# etch's CPU executor against onnxruntime.
set -euo pipefail
cd "$(dirname "$0")/.."

# System packages the tests need.
need_apt=()
command -v python3 >/dev/null || need_apt+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
command -v g++ >/dev/null || need_apt+=(g++)
# the emitted RTL is verified under both simulators and synthesized by Yosys
command -v verilator >/dev/null || need_apt+=(verilator)
command -v iverilog >/dev/null || need_apt+=(iverilog)
command -v yosys >/dev/null || need_apt+=(yosys)
# the GPU tests run on Mesa's lavapipe (Vulkan on the CPU) where there is no GPU; without an
# adapter they fail, they do not skip
dpkg -s mesa-vulkan-drivers >/dev/null 2>&1 || need_apt+=(mesa-vulkan-drivers libvulkan1)
if [ ${#need_apt[@]} -gt 0 ]; then
  apt-get update -qq && apt-get install -y -qq "${need_apt[@]}"
fi
# Mesa's Vulkan driver prints "XDG_RUNTIME_DIR is invalid or not set" without one: give it a private one
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -d "$XDG_RUNTIME_DIR" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d)
  export XDG_RUNTIME_DIR
  trap 'rm -rf "$XDG_RUNTIME_DIR"' EXIT
fi

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace
# `cargo test` built target/debug/etch for the CLI tests: the scripts use that one (one build)
scripts/onnx_check.sh target/debug/etch
scripts/ort_check.sh target/debug/etch
scripts/quant_check.sh target/debug/etch
