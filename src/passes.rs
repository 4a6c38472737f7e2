//! `etch passes`: runs a pass spec and reports what each pass changed.

use etch_sim::pipeline::Pipeline;

use crate::inspect::{summary, thousands};
use crate::load::{self, CliError};

/// Runs the passes, prints one block per pass, and writes the result if asked.
pub fn run(
    path: &str,
    spec: &str,
    verify_each: bool,
    output: Option<&str>,
    json: bool,
) -> Result<(), CliError> {
    if spec.trim().is_empty() {
        return Err(
            "error: give the passes to run with --passes \"…\" (`etch passes --list` shows them)"
                .into(),
        );
    }
    let before = load::prepare(
        path,
        Pipeline {
            fill: true,
            ..Default::default()
        },
    )?;
    let before = etch_ir::stats::model_stats(&before.model, &before.info, &[]);
    let loaded = load::prepare(
        path,
        Pipeline {
            passes: Some(spec),
            verify_each,
            ..Default::default()
        },
    )?;
    if let Some(out) = output {
        std::fs::write(out, etch_ir::print::print_model(&loaded.model))
            .map_err(|e| format!("error: cannot write `{out}`: {e}"))?;
        eprintln!("wrote {out}");
    }
    if json {
        let doc = serde_json::json!({ "before": before, "passes": loaded.reports });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!(
        "before: {} params, {} MACs; {}",
        thousands(before.params),
        thousands(before.macs),
        summary(&before)
    );
    for (k, r) in loaded.reports.iter().enumerate() {
        println!("{}. {}", k + 1, r.pass);
        for line in &r.changes {
            println!("   {}", etch_ir::safe_text::terminal_name(line));
        }
        println!(
            "   after: {} params, {} MACs; {}",
            thousands(r.after.params),
            thousands(r.after.macs),
            summary(&r.after)
        );
    }
    Ok(())
}
