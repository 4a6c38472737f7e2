#!/usr/bin/env bash
# Fuzzes etch's input readers with cargo-fuzz (targets in fuzz/fuzz_targets/):
#   parse_model      ONNX text: parse -> print -> parse round trip
#   read_proto       binary ONNX (protobuf): read, then verify and print what reads
#   accelerator_ron  RON accelerator description (--hw FILE): parse and validate, then energy, area, fit
#   pass_spec        pass-spec language (--passes SPEC): parse, render errors, check against the registry
#
# Usage: scripts/fuzz.sh TARGET|all [SECONDS] [extra libFuzzer flags...]
#   SECONDS  how long to fuzz each target (default 60); `all` runs the targets one after another
# New corpus entries go to fuzz/corpus/TARGET, crashes to fuzz/artifacts/TARGET (both gitignored);
# the seeds fuzz/seeds/TARGET and the dictionaries fuzz/*.dict are read only. Every run has the same
# limits: 5 s per input, 2048 MB of RSS.
#
# cargo fuzz needs nightly features; RUSTC_BOOTSTRAP=1 lets the stable toolchain provide them.
set -euo pipefail

targets=(parse_model read_proto accelerator_ron pass_spec)
usage() {
    echo "usage: $0 TARGET|all [SECONDS] [libFuzzer flags...]   (targets: ${targets[*]})" >&2
    exit 2
}

target="${1:-}"
[ -n "$target" ] || usage
shift
secs=60
if [ $# -gt 0 ] && [[ "$1" != -* ]]; then
    secs="$1"
    shift
fi
case "$secs" in
'' | *[!0-9]*) usage ;;
esac

cd "$(dirname "$0")/.."

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
export RUSTC_BOOTSTRAP=1

# The flags of one target: its dictionary and its largest input.
target_flags() {
    case "$1" in
    parse_model) echo "-dict=fuzz/onnx_text.dict -max_len=4096" ;;
    read_proto) echo "-max_len=4096" ;;
    accelerator_ron) echo "-dict=fuzz/ron.dict -max_len=4096" ;;
    pass_spec) echo "-dict=fuzz/pass_spec.dict -max_len=1024" ;;
    *) return 1 ;;
    esac
}

run_one() {
    local t="$1"
    shift
    local flags
    flags="$(target_flags "$t")" || usage
    local corpus="fuzz/corpus/$t"
    mkdir -p "$corpus" "fuzz/artifacts/$t"
    echo "== fuzzing $t for ${secs}s" >&2
    # shellcheck disable=SC2086 # the target's flags are words
    cargo fuzz run "$t" "$corpus" "fuzz/seeds/$t" -- \
        $flags \
        -max_total_time="$secs" \
        -timeout=5 \
        -rss_limit_mb=2048 \
        -print_final_stats=1 \
        "$@"
}

if [ "$target" = all ]; then
    for t in "${targets[@]}"; do
        run_one "$t" "$@"
    done
else
    run_one "$target" "$@"
fi
