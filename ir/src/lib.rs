//! etch's intermediate representation: tensors, the graph, ops, the ONNX text front end and
//! printer, shape inference and the verifier. Every later stage reads a model through this crate.

pub mod einsum;
pub mod float_text;
pub mod front;
pub mod graph;
pub mod infer;
pub mod limits;
pub mod op;
pub mod passes;
pub mod print;
pub mod qonnx;
pub mod qoperator;
pub mod quant;
pub mod resize;
pub mod safe_text;
pub mod stats;
pub mod tensor;
pub mod verify;
pub mod weights;

pub use front::onnx_text::{parse_model, parse_model_str, ParseError};
pub use graph::{
    AttrType, AttrValue, Attribute, Function, Graph, Initializer, Model, Node, Span, ValueInfo,
};
pub use op::Op;
pub use tensor::{Data, Dim, ElemType, Tensor, TensorType, Type};
