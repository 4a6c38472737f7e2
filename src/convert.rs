//! `etch convert`: a model back to ONNX text, with shape-only weights filled from a seed.

use etch_ir::weights::fill_shape_only;

use crate::inspect::thousands;
use crate::load::{self, CliError};

/// Reads, fills, verifies and writes a model.
pub fn run(path: &str, output: &str, seed: u64) -> Result<(), CliError> {
    let src = load::read(path)?;
    let mut model = load::parse(path, &src)?;
    let filled = fill_shape_only(&mut model, seed).map_err(|e| load::weight_error(path, &src, &model, &e))?;
    let loaded = load::verify(path, &src, model)?;
    let text = etch_ir::print::print_model(&loaded.model);
    std::fs::write(output, text).map_err(|e| format!("error: cannot write `{output}`: {e}"))?;
    if !filled.is_empty() {
        let values: u64 = filled.iter().map(|w| w.numel()).sum();
        eprintln!(
            "note: filled {} shape-only weights ({} values) with seeded random values (seed {seed}); the output's weights are not trained.",
            filled.len(),
            thousands(values)
        );
    }
    eprintln!("wrote {output}");
    Ok(())
}
