//! Element types, shapes and tensor data: the values that flow along the graph's edges.

use std::fmt;

/// An ONNX element type. Kept as the full ONNX list so that any model prints back unchanged,
/// even where later stages only compute with a few of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ElemType {
    F32,
    F64,
    F16,
    BF16,
    I8,
    I16,
    I32,
    I64,
    U8,
    U16,
    U32,
    U64,
    Bool,
    Str,
    Complex64,
    Complex128,
    F8E4M3FN,
    F8E4M3FNUZ,
    F8E5M2,
    F8E5M2FNUZ,
    F8E8M0,
    U4,
    I4,
    U2,
    I2,
    F4E2M1,
    F6E2M3,
    F6E3M2,
}

/// Every element type with its ONNX text keyword, in one table so parsing and printing agree.
const ELEM_NAMES: [(ElemType, &str); 28] = [
    (ElemType::F32, "float"),
    (ElemType::F64, "double"),
    (ElemType::F16, "float16"),
    (ElemType::BF16, "bfloat16"),
    (ElemType::I8, "int8"),
    (ElemType::I16, "int16"),
    (ElemType::I32, "int32"),
    (ElemType::I64, "int64"),
    (ElemType::U8, "uint8"),
    (ElemType::U16, "uint16"),
    (ElemType::U32, "uint32"),
    (ElemType::U64, "uint64"),
    (ElemType::Bool, "bool"),
    (ElemType::Str, "string"),
    (ElemType::Complex64, "complex64"),
    (ElemType::Complex128, "complex128"),
    (ElemType::F8E4M3FN, "float8e4m3fn"),
    (ElemType::F8E4M3FNUZ, "float8e4m3fnuz"),
    (ElemType::F8E5M2, "float8e5m2"),
    (ElemType::F8E5M2FNUZ, "float8e5m2fnuz"),
    (ElemType::F8E8M0, "float8e8m0"),
    (ElemType::U4, "uint4"),
    (ElemType::I4, "int4"),
    (ElemType::U2, "uint2"),
    (ElemType::I2, "int2"),
    (ElemType::F4E2M1, "float4e2m1"),
    (ElemType::F6E2M3, "float6e2m3"),
    (ElemType::F6E3M2, "float6e3m2"),
];

impl ElemType {
    /// Looks up a type keyword of the ONNX text syntax.
    pub fn from_keyword(word: &str) -> Option<ElemType> {
        ELEM_NAMES.iter().find(|(_, n)| *n == word).map(|(t, _)| *t)
    }

    /// The keyword the ONNX text syntax uses for this type.
    pub fn keyword(self) -> &'static str {
        ELEM_NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map(|(_, n)| *n)
            .unwrap_or("float")
    }

    /// Which storage a literal list of this type lands in, mirroring ONNX's TensorProto fields.
    pub fn storage(self) -> Storage {
        use ElemType::*;
        match self {
            F32 | Complex64 => Storage::F32,
            F64 | Complex128 => Storage::F64,
            I64 => Storage::I64,
            U32 | U64 => Storage::U64,
            Str => Storage::Str,
            I8 | I4 | I2 => Storage::I8,
            U8 | Bool | U4 | U2 | F8E4M3FN | F8E4M3FNUZ | F8E5M2 | F8E5M2FNUZ | F8E8M0 | F4E2M1
            | F6E2M3 | F6E3M2 => Storage::U8,
            I16 => Storage::I16,
            U16 | F16 | BF16 => Storage::U16,
            I32 => Storage::I32,
        }
    }

    /// The inclusive range an integer literal of this type must lie in, when it is stored as an integer.
    pub fn int_range(self) -> (i128, i128) {
        use ElemType::*;
        match self {
            Bool => (0, 1),
            I8 => (i8::MIN as i128, i8::MAX as i128),
            I4 => (-8, 7),
            I2 => (-2, 1),
            U4 => (0, 15),
            U2 => (0, 3),
            I16 => (i16::MIN as i128, i16::MAX as i128),
            I32 => (i32::MIN as i128, i32::MAX as i128),
            I64 => (i64::MIN as i128, i64::MAX as i128),
            U32 => (0, u32::MAX as i128),
            U64 => (0, u64::MAX as i128),
            U16 | F16 | BF16 => (0, u16::MAX as i128),
            _ => (0, u8::MAX as i128),
        }
    }

    /// Whether values of this type are real numbers the executors compute with as floats.
    pub fn is_float(self) -> bool {
        matches!(
            self,
            ElemType::F32 | ElemType::F64 | ElemType::F16 | ElemType::BF16
        )
    }
}

impl fmt::Display for ElemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// How tensor values are kept in memory: the narrowest native type that holds every value of the
/// element type, so a 100-million-weight model costs 400 MB and not more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    F32,
    F64,
    I64,
    U64,
    I32,
    I16,
    U16,
    I8,
    U8,
    Str,
}

/// One dimension of a shape.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Dim {
    /// A known extent.
    Known(i64),
    /// A named extent such as a batch size `N`, equal wherever the same name appears.
    Param(String),
    /// `?`: an extent nobody named.
    Unknown,
}

impl Dim {
    /// The extent if it is known.
    pub fn known(&self) -> Option<i64> {
        match self {
            Dim::Known(v) => Some(*v),
            _ => None,
        }
    }

    /// The extent two broadcast extents give (numpy's rule: 1 stretches, a named extent meets
    /// only its own name); `None` when two known extents differ.
    pub fn broadcast(&self, other: &Dim) -> Option<Dim> {
        Some(match (self, other) {
            (Dim::Known(1), d) | (d, Dim::Known(1)) => d.clone(),
            (Dim::Known(x), Dim::Known(y)) if x == y => Dim::Known(*x),
            (Dim::Known(_), Dim::Known(_)) => return None,
            (Dim::Param(p), Dim::Param(q)) if p == q => self.clone(),
            (Dim::Known(x), _) | (_, Dim::Known(x)) => Dim::Known(*x),
            _ => Dim::Unknown,
        })
    }
}

impl fmt::Display for Dim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Dim::Known(v) => write!(f, "{v}"),
            Dim::Param(p) => f.write_str(p),
            Dim::Unknown => f.write_str("?"),
        }
    }
}

/// A tensor type: element type plus shape; `shape == None` is ONNX's unknown rank (`float[]`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorType {
    pub elem: ElemType,
    pub shape: Option<Vec<Dim>>,
}

impl TensorType {
    /// A tensor type whose every dimension is known.
    pub fn known(elem: ElemType, dims: &[i64]) -> TensorType {
        TensorType {
            elem,
            shape: Some(dims.iter().map(|&d| Dim::Known(d)).collect()),
        }
    }

    /// The dims if every one of them is known.
    pub fn known_dims(&self) -> Option<Vec<i64>> {
        self.shape.as_ref()?.iter().map(Dim::known).collect()
    }
}

impl fmt::Display for TensorType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.elem)?;
        if let Some(shape) = &self.shape {
            f.write_str("[")?;
            for (i, d) in shape.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{d}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}

/// Any ONNX value type. CNN stages only compute with tensors; the others are kept so a model
/// that uses them prints back unchanged and is rejected with a clear message later.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Type {
    Tensor(TensorType),
    Seq(Box<Type>),
    Map(ElemType, Box<Type>),
    Optional(Box<Type>),
    SparseTensor(TensorType),
    Opaque { domain: String, name: String },
}

impl Type {
    /// The tensor type, if this is one.
    pub fn as_tensor(&self) -> Option<&TensorType> {
        match self {
            Type::Tensor(t) => Some(t),
            _ => None,
        }
    }
}

/// The values of a tensor, one vector per storage class.
#[derive(Debug, Clone, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    U64(Vec<u64>),
    I32(Vec<i32>),
    I16(Vec<i16>),
    U16(Vec<u16>),
    I8(Vec<i8>),
    U8(Vec<u8>),
    Str(Vec<String>),
}

impl Data {
    /// An empty vector of the given storage.
    pub fn empty(storage: Storage) -> Data {
        match storage {
            Storage::F32 => Data::F32(Vec::new()),
            Storage::F64 => Data::F64(Vec::new()),
            Storage::I64 => Data::I64(Vec::new()),
            Storage::U64 => Data::U64(Vec::new()),
            Storage::I32 => Data::I32(Vec::new()),
            Storage::I16 => Data::I16(Vec::new()),
            Storage::U16 => Data::U16(Vec::new()),
            Storage::I8 => Data::I8(Vec::new()),
            Storage::U8 => Data::U8(Vec::new()),
            Storage::Str => Data::Str(Vec::new()),
        }
    }

    /// Number of stored values.
    pub fn len(&self) -> usize {
        match self {
            Data::F32(v) => v.len(),
            Data::F64(v) => v.len(),
            Data::I64(v) => v.len(),
            Data::U64(v) => v.len(),
            Data::I32(v) => v.len(),
            Data::I16(v) => v.len(),
            Data::U16(v) => v.len(),
            Data::I8(v) => v.len(),
            Data::U8(v) => v.len(),
            Data::Str(v) => v.len(),
        }
    }

    /// Whether no values are stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values as i64, for the integer-valued storages (shape arithmetic).
    pub fn to_i64(&self) -> Option<Vec<i64>> {
        Some(match self {
            Data::I64(v) => v.clone(),
            Data::I32(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U16(v) => v.iter().map(|&x| x as i64).collect(),
            Data::I8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U8(v) => v.iter().map(|&x| x as i64).collect(),
            Data::U64(v) => v.iter().map(|&x| x as i64).collect(),
            _ => return None,
        })
    }
}

/// A tensor with values: initializers, Constant values and tensor attributes.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    pub elem: ElemType,
    pub dims: Vec<i64>,
    /// `None` when the text declared the tensor without values (a shape-only weight).
    pub data: Option<Data>,
    /// Present for external data (`["location": "w.bin", ...]`); the values are then not loaded.
    pub external: Option<Vec<(String, String)>>,
}

impl Tensor {
    /// Number of elements the dims describe (1 for a scalar).
    pub fn numel(&self) -> u64 {
        // saturating: a declared shape may be absurd
        self.dims
            .iter()
            .fold(1u64, |a, &d| a.saturating_mul(d.max(0) as u64))
    }

    /// An int64 tensor, for shapes and indices computed while folding constants.
    pub fn from_i64(dims: Vec<i64>, values: Vec<i64>) -> Tensor {
        Tensor {
            elem: ElemType::I64,
            dims,
            data: Some(Data::I64(values)),
            external: None,
        }
    }

    /// The tensor's values as i64, if it holds integers.
    pub fn ints(&self) -> Option<Vec<i64>> {
        self.data.as_ref()?.to_i64()
    }

    /// The tensor's values as f32, if it holds floats (f64 narrowed).
    pub fn floats(&self) -> Option<Vec<f32>> {
        match self.data.as_ref()? {
            Data::F32(v) => Some(v.clone()),
            Data::F64(v) => Some(v.iter().map(|&x| x as f32).collect()),
            _ => None,
        }
    }
}

/// Row-major strides of a shape.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for k in (0..shape.len().saturating_sub(1)).rev() {
        s[k] = s[k + 1] * shape[k + 1];
    }
    s
}

/// Per axis of `out_shape`, the stride of an input of `shape` broadcast to it (0 where broadcast).
pub fn broadcast_strides(shape: &[usize], out_shape: &[usize]) -> Vec<usize> {
    let off = out_shape.len() - shape.len();
    let in_strides = strides(shape);
    (0..out_shape.len())
        .map(|k| {
            if k < off || shape[k - off] == 1 {
                0
            } else {
                in_strides[k - off]
            }
        })
        .collect()
}

/// Maps a flat index of `out_shape` to the flat index of an input of `shape` broadcast to it
/// (numpy's rules: the executors' element-wise ops and constant folding share it).
pub fn broadcast_index(shape: &[usize], out_shape: &[usize]) -> impl Fn(usize) -> usize {
    // per output axis: (output stride, input stride or 0 where broadcast)
    let axes: Vec<(usize, usize)> = strides(out_shape)
        .into_iter()
        .zip(broadcast_strides(shape, out_shape))
        .collect();
    move |mut flat| {
        let mut idx = 0;
        for &(os, is) in &axes {
            let q = flat / os;
            flat %= os;
            idx += q * is;
        }
        idx
    }
}
