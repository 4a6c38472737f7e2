//! Run-time values: dense row-major arrays of f32 (activations, weights) or i64 (shapes, indices).

/// A dense row-major array.
#[derive(Debug, Clone, PartialEq)]
pub struct Array<T> {
    pub shape: Vec<usize>,
    pub data: Vec<T>,
}

impl<T> Array<T> {
    /// Wraps data with a shape; the caller guarantees the sizes agree.
    pub fn new(shape: Vec<usize>, data: Vec<T>) -> Array<T> {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Array { shape, data }
    }

    /// Row-major strides of the shape.
    pub fn strides(&self) -> Vec<usize> {
        strides(&self.shape)
    }
}

pub use etch_ir::tensor::strides;

/// A value flowing between nodes.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    F32(Array<f32>),
    I64(Array<i64>),
}

impl Value {
    /// The value's shape.
    pub fn shape(&self) -> &[usize] {
        match self {
            Value::F32(a) => &a.shape,
            Value::I64(a) => &a.shape,
        }
    }

    /// Short element-type name for messages.
    pub fn elem_name(&self) -> &'static str {
        match self {
            Value::F32(_) => "float",
            Value::I64(_) => "int64",
        }
    }

    /// The same data under another shape of the same size.
    pub fn reshaped(&self, shape: Vec<usize>) -> Value {
        match self {
            Value::F32(a) => Value::F32(Array::new(shape, a.data.clone())),
            Value::I64(a) => Value::I64(Array::new(shape, a.data.clone())),
        }
    }
}
