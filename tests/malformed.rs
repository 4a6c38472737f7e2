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

// ---- bounded resources and no silent wrong results (issue 9, items 4 and 5) ----

#[path = "common/mod.rs"]
mod common;
use common::{etch, text, tmp};

const HEAD: &str = "<ir_version: 8, opset_import: [\"\" : 17]>\n";

/// Writes `body` (after the header) to a fresh file and returns its path.
fn model(dir: &Path, name: &str, body: &str) -> String {
    std::fs::create_dir_all(dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, format!("{HEAD}{body}")).unwrap();
    p.to_str().unwrap().to_string()
}

/// Fails (exit 1, or 2 for a usage error clap reports; no panic) and says `want`.
fn refused(args: &[&str], want: &str) -> String {
    let o = etch(args);
    let t = text(&o);
    assert!(matches!(o.status.code(), Some(1 | 2)), "{args:?}: {t}");
    assert!(!t.contains("panicked"), "{args:?}: {t}");
    assert!(t.contains(want), "{args:?}: expected `{want}` in: {t}");
    t
}

/// A little-endian float32 .npy file of `values` with `shape`.
fn npy(path: &Path, shape: &[usize], values: &[f32]) {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    for v in values {
        out.extend(v.to_le_bytes());
    }
    std::fs::write(path, out).unwrap();
}

#[test]
fn macs_past_u64_are_an_error_not_a_wrapped_number() {
    let d = tmp("limits-macs");
    let m = model(
        &d,
        "m.onnx.txt",
        "g (float[1000000000000,1000000000000] a, float[1000000000000,1000000000000] b) => (float[1000000000000,1000000000000] y) { y = MatMul(a, b) }",
    );
    let t = refused(&["inspect", &m, "--json"], "exceed 2^64");
    assert!(!t.contains("12919594847110692864"), "{t}");
    // and sim refuses the simulator state before allocating it
    refused(
        &["sim", &m, "--hw", "examples/hw/ws-16x16-int8.ron"],
        "--max-bytes",
    );
}

#[test]
fn pad_past_the_tensor_limit_is_refused_before_allocating() {
    let d = tmp("limits-pad");
    let m = model(
        &d,
        "pad.onnx.txt",
        "g (float[1,4] x) => (float[1,2000000004] y) <int64[4] pads = {0, 0, 0, 2000000000}> { y = Pad(x, pads) }",
    );
    let x = d.join("x.npy");
    npy(&x, &[1, 4], &[1.0, 2.0, 3.0, 4.0]);
    refused(&["run", &m, "--input", x.to_str().unwrap()], "--max-bytes");
}

#[test]
fn repeat_and_batch_are_bounded_and_zero_batch_is_an_error() {
    let m = "examples/models/digits_mlp.onnx.txt";
    refused(
        &[
            "run",
            m,
            "--input",
            "x.npy",
            "--repeat",
            "18446744073709551615",
        ],
        "--repeat",
    );
    refused(
        &["sim", m, "--target", "pynq-z2", "--batch", "0"],
        "--batch",
    );
}

#[test]
fn empty_output_paths_are_errors() {
    let m = "examples/models/digits_mlp.onnx.txt";
    refused(&["convert", m, "-o", ""], "empty");
    refused(&["passes", m, "--passes", "fold-bn", "-o", ""], "empty");
    refused(
        &[
            "compile", m, "--target", "pynq-z2", "--emit", "hls", "-o", "",
        ],
        "empty",
    );
}

#[test]
fn shape_only_weights_have_a_total_cap() {
    let d = tmp("limits-weights");
    // four weights of 800 MB: each under the 1 GiB per-tensor limit, 3.2 GB together
    std::fs::create_dir_all(&d).unwrap();
    let m = d.join("w.onnx.txt");
    std::fs::write(&m, "<ir_version: 8, opset_import: [\"\" : 17], metadata_props: [\"weights_stripped_to_inputs\": \"4\"]>\ng (float[1,200000000] x, float[200000000] a, float[200000000] b, float[200000000] c, float[200000000] e) => (float[1,200000000] y) { s = Add(a, b)\n t = Add(c, e)\n u = Add(s, t)\n y = Add(x, u) }").unwrap();
    let m = m.to_str().unwrap().to_string();
    refused(
        &["convert", &m, "-o", d.join("o.onnx.txt").to_str().unwrap()],
        "4 shape-only weights",
    );
}

#[test]
fn non_regular_files_are_refused() {
    if !Path::new("/dev/zero").exists() {
        return;
    }
    let z = "/dev/zero";
    let m = "examples/models/digits_mlp.onnx.txt";
    let nr = "not a regular file";
    refused(&["inspect", z], nr);
    refused(&["sim", m, "--hw", z], nr);
    refused(&["eval", m, "--data", z], nr);
    refused(&["run", m, "--input", z], nr);
    refused(
        &["passes", m, "--passes", "quant(bits=8,calib=\"/dev/zero\")"],
        nr,
    );
    refused(&["sim", "--topology", z, "--scalesim-config", z], nr);
}

#[test]
fn huge_arrays_and_topologies_are_refused() {
    let d = tmp("limits-hw");
    std::fs::create_dir_all(&d).unwrap();
    let ron = std::fs::read_to_string("examples/hw/ws-16x16-int8.ron")
        .unwrap()
        .replace("rows: 16, cols: 16", "rows: 65536, cols: 65536");
    let hw = d.join("huge.ron");
    std::fs::write(&hw, ron).unwrap();
    refused(
        &[
            "sim",
            "examples/models/digits_mlp.onnx.txt",
            "--hw",
            hw.to_str().unwrap(),
        ],
        "PEs in all",
    );
    let topo = d.join("t.csv");
    std::fs::write(
        &topo,
        "Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, Num Filter, Strides,\nbig, 1000000, 1000000, 3, 3, 64, 64, 1,\n",
    )
    .unwrap();
    let cfg = d.join("c.cfg");
    std::fs::write(&cfg, "[general]\nrun_name = t\n\n[architecture_presets]\nArrayHeight: 32\nArrayWidth: 32\nIfmapSramSzkB: 64\nFilterSramSzkB: 64\nOfmapSramSzkB: 64\nIfmapOffset: 0\nFilterOffset: 10000000\nOfmapOffset: 20000000\nDataflow: ws\n\n[run_presets]\nInterfaceBandwidth: CALC\n").unwrap();
    let t0 = Instant::now();
    refused(
        &[
            "sim",
            "--topology",
            topo.to_str().unwrap(),
            "--scalesim-config",
            cfg.to_str().unwrap(),
        ],
        "steps",
    );
    assert!(t0.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_quarter_million_node_chain_converts_and_passes_write_it() {
    let d = tmp("limits-chain");
    // deep enough that any recursion over the graph overflows the main thread's 8 MiB stack, and
    // long enough that anything quadratic in the node count does not finish
    let n = 250_000;
    let mut body = String::with_capacity(n * 24);
    body.push_str("g (float[4] x0) => (float[4] y) {\n");
    for k in 0..n {
        body.push_str(&format!("x{} = Relu(x{k})\n", k + 1));
    }
    body.push_str(&format!("y = Relu(x{n})\n}}\n"));
    let m = model(&d, "chain.onnx.txt", &body);
    let out = d.join("out.onnx.txt");
    let o = etch(&["convert", &m, "-o", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let out2 = d.join("out2.onnx.txt");
    let o = etch(&[
        "passes",
        &m,
        "--passes",
        "fold-bn",
        "-o",
        out2.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(std::fs::read_to_string(out2)
        .unwrap()
        .contains("x250000 = Relu"));
}

#[test]
fn nested_pass_specs_are_an_error() {
    let spec = format!(
        "binarize(keep={}first{})",
        "[".repeat(30_000),
        "]".repeat(30_000)
    );
    refused(
        &[
            "passes",
            "examples/models/digits_mlp.onnx.txt",
            "--passes",
            &spec,
        ],
        "nest more than 64 levels",
    );
}

#[test]
fn unknown_shapes_are_an_error_unless_allowed_and_then_partial() {
    let d = tmp("limits-partial");
    let m = model(
        &d,
        "p.onnx.txt",
        "g (float[1,8] x, float[8,8] w) => (float[1,8] y) {\n f = FrobnicateV9(x)\n y = MatMul(f, w) }",
    );
    refused(&["inspect", &m], "FrobnicateV9");
    let o = etch(&["inspect", &m, "--allow-partial"]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(
        t.contains("total (partial)") && t.contains("warning"),
        "{t}"
    );
    let o = etch(&["inspect", &m, "--allow-partial", "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["partial"], true);
    // with its shape declared, the model is complete, but sim has no cost for the op
    let m = model(
        &d,
        "q.onnx.txt",
        "g (float[1,8] x, float[8,8] w) => (float[1,8] y) <float[1,8] f> {\n f = FrobnicateV9(x)\n y = MatMul(f, w) }",
    );
    let t = refused(
        &["sim", &m, "--hw", "examples/hw/ws-16x16-int8.ron"],
        "no cost model",
    );
    assert!(t.contains("FrobnicateV9"), "{t}");
}

#[test]
fn bad_data_rows_and_labels_are_errors_and_bad_inputs_warn() {
    let d = tmp("limits-data");
    std::fs::create_dir_all(&d).unwrap();
    let m = "examples/models/digits_mlp.onnx.txt";
    let row = |label: &str, v: &str| format!("{label},{}{v}\n", "0,".repeat(63));
    for (name, bad, col) in [
        ("nan", "nan", "column 65"),
        ("inf", "inf", "column 65"),
        ("huge", "1e30", "column 65"),
    ] {
        let f = d.join(format!("{name}.csv"));
        std::fs::write(&f, format!("{}{}", row("1", "3"), row("2", bad))).unwrap();
        let t = refused(&["eval", m, "--data", f.to_str().unwrap()], col);
        assert!(t.contains(":2:"), "{t}");
        refused(
            &[
                "passes",
                m,
                "--passes",
                &format!("quant(bits=8,calib=\"{}\")", f.display()),
            ],
            col,
        );
    }
    let f = d.join("label.csv");
    std::fs::write(&f, row("10", "3")).unwrap();
    refused(&["eval", m, "--data", f.to_str().unwrap()], "10 classes");
    let x = d.join("x.npy");
    let mut v = vec![0.0f32; 64];
    v[3] = f32::NAN;
    npy(&x, &[1, 64], &v);
    let o = etch(&["run", m, "--input", x.to_str().unwrap()]);
    assert!(
        o.status.success() && text(&o).contains("warning"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_verifier_rejects_invalid_attributes() {
    let d = tmp("limits-attrs");
    let m = model(
        &d,
        "bn.onnx.txt",
        "g (float[1,2,4,4] x) => (float[1,2,4,4] y) <float[2] s = {1, 1}, float[2] b = {0, 0}, float[2] mu = {0, 0}, float[2] var = {1, 1}> { y = BatchNormalization <epsilon: float = -1> (x, s, b, mu, var) }",
    );
    refused(&["inspect", &m], "epsilon is -1");
    let m = model(
        &d,
        "q.onnx.txt",
        "g (float[4] x) => (float[4] y) <float sc = {0}, int8 zp = {0}> { q = QuantizeLinear(x, sc, zp)\n y = DequantizeLinear(q, sc, zp) }",
    );
    refused(&["inspect", &m], "positive, finite");
}

#[test]
fn quant_reads_a_bias_through_identity() {
    let d = tmp("limits-identity");
    let src = std::fs::read_to_string("examples/models/digits_mlp.onnx.txt").unwrap();
    let gemm = "(\"/Div_output_0\", \"fc1.weight\", \"fc1.bias\")";
    assert!(src.contains(gemm));
    let src = src.replace(
        gemm,
        "(\"/Div_output_0\", \"fc1.weight\", \"fc1.bias_id\")\n   \"fc1.bias_id\" = Identity (\"fc1.bias\")",
    );
    std::fs::create_dir_all(&d).unwrap();
    let m = d.join("id.onnx.txt");
    std::fs::write(&m, src).unwrap();
    let q = "quant(bits=8,per=channel,calib=\"examples/data/digits_train.csv\")";
    let o = etch(&["passes", m.to_str().unwrap(), "--passes", q]);
    let t = text(&o);
    assert!(o.status.success(), "{t}");
    assert!(!t.contains("stays float"), "{t}");
    assert!(t.contains("2 int32 biases"), "{t}");
}
