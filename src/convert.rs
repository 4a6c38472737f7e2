//! `etch convert`: a model back to ONNX text, with shape-only weights filled from a seed and
//! passes applied.

use etch_sim::pipeline::Pipeline;

use crate::load::{self, CliError};

/// Reads, fills, runs the passes, verifies and writes a model.
pub fn run(
    path: &str,
    output: &str,
    seed: u64,
    passes: Option<&str>,
    verify_each: bool,
) -> Result<(), CliError> {
    let loaded = load::prepare(
        path,
        Pipeline {
            fill: true,
            seed,
            passes,
            verify_each,
            ..Default::default()
        },
    )?;
    let text = etch_ir::print::print_model(&loaded.model);
    std::fs::write(output, text).map_err(|e| format!("error: cannot write `{output}`: {e}"))?;
    eprintln!("wrote {output}");
    Ok(())
}
