//! `etch compile`: a quantized model on an accelerator, written as a design folder: HLS C++
//! (`--emit hls`) and/or Verilog (`--emit verilog`), each with a testbench holding golden codes
//! from the CPU executor, and/or the accelerator program's control core (`--emit core`, any
//! model: it proves cycles, not values), plus the manifest `etch verify` and `etch synth` read.

use std::path::Path;

use etch_codegen::design::{
    CorePart, Manifest, VerilogPart, ACCELERATOR, CORE_DIR, HLS_DIR, MANIFEST, VERILOG_DIR,
};
use etch_codegen::{hls, program, verilog};

use etch_sim::pipeline::Pipeline;

use crate::load::{self, CliError};

/// What `--emit` can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Emit {
    Verilog,
    Hls,
    /// The accelerator program's control core (`etch_codegen::verilog::core`).
    Core,
}

/// Everything `etch compile` takes.
pub struct CompileArgs<'a> {
    pub model: &'a str,
    pub hw: Option<&'a str>,
    pub target: Option<&'a str>,
    pub emit: &'a [Emit],
    pub output: &'a str,
    pub data: Option<&'a str>,
    pub samples: usize,
    pub passes: Option<&'a str>,
    pub verify_each: bool,
    pub seed: u64,
}

/// The accelerator description's RON text as given (a file, or the target's default).
fn accelerator_ron(hw: Option<&str>, target: Option<&str>) -> Result<String, CliError> {
    match (hw, target) {
        (Some(path), _) => load::read_text(path),
        (None, Some(t)) => etch_targets::built_in(t)
            .map(|b| b.accelerator_ron.to_string())
            .map_err(|e| format!("error: {e}")),
        (None, None) => unreachable!("sim::accelerator has refused this"),
    }
}

/// Runs `etch compile`.
pub fn run(a: CompileArgs) -> Result<(), CliError> {
    if a.emit.is_empty() {
        return Err(
            "error: say what to emit: --emit hls, --emit verilog, --emit core, or several (--emit verilog,hls)".into(),
        );
    }
    if a.output.trim().is_empty() {
        return Err(
            "error: -o names no folder; say where to write the design, e.g. -o design/".into(),
        );
    }
    let acc = crate::sim::accelerator(a.hw, a.target)?;
    let ron = accelerator_ron(a.hw, a.target)?;
    let loaded = load::prepare(
        a.model,
        Pipeline {
            seed: a.seed,
            passes: a.passes,
            verify_each: a.verify_each,
            ..Default::default()
        },
    )?;
    let (model, info) = (&loaded.model, &loaded.info);
    let values = a.emit.iter().any(|e| *e != Emit::Core);
    // the integer program and its golden codes, for the designs that compute values
    let checked = if values {
        let Some(data) = a.data else {
            return Err(format!("error: the testbenches check the design on real inputs: give them with --data CSV (label, then the model's input values, one sample per row; e.g. examples/data/digits_test.csv); --samples N rows are used (now {})", a.samples));
        };
        let prog = program::lower(model, info)
            .and_then(|p| p.check_layer_chain().map(|()| p))
            .map_err(|e| format!("error: {}: {e}", a.model))?;
        let golden = program::golden(model, info, &prog, data, a.samples)
            .map_err(|e| format!("error: {data}: {e}"))?;
        if golden.is_empty() {
            return Err(format!("error: {data} holds no samples"));
        }
        Some((prog, golden, data))
    } else {
        None
    };
    let dir = Path::new(a.output);
    let model_name = Path::new(a.model)
        .file_name()
        .map_or(a.model.to_string(), |f| f.to_string_lossy().into_owned());
    let mut wrote = Vec::new();
    // every file written, relative to DIR: the manifest records their hashes
    let mut written: Vec<String> = Vec::new();
    if let (true, Some((prog, golden, _))) = (a.emit.contains(&Emit::Hls), &checked) {
        let files = hls::emit(
            prog,
            &hls::Options {
                model: model_name.clone(),
                input_range: hls::input_range(info, prog),
            },
            golden,
        )
        .map_err(|e| format!("error: {}: {e}", a.model))?;
        hls::write(&dir.join(HLS_DIR), &files).map_err(|e| format!("error: {e}"))?;
        written.extend(files.iter().map(|f| format!("{HLS_DIR}/{}", f.name)));
        let layers: Vec<String> = prog
            .layers()
            .map(|(s, l)| {
                let kind = match l.weights {
                    program::WeightCodes::Mac(_) => "int MAC",
                    program::WeightCodes::Shift(_) => "shift-add",
                    program::WeightCodes::Xnor { .. } => "XNOR-popcount",
                };
                format!("{} ({kind})", s.name)
            })
            .collect();
        wrote.push(format!(
            "{}/{HLS_DIR}: HLS C++, {} files; layers {}",
            a.output,
            files.len(),
            layers.join(", ")
        ));
    }
    let elem = |v: &str| info.ty(v).map(|t| t.elem);
    let mut verilog_part = None;
    let mut sim_cycles = None;
    if let (true, Some((prog, golden, _))) = (a.emit.contains(&Emit::Verilog), &checked) {
        // the simulator's prediction for the hardware emitted below, which verify checks
        let sim = etch_sim::cycle::simulate_model(
            model,
            info,
            &acc,
            1,
            &etch_sim::cycle::SimOptions {
                rtl: true,
                ..Default::default()
            },
        )
        .map_err(|e| format!("error: {}: {e}", a.model))?;
        let vdir = dir.join(VERILOG_DIR);
        std::fs::create_dir_all(&vdir)
            .map_err(|e| format!("error: cannot create `{}`: {e}", vdir.display()))?;
        let in_signed = elem(&prog.input) == Some(etch_ir::tensor::ElemType::I8);
        // an inference 8 times longer than predicted (and 100k cycles) is a hang
        let max_cycles = (sim.total_cycles * 8).max(100_000);
        let (layout, vfiles) = verilog::emit(
            &vdir,
            &model_name,
            prog,
            golden,
            &acc,
            in_signed,
            max_cycles,
        )
        .map_err(|e| format!("error: {}: {e}", a.model))?;
        written.extend(vfiles.iter().map(|f| format!("{VERILOG_DIR}/{f}")));
        let kinds: Vec<&str> = [
            layout.has_mac.then_some("int MAC"),
            layout.has_shift.then_some("shift-add"),
            layout.has_xnor.then_some("XNOR"),
        ]
        .into_iter()
        .flatten()
        .collect();
        wrote.push(format!(
            "{}/{VERILOG_DIR}: Verilog, {}x{} weight-stationary array with {} PEs, testbench and memory images; etch sim --rtl predicts {} cycles per inference",
            a.output,
            layout.rows,
            layout.cols,
            kinds.join(" + "),
            sim.total_cycles
        ));
        sim_cycles = Some(sim.total_cycles);
        verilog_part = Some(VerilogPart {
            sources: vec![verilog::DESIGN.to_string()],
            top: "etch_accel".into(),
            testbench: vec![verilog::TESTBENCH.to_string()],
        });
    }
    let mut core_part = None;
    let mut values_line = None;
    if a.emit.contains(&Emit::Core) {
        let p = loaded
            .lower(&acc, 1, etch_program::tiling::Objective::Latency)
            .map_err(|e| format!("error: {}: {e}", a.model))?;
        let timing = etch_program::machine::run(&p.machine, &p.insns)
            .map_err(|e| format!("error: {}: {e}", a.model))?;
        let cdir = dir.join(CORE_DIR);
        std::fs::create_dir_all(&cdir)
            .map_err(|e| format!("error: cannot create `{}`: {e}", cdir.display()))?;
        let mut values = None;
        if let Some(data) = a.data {
            let (line, v) = program_values(model, info, &p, &acc, data, a.samples, a.model)?;
            values_line = Some(line);
            values = v;
        }
        let files = verilog::core::emit(
            &cdir,
            &model_name,
            &p.machine,
            &p.insns,
            &timing,
            values.as_ref(),
        )
        .map_err(|e| format!("error: {}: {e}", a.model))?;
        written.extend(files.iter().map(|f| format!("{CORE_DIR}/{f}")));
        wrote.push(format!(
            "{}/{CORE_DIR}: Verilog control core of the accelerator program ({} instructions on a {}x{} {:?} array), its instruction images and testbench; etch sim predicts {} cycles",
            a.output,
            p.insns.len(),
            p.machine.rows,
            p.machine.cols,
            p.machine.dataflow,
            timing.total
        ));
        core_part = Some(CorePart {
            rtl: VerilogPart {
                sources: vec![verilog::core::CORE.to_string()],
                top: "etch_core".into(),
                testbench: vec![verilog::core::CORE_TB.to_string()],
            },
            instructions: p.insns.len(),
            sim_cycles: timing.total,
            values: values.as_ref().map_or(0, |v| v.expected.len()),
            value_samples: values.as_ref().map_or(0, |v| v.samples),
        });
    }
    std::fs::write(dir.join(ACCELERATOR), &ron)
        .map_err(|e| format!("error: cannot write `{}/{ACCELERATOR}`: {e}", a.output))?;
    written.push(ACCELERATOR.to_string());
    let prog = checked.as_ref().map(|(p, _, _)| p);
    let mut manifest = Manifest {
        model: a.model.to_string(),
        passes: a.passes.map(str::to_string),
        target: a.target.map(str::to_string),
        hw: a.hw.map(str::to_string),
        accelerator: acc.name.clone(),
        input: prog.map_or(String::new(), |p| p.input.clone()),
        output: prog.map_or(String::new(), |p| p.output.clone()),
        samples: checked.as_ref().map_or(0, |(_, g, _)| g.len()),
        hls: a.emit.contains(&Emit::Hls),
        verilog: verilog_part,
        core: core_part,
        sim_cycles,
        output_shape: prog.map_or(Vec::new(), |p| p.output_shape.clone()),
        output_signed: prog.is_some_and(|p| elem(&p.output) == Some(etch_ir::tensor::ElemType::I8)),
        files: Default::default(),
    };
    manifest
        .record_files(dir, written.iter().map(String::as_str))
        .map_err(|e| format!("error: {e}"))?;
    manifest.write(dir).map_err(|e| format!("error: {e}"))?;
    for w in &wrote {
        println!("wrote {w}");
    }
    if let Some(line) = &values_line {
        println!("{line}");
    }
    if let Some((prog, golden, data)) = &checked {
        println!(
            "{} golden samples from {data} (the CPU executor's codes of `{}` -> `{}`); {}/{MANIFEST} records the design",
            golden.len(),
            prog.input,
            prog.output,
            a.output
        );
    } else {
        println!("{}/{MANIFEST} records the design", a.output);
    }
    println!("check it with: etch verify {}", a.output);
    Ok(())
}

/// The lines `compile --emit core --data` prints about the program's values: its instructions
/// run on the DRAM image (`etch_codegen::datapath`) against the CPU executor's golden codes of
/// the first `samples` rows, and whether the core's RTL datapath is emitted (with the same
/// samples, for `verify`). A model the functional datapath does not run yet gets a line saying
/// why; a wrong code is an error.
fn program_values<'p>(
    model: &etch_ir::Model,
    info: &etch_ir::infer::GraphInfo,
    p: &'p etch_program::Program,
    acc: &etch_hw::Accelerator,
    data: &str,
    samples: usize,
    path: &str,
) -> Result<(String, Option<verilog::core::Values<'p>>), String> {
    use etch_codegen::datapath;
    let chain = match program::lower(model, info) {
        Ok(c) => c,
        Err(e) => return Ok((format!("program values not checked: {e}"), None)),
    };
    let image = match datapath::build(p, &chain, info) {
        Ok(i) => i,
        Err(e) => return Ok((format!("program values not checked: {e}"), None)),
    };
    let golden = program::golden(model, info, &chain, data, samples.max(1))
        .map_err(|e| format!("error: {data}: {e}"))?;
    let mut codes = 0;
    for (k, s) in golden.iter().enumerate() {
        let got =
            datapath::execute(p, &image, &s.input).map_err(|e| format!("error: {path}: {e}"))?;
        if let Some(i) = (0..got.len()).find(|&i| got[i] != s.output[i]) {
            return Err(format!(
                "error: {path}: the accelerator program computes {} for output {i} of sample {k} of {data}, the CPU executor {}",
                got[i], s.output[i]
            ));
        }
        codes += got.len();
    }
    let line = format!(
        "program values: run on its {}-byte DRAM image, the instructions compute the CPU executor's codes bit for bit on {} samples of {data} ({codes} output codes)",
        image.dram.len(),
        golden.len()
    );
    let slots = etch_program::tiling::SlotBytes::of(acc);
    let (rtl_line, rtl) = if golden.is_empty() {
        (
            format!("RTL datapath not emitted: {data} holds no samples"),
            None,
        )
    } else {
        match verilog::core::Values::new(p, image, &golden, &slots, acc.pe.acc_bits()) {
            Ok(v) => (
                format!(
                    "RTL datapath: emitted with {} samples of {data}; etch verify holds its {codes} output codes against the CPU executor's\nports: DRAM through an AXI4 master (m_axi_*, {}-bit data), control through an AXI4-Lite slave (s_axil_*: write 1 to {:#04x} to start; {:#04x} bit 1 done, {:#04x}/{:#04x} the run's cycles)",
                    golden.len(),
                    8 * v.plan.bus.beat_bytes,
                    verilog::axi::CONTROL_ADDR,
                    verilog::axi::CONTROL_ADDR,
                    verilog::axi::CYCLES_LOW_ADDR,
                    verilog::axi::CYCLES_HIGH_ADDR
                ),
                Some(v),
            ),
            Err(e) => (
                format!(
                    "RTL datapath not emitted (the core times the program without its values): {e}"
                ),
                None,
            ),
        }
    };
    Ok((format!("{line}\n{rtl_line}"), rtl))
}
