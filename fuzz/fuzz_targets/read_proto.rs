//! Fuzzes the binary ONNX (protobuf) reader: any byte string either decodes to a model or is a
//! `ProtoError`; a model that decodes goes through the verifier and the printer without panicking.

#![no_main]

use etch_ir::front::onnx_proto::read_model;
use etch_ir::print::print_model;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(model) = read_model(data) else {
        return;
    };
    let _ = etch_ir::verify::verify(&model);
    let _ = print_model(&model);
});
