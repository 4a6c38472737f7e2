//! Fuzzes the ONNX text parser and checks the round trip: whatever parses must print to text that
//! parses back to an equal model, and printing that model again must give the same text.

#![no_main]

use etch_ir::print::print_model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = etch_ir::parse_model(data) else {
        return;
    };
    let printed = print_model(&model);
    let again = match etch_ir::parse_model(printed.as_bytes()) {
        Ok(m) => m,
        Err(e) => panic!("the printed model does not parse: {e}\n--- printed ---\n{printed}"),
    };
    let reprinted = print_model(&again);
    // A model holding a NaN is never `==` to anything, itself included; its printed text still
    // has to be stable (NaN prints as `nan`/`-nan`, so the sign survives and the payload does not).
    #[allow(clippy::eq_op)]
    let reflexive = model == model;
    if reflexive {
        assert!(
            model == again,
            "parse(print(m)) != m\n--- printed ---\n{printed}\n--- reprinted ---\n{reprinted}"
        );
    }
    assert!(printed == reprinted, "print(parse(print(m))) != print(m)\n--- printed ---\n{printed}\n--- reprinted ---\n{reprinted}");
});
