//! The accelerator program computes the model: run instruction by instruction on its DRAM image
//! (`etch_codegen::datapath`), its output codes equal the CPU executor's golden codes bit for
//! bit, on the digits models and on random convolution chains with residual blocks, on descriptions of every dataflow
//! and buffer sizes small enough to split every layer into many tiles and reduction tiles.

mod common;

use common::random::Rng;
use etch_codegen::datapath::{build, execute, DatapathError};
use etch_codegen::program::{golden, lower};
use etch_hw::Accelerator;
use etch_program::isa::Kind;
use etch_program::tiling::Objective;
use etch_sim::pipeline::{Pipeline, Prepared, Source};

fn hw(name: &str) -> Accelerator {
    Accelerator::from_file(&format!("{}/examples/hw/{name}.ron", common::root())).unwrap()
}

/// Compiles `p` for `acc`, runs its first `rows` samples of `csv` on the datapath and holds
/// every output code against the executor's. Returns the program's instruction count.
fn check(what: &str, p: &Prepared, acc: &Accelerator, csv: &str, rows: usize) -> usize {
    let chain = lower(&p.model, &p.info).unwrap_or_else(|e| panic!("{what}: {e}"));
    let program = p
        .lower(acc, 1, Objective::Latency)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let image = build(&program, &chain, &p.info).unwrap_or_else(|e| panic!("{what}: {e}"));
    let samples = golden(&p.model, &p.info, &chain, csv, rows).unwrap();
    for (k, s) in samples.iter().enumerate() {
        let got = execute(&program, &image, &s.input).unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(got, s.output, "{what}: sample {k}");
    }
    program.insns.len()
}

/// The trained digits models: an MLP, a CNN, a depthwise-separable CNN and a residual one, both
/// with BatchNorm (`scripts/train_digits.py`).
const DIGITS: [&str; 4] = ["digits_mlp", "digits_cnn", "digits_ds", "digits_res"];

/// The compressions of a digits model: the done-when three, int4 and per-tensor int8; BatchNorm
/// folded first.
fn digits_specs(model: &str, calib: &str) -> Vec<(&'static str, String)> {
    let mut specs = common::specs(model);
    specs.push((
        "int4",
        format!("quant(bits=4,per=channel,calib=\"{calib}\")"),
    ));
    specs.push((
        "int8 per-tensor",
        format!("quant(bits=8,per=tensor,calib=\"{calib}\")"),
    ));
    specs
        .into_iter()
        .map(|(form, spec)| (form, format!("fold-bn,{spec}")))
        .collect()
}

/// A directory name for a case: its first words and a hash of the whole label.
fn dir_name(what: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    what.hash(&mut h);
    let head: String = what.chars().take(48).collect();
    format!("{}_{:016x}", head.replace([' ', '/'], "_"), h.finish())
}

/// Emits the program's core with its RTL datapath for the first `samples` samples of `csv`, runs
/// it under `sim` and holds its cycles against the simulator and its output codes against the CPU
/// executor's. Returns the program's cycles.
fn check_rtl(
    what: &str,
    p: &Prepared,
    acc: &Accelerator,
    (csv, samples): (&str, usize),
    sim: etch_codegen::run::Simulator,
) -> u64 {
    use etch_codegen::verilog::{core, datapath};
    let chain = lower(&p.model, &p.info).unwrap_or_else(|e| panic!("{what}: {e}"));
    let program = p
        .lower(acc, 1, Objective::Latency)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    let image = build(&program, &chain, &p.info).unwrap_or_else(|e| panic!("{what}: {e}"));
    let samples = golden(&p.model, &p.info, &chain, csv, samples).unwrap();
    let values = core::Values::new(
        &program,
        image,
        &samples,
        &etch_program::tiling::SlotBytes::of(acc),
        acc.pe.acc_bits(),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let timing = etch_program::machine::run(&program.machine, &program.insns).unwrap();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join("datapath_rtl")
        .join(dir_name(what));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    core::emit(
        &dir,
        what,
        &program.machine,
        &program.insns,
        &timing,
        Some(&values),
    )
    .unwrap_or_else(|e| panic!("{what}: {e}"));
    let warnings = etch_codegen::run::lint_file(&dir, core::CORE, "etch_core").unwrap();
    assert!(warnings.is_empty(), "{what}: {warnings}");
    let r = etch_codegen::run::simulate_core(&dir, sim).unwrap();
    assert_eq!(r.error, None, "{what}: {}", r.log);
    if let Err(e) = core::compare(&core::expected(&program.insns, &timing), &r.events) {
        panic!("{what}: {e}");
    }
    assert_eq!(r.cycles, Some(timing.total), "{what}");
    let got: Vec<i64> = std::fs::read_to_string(dir.join(datapath::VALUES))
        .unwrap_or_else(|e| panic!("{what}: no values: {e}"))
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    let want: Vec<i64> = samples.iter().flat_map(|s| s.output.clone()).collect();
    assert_eq!(
        got,
        want,
        "{what}: the RTL's output codes of {} samples",
        samples.len()
    );
    timing.total
}

/// The digits models in RTL: int8 on every description (the CNN) or on three (the others; two
/// for the residual net), the other compressions (int4, power-of-two, binarized, per-tensor) on
/// one that splits every layer into tiles (only int4 of the residual net, whose other forms the
/// functional datapath checks); the first description under both simulators.
#[test]
fn the_rtl_datapath_computes_the_digits_models() {
    use etch_codegen::run::Simulator;
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    for model in DIGITS {
        for (form, spec) in digits_specs(model, &calib) {
            let p = common::prepared(model, &spec);
            for (k, (name, acc)) in descriptions().into_iter().enumerate() {
                // int8 of the CNN on every description, of the others on the first, the split
                // and the output-stationary one; the other compressions on the split one
                let keep = match (form, model) {
                    ("int8", "digits_cnn") => true,
                    ("int8", "digits_res") => matches!(k, 5 | 6),
                    ("int8", _) => matches!(k, 0 | 5 | 6),
                    ("int4", "digits_res") => k == 5,
                    (_, "digits_res") => false,
                    _ => k == 5,
                };
                if !keep {
                    continue;
                }
                let sims = if k == 0 && form == "int8" {
                    vec![Simulator::Verilator, Simulator::Icarus]
                } else {
                    vec![simulator_for(&p, &acc)]
                };
                for sim in sims {
                    let what = format!("{model} {form} on {name} ({sim:?})");
                    let cycles = check_rtl(&what, &p, &acc, (&common::test_csv(), 3), sim);
                    eprintln!("{what}: {cycles} cycles, bit-exact in RTL");
                }
            }
        }
    }
}

/// Icarus where the array's work is small (it compiles at once), else Verilator (which compiles
/// longer but runs faster).
fn simulator_for(p: &Prepared, acc: &Accelerator) -> etch_codegen::run::Simulator {
    let program = p.lower(acc, 1, Objective::Latency).unwrap();
    let cycles = etch_program::machine::run(&program.machine, &program.insns)
        .unwrap()
        .total;
    if cycles * acc.pes() < 3_000_000 {
        etch_codegen::run::Simulator::Icarus
    } else {
        etch_codegen::run::Simulator::Verilator
    }
}

/// A description with buffers of `kib` KiB each (single- or double-buffered).
fn small(name: &str, kib: u32, double: bool) -> Accelerator {
    let mut acc = hw(name);
    acc.buffers.ifmap_kib = kib;
    acc.buffers.filter_kib = kib;
    acc.buffers.ofmap_kib = kib;
    acc.buffers.double_buffered = double;
    acc
}

fn output_stationary(acc: &mut Accelerator) {
    let etch_hw::Array::Systolic { dataflow, .. } = &mut acc.array;
    *dataflow = etch_hw::Dataflow::OutputStationary;
}

/// Integer descriptions of both dataflows, with and without a global buffer, and with buffers
/// that split the layers.
fn descriptions() -> Vec<(String, Accelerator)> {
    let mut v: Vec<(String, Accelerator)> = [
        "ws-4x2-int8",
        "ws-16x16-int8",
        "ws-32x32-int8-global",
        "tpu-like-128x128-ws-int8",
    ]
    .iter()
    .map(|n| (n.to_string(), hw(n)))
    .collect();
    for (name, kib, double) in [("ws-4x2-int8", 1, true), ("ws-16x16-int8", 1, false)] {
        v.push((
            format!("{name} with {kib} KiB buffers"),
            small(name, kib, double),
        ));
    }
    let mut os = hw("ws-16x16-int8");
    output_stationary(&mut os);
    v.push(("ws-16x16-int8 as output-stationary".into(), os));
    v
}

#[test]
fn the_digits_models_compute_their_golden_codes_on_every_description() {
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    for model in DIGITS {
        for (form, spec) in digits_specs(model, &calib) {
            let p = common::prepared(model, &spec);
            for (name, acc) in descriptions() {
                let what = format!("{model} {form} on {name}");
                let n = check(&what, &p, &acc, &common::test_csv(), 12);
                eprintln!("{what}: {n} instructions, 12 samples bit-exact");
            }
        }
    }
}

/// Conv → act → [fire: 1×1 ‖ 3×3 → Concat] → [residual] → [MaxPool] → Conv → act → [residual] →
/// [MaxPool] → Flatten → Gemm (act: ReLU, or Sigmoid, HardSwish, HardSigmoid, Tanh or LeakyReLU
/// as tables) with
/// random channels,
/// extents, kernels, strides, padding and dilation (poolings that tile their input, and
/// overlapping, padded ones);
/// the second convolution plain, grouped or depthwise.
fn conv_chain(rng: &mut Rng) -> (String, String, usize) {
    let (c, h, w) = (rng.range(1, 12), rng.range(4, 14), rng.range(4, 14));
    let mut t = String::new();
    let mut body = String::new();
    let mut inits = Vec::new();
    let mut what = format!("{c}x{h}x{w}");
    let (mut ch, mut hh, mut ww) = (c, h, w);
    let mut prev = "x".to_string();
    for l in 1..=2 {
        // the second convolution: plain, grouped or depthwise
        let (mut m, mut group) = (rng.range(1, 20), 1);
        if l == 2 {
            match rng.range(0, 2) {
                0 => {}
                1 => {
                    let g = (2..=ch).find(|g| ch % g == 0).unwrap_or(1);
                    group = g;
                    m = g * rng.range(1, 3);
                }
                _ => (m, group) = (ch, ch),
            }
        }
        let (kh, kw) = (rng.range(1, 3.min(hh)), rng.range(1, 3.min(ww)));
        let (sh, sw) = (rng.range(1, 2), rng.range(1, 2));
        let d = |n: usize, k: usize, r: &mut Rng| {
            if k > 1 && 2 * (k - 1) < n && r.range(0, 3) == 0 {
                2
            } else {
                1
            }
        };
        let (dh, dw) = (d(hh, kh, rng), d(ww, kw, rng));
        let (ph, pw) = (rng.range(0, kh - 1), rng.range(0, kw - 1));
        let out = |n: usize, k: usize, s: usize, p: usize, d: usize| {
            (n + 2 * p - d * (k - 1) - 1) / s + 1
        };
        let (ho, wo) = (out(hh, kh, sh, ph, dh), out(ww, kw, sw, pw, dw));
        let cg = ch / group;
        inits.push(format!(
            "float[{m},{cg},{kh},{kw}] w{l} = {{{}}}, float[{m}] b{l} = {{{}}}",
            rng.floats(m * cg * kh * kw, 0.6),
            rng.floats(m, 0.2)
        ));
        // the activation: a ReLU the layer's clamp absorbs, or one that runs as a table
        let act = [
            "Relu",
            "Relu",
            "Sigmoid",
            "HardSwish",
            "HardSigmoid <alpha: float = 0.25, beta: float = 0.5>",
            "Tanh",
            "LeakyRelu <alpha: float = 0.1>",
        ][rng.range(0, 6)];
        body.push_str(&format!("   c{l} = Conv <dilations: ints = [{dh}, {dw}], group: int = {group}, kernel_shape: ints = [{kh}, {kw}], pads: ints = [{ph}, {pw}, {ph}, {pw}], strides: ints = [{sh}, {sw}]> ({prev}, w{l}, b{l})\n   r{l} = {act} (c{l})\n"));
        what += &format!(" -> conv {m} g{group} k{kh}x{kw} s{sh}x{sw} p{ph}x{pw} d{dh}x{dw}");
        if act != "Relu" {
            what += &format!(" -> {} table", act.split(' ').next().unwrap_or(act));
        }
        prev = format!("r{l}");
        (ch, hh, ww) = (m, ho, wo);
        // a fire module (SqueezeNet's): a 1×1 and a 3×3 convolution of the same input,
        // concatenated along the channels
        if l == 1 && rng.range(0, 2) == 0 {
            let (m1, m3) = (rng.range(1, 8), rng.range(1, 8));
            inits.push(format!(
                "float[{m1},{m},1,1] ew1 = {{{}}}, float[{m1}] eb1 = {{{}}}, float[{m3},{m},3,3] ew3 = {{{}}}, float[{m3}] eb3 = {{{}}}",
                rng.floats(m1 * m, 0.5),
                rng.floats(m1, 0.2),
                rng.floats(m3 * m * 9, 0.3),
                rng.floats(m3, 0.2)
            ));
            body.push_str(&format!("   e1 = Conv <kernel_shape: ints = [1, 1]> ({prev}, ew1, eb1)\n   e1r = Relu (e1)\n   e3 = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> ({prev}, ew3, eb3)\n   e3r = Relu (e3)\n   cat = Concat <axis: int = 1> (e1r, e3r)\n"));
            what += &format!(" -> fire {m1}+{m3}");
            prev = "cat".into();
            ch = m1 + m3;
        }
        // a residual block: a 3×3 convolution that keeps the shape, added to its input
        if rng.range(0, 2) == 0 {
            inits.push(format!(
                "float[{ch},{ch},3,3] rw{l} = {{{}}}, float[{ch}] rb{l} = {{{}}}",
                rng.floats(ch * ch * 9, 0.3),
                rng.floats(ch, 0.2)
            ));
            body.push_str(&format!("   rc{l} = Conv <kernel_shape: ints = [3, 3], pads: ints = [1, 1, 1, 1]> ({prev}, rw{l}, rb{l})\n   s{l} = Add (rc{l}, {prev})\n   sr{l} = Relu (s{l})\n"));
            what += " -> residual 3x3 + add";
            prev = format!("sr{l}");
        }
        // a max pooling: windows that tile the input, or overlapping, strided, padded ones (as
        // ResNet's and AlexNet's)
        let (pk, ps, pp) = [(2, 2, 0), (3, 2, 1), (3, 2, 0), (2, 1, 0), (3, 1, 1)][rng.range(0, 4)];
        let pooled = |n: usize| (n + 2 * pp).checked_sub(pk).map(|v| v / ps + 1);
        let exact = pk == ps && pp == 0 && ho % pk == 0 && wo % pk == 0;
        if let (Some(ph), Some(pw), 1) = (pooled(ho), pooled(wo), rng.range(0, 1)) {
            if pk != ps || pp != 0 || exact {
                body.push_str(&format!(
                    "   p{l} = MaxPool <kernel_shape: ints = [{pk}, {pk}], pads: ints = [{pp}, {pp}, {pp}, {pp}], strides: ints = [{ps}, {ps}]> ({prev})\n"
                ));
                what += &format!(" -> maxpool {pk}x{pk} s{ps} p{pp}");
                prev = format!("p{l}");
                (hh, ww) = (ph, pw);
            }
        }
    }
    let (k, n) = (ch * hh * ww, rng.range(2, 10));
    inits.push(format!(
        "float[{n},{k}] w3 = {{{}}}, float[{n}] b3 = {{{}}}",
        rng.floats(n * k, 0.4),
        rng.floats(n, 0.2)
    ));
    body.push_str(&format!("   f = Flatten <axis: int = 1> ({prev})\n   y = Gemm <alpha: float = 1, beta: float = 1, transB: int = 1> (f, w3, b3)\n"));
    what += &format!(" -> gemm {k} -> {n}");
    t.push_str("<\n   ir_version: 8,\n   opset_import: [\"\" : 17]\n>\n");
    t.push_str(&format!("g (float[1,{c},{h},{w}] x) => (float[1,{n}] y)\n"));
    t.push_str(&format!("   <{}>\n{{\n{body}}}\n", inits.join(", ")));
    (t, what, c * h * w)
}

/// Random chains on random buffer sizes, dataflows, DRAM rates and array shapes, in the
/// functional datapath (six samples) and in RTL (three).
#[test]
fn random_convolution_chains_compute_their_golden_codes_on_random_hardware() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("datapath");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x5eed_da7a_9a7b);
    let names = ["ws-4x2-int8", "ws-16x16-int8", "ws-32x32-int8-global"];
    for case in 0..30 {
        let (text, what, inputs) = conv_chain(&mut rng);
        let csv = dir.join(format!("case{case}.csv"));
        let rows: String = (0..6)
            .map(|_| {
                let v: Vec<String> = (0..inputs).map(|_| format!("{:.4}", rng.float())).collect();
                format!("0,{}\n", v.join(","))
            })
            .collect();
        std::fs::write(&csv, rows).unwrap();
        let calib = csv.display().to_string();
        let quant =
            |bits: u32, per: &str| format!("quant(bits={bits},per={per},calib=\"{calib}\")");
        let per = ["channel", "tensor"][rng.range(0, 1)];
        let (form, spec) = match rng.range(0, 3) {
            0 => ("int8", quant(8, per)),
            1 => ("int4", quant(4, per)),
            2 => ("pow2", format!("pow2(bits=4),{}", quant(8, per))),
            _ => (
                "binary middle conv",
                format!(
                    "binarize(acts=true,keep=[first,last],calib=\"{calib}\"),{}",
                    quant(8, per)
                ),
            ),
        };
        let what = format!("{what} ({form}, per-{per})");
        let p = Pipeline {
            passes: Some(&spec),
            ..Default::default()
        }
        .run(
            &Source::new("chain.onnx.txt", text.as_str()),
            &mut Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{what}: {e}"));
        let (name, kib) = (names[rng.range(0, names.len() - 1)], rng.range(1, 4) as u32);
        let mut acc = small(name, kib, rng.range(0, 1) == 1);
        if rng.range(0, 1) == 1 {
            output_stationary(&mut acc);
        }
        // byte-wide, 4-, 16- and 64-byte buses, from the AXI4 master's shortest latency up
        acc.dram.bytes_per_cycle = [0.5, 3.0, 16.0, 40.0][rng.range(0, 3)];
        acc.dram.latency_cycles = [3, 7, 40][rng.range(0, 2)];
        // every other case an odd array shape
        if case % 2 == 1 {
            let etch_hw::Array::Systolic { rows, cols, .. } = &mut acc.array;
            (*rows, *cols) = (rng.range(1, 12) as u32, rng.range(1, 12) as u32);
        }
        let label = format!(
            "case {case}: {what} on {name} as {}x{}, {kib} KiB buffers, {:?}, {} B/cycle, latency {}",
            acc.rows(),
            acc.cols(),
            acc.dataflow(),
            acc.dram.bytes_per_cycle,
            acc.dram.latency_cycles
        );
        let n = check(&label, &p, &acc, &csv.display().to_string(), 6);
        // the RTL datapath on the first sample (the digits models run three in a row)
        let sim = simulator_for(&p, &acc);
        let cycles = check_rtl(&label, &p, &acc, (&csv.display().to_string(), 1), sim);
        eprintln!(
            "{label}: {n} instructions, bit-exact; RTL ({sim:?}): {cycles} cycles, bit-exact"
        );
    }
}

#[test]
fn a_wrong_weight_byte_or_a_misplaced_tile_is_caught() {
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    let spec = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    let p = common::prepared("digits_mlp", &spec);
    let chain = lower(&p.model, &p.info).unwrap();
    let program = p
        .lower(&small("ws-16x16-int8", 1, true), 1, Objective::Latency)
        .unwrap();
    let image = build(&program, &chain, &p.info).unwrap();
    let samples = golden(&p.model, &p.info, &chain, &common::test_csv(), 8).unwrap();
    // the sign bit of the first layer's weight on a central pixel (row 3, column 4) of the first
    // output channel: some sample's output changes
    let load = program
        .insns
        .iter()
        .find_map(|i| match i.kind {
            Kind::Load(d) if d.buffer == etch_program::isa::Buffer::Weight => Some(d),
            _ => None,
        })
        .unwrap();
    let co = program
        .insns
        .iter()
        .find_map(|i| match i.kind {
            Kind::Gemm(g) => Some(g.n),
            _ => None,
        })
        .unwrap();
    let params = co * etch_program::tiling::PARAM_BYTES;
    assert!(
        load.row_bytes > params + 28,
        "the first tile holds pixel 28"
    );
    let mut bad = image.clone();
    bad.dram[(load.addr + params + 28) as usize] ^= 0x80;
    let differs = samples
        .iter()
        .any(|s| execute(&program, &bad, &s.input).unwrap() != s.output);
    assert!(differs, "a flipped weight bit changed no output");
    // a GEMM told it computes another row tile than its slot holds is an error naming it
    let mut moved = program.clone();
    let (i, g) = moved
        .insns
        .iter_mut()
        .enumerate()
        .find_map(|(i, x)| match &mut x.kind {
            Kind::Gemm(g) => Some((i, g)),
            _ => None,
        })
        .unwrap();
    g.tile.co0 += 1;
    let e = execute(&moved, &image, &samples[0].input).unwrap_err();
    assert!(
        matches!(&e, DatapathError::Insn { insn, .. } if *insn == i),
        "{e}"
    );
    eprintln!("{e}");
}

/// ResNet-18, MobileNet-v2 and SqueezeNet 1.1 from `examples/models/` at a 32×32 input with
/// seeded weights, quantized (residual Adds on codes, concatenations laid out in place, the
/// global average pooling as a depthwise layer) on random
/// calibration rows: bit-exact in the functional datapath on a description that splits their
/// layers into tiles, and bit-exact in exactly the simulator's cycles in RTL (Verilator).
#[test]
fn resnet18_mobilenet_v2_and_squeezenet_at_32x32_compute_their_golden_codes_in_rtl() {
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("zoo32");
    std::fs::create_dir_all(&dir).unwrap();
    let mut rng = Rng(0x2e5e_7a32);
    let csv = dir.join("rows.csv");
    let rows: String = (0..4)
        .map(|_| {
            let v: Vec<String> = (0..3 * 32 * 32)
                .map(|_| format!("{:.3}", 2.0 * rng.float() - 1.0))
                .collect();
            format!("0,{}\n", v.join(","))
        })
        .collect();
    std::fs::write(&csv, rows).unwrap();
    let csv = csv.display().to_string();
    let spec = format!("quant(bits=8,per=channel,calib=\"{csv}\")");
    for name in ["resnet18", "mobilenet_v2", "squeezenet1_1"] {
        let path = format!("{}/examples/models/{name}.onnx.txt", common::root());
        let full = std::fs::read_to_string(&path).unwrap();
        let text = full.replace("float[1,3,224,224] input", "float[1,3,32,32] input");
        assert_ne!(text, full, "{name}: the input is 3x224x224");
        let p = Pipeline {
            passes: Some(&spec),
            seed: 7,
            ..Default::default()
        }
        .run(&Source::new(&path, text.as_str()), &mut Vec::new())
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let what = format!("{name} at 32x32 on ws-16x16-int8 with 8 KiB buffers");
        let n = check(&what, &p, &small("ws-16x16-int8", 8, true), &csv, 2);
        eprintln!("{what}: {n} instructions, 2 samples bit-exact");
        let what = format!("{name} at 32x32 on ws-16x16-int8");
        let acc = hw("ws-16x16-int8");
        // one sample (the digits models run three in a row)
        let cycles = check_rtl(
            &what,
            &p,
            &acc,
            (&csv, 1),
            etch_codegen::run::Simulator::Verilator,
        );
        eprintln!("{what}: {cycles} cycles, bit-exact in RTL");
    }
}

/// A QOperator network (onnxruntime's `QuantFormat.QOperator`: QLinearConv, a max pool on the
/// codes, a depthwise QLinearConv, QLinearAdd, QLinearMatMul, QGemm) with power-of-two scales and
/// random int8 weights: `import-quant` rewrites its five layers into etch's, which then compute
/// their golden codes in the functional datapath and, in exactly the simulator's cycles, in RTL.
/// (`scripts/qonnx_check.py` holds such a network against onnxruntime.)
#[test]
fn a_qoperator_network_with_power_of_two_scales_runs_on_the_accelerator() {
    let mut rng = Rng(0x9_0be7_a70e);
    let mut codes = |n: usize, lo: i64, hi: i64| -> String {
        (0..n)
            .map(|_| (lo + rng.range(0, (hi - lo) as usize) as i64).to_string())
            .collect::<Vec<_>>()
            .join(",")
    };
    let c = 8;
    let pow2 = |n: usize, e: i32| vec![format!("{}", 2f32.powi(e)); n].join(",");
    let text = format!(
        r#"<
   ir_version: 8,
   opset_import: ["" : 17, "com.microsoft" : 1]
>
g (float[1,1,8,8] x) => (float[1,10] y)
   <float xs = {{0.125}}, float hs = {{0.25}}, float ms = {{0.5}}, float ys = {{0.5}}, uint8 z = {{0}}, uint8 yz = {{64}},
    int8[{c},1,3,3] w1 = {{{w1}}}, float[{c}] w1s = {{{s1}}}, int8[{c}] w1z = {{{z8}}}, int32[{c}] b1 = {{{b1}}},
    int8[{c},1,3,3] w2 = {{{w2}}}, float[{c}] w2s = {{{s2}}}, int8[{c}] w2z = {{{z8}}},
    int8[128,16] w3 = {{{w3}}}, float[16] w3s = {{{s3}}}, int8[16] w3z = {{{z16}}},
    int8[10,16] w4 = {{{w4}}}, float w4s = {{0.015625}}, int8 w4z = {{0}}, int32[10] b4 = {{{b4}}}>
{{
   xq = QuantizeLinear (x, xs, z)
   h = QLinearConv <pads: ints = [1, 1, 1, 1]> (xq, xs, z, w1, w1s, w1z, hs, z, b1)
   p = MaxPool <kernel_shape: ints = [2, 2], strides: ints = [2, 2]> (h)
   d = QLinearConv <group: int = {c}, pads: ints = [1, 1, 1, 1]> (p, hs, z, w2, w2s, w2z, hs, z)
   r = com.microsoft.QLinearAdd (p, hs, z, d, hs, z, hs, z)
   f = Flatten (r)
   m = QLinearMatMul (f, hs, z, w3, w3s, w3z, ms, z)
   yq = com.microsoft.QGemm <transB: int = 1> (m, ms, z, w4, w4s, w4z, b4, ys, yz)
   y = DequantizeLinear (yq, ys, yz)
}}
"#,
        w1 = codes(c * 9, -127, 127),
        b1 = codes(c, -64, 64),
        w2 = codes(c * 9, -127, 127),
        w3 = codes(128 * 16, -127, 127),
        w4 = codes(160, -127, 127),
        b4 = codes(10, -99, 99),
        s1 = pow2(c, -6),
        s2 = pow2(c, -5),
        s3 = pow2(16, -7),
        z8 = vec!["0"; c].join(","),
        z16 = vec!["0"; 16].join(","),
    );
    let mut notes = Vec::new();
    let p = Pipeline::default()
        .run(&Source::new("qop.onnx.txt", text.as_str()), &mut notes)
        .unwrap_or_else(|e| panic!("{e}"));
    let said = format!("{notes:?}");
    assert!(said.contains("5 QOperator layers to QDQ"), "{said}");
    let layers = etch_ir::quant::analyze(&p.model, &p.info);
    assert_eq!(
        layers.layers.iter().filter(|l| l.is_integer()).count(),
        4,
        "the four layers with weights run in integers"
    );
    assert_eq!(layers.adds.len(), 1, "the Add runs on the codes");
    let what = "QOperator network on ws-16x16-int8 with 1 KiB buffers";
    let n = check(
        what,
        &p,
        &small("ws-16x16-int8", 1, true),
        &common::test_csv(),
        12,
    );
    eprintln!("{what}: {n} instructions, 12 samples bit-exact");
    let acc = hw("ws-4x2-int8");
    let cycles = check_rtl(
        "QOperator network on ws-4x2-int8",
        &p,
        &acc,
        (&common::test_csv(), 3),
        simulator_for(&p, &acc),
    );
    eprintln!("QOperator network on ws-4x2-int8: {cycles} cycles, bit-exact in RTL");
}

/// A DRAM the AXI4 master cannot meet is refused with the reason and what to change: a latency
/// no longer than the master's own registers, a bandwidth needing beats wider than AXI4's.
#[test]
fn a_dram_the_axi4_master_cannot_meet_is_refused() {
    use etch_codegen::verilog::datapath;
    let calib = format!("{}/examples/data/digits_train.csv", common::root());
    let spec = format!("quant(bits=8,per=channel,calib=\"{calib}\")");
    let p = common::prepared("digits_mlp", &spec);
    let chain = lower(&p.model, &p.info).unwrap();
    for (latency, rate, want) in [
        (2, 16.0, "latency of 2 cycles"),
        (100, 200.0, "beats of 256 bytes"),
        (1 << 20, 16.0, "latency of 1048576 cycles is longer"),
        (2, 16.0, "at least 3"),
    ] {
        let mut acc = hw("ws-16x16-int8");
        acc.dram.latency_cycles = latency;
        acc.dram.bytes_per_cycle = rate;
        let program = p.lower(&acc, 1, Objective::Latency).unwrap();
        let image = build(&program, &chain, &p.info).unwrap();
        let err = datapath::plan(
            &program,
            &image,
            &etch_program::tiling::SlotBytes::of(&acc),
            acc.pe.acc_bits(),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(want), "{err}");
    }
}
