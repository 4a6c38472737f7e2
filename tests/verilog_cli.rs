//! The CLI around the Verilog flow: `etch compile --emit verilog` then `etch verify` under Icarus
//! and Verilator (bit-exact, RTL cycles equal to `etch sim --rtl`'s, `--json` fields), a flipped
//! weight bit failing with the first differing output named, and the clear refusals (a dataflow
//! the emitted hardware lacks, a float model). These need iverilog and verilator (scripts/test.sh
//! installs them) and fail without them.

use std::process::Output;

mod common;
use common::{etch, text, tmp};

const QUANT: &str = "quant(bits=8,per=channel,calib=\"examples/data/digits_train.csv\")";
const MLP: &str = "examples/models/digits_mlp.onnx.txt";

fn compile(dir: &str, hw: &[&str], passes: &str) -> Output {
    let mut args = vec!["compile", MLP];
    args.extend_from_slice(hw);
    args.extend_from_slice(&[
        "--passes",
        passes,
        "--emit",
        "verilog",
        "--data",
        "examples/data/digits_test.csv",
        "--samples",
        "3",
        "-o",
        dir,
    ]);
    etch(&args)
}

#[test]
fn compile_verilog_then_verify_under_both_simulators_and_catch_a_flipped_weight() {
    let dir = tmp("cli-verilog-mlp");
    let d = dir.to_str().unwrap();
    let out = compile(d, &["--hw", "examples/hw/ws-16x16-int8.ron"], QUANT);
    assert!(out.status.success(), "{}", text(&out));
    let sim = etch(&[
        "sim",
        MLP,
        "--hw",
        "examples/hw/ws-16x16-int8.ron",
        "--passes",
        QUANT,
        "--rtl",
        "--json",
    ]);
    assert!(sim.status.success(), "{}", text(&sim));
    let sim: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
    let predicted = sim["total_cycles"].as_u64().unwrap();
    for simulator in ["iverilog", "verilator"] {
        let v = etch(&["verify", d, "--simulator", simulator, "--json"]);
        assert!(v.status.success(), "{}", text(&v));
        let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(j["bit_exact"], true);
        assert_eq!(j["simulator"], simulator);
        assert_eq!(j["rtl_cycles"].as_u64(), Some(predicted), "{j}");
        assert_eq!(j["sim_cycles"].as_u64(), Some(predicted), "{j}");
        assert!(j["first_mismatch"].is_null());
    }
    // flip the sign bit of every weight of the first word of the last layer's first row fold: a
    // whole output channel changes, and verify names the first differing output
    let w = dir.join("verilog/weights.hex");
    let mut lines: Vec<String> = std::fs::read_to_string(&w)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    // digits_mlp on 16x16: fc1 is 64x64 = 4 row folds x 4 column folds of 16 words; fc2 starts
    // at word 256, and its word 15 holds reduction index 0 of outputs 0..9
    let line = &lines[256 + 15];
    let last = line.len() - 2;
    let b = u8::from_str_radix(&line[last..], 16).unwrap() ^ 0x40;
    lines[256 + 15] = format!("{}{b:02x}", &line[..last]);
    std::fs::write(&w, lines.join("\n") + "\n").unwrap();
    let v = etch(&["verify", d, "--simulator", "iverilog"]);
    assert!(!v.status.success());
    assert!(
        text(&v).contains("changed since") && text(&v).contains("verilog/weights.hex"),
        "{}",
        text(&v)
    );
    // (Verilator from here: its build is cached, where Icarus takes half a minute a run)
    let v = etch(&["verify", d, "--simulator", "verilator", "--allow-modified"]);
    let t = text(&v);
    assert!(!v.status.success(), "{t}");
    assert!(
        t.contains("first mismatch at sample") && t.contains("logits_quantized[0,"),
        "{t}"
    );
    let v = etch(&[
        "verify",
        d,
        "--simulator",
        "verilator",
        "--json",
        "--allow-modified",
    ]);
    assert!(!v.status.success());
    let j: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
    assert_eq!(j["bit_exact"], false);
    assert!(j["first_mismatch"]
        .as_str()
        .unwrap()
        .contains("logits_quantized[0,"));
}

#[test]
fn what_the_hardware_cannot_take_is_refused_clearly() {
    let dir = tmp("cli-verilog-refused");
    let d = dir.to_str().unwrap();
    let out = compile(d, &["--hw", "examples/hw/os-8x8-fp16.ron"], QUANT);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("weight-stationary dataflow only"),
        "{}",
        text(&out)
    );
    let out = etch(&[
        "compile",
        MLP,
        "--target",
        "pynq-z2",
        "--emit",
        "verilog",
        "--data",
        "examples/data/digits_test.csv",
        "-o",
        d,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("quantize it first"), "{}", text(&out));
}

/// `etch compile --emit core` (any model, no --data) then `etch verify`: every instruction in
/// etch sim's cycles under both simulators, the total equal to plain `etch sim`'s; one flipped
/// bit of the program image is caught and the instruction named.
#[test]
fn compile_core_then_verify_cycle_exact_and_catch_a_flipped_program_bit() {
    use etch_program::encode::{Word, GEMM_M, OPCODE, OP_GEMM};
    let dir = tmp("cli-core-cnn");
    let d = dir.to_str().unwrap();
    let model = "examples/models/digits_cnn.onnx.txt";
    let hw = "examples/hw/ws-32x32-int8-global.ron";
    let out = etch(&["compile", model, "--hw", hw, "--emit", "core", "-o", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("control core"), "{}", text(&out));
    let sim = etch(&["sim", model, "--hw", hw, "--json"]);
    let sim: serde_json::Value = serde_json::from_slice(&sim.stdout).unwrap();
    let predicted = sim["total_cycles"].as_u64().unwrap();
    for simulator in ["verilator", "iverilog"] {
        let v = etch(&["verify", d, "--simulator", simulator, "--json"]);
        assert!(v.status.success(), "{simulator}: {}", text(&v));
        let r: serde_json::Value = serde_json::from_slice(&v.stdout).unwrap();
        assert_eq!(r["cycle_exact"], true, "{simulator}");
        assert_eq!(r["rtl_cycles"].as_u64(), Some(predicted), "{simulator}");
        assert_eq!(r["sim_cycles"].as_u64(), Some(predicted), "{simulator}");
    }
    // flip the lowest bit of the first GEMM's m: its tile streams one row more or less
    let image = dir.join("core/compute.hex");
    let text_in = std::fs::read_to_string(&image).unwrap();
    let mut lines: Vec<String> = text_in.lines().map(str::to_string).collect();
    let k = lines
        .iter()
        .position(|l| Word::from_hex(l).unwrap().get(OPCODE) == OP_GEMM)
        .unwrap();
    lines[k] = Word::from_hex(&lines[k]).unwrap().flip(GEMM_M.lsb).hex();
    std::fs::write(&image, lines.join("\n") + "\n").unwrap();
    let refused = etch(&["verify", d]);
    assert!(!refused.status.success());
    assert!(text(&refused).contains("compute.hex"), "{}", text(&refused));
    let v = etch(&["verify", d, "--allow-modified"]);
    assert!(!v.status.success(), "{}", text(&v));
    let msg = text(&v);
    assert!(
        msg.contains("differs from etch sim") && msg.contains("compute unit"),
        "{msg}"
    );
}

#[test]
fn compile_core_with_data_checks_the_programs_values() {
    let calib = "examples/data/digits_train.csv";
    let passes = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    let dir = tmp("cli-core-values");
    let d = dir.to_str().unwrap();
    let out = etch(&[
        "compile",
        "examples/models/digits_cnn.onnx.txt",
        "--hw",
        "examples/hw/ws-4x2-int8.ron",
        "--passes",
        &passes,
        "--emit",
        "core",
        "--data",
        "examples/data/digits_test.csv",
        "--samples",
        "6",
        "-o",
        d,
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("bit for bit on 6 samples") && text(&out).contains("60 output codes"),
        "{}",
        text(&out)
    );
    // the core carries its RTL datapath: verify holds its values and its cycles
    assert!(
        text(&out).contains("RTL datapath: emitted"),
        "{}",
        text(&out)
    );
    let out = etch(&["verify", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("RTL datapath bit-exact: its 60 output codes of 6 samples"),
        "{}",
        text(&out)
    );
    let out = etch(&["verify", d, "--json"]);
    assert!(out.status.success(), "{}", text(&out));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["bit_exact"], true, "{report}");
    assert_eq!(report["cycle_exact"], true, "{report}");
    assert_eq!(
        (report["samples"].clone(), report["outputs"].clone()),
        (6.into(), 60.into())
    );
    // one flipped bit in the DRAM image (bit 30 of the bias of the last weight tile's first
    // output channel, where the last weight load with parameters reads): verify names the
    // first wrong output
    use etch_program::encode::{self, Word};
    let loads = std::fs::read_to_string(dir.join("core").join("load.hex")).unwrap();
    let params_at = loads
        .lines()
        .filter_map(Word::from_hex)
        .rfind(|w| {
            w.get(encode::OPCODE) == encode::OP_LOAD
                && w.get(encode::DMA_BUFFER) == etch_program::isa::Buffer::Weight as u64
                && w.get(encode::TILE_C0) == 0
                && w.get(encode::DMA_ROWS) > 0
        })
        .map(|w| w.get(encode::DMA_ADDR) as usize)
        .unwrap();
    let image = dir.join("core").join("dram.hex");
    let mut bytes: Vec<String> = std::fs::read_to_string(&image)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let at = params_at + 3;
    bytes[at] = format!("{:02x}", u8::from_str_radix(&bytes[at], 16).unwrap() ^ 0x40);
    std::fs::write(&image, bytes.join("\n") + "\n").unwrap();
    let out = etch(&["verify", d, "--allow-modified"]);
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the RTL computes") && text(&out).contains("output "),
        "{}",
        text(&out)
    );
    // a float model still gets its core; its values are not checked, and the line says why
    let dir = tmp("cli-core-values-float");
    let out = etch(&[
        "compile",
        "examples/models/digits_mlp.onnx.txt",
        "--target",
        "zcu104",
        "--emit",
        "core",
        "--data",
        "examples/data/digits_test.csv",
        "-o",
        dir.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("program values not checked") && text(&out).contains("quantize it"),
        "{}",
        text(&out)
    );
}

/// The trained low-bit models shipped in examples/models/ (QONNX and QCDQ from Brevitas, imported
/// by the pipeline; the binary MLP's sign activations as thresholds on its layers' codes) compile
/// onto the accelerator with their values, and `etch verify` holds the
/// RTL datapath's output codes to the CPU executor's and the control core's cycles to etch sim's.
#[test]
fn trained_low_bit_models_verify_on_the_core() {
    for model in [
        "qat_w1a1_mlp",
        "qat_w2a2_cnn",
        "qat_w4a4_resdw",
        "qat_int8_qcdq_cnn",
        "qat_int4_qcdq_cnn",
    ] {
        let dir = tmp(&format!("cli-core-{model}"));
        let d = dir.to_str().unwrap();
        let path = format!("examples/models/{model}.onnx");
        let out = etch(&[
            "compile",
            &path,
            "--target",
            "pynq-z2",
            "--emit",
            "core",
            "--data",
            "examples/data/digits_test.csv",
            "--samples",
            "2",
            "-o",
            d,
        ]);
        assert!(out.status.success(), "{model}: {}", text(&out));
        assert!(
            text(&out).contains("RTL datapath: emitted with 2 samples"),
            "{model}: {}",
            text(&out)
        );
        let out = etch(&["verify", d, "--json"]);
        assert!(out.status.success(), "{model}: {}", text(&out));
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["bit_exact"], true, "{model}: {report}");
        assert_eq!(report["cycle_exact"], true, "{model}: {report}");
        assert_eq!(report["outputs"], 20, "{model}: {report}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
