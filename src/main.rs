//! `etch`: the command-line front of the toolchain. Thin by design: parse arguments, call the
//! crates, print. Every failure is one clear paragraph on stderr and a non-zero exit.

mod compile;
mod convert;
mod diag;
mod eval;
mod execute;
mod inspect;
mod load;
mod passes;
mod run;
mod sim;
mod sweep;
mod synth;
mod targets;
mod verify;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// etch: compress a neural network, predict its cost on an accelerator, and emit that accelerator.
/// `etch sim --objective`: what the tiling search minimizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum ObjectiveArg {
    /// Cycles.
    Latency,
    /// Energy.
    Energy,
    /// Energy x delay.
    Edp,
    /// DRAM traffic, then cycles.
    Dram,
}

#[derive(Parser)]
#[command(name = "etch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Raise (or lower) every memory and file-size limit to this many bytes: one tensor, one
    /// model's tensors together (filled weights, simulator state), and each file read. Without
    /// it: 1 GiB per tensor, 2 GiB per model, 2 GiB per model file, 256 MiB per other file.
    #[arg(long, global = true, value_name = "BYTES")]
    max_bytes: Option<u64>,
    /// Go on (with a warning, and totals marked partial) when some node's output shape cannot be
    /// inferred, instead of stopping with an error naming it.
    #[arg(long, global = true)]
    allow_partial: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Per-layer table of a model: op, output shape, parameters and MACs, with totals.
    Inspect {
        /// Model in ONNX text (`onnx.printer.to_text`), e.g. examples/models/resnet18.onnx.txt.
        model: String,
        /// Print one JSON document instead of the table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Run compression passes and report what each did (`--list` documents them).
    Passes {
        /// Model in ONNX text.
        #[arg(required_unless_present = "list")]
        model: Option<String>,
        #[command(flatten)]
        passes: PassArgs,
        /// Write the transformed model (ONNX text).
        #[arg(short, long, value_parser = path_arg)]
        output: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Document every pass and its parameters.
        #[arg(long)]
        list: bool,
    },
    /// Write the model back as ONNX text, with shape-only weights filled from a seed.
    Convert {
        /// Model in ONNX text.
        model: String,
        /// Output file (ONNX text).
        #[arg(short, long, value_parser = path_arg)]
        output: String,
        /// Seed for the values of shape-only weights.
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Run one inference on a .npy input and time it.
    Run {
        /// Model in ONNX text.
        model: String,
        /// Input tensor (.npy, float32 or int64, C order).
        #[arg(long)]
        input: String,
        /// Where to write the first output (.npy).
        #[arg(long, value_parser = path_arg)]
        output: Option<String>,
        /// Timed runs after one warm-up; the median is reported (1 to 1,000,000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
        repeat: u32,
        /// Seed for the values of shape-only weights.
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
        /// Which executor runs the model.
        #[arg(long, value_enum, default_value_t)]
        backend: execute::Backend,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Top-1 accuracy on a labelled CSV (label, then the flattened input per row).
    Eval {
        /// Model in ONNX text.
        model: String,
        /// CSV file: label, then the input values, one sample per row.
        #[arg(long)]
        data: String,
        /// Seed for the values of shape-only weights.
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
        /// Which executor runs the model.
        #[arg(long, value_enum, default_value_t)]
        backend: execute::Backend,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Latency and energy of a model on an accelerator (cycle-level simulator), or SCALE-Sim's
    /// cycles for its own inputs (--topology, --scalesim-config).
    Sim {
        /// Model in ONNX text.
        model: Option<String>,
        /// Accelerator description (RON), e.g. examples/hw/ws-16x16-int8.ron.
        #[arg(long)]
        hw: Option<String>,
        /// Built-in target (`etch targets`): its default accelerator, or the fit check for --hw.
        #[arg(long)]
        target: Option<String>,
        /// Inputs per inference (1 to 1,000,000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
        batch: u64,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Write the per-layer figures as CSV.
        #[arg(long, value_parser = path_arg)]
        csv: Option<String>,
        /// Write plots (PNG and SVG) into this folder.
        #[arg(long, value_parser = path_arg)]
        plot: Option<String>,
        /// Write the timeline in the Chrome trace-event format (open in Perfetto).
        #[arg(long, value_parser = path_arg)]
        trace: Option<String>,
        /// SCALE-Sim topology CSV (SCALE-Sim mode).
        #[arg(long)]
        topology: Option<String>,
        /// SCALE-Sim config file (SCALE-Sim mode).
        #[arg(long = "scalesim-config")]
        scalesim_config: Option<String>,
        /// Time the accelerator `etch compile --emit verilog` emits, cycle for cycle (what
        /// `etch verify` checks the RTL against), instead of the accelerator program.
        #[arg(long)]
        rtl: bool,
        /// What the compiler's tiling search minimizes for each layer.
        #[arg(long, value_enum, default_value_t = ObjectiveArg::Latency)]
        objective: ObjectiveArg,
        /// Seed for the values of shape-only weights (when passes need them).
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Write the accelerator for a model as a design folder: HLS C++ (`--emit hls`) or Verilog
    /// (`--emit verilog`) of a quantized model with testbenches holding the CPU executor's golden
    /// codes, or the accelerator program's control core (`--emit core`, any model) with the
    /// cycles `etch sim` predicts for every instruction.
    Compile {
        /// Model in ONNX text (quantized by --passes, or already in QDQ form).
        model: String,
        /// Accelerator description (RON).
        #[arg(long)]
        hw: Option<String>,
        /// Built-in target (`etch targets`): its default accelerator, or the fit check for --hw.
        #[arg(long)]
        target: Option<String>,
        /// What to write, comma-separated: hls, verilog, core.
        #[arg(long, value_enum, value_delimiter = ',', required = true)]
        emit: Vec<compile::Emit>,
        /// The design folder.
        #[arg(short, long, value_parser = path_arg)]
        output: String,
        /// Test inputs for the testbench: CSV with a label, then the input values, per row.
        #[arg(long)]
        data: Option<String>,
        /// Rows of --data the testbench runs.
        #[arg(long, default_value_t = 10)]
        samples: usize,
        /// Seed for the values of shape-only weights.
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
        #[command(flatten)]
        passes: PassArgs,
    },
    /// Build and run a compiled design's testbench: bit-exact against the CPU executor or not.
    Verify {
        /// A folder `etch compile -o` wrote.
        dir: String,
        /// verilator or iverilog (the Verilog; verilator by default when the design has it), or
        /// g++ (the HLS C simulation).
        #[arg(long)]
        simulator: Option<String>,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Run the design even when its files differ from what `etch compile` wrote.
        #[arg(long)]
        allow_modified: bool,
    },
    /// Synthesize a compiled design's Verilog with Yosys and compare its resources with the area
    /// model's estimate and the target's capacity.
    Synth {
        /// A folder `etch compile -o` wrote.
        dir: String,
        /// FPGA target (`etch targets`): picks the Yosys flow and the capacity.
        #[arg(long)]
        target: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Synthesize the design even when its files differ from what `etch compile` wrote.
        #[arg(long)]
        allow_modified: bool,
    },
    /// The built-in targets: resources, clock, memory bandwidth and default accelerator.
    Targets {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Sweep models x pass specs x accelerator descriptions through the simulator into SQLite
    /// (resumable, shardable); `merge` joins shards, `pareto` prints the non-dominated points.
    #[command(args_conflicts_with_subcommands = true)]
    Sweep {
        #[command(subcommand)]
        action: Option<SweepAction>,
        /// The sweep spec (TOML), e.g. examples/sweep/resnet18.toml.
        spec: Option<String>,
        /// The results file (SQLite); points already in it are skipped.
        #[arg(short, long, value_parser = path_arg)]
        output: Option<String>,
        /// Points simulated at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        jobs: usize,
        /// Run every N-th point from the I-th (1-based), so N machines split a sweep.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
    },
}

#[derive(Subcommand)]
enum SweepAction {
    /// Join results files (shards of one spec) into OUT; a point already in OUT is kept.
    Merge {
        #[arg(value_parser = path_arg)]
        out: String,
        #[arg(required = true)]
        inputs: Vec<String>,
    },
    /// The points no other point beats on every objective, among those that ran.
    Pareto {
        results: String,
        /// Comma-separated, each minimized: latency, energy, area, dram, cycles.
        #[arg(long, default_value = "latency,energy")]
        objectives: String,
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// Draw the points and the front over the two objectives named (an SVG file).
        #[arg(long, value_parser = path_arg)]
        plot: Option<String>,
    },
    /// Write a Slurm job array (task I runs shard I/N) and a merge job that waits for it.
    Slurm {
        /// The sweep spec (TOML).
        spec: String,
        /// The folder for the scripts, the shard files, the logs and results.sqlite.
        #[arg(short, long, value_parser = path_arg)]
        output: String,
        /// Array tasks (shards).
        #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u64).range(1..=100_000))]
        tasks: u64,
        #[arg(long)]
        partition: Option<String>,
        /// Time limit per task, in Slurm's format (e.g. 1:00:00).
        #[arg(long)]
        time: Option<String>,
        /// Submit both jobs with sbatch (the merge depending on the array).
        #[arg(long)]
        submit: bool,
    },
}

/// The options every command that transforms a model shares.
#[derive(clap::Args, Default)]
struct PassArgs {
    /// Passes to run first, e.g. "fold-bn,prune(sparsity=0.5),nm(n=2,m=4)" (`etch passes --list`).
    #[arg(long = "passes")]
    spec: Option<String>,
    /// Run the verifier after every pass, not only after the last.
    #[arg(long)]
    verify_each: bool,
}

/// A path argument: an empty one would silently mean the current folder, so it is refused.
fn path_arg(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the path is empty; give a file or folder name".to_string());
    }
    Ok(s.to_string())
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    etch_ir::limits::set_max_bytes(cli.max_bytes);
    load::set_allow_partial(cli.allow_partial);
    let result = match cli.command {
        Command::Inspect {
            model,
            json,
            passes,
        } => inspect::run(
            &model,
            json,
            passes.spec.as_deref(),
            etch_ir::weights::DEFAULT_SEED,
            passes.verify_each,
        ),
        Command::Passes {
            model,
            passes,
            output,
            json,
            list,
        } => match (list, model) {
            (true, _) => {
                print!("{}", etch_ir::passes::list());
                Ok(())
            }
            (false, Some(model)) => passes::run(
                &model,
                passes.spec.as_deref().unwrap_or(""),
                passes.verify_each,
                output.as_deref(),
                json,
            ),
            (false, None) => Err("error: give a model (or --list)".to_string()),
        },
        Command::Convert {
            model,
            output,
            seed,
            passes,
        } => convert::run(
            &model,
            &output,
            seed,
            passes.spec.as_deref(),
            passes.verify_each,
        ),
        Command::Run {
            model,
            input,
            output,
            repeat,
            seed,
            backend,
            json,
            passes,
        } => run::run(run::RunArgs {
            model: &model,
            input: &input,
            output: output.as_deref(),
            repeat: repeat as usize,
            seed,
            backend,
            json,
            passes: passes.spec.as_deref(),
            verify_each: passes.verify_each,
        }),
        Command::Eval {
            model,
            data,
            seed,
            backend,
            json,
            passes,
        } => eval::run(
            &model,
            &data,
            seed,
            backend,
            json,
            passes.spec.as_deref(),
            passes.verify_each,
        ),
        Command::Sim {
            model,
            hw,
            target,
            batch,
            json,
            csv,
            plot,
            trace,
            topology,
            scalesim_config,
            seed,
            passes,
            rtl,
            objective,
        } => sim::run(sim::SimArgs {
            model: model.as_deref(),
            hw: hw.as_deref(),
            target: target.as_deref(),
            batch,
            json,
            csv: csv.as_deref(),
            plot: plot.as_deref(),
            trace: trace.as_deref(),
            topology: topology.as_deref(),
            scalesim_config: scalesim_config.as_deref(),
            passes: passes.spec.as_deref(),
            verify_each: passes.verify_each,
            seed,
            rtl,
            objective: match objective {
                ObjectiveArg::Latency => etch_program::tiling::Objective::Latency,
                ObjectiveArg::Energy => etch_program::tiling::Objective::Energy,
                ObjectiveArg::Edp => etch_program::tiling::Objective::Edp,
                ObjectiveArg::Dram => etch_program::tiling::Objective::Dram,
            },
        }),
        Command::Compile {
            model,
            hw,
            target,
            emit,
            output,
            data,
            samples,
            seed,
            passes,
        } => compile::run(compile::CompileArgs {
            model: &model,
            hw: hw.as_deref(),
            target: target.as_deref(),
            emit: &emit,
            output: &output,
            data: data.as_deref(),
            samples,
            passes: passes.spec.as_deref(),
            verify_each: passes.verify_each,
            seed,
        }),
        Command::Verify {
            dir,
            simulator,
            json,
            allow_modified,
        } => verify::run(&dir, simulator.as_deref(), json, allow_modified),
        Command::Synth {
            dir,
            target,
            json,
            allow_modified,
        } => synth::run(&dir, &target, json, allow_modified),
        Command::Targets { json } => targets::run(json),
        Command::Sweep {
            action,
            spec,
            output,
            jobs,
            shard,
        } => match action {
            Some(SweepAction::Merge { out, inputs }) => sweep::merge(&out, &inputs),
            Some(SweepAction::Pareto {
                results,
                objectives,
                json,
                plot,
            }) => sweep::pareto(&results, &objectives, json, plot.as_deref()),
            Some(SweepAction::Slurm {
                spec,
                output,
                tasks,
                partition,
                time,
                submit,
            }) => sweep::slurm(&spec, &output, tasks, partition, time, submit),
            None => sweep::run(spec.as_deref(), output.as_deref(), jobs, shard.as_deref()),
        },
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // names from models and files are in the message: no escape sequence reaches the terminal
            eprintln!("{}", etch_ir::safe_text::terminal_text(&e));
            ExitCode::FAILURE
        }
    }
}
