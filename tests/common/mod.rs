//! What the CLI tests share: running the built `etch` from the repository root, its output as one
//! text, and a fresh scratch folder.

#![allow(dead_code)] // each test crate uses its own part of this

use std::path::PathBuf;
use std::process::{Command, Output};

/// Runs `etch` with `args` from the repository root (where the examples' relative paths point).
pub fn etch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_etch"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap()
}

/// Standard output and standard error together, for messages that may go to either.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// An empty scratch folder under cargo's per-test temporary directory.
pub fn tmp(name: &str) -> PathBuf {
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}
