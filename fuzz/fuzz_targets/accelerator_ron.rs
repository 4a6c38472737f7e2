//! Fuzzes the RON accelerator description (`--hw FILE`): parsing and validating never panics; a
//! description that validates has an energy table (or a typed error), a bank list, an ASIC area, and
//! a fit report against every built-in target.

#![no_main]

use etch_hw::{area, fit, Accelerator};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

/// The built-in targets, parsed once.
fn targets() -> &'static [etch_targets::Target] {
    static TARGETS: OnceLock<Vec<etch_targets::Target>> = OnceLock::new();
    TARGETS.get_or_init(|| {
        etch_targets::names()
            .into_iter()
            .map(|n| etch_targets::get(n).expect("a built-in target parses"))
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(acc) = Accelerator::from_ron("fuzz.ron", text) else {
        return;
    };
    let _ = acc.pes();
    let _ = acc.energy_table();
    let _ = area::banks(&acc);
    let _ = area::asic_area(&acc, acc.node_nm.unwrap_or(45.0));
    for target in targets() {
        let _ = fit::check(&acc, target);
    }
});
