//! The hostile-input corpus: inputs a user may receive from others (models, accelerator
//! descriptions, pass specs, CSV and npy data, SCALE-Sim files, output paths, design folders),
//! each made to crash etch, exhaust its memory, hang it, make it write outside its output, or run
//! something that came from the input. Every case runs the built `etch` in a scratch folder of its
//! own, with its data segment capped at 1 GiB (`prlimit --data`), and must end as the case says:
//! an error with the expected words (exit 1, no panic), or success where the input is legitimate
//! but named or shaped to cause harm. After each case no file named `PWNED` may exist in its folder
//! or in its parent (the injections below try to create one), and nothing may be written beside
//! the case's folder.
//!
//! The malformed-model corpus (`tests/malformed/`, model texts with exact messages) is the other
//! half; the fuzz targets (`scripts/fuzz.sh`) cover the parsers beyond both.

mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Deleting cases must not make this test pass vacuously.
const MIN_CASES: usize = 20;
/// A case that runs no external tool and takes longer than this hangs.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Cases that build and run a simulator (g++, Icarus, Yosys) get this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);
/// The data-segment limit every case runs under.
const MEMORY_LIMIT: u64 = 1 << 30;

/// How a case must end.
enum Expect {
    /// Exit 1, stderr holding each of these phrases, no panic.
    Error(&'static [&'static str]),
    /// Exit 0, stdout+stderr holding each of these phrases.
    Ok(&'static [&'static str]),
}

/// A file a case needs in its folder.
enum Content {
    Text(String),
    Bytes(Vec<u8>),
    /// A symbolic link to this target.
    Link(&'static str),
    /// A folder.
    Dir,
}

/// A check of what a successful case wrote in its folder.
type Check = fn(&Path) -> Result<(), String>;

/// One hostile input and the command that reads it.
struct Case {
    name: &'static str,
    /// Arguments of `etch`; `@ROOT` is replaced by the repository root.
    args: Vec<String>,
    files: Vec<(String, Content)>,
    expect: Expect,
    /// Runs external tools: the longer timeout.
    tools: bool,
    /// After a successful run: a check of what the case wrote (files in its folder).
    check: Option<Check>,
}

fn case(name: &'static str, args: &[&str], expect: Expect) -> Case {
    Case {
        name,
        args: args.iter().map(|s| s.to_string()).collect(),
        files: Vec::new(),
        expect,
        tools: false,
        check: None,
    }
}

impl Case {
    fn file(mut self, name: &str, text: impl Into<String>) -> Case {
        self.files
            .push((name.to_string(), Content::Text(text.into())));
        self
    }
    fn bytes(mut self, name: &str, bytes: Vec<u8>) -> Case {
        self.files.push((name.to_string(), Content::Bytes(bytes)));
        self
    }
    fn link(mut self, name: &str, target: &'static str) -> Case {
        self.files.push((name.to_string(), Content::Link(target)));
        self
    }
    fn dir(mut self, name: &str) -> Case {
        self.files.push((name.to_string(), Content::Dir));
        self
    }
    fn tools(mut self) -> Case {
        self.tools = true;
        self
    }
    fn check(mut self, f: Check) -> Case {
        self.check = Some(f);
        self
    }
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn example(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap()
}

/// digits_mlp with its first node's label replaced.
fn mlp_labelled(label: &str) -> String {
    example("examples/models/digits_mlp.onnx.txt").replace("[\"/Constant\"]", label)
}

const QUANT: &str = "quant(bits=8,per=channel,calib=\"@ROOT/examples/data/digits_train.csv\")";
const INJECT: &str =
    "\\n#include <cstdlib>\\nstatic int pwned = std::system(\\\"touch PWNED\\\");\\n// */ ??/ \\\\";

fn compile_args(model: &str, emit: &str) -> Vec<&'static str> {
    let args = vec![
        "compile".to_string(),
        model.to_string(),
        "--target".into(),
        "pynq-z2".into(),
        "--hw".into(),
        "@ROOT/examples/hw/ws-4x2-int8.ron".into(),
        "--passes".into(),
        QUANT.into(),
        "--emit".into(),
        emit.into(),
        "--data".into(),
        "@ROOT/examples/data/digits_test.csv".into(),
        "--samples".into(),
        "2".into(),
        "-o".into(),
        "design".into(),
    ];
    args.into_iter()
        .map(|s| &*Box::leak(s.into_boxed_str()))
        .collect()
}

/// Runs etch in `dir` under the memory limit, killing it after `timeout`.
fn run(dir: &Path, args: &[String], timeout: Duration) -> Option<Output> {
    let root = root().to_str().unwrap();
    let args: Vec<String> = args.iter().map(|a| a.replace("@ROOT", root)).collect();
    let mut child = Command::new("prlimit")
        .arg(format!("--data={MEMORY_LIMIT}"))
        .arg("--")
        .arg(env!("CARGO_BIN_EXE_etch"))
        .args(&args)
        .current_dir(dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("prlimit (util-linux) runs etch");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut v = Vec::new();
            let _ = r.read_to_end(&mut v);
            v
        })
    };
    let stdout = drain(Box::new(child.stdout.take().unwrap()));
    let stderr = drain(Box::new(child.stderr.take().unwrap()));
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Some(Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    })
}

/// A scratch folder for one case, inside a folder of its own so that a write beside it shows.
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let outer = common::tmp(&format!("hostile/{name}"));
    let dir = outer.join("work");
    std::fs::create_dir_all(&dir).unwrap();
    (outer, dir)
}

fn materialize(dir: &Path, files: &[(String, Content)]) {
    for (name, content) in files {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        match content {
            Content::Text(t) => std::fs::write(&path, t).unwrap(),
            Content::Bytes(b) => std::fs::write(&path, b).unwrap(),
            Content::Link(target) => std::os::unix::fs::symlink(target, &path).unwrap(),
            Content::Dir => std::fs::create_dir_all(&path).unwrap(),
        }
    }
}

/// Runs one case; the reason it failed, if it did.
fn judge(c: &Case) -> Result<(), String> {
    let (outer, dir) = scratch(c.name);
    materialize(&dir, &c.files);
    let timeout = if c.tools { TOOL_TIMEOUT } else { TIMEOUT };
    let Some(out) = run(&dir, &c.args, timeout) else {
        return Err(format!("hung: killed after {timeout:?}"));
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let all = format!("{stdout}{stderr}");
    if all.contains("panicked") || all.contains("RUST_BACKTRACE") {
        return Err(format!("panicked:\n{all}"));
    }
    if all.contains('\u{1b}') {
        return Err(format!(
            "an escape character reached the terminal:\n{all:?}"
        ));
    }
    let pwned: Vec<PathBuf> = [dir.join("PWNED"), outer.join("PWNED")]
        .into_iter()
        .chain(
            walk(&dir)
                .into_iter()
                .filter(|p| p.file_name().is_some_and(|n| n == "PWNED")),
        )
        .filter(|p| p.exists())
        .collect();
    if !pwned.is_empty() {
        return Err(format!("ran code from the input: {pwned:?} exists"));
    }
    let beside: Vec<_> = std::fs::read_dir(&outer)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "work")
        .collect();
    if !beside.is_empty() {
        return Err(format!("wrote outside its folder: {beside:?}"));
    }
    let code = out.status.code();
    match &c.expect {
        Expect::Error(words) => {
            if code != Some(1) {
                return Err(format!("expected exit 1, got {code:?}:\n{all}"));
            }
            if let Some(w) = words.iter().find(|w| !stderr.contains(*w)) {
                return Err(format!("stderr lacks `{w}`:\n{stderr}"));
            }
        }
        Expect::Ok(words) => {
            if code != Some(0) {
                return Err(format!("expected success, got {code:?}:\n{all}"));
            }
            if let Some(w) = words.iter().find(|w| !all.contains(*w)) {
                return Err(format!("output lacks `{w}`:\n{all}"));
            }
            if let Some(check) = c.check {
                check(&dir)?;
            }
        }
    }
    let _ = std::fs::remove_dir_all(&outer);
    Ok(())
}

/// Every path under `dir` (not following links).
fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                stack.push(p.clone());
            }
            out.push(p);
        }
    }
    out
}

/// The emitted sources of a design folder hold the label's payload only inside a one-line
/// comment: every line that mentions it is a `//` comment, and no `` `include `` was written.
fn no_injected_line(dir: &Path) -> Result<(), String> {
    for p in walk(&dir.join("design")) {
        let ext = p.extension().and_then(|e| e.to_str()).unwrap_or("");
        if !matches!(ext, "v" | "cpp" | "h") {
            continue;
        }
        let text = std::fs::read_to_string(&p).unwrap();
        for line in text.lines() {
            let t = line.trim_start();
            let payload = t.contains("pwned") || t.contains("passwd");
            if (payload && !t.starts_with("//")) || t.starts_with("`include") {
                return Err(format!("{}: an injected line: {line}", p.display()));
            }
        }
    }
    Ok(())
}

/// A compiled design, its manifest edited by `edit`.
fn design_with(c: Case, edit: fn(&mut serde_json::Value)) -> Case {
    // compile into a template once per case (cheap: digits_mlp, 2 samples), then edit it
    let (_, dir) = scratch(&format!("{}-template", c.name));
    let out = run(
        &dir,
        &compile_args("@ROOT/examples/models/digits_mlp.onnx.txt", "verilog,hls")
            .iter()
            .map(|s| s.to_string())
            .collect::<Vec<_>>(),
        TOOL_TIMEOUT,
    )
    .expect("compile finishes");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest = dir.join("design/etch-design.json");
    let mut m: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    edit(&mut m);
    std::fs::write(&manifest, m.to_string()).unwrap();
    let mut c = c;
    for p in walk(&dir.join("design")) {
        if p.is_file() {
            let rel = p.strip_prefix(&dir).unwrap().to_str().unwrap().to_string();
            if !c.files.iter().any(|(n, _)| *n == rel) {
                c.files
                    .insert(0, (rel, Content::Bytes(std::fs::read(&p).unwrap())));
            }
        }
    }
    let _ = std::fs::remove_dir_all(dir.parent().unwrap());
    c
}

fn cases() -> Vec<Case> {
    use Expect::{Error, Ok};
    let inject_label = format!("[\"x{INJECT}\"]");
    vec![
        // ---- names that try to become code in the emitted design ----
        case(
            "label-injects-cpp-and-verilog",
            &compile_args("model.onnx.txt", "verilog,hls"),
            Ok(&["check it with: etch verify design"]),
        )
        .file("model.onnx.txt", mlp_labelled(&inject_label))
        .check(no_injected_line),
        case(
            "file-name-injects-verilog",
            &compile_args("x\n`include \"/etc/passwd\"\n.onnx.txt", "verilog"),
            Ok(&["check it with: etch verify design"]),
        )
        .file(
            "x\n`include \"/etc/passwd\"\n.onnx.txt",
            example("examples/models/digits_mlp.onnx.txt"),
        )
        .check(no_injected_line),
        design_with(
            case(
                "verify-runs-no-label-payload",
                &["verify", "design", "--simulator", "g++"],
                Ok(&["bit-exact"]),
            ),
            |_| {},
        )
        .tools(),
        // ---- design folders from others ----
        design_with(
            case(
                "synth-top-injects-a-command",
                &["synth", "design", "--target", "pynq-z2"],
                Error(&["plain Verilog identifier"]),
            ),
            |m| m["verilog"]["top"] = "etch_accel; exec -- touch PWNED;".into(),
        ),
        design_with(
            case(
                "synth-reads-dot-dot",
                &["synth", "design", "--target", "pynq-z2", "--allow-modified"],
                Error(&["relative paths inside the folder"]),
            ),
            |m| m["verilog"]["sources"] = serde_json::json!(["../../../../../../etc/passwd"]),
        ),
        design_with(
            case(
                "synth-reads-an-absolute-path",
                &["synth", "design", "--target", "pynq-z2", "--allow-modified"],
                Error(&["relative paths inside the folder"]),
            ),
            |m| m["verilog"]["sources"] = serde_json::json!(["/etc/passwd"]),
        ),
        design_with(
            case(
                "synth-source-not-compiled",
                &["synth", "design", "--target", "pynq-z2"],
                Error(&["not one of the files `etch compile` wrote"]),
            ),
            |m| m["verilog"]["sources"] = serde_json::json!(["extra.v"]),
        )
        .file("design/verilog/extra.v", "module extra; endmodule\n"),
        design_with(
            case(
                "synth-source-links-out",
                &["synth", "design", "--target", "pynq-z2", "--allow-modified"],
                Error(&["leaves the design folder through a symbolic link"]),
            ),
            |m| m["verilog"]["sources"] = serde_json::json!(["evil.v"]),
        )
        .link("design/verilog/evil.v", "/etc/passwd"),
        design_with(
            case(
                "recorded-file-path-escapes",
                &["verify", "design"],
                Error(&["relative paths inside the folder"]),
            ),
            |m| m["files"]["../../outside"] = "00".into(),
        ),
        design_with(
            case(
                "verify-tampered-testbench",
                &["verify", "design", "--simulator", "iverilog"],
                Error(&["changed since", "verilog/etch_tb.v", "--allow-modified"]),
            ),
            |_| {},
        )
        .file(
            "design/verilog/etch_tb.v",
            "module etch_tb; initial begin $display(\"ETCH PASS samples=2 cycles=1\"); $finish; end endmodule\n",
        ),
        design_with(
            case(
                "verify-lying-testbench-allowed",
                &["verify", "design", "--simulator", "iverilog", "--allow-modified"],
                Error(&["the testbench wrote no output codes"]),
            ),
            |_| {},
        )
        .file(
            "design/verilog/etch_tb.v",
            "module etch_tb; initial begin $display(\"ETCH CYCLES sample=0 cycles=1\"); $display(\"ETCH PASS samples=2 cycles=1\"); $finish; end endmodule\n",
        )
        .tools(),
        design_with(
            case(
                "verify-lying-csim-allowed",
                &["verify", "design", "--simulator", "g++", "--allow-modified"],
                Error(&["the testbench wrote no output codes"]),
            ),
            |_| {},
        )
        .file(
            "design/hls/etch_tb.cpp",
            "#include <cstdio>\nint main() { std::printf(\"etch-csim: pass samples=2 outputs=20\\n\"); return 0; }\n",
        )
        .tools(),
        design_with(
            case(
                "verify-missing-golden",
                &["verify", "design"],
                Error(&["changed since", "verilog/golden.hex"]),
            ),
            |_| {},
        )
        .file("design/verilog/golden.hex", ""),
        design_with(
            case(
                "verify-samples-from-manifest-ignored",
                &["verify", "design", "--simulator", "g++", "--json"],
                Ok(&["\"samples\": 2"]),
            ),
            |m| m["samples"] = serde_json::json!(u64::MAX),
        )
        .tools(),
        design_with(
            case(
                "verify-manifest-without-hashes",
                &["verify", "design"],
                Error(&["records no file hashes"]),
            ),
            |m| {
                m.as_object_mut().unwrap().remove("files");
            },
        ),
        case(
            "verify-manifest-is-a-folder",
            &["verify", "design"],
            Error(&["not a regular file"]),
        )
        .dir("design/etch-design.json"),
        case(
            "verify-manifest-is-dev-zero",
            &["verify", "design"],
            Error(&["not a regular file"]),
        )
        .link("design/etch-design.json", "/dev/zero"),
        case(
            "verify-manifest-not-json",
            &["verify", "design"],
            Error(&["etch-design.json"]),
        )
        .file("design/etch-design.json", "{\"model\": "),
        case(
            "verify-manifest-huge",
            &["verify", "design"],
            Error(&["not a regular file of at most"]),
        )
        .bytes("design/etch-design.json", vec![b' '; 17 << 20]),
        case(
            "verify-no-design",
            &["verify", "nothing-here"],
            Error(&["etch compile -o"]),
        ),
        case(
            "synth-no-design",
            &["synth", "nothing-here", "--target", "pynq-z2"],
            Error(&["etch compile -o"]),
        ),
        case(
            "compile-empty-output",
            &[
                "compile",
                "@ROOT/examples/models/digits_mlp.onnx.txt",
                "--target",
                "pynq-z2",
                "--emit",
                "hls",
                "-o",
                "",
            ],
            Error(&["-o names no folder"]),
        ),
        // ---- names and messages on the terminal ----
        case(
            "inspect-escape-in-node-name",
            &["inspect", "model.onnx.txt"],
            Ok(&["\\u{1b}[2J"]),
        )
        .file("model.onnx.txt", mlp_labelled("[\"a\u{1b}[2Jb\"]")),
        case(
            "error-escape-in-file-name",
            &["inspect", "a\u{1b}]0;pwned\u{7}.onnx.txt"],
            Error(&["\\u{1b}]0;pwned\\u{7}"]),
        ),
        case(
            "error-escape-in-pass-spec",
            &[
                "passes",
                "@ROOT/examples/models/digits_mlp.onnx.txt",
                "--passes",
                "fro\u{1b}[31mb()",
            ],
            Error(&["\\u{1b}[31m"]),
        ),
    ]
}

#[test]
fn hostile_inputs_end_as_expected() {
    let all = cases();
    assert!(all.len() >= MIN_CASES, "only {} cases", all.len());
    let failures: Vec<String> = std::thread::scope(|s| {
        let chunks: Vec<_> = all.chunks(all.len().div_ceil(2)).collect();
        let handles: Vec<_> = chunks
            .into_iter()
            .map(|chunk| {
                s.spawn(move || {
                    chunk
                        .iter()
                        .filter_map(|c| judge(c).err().map(|e| format!("{}: {e}", c.name)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        all.len(),
        failures.join("\n\n")
    );
}
