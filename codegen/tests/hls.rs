//! HLS C simulation: the digits models, int8 / pow2 / binarized, emitted as HLS C++, compiled with
//! g++ under -Wall -Wextra -Werror and run against the CPU executor's golden codes; and a flipped
//! weight makes the simulation fail naming the first differing output.

mod common;

use std::path::PathBuf;

use etch_codegen::gxx;
use etch_codegen::hls::{self, Options};
use etch_codegen::program::{golden, lower};

/// Test rows of digits_test.csv run through each design.
const ROWS: usize = 25;

/// The C simulation of the design in `dir`, judged against the output of `name` under `spec`.
fn csim(
    dir: &std::path::Path,
    name: &str,
    spec: &str,
) -> Result<gxx::Csim, etch_codegen::CodegenError> {
    let (model, info) = common::model(name, spec);
    let program = lower(&model, &info).unwrap();
    gxx::csim(dir, &program.output, &program.output_shape)
}

fn emit(name: &str, case: &str, spec: &str) -> PathBuf {
    let (model, info) = common::model(name, spec);
    let program = lower(&model, &info).unwrap();
    let gold = golden(&model, &info, &program, &common::test_csv(), ROWS).unwrap();
    let files = hls::emit(
        &program,
        &Options {
            model: name.into(),
            input_range: hls::input_range(&info, &program),
        },
        &gold,
    )
    .unwrap();
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("hls-{name}-{case}"));
    let _ = std::fs::remove_dir_all(&dir);
    hls::write(&dir, &files).unwrap();
    dir
}

fn csim_all(name: &str) {
    for (case, spec) in common::specs(name) {
        let dir = emit(name, case, &spec);
        let r = csim(&dir, name, &spec).unwrap_or_else(|e| panic!("{name} {case}: {e}"));
        assert!(
            r.verdict.bit_exact,
            "{name} {case}: {:?}",
            r.verdict.first_mismatch.map(|m| m.message)
        );
        assert_eq!(r.verdict.samples, ROWS, "{name} {case}");
        eprintln!(
            "{name} {case}: {} samples, {} output codes bit-exact",
            r.verdict.samples, r.verdict.outputs
        );
    }
}

#[test]
fn digits_cnn_csim_is_bit_exact() {
    csim_all("digits_cnn");
}

#[test]
fn digits_mlp_csim_is_bit_exact() {
    csim_all("digits_mlp");
}

/// One weight of the last layer flipped in the emitted C++ (bit 6 of the code multiplying the
/// largest input of sample 0 into output 0): the C simulation fails and names that output.
#[test]
fn a_flipped_weight_fails_naming_the_first_differing_output() {
    let name = "digits_mlp";
    let (case, spec) = common::specs(name).remove(0);
    let dir = emit(name, case, &spec);
    let (model, info) = common::model(name, &spec);
    let program = lower(&model, &info).unwrap();
    let gold = golden(&model, &info, &program, &common::test_csv(), 1).unwrap();
    let (last, layer) = program.layers().last().unwrap();
    let etch_codegen::program::InputCode::Int { zero_point } = layer.input else {
        panic!("int8 input expected")
    };
    // the input of the last layer on sample 0, and the tap with the largest |x - zp|
    let k_last = program
        .steps
        .iter()
        .position(|s| s.name == last.name)
        .unwrap();
    let x = &gold[0].steps[k_last - 1];
    let k = (0..x.len())
        .max_by_key(|&k| (x[k] - zero_point as i64).abs())
        .unwrap();
    let path = dir.join("etch_weights.h");
    let text = std::fs::read_to_string(&path).unwrap();
    // the last `…_w[M][K] = {` array holds the last layer's weights, row-major
    let decl = text.rfind("_w[").unwrap();
    let start = decl + text[decl..].find("= {").unwrap() + 3;
    let end = start + text[start..].find("};").unwrap();
    let mut values: Vec<i64> = text[start..end]
        .split(',')
        .map(|v| v.trim().parse().unwrap())
        .collect();
    let before = values[k];
    values[k] = ((before as i8) ^ 0x40) as i64;
    let body: Vec<String> = values.iter().map(|v| v.to_string()).collect();
    let faulty = format!("{}\n{}\n{}", &text[..start], body.join(", "), &text[end..]);
    std::fs::write(&path, faulty).unwrap();

    let r = csim(&dir, name, &spec).unwrap();
    assert!(!r.verdict.bit_exact, "a flipped weight went unnoticed");
    let m = r.verdict.first_mismatch.unwrap();
    eprintln!("weight [0][{k}] {before} -> {}: {}", values[k], m.message);
    assert_eq!((m.sample, m.index), (0, Some(0)));
    assert_eq!(m.expected, gold[0].output[0]);
    assert!(
        m.message.contains(&format!("{}[0,0]", program.output)),
        "{}",
        m.message
    );
}

/// A missing golden file is an error, not a pass.
#[test]
fn a_missing_golden_file_is_an_error() {
    let (case, spec) = common::specs("digits_mlp").remove(0);
    let dir = emit("digits_mlp", &format!("{case}-missing"), &spec);
    std::fs::remove_file(dir.join(hls::GOLDEN_FILE)).unwrap();
    let e = csim(&dir, "digits_mlp", &spec).unwrap_err().to_string();
    assert!(e.contains("cannot open vector file"), "{e}");
}

/// C++ that does not compile is a g++ error with its message, not a verdict.
#[test]
fn a_compile_error_is_reported_with_the_compiler_output() {
    let (case, spec) = common::specs("digits_mlp").remove(0);
    let dir = emit("digits_mlp", &format!("{case}-broken"), &spec);
    let src = dir.join(hls::TOP_SOURCE);
    let mut text = std::fs::read_to_string(&src).unwrap();
    text.push_str("\nint unused_and_broken(int x) { int y; return x; }\n");
    std::fs::write(&src, text).unwrap();
    let e = csim(&dir, "digits_mlp", &spec).unwrap_err().to_string();
    assert!(
        e.contains("g++ failed") && e.contains("unused variable"),
        "{e}"
    );
}

/// The emitted C++ of two designs, compared with the files in `codegen/tests/snapshots/hls/`
/// (`ETCH_BLESS=1` rewrites them): any change to the emitter shows in review as a diff of the C++
/// it writes. digits_cnn binarized has every kernel but shift-add (int MAC and XNOR convolutions,
/// MaxPool, Gemm) and its header and testbench; digits_mlp pow2 has the shift-add Gemms. The
/// weights header is left out.
#[test]
fn emitted_cpp_matches_the_snapshots() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/hls");
    let bless = std::env::var_os("ETCH_BLESS").is_some();
    let cases: [(&str, &str, &[&str]); 2] = [
        (
            "digits_cnn",
            "binary",
            &["etch_top.cpp", "etch_top.h", "etch_tb.cpp"],
        ),
        ("digits_mlp", "pow2", &["etch_top.cpp"]),
    ];
    for (name, case, files) in cases {
        let spec = common::specs(name)
            .into_iter()
            .find(|(c, _)| *c == case)
            .unwrap()
            .1;
        let dir = emit(name, &format!("{case}-snapshot"), &spec);
        for file in files {
            let got = std::fs::read_to_string(dir.join(file)).unwrap();
            let path = root.join(format!("{name}-{case}")).join(file);
            if bless {
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &got).unwrap();
                continue;
            }
            let want = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e} (ETCH_BLESS=1 writes it)", path.display()));
            assert!(
                got == want,
                "{} differs from the emitted file in {} (ETCH_BLESS=1 rewrites the snapshot)",
                path.display(),
                dir.display()
            );
        }
    }
}
