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
const MIN_CASES: usize = 80;
/// A case that runs no external tool and takes longer than this hangs.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Cases that build and run a simulator (g++, Icarus, Yosys) get this long.
const TOOL_TIMEOUT: Duration = Duration::from_secs(300);
/// The data-segment limit every case runs under.
const MEMORY_LIMIT: u64 = 1 << 30;

/// How a case must end.
enum Expect {
    /// Exit 1 (or 2, refused at argument parsing), stderr holding each of these phrases, no panic.
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
            // 1: etch's error; 2: refused at argument parsing (clap's usage error)
            if !matches!(code, Some(1) | Some(2)) {
                return Err(format!("expected exit 1 or 2, got {code:?}:\n{all}"));
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

/// A `.npy` file of float32 values.
fn npy(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let tuple = if dims.len() == 1 {
        format!("{},", dims[0])
    } else {
        dims.join(", ")
    };
    npy_raw(
        &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({tuple}), }}"),
        values,
    )
}

/// A `.npy` file with the header dictionary as given.
fn npy_raw(dict: &str, values: &[f32]) -> Vec<u8> {
    let mut header = dict.to_string();
    while !(10 + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut b = b"\x93NUMPY\x01\x00".to_vec();
    b.extend((header.len() as u16).to_le_bytes());
    b.extend(header.as_bytes());
    for v in values {
        b.extend(v.to_le_bytes());
    }
    b
}

/// A one-node model around `node` (ONNX text), input `x` and output `y` as typed.
fn tiny(input: &str, output: &str, node: &str) -> String {
    format!("<ir_version: 8, opset_import: [\"\" : 17]>\ng ({input} x) => ({output} y) {{\n  {node}\n}}\n")
}

/// examples/hw/ws-4x2-int8.ron with `from` replaced by `to`.
fn hw_with(from: &str, to: &str) -> String {
    let text = example("examples/hw/ws-4x2-int8.ron");
    assert!(text.contains(from), "{from}");
    text.replace(from, to)
}

/// A SCALE-Sim 3.0.0 config for a `rows` x `cols` array.
fn scalesim_cfg(rows: &str, cols: &str) -> String {
    format!("[general]\nrun_name = hostile\n\n[architecture_presets]\nArrayHeight: {rows}\nArrayWidth: {cols}\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nIfmapOffset: 0\nFilterOffset: 10000000\nOfmapOffset: 20000000\nBandwidth : 10\nDataflow : ws\nMemoryBanks: 1\n\n[run_presets]\nInterfaceBandwidth: CALC\n")
}

const TOPOLOGY_HEAD: &str = "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\n";

/// A chain of `n` QONNX `Quant` nodes on a 4-element input.
fn quant_chain(n: usize) -> String {
    let mut text = String::from("<\n   ir_version: 8,\n   opset_import: [\"\" : 13, \"qonnx.custom_op.general\" : 1]\n>\ng (float[1,4] x) => (float[1,4] y)\n   <float s = {0.25}, float z = {0}, float b = {4}>\n{\n");
    for k in 0..n {
        let (x, y) = (
            if k == 0 {
                "x".to_string()
            } else {
                format!("q{}", k - 1)
            },
            if k + 1 == n {
                "y".to_string()
            } else {
                format!("q{k}")
            },
        );
        text += &format!("   {y} = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0> ({x}, s, z, b)\n");
    }
    text + "}\n"
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
                Error(&["verilog/extra.v (not recorded)", "--allow-modified"]),
            ),
            |m| m["verilog"]["sources"] = serde_json::json!(["extra.v"]),
        )
        .file("design/verilog/extra.v", "module extra; endmodule\n"),
        design_with(
            case(
                "verify-testbench-not-compiled",
                &["verify", "design", "--simulator", "iverilog"],
                Error(&["verilog/extra_tb.v (not recorded)"]),
            ),
            |m| m["verilog"]["testbench"] = serde_json::json!(["extra_tb.v"]),
        )
        .file("design/verilog/extra_tb.v", "module etch_tb; endmodule\n"),
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
            "verify-manifest-over-the-limit",
            &["verify", "design", "--max-bytes", "1000"],
            Error(&["etch-design.json", "--max-bytes"]),
        )
        .bytes("design/etch-design.json", vec![b' '; 4000]),
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
            Error(&["the path is empty"]),
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
        // ---- models, text and binary ----
        // a long chain of QONNX quantizers: the pipeline's import (rewrites in time linear in the
        // graph each) stops at its bound rather than take quadratic time; the model runs as written
        case(
            "qonnx-quantizer-chain",
            &["inspect", "chain.onnx.txt"],
            Ok(&["nothing rewritten", "past the import's bound", "total"]),
        )
        .file("chain.onnx.txt", quant_chain(20_000)),
        // a node label with an escape sequence in the import's note (a quantizer it keeps in float)
        case(
            "qonnx-label-in-import-note",
            &["inspect", "kept.onnx.txt"],
            Ok(&["kept `x\\u{1b}", "total"]),
        )
        .file(
            "kept.onnx.txt",
            quant_chain(1).replace(
                "y = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0>",
                "[\"x\u{1b}[2J\"] y = qonnx.custom_op.general.Quant <signed: int = 1, narrow: int = 0, rounding_mode: string = \"FLOOR\">",
            ),
        ),
        case("model-is-dev-zero", &["inspect", "/dev/zero"], Error(&["not a regular file"])),
        case("model-is-a-folder", &["inspect", "."], Error(&["not a regular file"])),
        case("model-missing", &["inspect", "nope.onnx.txt"], Error(&["nope.onnx.txt"])),
        case("model-empty", &["inspect", "m.onnx.txt"], Error(&["m.onnx.txt"])).file("m.onnx.txt", ""),
        case("model-binary-garbage", &["inspect", "m.onnx"], Error(&["m.onnx"]))
            .bytes("m.onnx", (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8).collect()),
        case("model-binary-huge-length", &["inspect", "m.onnx"], Error(&["m.onnx"]))
            .bytes("m.onnx", vec![0x3a, 0xff, 0xff, 0xff, 0xff, 0x0f, 0x0a]),
        case("model-binary-truncated", &["inspect", "m.onnx"], Error(&["m.onnx"]))
            .bytes("m.onnx", vec![0x08, 0x08, 0x3a, 0x40, 0x0a, 0x05]),
        case("model-matmul-10e36-macs", &["inspect", "m.onnx.txt"], Error(&["m.onnx.txt"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1000000000000,1000000000000] a, float[1000000000000,1000000000000] b) => (float[1000000000000,1000000000000] y) {\n  y = MatMul (a, b)\n}\n"),
        case("model-sim-matmul-10e12", &["sim", "m.onnx.txt", "--target", "pynq-z2"], Error(&["m.onnx.txt"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1,1000000] a, float[1000000,1000000] b) => (float[1,1000000] y) {\n  y = MatMul (a, b)\n}\n"),
        case("model-unknown-op-in-sim", &["sim", "m.onnx.txt", "--target", "pynq-z2", "--allow-partial"], Error(&["FrobnicateV9"]))
            .file("m.onnx.txt", tiny("float[1,4]", "float[1,4]", "y = FrobnicateV9 (x)")),
        case("model-unknown-op-declared-shape-inspects", &["inspect", "m.onnx.txt"], Ok(&["FrobnicateV9"]))
            .file("m.onnx.txt", tiny("float[1,4]", "float[1,4]", "y = FrobnicateV9 (x)")),
        case("model-bn-negative-epsilon", &["inspect", "m.onnx.txt"], Error(&["epsilon"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1,2,2,2] x) => (float[1,2,2,2] y)\n  <float[2] s = {1,1}, float[2] b = {0,0}, float[2] m = {0,0}, float[2] v = {1,1}>\n{\n  y = BatchNormalization <epsilon: float = -1> (x, s, b, m, v)\n}\n"),
        case("model-quantize-scale-zero", &["inspect", "m.onnx.txt"], Error(&["scale"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1,4] x) => (int8[1,4] y)\n  <float s = {0}, int8 z = {0}>\n{\n  y = QuantizeLinear (x, s, z)\n}\n"),
        case("model-pad-2e9", &["run", "m.onnx.txt", "--input", "x.npy"], Error(&["limit"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17]>\ng (float[1,4] x) => (float[1,?] y)\n  <int64[4] p = {0,0,0,2000000000}>\n{\n  y = Pad (x, p)\n}\n")
            .bytes("x.npy", npy(&[1, 4], &[1.0, 2.0, 3.0, 4.0])),
        case("model-shape-only-weights-over-the-cap", &["convert", "m.onnx.txt", "-o", "out.onnx.txt"], Error(&["limit"]))
            .file("m.onnx.txt", "<ir_version: 8, opset_import: [\"\" : 17], metadata_props: [\"weights_stripped_to_inputs\": \"1\"]>\ng (float[1,4] x, float[4,300000000] w) => (float[1,300000000] y) {\n  y = MatMul (x, w)\n}\n"),
        // ---- accelerator descriptions ----
        case("hw-is-dev-zero", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "/dev/zero"], Error(&["not a regular file"])),
        case("hw-empty", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron"])).file("a.ron", ""),
        case("hw-array-65536-squared", &["compile", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron", "--passes", QUANT, "--emit", "verilog", "--data", "@ROOT/examples/data/digits_test.csv", "-o", "d"], Error(&["1048576 PEs"]))
            .file("a.ron", hw_with("rows: 4, cols: 2", "rows: 65536, cols: 65536")),
        case("hw-array-zero-rows", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron: ", "must be at least 1"]))
            .file("a.ron", hw_with("rows: 4", "rows: 0")),
        case("hw-clock-negative", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron: clock_mhz"]))
            .file("a.ron", hw_with("clock_mhz: 24.0", "clock_mhz: -24.0")),
        case("hw-clock-nan", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["clock_mhz"]))
            .file("a.ron", hw_with("clock_mhz: 24.0", "clock_mhz: NaN")),
        case("hw-static-power-negative", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron: static_mw is -5"]))
            .file("a.ron", hw_with("clock_mhz: 24.0", "clock_mhz: 24.0, static_mw: -5.0")),
        case("hw-dram-zero-bandwidth", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["bytes_per_cycle"]))
            .file("a.ron", hw_with("bytes_per_cycle: 0.5", "bytes_per_cycle: 0.0")),
        case("hw-huge-buffers", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron"]))
            .file("a.ron", hw_with("ifmap_kib: 8", "ifmap_kib: 18446744073709551615")),
        case("hw-unknown-energy-table", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["unknown energy table"]))
            .file("a.ron", hw_with("\"horowitz-45nm\"", "\"../../../../etc/passwd\"")),
        case("hw-nested-parens", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Error(&["a.ron"]))
            .file("a.ron", format!("{}{}", "(".repeat(100_000), ")".repeat(100_000))),
        case("hw-name-with-escapes", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--hw", "a.ron"], Ok(&["\\u{1b}"]))
            .file("a.ron", hw_with("name: \"ws-4x2-int8\"", "name: \"ws\\u{1b}[2J\"")),
        // ---- pass specs ----
        case("spec-nested-30000", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", Box::leak(format!("prune(x={}{})", "[".repeat(30_000), "]".repeat(30_000)).into_boxed_str())], Error(&["nest"])),
        case("spec-unknown-pass", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "frobnicate()"], Error(&["frobnicate"])),
        case("spec-sparsity-two", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "prune(sparsity=2)"], Error(&["sparsity"])),
        case("spec-bits-zero", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=0)"], Error(&["bits"])),
        case("spec-bits-huge", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=99999999999999999999)"], Error(&["bits"])),
        case("spec-calib-dev-zero", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=8,calib=\"/dev/zero\")"], Error(&["not a regular file"])),
        case("spec-calib-missing", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=8,calib=\"nope.csv\")"], Error(&["nope.csv"])),
        case("spec-unterminated", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=8"], Error(&["quant"])),
        // ---- CSV data ----
        case("csv-nan", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", format!("3,{}NaN\n", "0,".repeat(63))),
        case("csv-inf", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", format!("3,{}inf\n", "0,".repeat(63))),
        case("csv-1e30", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", format!("3,{}1e30\n", "0,".repeat(63))),
        case("csv-label-out-of-range", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", format!("10,{}0\n", "0,".repeat(63))),
        case("csv-too-few-columns", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", "3,1,2\n"),
        case("csv-empty", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .file("d.csv", ""),
        case("csv-not-utf8", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "d.csv"], Error(&["d.csv"]))
            .bytes("d.csv", vec![0xff, 0xfe, b',', 0x80, b'\n']),
        case("csv-dev-zero", &["eval", "@ROOT/examples/models/digits_mlp.onnx.txt", "--data", "/dev/zero"], Error(&["not a regular file"])),
        case("csv-calib-nan", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "quant(bits=8,calib=\"d.csv\")"], Error(&["d.csv"]))
            .file("d.csv", format!("3,{}NaN\n", "0,".repeat(63))),
        // ---- npy inputs ----
        case("npy-bad-magic", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Error(&["x.npy"]))
            .bytes("x.npy", b"NOTNUMPY".to_vec()),
        case("npy-truncated", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Error(&["x.npy"]))
            .bytes("x.npy", npy(&[1, 64], &[0.0; 10])),
        case("npy-huge-shape", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Error(&["x.npy"]))
            .bytes("x.npy", npy(&[1000000000, 1000000000], &[0.0; 4])),
        case("npy-wrong-dtype", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Error(&["x.npy"]))
            .bytes("x.npy", npy_raw("{'descr': '|O', 'fortran_order': False, 'shape': (1, 64), }", &[0.0; 64])),
        case("npy-wrong-shape", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Error(&["shape"]))
            .bytes("x.npy", npy(&[1, 3], &[0.0; 3])),
        case("npy-nan-warns", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy"], Ok(&["warning"]))
            .bytes("x.npy", npy(&[1, 64], &[f32::NAN; 64])),
        case("npy-dev-zero", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "/dev/zero"], Error(&["not a regular file"])),
        // ---- SCALE-Sim inputs ----
        case("scalesim-ifmap-10e12", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["t.csv"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 1000000, 1000000, 3, 3, 64, 64, 1,\n"))
            .file("c.cfg", scalesim_cfg("32", "32")),
        case("scalesim-zero-filter", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["t.csv"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 8, 8, 0, 3, 4, 4, 1,\n"))
            .file("c.cfg", scalesim_cfg("32", "32")),
        case("scalesim-filter-larger-than-ifmap", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["t.csv"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 2, 2, 5, 5, 4, 4, 1,\n"))
            .file("c.cfg", scalesim_cfg("32", "32")),
        case("scalesim-missing-columns", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["t.csv"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 8, 8\n"))
            .file("c.cfg", scalesim_cfg("32", "32")),
        case("scalesim-array-65536", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["c.cfg"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 8, 8, 3, 3, 4, 4, 1,\n"))
            .file("c.cfg", scalesim_cfg("99999999999", "99999999999")),
        case("scalesim-config-garbage", &["sim", "--topology", "t.csv", "--scalesim-config", "c.cfg"], Error(&["c.cfg"]))
            .file("t.csv", format!("{TOPOLOGY_HEAD}conv1, 8, 8, 3, 3, 4, 4, 1,\n"))
            .file("c.cfg", "\u{0}\u{1}[[[["),
        case("scalesim-topology-dev-zero", &["sim", "--topology", "/dev/zero", "--scalesim-config", "c.cfg"], Error(&["not a regular file"]))
            .file("c.cfg", scalesim_cfg("32", "32")),
        // ---- output paths ----
        case("convert-empty-output", &["convert", "@ROOT/examples/models/digits_mlp.onnx.txt", "-o", ""], Error(&[])),
        case("passes-empty-output", &["passes", "@ROOT/examples/models/digits_mlp.onnx.txt", "--passes", "remove-identity", "-o", ""], Error(&[])),
        case("convert-output-is-a-folder", &["convert", "@ROOT/examples/models/digits_mlp.onnx.txt", "-o", "out"], Error(&["out"])).dir("out"),
        case("convert-output-parent-missing", &["convert", "@ROOT/examples/models/digits_mlp.onnx.txt", "-o", "no/such/dir/m.onnx.txt"], Error(&["no/such/dir"])),
        case("sim-csv-empty-path", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--target", "pynq-z2", "--csv", ""], Error(&[])),
        case("run-repeat-max", &["run", "@ROOT/examples/models/digits_mlp.onnx.txt", "--input", "x.npy", "--repeat", "18446744073709551615"], Error(&[]))
            .bytes("x.npy", npy(&[1, 64], &[0.0; 64])),
        case("sim-batch-zero", &["sim", "@ROOT/examples/models/digits_mlp.onnx.txt", "--target", "pynq-z2", "--batch", "0"], Error(&[])),
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
