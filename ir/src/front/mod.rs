pub mod onnx_text;
