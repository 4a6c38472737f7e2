//! The README's "From Rust" example, run as written from the repository root. It changes the
//! process's working directory, so it is the only test in this binary.

use etch_sim::pipeline::Pipeline;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/..");

#[test]
fn the_readme_example_runs() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(ROOT)?;
    let spec = r#"quant(bits=8,per=channel,calib="examples/data/digits_train.csv")"#;
    let p = Pipeline {
        passes: Some(spec),
        ..Default::default()
    }
    .load("examples/models/digits_cnn.onnx.txt")?; // p.model, p.info, p.reports
    let acc = etch_hw::Accelerator::from_file("examples/hw/ws-16x16-int8.ron")?;
    let program = p.lower(&acc, 1, etch_program::tiling::Objective::Latency)?;
    assert_eq!(p.reports.len(), 1);
    assert!(!program.insns.is_empty());
    Ok(())
}
