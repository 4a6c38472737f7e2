//! Inputs the fuzzer (`fuzz/fuzz_targets/parse_model.rs`) once failed on, each run through the same
//! check as the fuzz target: parsing never panics, and whatever parses prints to text that parses
//! back to an equal model and prints to the same text again.

use std::path::Path;

use etch_ir::parse_model;
use etch_ir::print::print_model;

/// The fuzz target's check, on one input; returns a description of the failure.
fn check(data: &[u8]) -> Result<(), String> {
    let Ok(model) = parse_model(data) else {
        return Ok(());
    };
    let printed = print_model(&model);
    let again = parse_model(printed.as_bytes()).map_err(|e| {
        format!("the printed model does not parse: {e}\n--- printed ---\n{printed}")
    })?;
    let reprinted = print_model(&again);
    // A model holding a NaN is not `==` to itself; its printed text must still be stable.
    #[allow(clippy::eq_op)]
    let reflexive = model == model;
    if reflexive && model != again {
        return Err(format!(
            "parse(print(m)) != m\n--- printed ---\n{printed}\n--- reprinted ---\n{reprinted}"
        ));
    }
    if printed != reprinted {
        return Err(format!("print(parse(print(m))) != print(m)\n--- printed ---\n{printed}\n--- reprinted ---\n{reprinted}"));
    }
    Ok(())
}

/// Runs `check` on one file, turning a panic into a failure so that every file is reported.
fn check_file(path: &Path) -> Result<(), String> {
    let data = std::fs::read(path).map_err(|e| e.to_string())?;
    std::panic::catch_unwind(|| check(&data)).map_err(|_| "panicked".to_string())?
}

#[test]
fn fuzz_regressions_round_trip() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "no regression inputs in {}",
        dir.display()
    );
    let failures: Vec<String> = files
        .iter()
        .filter_map(|f| {
            check_file(f)
                .err()
                .map(|e| format!("{}: {e}", f.file_name().unwrap().to_string_lossy()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} inputs fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n\n")
    );
}
