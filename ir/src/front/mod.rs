pub mod onnx_proto;
pub mod onnx_text;
