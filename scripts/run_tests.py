#!/usr/bin/env python3
"""Runs every test binary that `cargo test --no-run` built, and the cross-checks against the peers,
several at a time.

`cargo test` runs its test binaries one after the other, and many of ours spend most of their time
in one single-threaded simulator (Icarus, a Verilator build, a Python check), so one core idles.
This runs the same binaries, each in its package's directory as cargo does, with `--jobs` of them at
once, the longest first; each one's output is printed whole when it ends, so nothing interleaves.

Usage: scripts/run_tests.py ARTIFACTS.json [--jobs N] [--timeout S] [--check CHECK ...]

ARTIFACTS.json is the stdout of `cargo test --no-run --message-format=json-render-diagnostics`.
Each CHECK is one shell-free command line, split on spaces, run from the repository root (the
peers' checks, `scripts/onnx_check.sh target/debug/etch` and so on). Exits non-zero when anything
failed, naming each.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Jobs that took longest in CI, longest first: they start first so the others fill in beside them.
LONGEST_FIRST = [
    "etch-codegen datapath",
    "etch-codegen core",
    "etch-codegen verilog",
    "onnx_check",
    "etch verilog_cli",
    "ort_check",
    "quant_check",
    "etch-program program",
    "etch hls_cli",
    "etch-sim gpu",
    "etch sim_cli",
]


def package_name(package_id):
    """The package's name in a cargo package id, old (`name 0.1.0 (path+file://...)`) or new
    (`path+file:///dir#name@0.1.0`) form."""
    if "#" in package_id:
        tail = package_id.rsplit("#", 1)[1]
        return tail.split("@")[0] if "@" in tail else package_id.rsplit("/", 1)[-1].split("#")[0]
    return package_id.split(" ")[0]


def test_binaries(artifacts):
    """(name, argv, cwd) of each test executable in cargo's JSON messages."""
    jobs = []
    with open(artifacts) as f:
        for line in f:
            line = line.strip()
            if not line.startswith("{"):
                continue
            msg = json.loads(line)
            if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
                continue
            if not msg.get("profile", {}).get("test"):
                continue
            package = package_name(msg["package_id"])
            target = msg["target"]["name"]
            kind = msg["target"]["kind"][0]
            name = f"{package} {target}" if kind != "lib" else f"{package} (unit)"
            if kind == "bin":
                name = f"{package} {target} (bin)"
            jobs.append((name, [msg["executable"]], os.path.dirname(msg["manifest_path"])))
    return jobs


def order(jobs):
    """The known-long jobs first, in LONGEST_FIRST's order, then the rest as given."""
    rank = {name: k for k, name in enumerate(LONGEST_FIRST)}
    return sorted(jobs, key=lambda j: rank.get(j[0], len(rank)))


def run(job, timeout):
    """Runs one job with its output in a temporary file; returns (job, ok, seconds, output)."""
    name, argv, cwd = job
    t0 = time.monotonic()
    with tempfile.TemporaryFile(mode="w+b") as out:
        try:
            p = subprocess.run(argv, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, timeout=timeout)
            ok = p.returncode == 0
            why = "" if ok else f"exit status {p.returncode}"
        except subprocess.TimeoutExpired:
            ok, why = False, f"still running after {timeout} s, killed"
        except OSError as e:
            ok, why = False, f"could not start: {e}"
        out.seek(0)
        text = out.read().decode("utf-8", errors="replace")
    return job, ok, time.monotonic() - t0, text, why


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("artifacts")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--timeout", type=int, default=2400)
    ap.add_argument("--check", action="append", default=[], dest="checks")
    a = ap.parse_args()
    jobs = test_binaries(a.artifacts)
    if not jobs:
        sys.exit(f"error: no test executables in {a.artifacts}: was it written by "
                 "`cargo test --no-run --message-format=json-render-diagnostics`?")
    for check in a.checks:
        argv = check.split()
        jobs.append((os.path.basename(argv[0]).removesuffix(".sh"), argv, ROOT))
    started = time.monotonic()
    failed = []
    with ThreadPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        running = [pool.submit(run, j, a.timeout) for j in order(jobs)]
        for done in as_completed(running):
            job, ok, secs, text, why = done.result()
            pass_lines = [l for l in text.splitlines() if l.startswith("test result:")]
            if ok:
                print(f"== {job[0]}: ok in {secs:.0f} s", *pass_lines, sep="\n   ", flush=True)
            else:
                failed.append(job[0])
                print(f"== {job[0]}: FAILED ({why}) in {secs:.0f} s; its output:", flush=True)
                print(text, flush=True)
    total = time.monotonic() - started
    if failed:
        print(f"== {len(failed)} of {len(jobs)} jobs failed: {', '.join(failed)}", flush=True)
        sys.exit(1)
    print(f"== all {len(jobs)} jobs passed in {total:.0f} s", flush=True)


if __name__ == "__main__":
    main()
