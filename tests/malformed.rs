//! The malformed-input corpus: every file under `tests/malformed/` is a broken or inconsistent
//! model, and `etch` must reject it with exactly the message in the sibling `.expect` file: exit
//! code 1, nothing on stdout, no panic.
//!
//! A case runs `etch inspect FILE`, unless its first line is `# args: …`, in which case those
//! arguments come before the file (for example `# args: convert -o /dev/null`).
//!
//! `ETCH_BLESS=1 cargo test --test malformed` rewrites the `.expect` files from the current output
//! (the exit code, stdout and panic checks still apply).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Deleting cases must not make this test pass vacuously.
const MIN_CASES: usize = 40;

const DIR: &str = "tests/malformed";

/// A case that takes longer than this hangs; it is killed and reported.
const TIMEOUT: Duration = Duration::from_secs(60);

fn cases(root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root.join(DIR))
        .expect("tests/malformed exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.to_str().is_some_and(|s| s.ends_with(".onnx.txt")))
        .collect();
    v.sort();
    v
}

/// Runs etch, killing it after `TIMEOUT`; `None` if it had to be killed.
fn run_etch(root: &Path, args: &[String], file: &str) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_etch"))
        .args(args)
        .arg(file)
        .current_dir(root)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("etch starts");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("piped stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("piped stderr")));
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("etch can be waited on") {
            break status;
        }
        if start.elapsed() > TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output {
        status,
        stdout: stdout.join().expect("stdout reader"),
        stderr: stderr.join().expect("stderr reader"),
    })
}

/// Arguments from a `# args: …` first line, or `inspect`.
fn args_of(src: &[u8]) -> Vec<String> {
    let first = src.split(|&b| b == b'\n').next().unwrap_or_default();
    match std::str::from_utf8(first)
        .ok()
        .and_then(|l| l.strip_prefix("# args:"))
    {
        Some(rest) => rest.split_whitespace().map(str::to_string).collect(),
        None => vec!["inspect".to_string()],
    }
}

#[test]
fn malformed_inputs_are_rejected_with_their_expected_message() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let bless = std::env::var_os("ETCH_BLESS").is_some_and(|v| v != "0" && !v.is_empty());
    let cases = cases(root);
    assert!(
        cases.len() >= MIN_CASES,
        "expected at least {MIN_CASES} cases in {DIR}, found {}",
        cases.len()
    );
    let mut failures = Vec::new();
    for path in &cases {
        let file = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("UTF-8 file name");
        let rel = format!("{DIR}/{file}");
        let expect_path = path.with_file_name(file.replace(".onnx.txt", ".expect"));
        let src = std::fs::read(path).expect("readable case");
        let args = args_of(&src);
        let Some(out) = run_etch(root, &args, &rel) else {
            failures.push(format!(
                "{rel} (etch {}): still running after {TIMEOUT:?}; killed",
                args.join(" ")
            ));
            continue;
        };
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut problems = Vec::new();
        match out.status.code() {
            Some(1) => {}
            Some(101) => problems.push("exit code 101: etch panicked".to_string()),
            Some(c) => problems.push(format!("exit code {c}, expected 1")),
            None => problems.push(format!("killed by a signal ({:?})", out.status)),
        }
        if !out.stdout.is_empty() {
            problems.push(format!(
                "stdout is not empty:\n{}",
                String::from_utf8_lossy(&out.stdout)
            ));
        }
        if stderr.contains("panicked") {
            problems.push("stderr reports a panic".to_string());
        }
        if bless {
            std::fs::write(&expect_path, &out.stderr).expect("writable .expect file");
        } else {
            match std::fs::read(&expect_path) {
                Ok(want) if want == out.stderr => {}
                Ok(want) => problems.push(format!(
                    "stderr differs from {}\n--- expected\n{}\n--- actual\n{stderr}",
                    expect_path.display(),
                    String::from_utf8_lossy(&want)
                )),
                Err(e) => problems.push(format!(
                    "cannot read {} ({e}); run `ETCH_BLESS=1 cargo test --test malformed` to create it\n--- actual\n{stderr}",
                    expect_path.display()
                )),
            }
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{rel} (etch {}):\n  {}",
                args.join(" "),
                problems.join("\n  ")
            ));
        }
    }
    // an expectation without its case is a case someone deleted by halves
    for e in std::fs::read_dir(root.join(DIR)).expect("tests/malformed exists") {
        let p = e.expect("readable directory entry").path();
        let name = p
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if let Some(stem) = name.strip_suffix(".expect") {
            if !p.with_file_name(format!("{stem}.onnx.txt")).exists() {
                failures.push(format!("{DIR}/{name} has no {stem}.onnx.txt beside it"));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} malformed cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}
