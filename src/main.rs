//! `etch`: the command-line front of the toolchain. Thin by design: parse arguments, call the
//! crates, print. Every failure is one clear paragraph on stderr and a non-zero exit.

mod convert;
mod diag;
mod inspect;
mod load;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// etch: compress a neural network, predict its cost on an accelerator, and emit that accelerator.
#[derive(Parser)]
#[command(name = "etch", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    },
    /// Write the model back as ONNX text, with shape-only weights filled from a seed.
    Convert {
        /// Model in ONNX text.
        model: String,
        /// Output file (ONNX text).
        #[arg(short, long)]
        output: String,
        /// Seed for the values of shape-only weights.
        #[arg(long, default_value_t = etch_ir::weights::DEFAULT_SEED)]
        seed: u64,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Inspect { model, json } => inspect::run(&model, json),
        Command::Convert { model, output, seed } => convert::run(&model, &output, seed),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
