//! Fuzzes the pass-spec language (`etch passes --passes SPEC`): parsing never panics, an error renders
//! with its caret, and every parsed pass is checked against the pass registry (unknown passes and
//! bad arguments are typed errors that render too).

#![no_main]

use etch_ir::passes::check_args;
use etch_ir::passes::spec::parse_spec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    match parse_spec(spec) {
        Err(e) => {
            let _ = e.render(spec);
        }
        Ok(passes) => {
            for p in &passes {
                let _ = p.args.iter().map(|a| a.value.describe()).count();
                if let Err(e) = check_args(p) {
                    let _ = e.render(spec);
                }
            }
        }
    }
});
