//! Typed views of the ops etch computes with. The attributes themselves stay in `Node::attrs`
//! exactly as written; an `Op` is derived from them, so a model prints back unchanged while the
//! later stages read typed fields with ONNX's defaults applied.

use crate::graph::{AttrType, AttrValue, Attribute};
use crate::tensor::{ElemType, Tensor};

/// An attribute of a known op has the wrong kind, or a value the op cannot take.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("attribute `{attr}` of {op} {problem}")]
pub struct AttrError {
    pub op: String,
    pub attr: String,
    pub problem: String,
}

/// Window parameters shared by Conv and the pooling ops.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    /// `None` when the op infers it from the weight (Conv) — pooling requires it.
    pub kernel_shape: Option<Vec<i64>>,
    pub strides: Option<Vec<i64>>,
    /// ONNX order: all begins, then all ends.
    pub pads: Option<Vec<i64>>,
    pub dilations: Option<Vec<i64>>,
    /// NOTSET, SAME_UPPER, SAME_LOWER or VALID.
    pub auto_pad: String,
    pub ceil_mode: bool,
}

/// One spatial axis of a window with every default and `auto_pad` worked out: what an executor or
/// a hardware mapper needs to slide it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowAxis {
    pub kernel: i64,
    pub stride: i64,
    pub dilation: i64,
    pub pad_begin: i64,
    pub pad_end: i64,
    /// Output extent.
    pub out: i64,
}

impl Window {
    /// Resolves the window over input extents `spatial` with kernel extents `kernel`: defaults,
    /// `auto_pad`, `ceil_mode` (a window that would start in the end padding is dropped, as
    /// onnxruntime and PyTorch do).
    pub fn resolve(&self, spatial: &[i64], kernel: &[i64]) -> Result<Vec<WindowAxis>, String> {
        let sp = spatial.len();
        if kernel.len() != sp {
            return Err(format!(
                "kernel_shape has {} dims but the input has {sp} spatial dims",
                kernel.len()
            ));
        }
        let get = |v: &Option<Vec<i64>>,
                   n: usize,
                   default: i64,
                   what: &str|
         -> Result<Vec<i64>, String> {
            match v {
                None => Ok(vec![default; n]),
                Some(v) if v.len() == n => Ok(v.clone()),
                Some(v) => Err(format!("{what} has {} values, expected {n}", v.len())),
            }
        };
        let strides = get(&self.strides, sp, 1, "strides")?;
        let dil = get(&self.dilations, sp, 1, "dilations")?;
        let pads = get(&self.pads, 2 * sp, 0, "pads")?;
        if pads.iter().any(|&p| p < 0) {
            return Err("pads must not be negative".into());
        }
        let mut axes = Vec::with_capacity(sp);
        for k in 0..sp {
            let (input, kern, stride, dilation) = (spatial[k], kernel[k], strides[k], dil[k]);
            if stride <= 0 || dilation <= 0 || kern <= 0 {
                return Err(format!(
                    "kernel {kern}, stride {stride} and dilation {dilation} must all be positive"
                ));
            }
            // bounded, the arithmetic below cannot overflow
            const LIMIT: i64 = 1 << 31;
            if [input, kern, stride, dilation, pads[k], pads[sp + k]]
                .iter()
                .any(|&v| v > LIMIT)
            {
                return Err(format!("window parameters and input extents above 2^31 are not supported (kernel {kern}, stride {stride}, dilation {dilation}, pads {} and {}, input {input})", pads[k], pads[sp + k]));
            }
            let eff = dilation * (kern - 1) + 1;
            let (mut pb, mut pe) = (pads[k], pads[sp + k]);
            let out = match self.auto_pad.as_str() {
                "SAME_UPPER" | "SAME_LOWER" => {
                    let out = (input + stride - 1) / stride;
                    let total = ((out - 1) * stride + eff - input).max(0);
                    let small = total / 2;
                    (pb, pe) = if self.auto_pad == "SAME_UPPER" {
                        (small, total - small)
                    } else {
                        (total - small, small)
                    };
                    out
                }
                "VALID" => {
                    (pb, pe) = (0, 0);
                    if input < eff {
                        0
                    } else {
                        (input - eff) / stride + 1
                    }
                }
                _ => {
                    let span = input + pb + pe - eff;
                    if span < 0 {
                        return Err(format!("the window ({eff} wide with dilation) is larger than the padded input ({})", input + pb + pe));
                    }
                    let mut out = if self.ceil_mode {
                        (span + stride - 1) / stride + 1
                    } else {
                        span / stride + 1
                    };
                    if self.ceil_mode && (out - 1) * stride >= input + pb {
                        out -= 1;
                    }
                    out
                }
            };
            axes.push(WindowAxis {
                kernel: kern,
                stride,
                dilation,
                pad_begin: pb,
                pad_end: pe,
                out,
            });
        }
        Ok(axes)
    }
}

impl Window {
    /// A transposed convolution's axes over input extents `spatial` with kernel extents `kernel`:
    /// `out = stride·(in − 1) + output_padding + dilation·(kernel − 1) + 1 − pad_begin − pad_end`
    /// (explicit pads only: `auto_pad` is refused when the op is read).
    pub fn transposed(
        &self,
        spatial: &[i64],
        kernel: &[i64],
        output_padding: Option<&[i64]>,
    ) -> Result<Vec<WindowAxis>, String> {
        let sp = spatial.len();
        let get =
            |v: Option<&[i64]>, n: usize, default: i64, what: &str| -> Result<Vec<i64>, String> {
                match v {
                    None => Ok(vec![default; n]),
                    Some(v) if v.len() == n => Ok(v.to_vec()),
                    Some(v) => Err(format!("{what} has {} values, expected {n}", v.len())),
                }
            };
        if kernel.len() != sp {
            return Err(format!(
                "the kernel has {} spatial dims but the input {sp}",
                kernel.len()
            ));
        }
        let strides = get(self.strides.as_deref(), sp, 1, "strides")?;
        let dil = get(self.dilations.as_deref(), sp, 1, "dilations")?;
        let pads = get(self.pads.as_deref(), 2 * sp, 0, "pads")?;
        let extra = get(output_padding, sp, 0, "output_padding")?;
        const LIMIT: i64 = 1 << 31;
        (0..sp)
            .map(|k| {
                let (input, kern, stride, dilation) = (spatial[k], kernel[k], strides[k], dil[k]);
                let (pb, pe, op) = (pads[k], pads[sp + k], extra[k]);
                if stride <= 0 || dilation <= 0 || kern <= 0 || pb < 0 || pe < 0 || op < 0 {
                    return Err(format!("kernel {kern}, stride {stride} and dilation {dilation} must be positive, and pads and output_padding not negative"));
                }
                if [input, kern, stride, dilation, pb, pe, op].iter().any(|&v| v > LIMIT) {
                    return Err("window parameters and input extents above 2^31 are not supported".into());
                }
                if op >= stride && op >= dilation {
                    return Err(format!("output_padding {op} must be smaller than the stride {stride} or the dilation {dilation}"));
                }
                let out = stride * (input - 1) + op + dilation * (kern - 1) + 1 - pb - pe;
                if out <= 0 {
                    return Err(format!("the padding leaves no output along spatial axis {k}"));
                }
                Ok(WindowAxis { kernel: kern, stride, dilation, pad_begin: pb, pad_end: pe, out })
            })
            .collect()
    }
}

/// The ops etch understands, with their attributes typed; everything else is `Other`.
#[derive(Debug, Clone, PartialEq)]
pub enum Op {
    Conv {
        window: Window,
        group: i64,
    },
    /// The gradient of a convolution (a "deconvolution"): each input pixel scatters the kernel
    /// into the output, `stride` apart. Explicit `pads` and `output_padding` only (as PyTorch
    /// exports it); `output_shape` and `auto_pad` are refused.
    ConvTranspose {
        window: Window,
        group: i64,
        output_padding: Option<Vec<i64>>,
    },
    Gemm {
        alpha: f32,
        beta: f32,
        trans_a: bool,
        trans_b: bool,
    },
    MatMul,
    Relu,
    Clip {
        min: Option<f32>,
        max: Option<f32>,
    },
    Sigmoid,
    HardSigmoid {
        alpha: f32,
        beta: f32,
    },
    HardSwish,
    /// One float function of each element (Tanh, Exp, Erf, Gelu, LeakyRelu, …): [`Unary`].
    Unary(Unary),
    Add,
    Sub,
    Mul,
    Div,
    MaxPool {
        window: Window,
    },
    AveragePool {
        window: Window,
        count_include_pad: bool,
    },
    GlobalAveragePool,
    GlobalMaxPool,
    /// `ReduceMean`, `ReduceMax`, `ReduceMin`, `ReduceSum`, `ReduceL2` over `axes` (the
    /// attribute, or input 2 where the opset moved it there).
    Reduce {
        kind: Reduction,
        axes: Option<Vec<i64>>,
        keepdims: bool,
        noop_with_empty_axes: bool,
    },
    Flatten {
        axis: i64,
    },
    Reshape {
        allowzero: bool,
    },
    Concat {
        axis: i64,
    },
    Split {
        axis: i64,
        split: Option<Vec<i64>>,
        num_outputs: Option<i64>,
    },
    Slice {
        starts: Option<Vec<i64>>,
        ends: Option<Vec<i64>>,
        axes: Option<Vec<i64>>,
    },
    Transpose {
        perm: Option<Vec<i64>>,
    },
    Squeeze {
        axes: Option<Vec<i64>>,
    },
    Unsqueeze {
        axes: Option<Vec<i64>>,
    },
    Pad {
        mode: String,
        pads: Option<Vec<i64>>,
        value: f32,
    },
    Identity,
    Dropout,
    Constant {
        value: Tensor,
    },
    BatchNormalization {
        epsilon: f32,
    },
    /// `(x − mean) / sqrt(var + ε) · scale + bias` over the axes from `axis` on (opset 17).
    LayerNormalization {
        axis: i64,
        epsilon: f32,
    },
    Softmax {
        axis: i64,
    },
    Shape {
        start: i64,
        end: Option<i64>,
    },
    Gather {
        axis: i64,
    },
    Cast {
        to: ElemType,
    },
    /// `y = saturate(round_half_even(x / scale) + zero_point)`; `scale` and `zero_point` are
    /// scalars (per tensor) or 1-D along `axis` (per axis). The output type is the zero point's
    /// (uint8 when it is omitted).
    QuantizeLinear {
        axis: i64,
    },
    /// `y = (x − zero_point) · scale`, per tensor or per `axis`.
    DequantizeLinear {
        axis: i64,
    },
    /// `cond ? x : y` element-wise, with broadcasting.
    Where,
    /// `a ⋈ b` element-wise with broadcasting, a bool tensor: [`Comparison`].
    Compare(Comparison),
    /// Logical not of a bool tensor.
    Not,
    /// `a ∘ b` on bool tensors with broadcasting: [`Logic`].
    Logic(Logic),
    /// The remainder of `a / b` with broadcasting: [`modulo`].
    Mod {
        fmod: bool,
    },
    /// `a ^ b` element-wise with broadcasting.
    Pow,
    /// A tensor of the shape its input holds, every element `value` (one element).
    ConstantOfShape {
        value: Tensor,
    },
    /// The input broadcast with a shape (numpy's rules, both ways).
    Expand,
    /// `start, start + delta, …` up to `limit` (excluded), from three scalars.
    Range,
    /// The input repeated `repeats[k]` times along each axis `k`.
    Tile,
    /// Resizing by nearest or linear interpolation: [`crate::resize`].
    Resize(crate::resize::Resize),
    /// `ArgMax` (`max`) or `ArgMin` along `axis`: int64 indices, the first extreme or the last.
    Arg {
        max: bool,
        axis: i64,
        keepdims: bool,
        last: bool,
    },
    /// Running sums along the axis input 2 names, from the end with `reverse`, each without its
    /// own element with `exclusive`.
    CumSum {
        exclusive: bool,
        reverse: bool,
    },
    /// Sums of products over labelled axes: [`crate::einsum`].
    Einsum(crate::einsum::Equation),
    /// The `k` (input 2) largest or smallest elements along `axis` and their int64 indices, in
    /// order (ties: the lower index first, as onnxruntime orders them).
    TopK {
        axis: i64,
        largest: bool,
    },
    /// A copy of input 0 with the slices input 1's index tuples name replaced by (or combined
    /// with) input 2's, in index order.
    ScatterND(Scatter),
    /// QONNX's integer quantizer (`Quant`): inputs x, scale, zero point, bit width; see
    /// [`crate::qonnx::IntQuant`].
    Quant(crate::qonnx::IntQuant),
    /// QONNX's `BipolarQuant`: inputs x, scale.
    BipolarQuant,
    /// QONNX's `Trunc`: version 1 with 5 inputs, version 2 with 6; see [`crate::qonnx::Trunc`].
    Trunc(crate::qonnx::Trunc),
    /// ONNX's `QLinearConv`: a convolution on integer codes with its scales and zero points as
    /// inputs; see [`crate::qoperator`].
    QLinearConv {
        window: Window,
        group: i64,
    },
    /// ONNX's `QLinearMatMul`: see [`crate::qoperator`].
    QLinearMatMul,
    /// onnxruntime's `QGemm` (`com.microsoft`) with a quantized output: see [`crate::qoperator`].
    QGemm {
        alpha: f32,
        trans_a: bool,
        trans_b: bool,
    },
    /// onnxruntime's `QLinearAdd` (`com.microsoft`): `a`, its scale and zero point, `b`, its
    /// scale and zero point, the output's scale and zero point. `import-quant` rewrites the ones
    /// etch computes exactly; no executor runs the others.
    QLinearAdd,
    /// An op etch does not compute with: kept intact, rejected by the stages that need semantics.
    Other,
}

/// An element-wise float function with no learned parameters: its one float semantics, which the
/// CPU executor, the quantized activation tables and the GPU path's reference follow, and its cost
/// on a vector unit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Unary {
    Abs,
    Neg,
    Exp,
    Log,
    Sqrt,
    Reciprocal,
    Floor,
    Ceil,
    Sin,
    Cos,
    Tanh,
    Erf,
    /// `ln(1 + eˣ)`.
    Softplus,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x · tanh(softplus(x))`.
    Mish,
    LeakyRelu {
        alpha: f32,
    },
    Elu {
        alpha: f32,
    },
    /// `x · Φ(x)`, exactly (through erf) or with the tanh approximation (opset 20's `approximate`).
    Gelu {
        tanh: bool,
    },
}

impl Unary {
    /// The function at one value, in f32 as onnxruntime computes it (to float rounding).
    pub fn eval(self, v: f32) -> f32 {
        match self {
            Unary::Abs => v.abs(),
            Unary::Neg => -v,
            Unary::Exp => v.exp(),
            Unary::Log => v.ln(),
            Unary::Sqrt => v.sqrt(),
            Unary::Reciprocal => 1.0 / v,
            Unary::Floor => v.floor(),
            Unary::Ceil => v.ceil(),
            Unary::Sin => v.sin(),
            Unary::Cos => v.cos(),
            Unary::Tanh => v.tanh(),
            Unary::Erf => libm::erff(v),
            Unary::Softplus => softplus(v),
            Unary::Softsign => v / (1.0 + v.abs()),
            Unary::Mish => v * softplus(v).tanh(),
            Unary::LeakyRelu { alpha } => {
                if v >= 0.0 {
                    v
                } else {
                    alpha * v
                }
            }
            Unary::Elu { alpha } => {
                if v >= 0.0 {
                    v
                } else {
                    alpha * (v.exp() - 1.0)
                }
            }
            Unary::Gelu { tanh: false } => {
                0.5 * v * (1.0 + libm::erff(v * std::f32::consts::FRAC_1_SQRT_2))
            }
            Unary::Gelu { tanh: true } => {
                let k = (2.0 / std::f32::consts::PI).sqrt();
                0.5 * v * (1.0 + (k * (v + 0.044715 * v * v * v)).tanh())
            }
        }
    }

    /// Whether the function is finite wherever its input is: such a function of 8-bit codes can
    /// be a 256-entry table (a logarithm, root or reciprocal of a code range holding 0 cannot).
    pub fn total(self) -> bool {
        !matches!(
            self,
            Unary::Exp | Unary::Log | Unary::Sqrt | Unary::Reciprocal
        )
    }

    /// Lane operations per element on a float vector unit: one ALU operation for a sign or a
    /// rounding, a compare and a multiply-select for LeakyReLU, an absolute value, an add and a
    /// divide for Softsign, four passes of an iterative divide or square root, and for the
    /// transcendental functions a table lookup with interpolation as Sigmoid is costed (4), plus a
    /// multiply and an add for GELU and a second lookup and a multiply for Mish.
    pub fn lane_ops(self) -> u64 {
        match self {
            Unary::Abs | Unary::Neg | Unary::Floor | Unary::Ceil => 1,
            Unary::LeakyRelu { .. } => 2,
            Unary::Softsign => 3,
            Unary::Reciprocal | Unary::Sqrt => 4,
            Unary::Exp
            | Unary::Log
            | Unary::Sin
            | Unary::Cos
            | Unary::Tanh
            | Unary::Erf
            | Unary::Elu { .. }
            | Unary::Softplus => 4,
            Unary::Gelu { .. } => 6,
            Unary::Mish => 9,
        }
    }
}

/// What a `Reduce*` op computes over its axes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reduction {
    Mean,
    Max,
    Min,
    Sum,
    /// `sqrt(Σ x²)`.
    L2,
}

impl Reduction {
    /// The accumulator before any value (Max and Min of nothing are −∞ and +∞).
    pub fn start(self) -> f32 {
        match self {
            Reduction::Max => f32::NEG_INFINITY,
            Reduction::Min => f32::INFINITY,
            _ => 0.0,
        }
    }

    /// The accumulator after one more value, in float32 in input order as onnxruntime's
    /// reference kernels accumulate.
    pub fn step(self, acc: f32, v: f32) -> f32 {
        match self {
            Reduction::Max => acc.max(v),
            Reduction::Min => acc.min(v),
            Reduction::Sum | Reduction::Mean => acc + v,
            Reduction::L2 => acc + v * v,
        }
    }

    /// The result from the accumulator of `count` values.
    pub fn finish(self, acc: f32, count: usize) -> f32 {
        match self {
            Reduction::Mean => acc / count.max(1) as f32,
            Reduction::L2 => acc.sqrt(),
            _ => acc,
        }
    }
}

/// How `ScatterND` combines an update with the element it lands on (`reduction`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scatter {
    /// The update replaces the element.
    Replace,
    Add,
    Mul,
    Max,
    Min,
}

impl Scatter {
    /// The element after an update lands on it.
    pub fn apply<T: Copy + PartialOrd>(
        self,
        old: T,
        update: T,
        add: fn(T, T) -> T,
        mul: fn(T, T) -> T,
    ) -> T {
        match self {
            Scatter::Replace => update,
            Scatter::Add => add(old, update),
            Scatter::Mul => mul(old, update),
            Scatter::Max => {
                if update > old {
                    update
                } else {
                    old
                }
            }
            Scatter::Min => {
                if update < old {
                    update
                } else {
                    old
                }
            }
        }
    }
}

/// The comparisons ONNX has (`Equal`, `Less`, `LessOrEqual`, `Greater`, `GreaterOrEqual`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    /// Whether `a ⋈ b` holds (false for NaN, except that nothing is equal to NaN either).
    pub fn holds<T: PartialOrd>(self, a: T, b: T) -> bool {
        match self {
            Comparison::Equal => a == b,
            Comparison::Less => a < b,
            Comparison::LessOrEqual => a <= b,
            Comparison::Greater => a > b,
            Comparison::GreaterOrEqual => a >= b,
        }
    }
}

/// The binary logical ops (`And`, `Or`, `Xor`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Logic {
    And,
    Or,
    Xor,
}

impl Logic {
    /// `a ∘ b`.
    pub fn apply(self, a: bool, b: bool) -> bool {
        match self {
            Logic::And => a && b,
            Logic::Or => a || b,
            Logic::Xor => a != b,
        }
    }
}

/// ONNX's `Mod` of integers: with `fmod` the remainder takes the dividend's sign (C's `%`), else
/// the divisor's (Python's `%`); `None` for a zero divisor. Floats take `fmod` only, as `a % b`.
pub fn modulo(a: i64, b: i64, fmod: bool) -> Option<i64> {
    let r = a.checked_rem(b)?;
    Some(if !fmod && r != 0 && (r < 0) != (b < 0) {
        r + b
    } else {
        r
    })
}

/// The length of `Range(start, limit, delta)`: `max(ceil((limit − start) / delta), 0)`.
pub fn range_len_i64(start: i64, limit: i64, delta: i64) -> Result<u64, String> {
    if delta == 0 {
        return Err("Range's delta is 0".into());
    }
    let span = (limit as i128) - (start as i128);
    let d = delta as i128;
    let n = if (span > 0) == (d > 0) && span != 0 {
        (span + d - d.signum()) / d
    } else {
        0
    };
    u64::try_from(n.max(0)).map_err(|_| "Range is too long".to_string())
}

/// The length of a float `Range`, `max(ceil((limit − start) / delta), 0)` (in double, as
/// onnxruntime computes it).
pub fn range_len_f32(start: f32, limit: f32, delta: f32) -> Result<u64, String> {
    let n = ((limit as f64 - start as f64) / delta as f64).ceil();
    if delta == 0.0 || !n.is_finite() || n > (1u64 << 40) as f64 {
        return Err(format!(
            "Range({start}, {limit}, {delta}) has no finite length"
        ));
    }
    Ok(n.max(0.0) as u64)
}

/// `ln(1 + eˣ)` without overflow for large `x` (onnxruntime's form).
fn softplus(v: f32) -> f32 {
    if v > 0.0 {
        v + (-v).exp().ln_1p()
    } else {
        v.exp().ln_1p()
    }
}

/// Reads typed attributes of one node, naming the op in errors.
struct Attrs<'a> {
    op: &'a str,
    attrs: &'a [Attribute],
}

impl<'a> Attrs<'a> {
    fn get(&self, name: &str) -> Option<&'a AttrValue> {
        self.attrs.iter().find(|a| a.name == name).map(|a| &a.value)
    }

    fn wrong(&self, name: &str, expected: AttrType, found: &AttrValue) -> AttrError {
        let found = match found {
            AttrValue::Ref(..) => "a reference to a function attribute".to_string(),
            v => format!("a `{}`", v.attr_type().keyword()),
        };
        AttrError {
            op: self.op.to_string(),
            attr: name.to_string(),
            problem: format!("must be `{}`, but it is {found}", expected.keyword()),
        }
    }

    /// An error about attribute `attr` of this node.
    fn error(&self, attr: &str, problem: String) -> AttrError {
        AttrError {
            op: self.op.to_string(),
            attr: attr.to_string(),
            problem,
        }
    }

    fn int(&self, name: &str) -> Result<Option<i64>, AttrError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Int(v)) => Ok(Some(*v)),
            Some(v) => Err(self.wrong(name, AttrType::Int, v)),
        }
    }

    fn float(&self, name: &str) -> Result<Option<f32>, AttrError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Float(v)) => Ok(Some(*v)),
            Some(v) => Err(self.wrong(name, AttrType::Float, v)),
        }
    }

    fn ints(&self, name: &str) -> Result<Option<Vec<i64>>, AttrError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::Ints(v)) => Ok(Some(v.clone())),
            Some(v) => Err(self.wrong(name, AttrType::Ints, v)),
        }
    }

    fn string(&self, name: &str) -> Result<Option<String>, AttrError> {
        match self.get(name) {
            None => Ok(None),
            Some(AttrValue::String(v)) => Ok(Some(v.clone())),
            Some(v) => Err(self.wrong(name, AttrType::String, v)),
        }
    }

    fn flag(&self, name: &str) -> Result<bool, AttrError> {
        Ok(self.int(name)?.unwrap_or(0) != 0)
    }

    fn window(&self) -> Result<Window, AttrError> {
        let window = Window {
            kernel_shape: self.ints("kernel_shape")?,
            strides: self.ints("strides")?,
            pads: self.ints("pads")?,
            dilations: self.ints("dilations")?,
            auto_pad: self
                .string("auto_pad")?
                .unwrap_or_else(|| "NOTSET".to_string()),
            ceil_mode: self.flag("ceil_mode")?,
        };
        if !matches!(
            window.auto_pad.as_str(),
            "NOTSET" | "SAME_UPPER" | "SAME_LOWER" | "VALID"
        ) {
            return Err(AttrError {
                op: self.op.to_string(),
                attr: "auto_pad".into(),
                problem: format!(
                    "is \"{}\"; it must be NOTSET, SAME_UPPER, SAME_LOWER or VALID",
                    window.auto_pad
                ),
            });
        }
        Ok(window)
    }

    /// A QONNX op (`Quant`/`IntQuant`, `BipolarQuant`, `Trunc`) with qonnx's required attributes
    /// and defaults; any other op of a QONNX domain is `Other`.
    fn qonnx_op(&self) -> Result<Op, AttrError> {
        use crate::qonnx::{IntQuant, Rounding, Trunc};
        let required = |name: &str| -> Result<i64, AttrError> {
            self.int(name)?.ok_or_else(|| AttrError {
                op: self.op.into(),
                attr: name.into(),
                problem: "is required (qonnx requires it)".into(),
            })
        };
        let bit = |name: &str, default: Option<i64>| -> Result<bool, AttrError> {
            let v = match default {
                Some(d) => self.int(name)?.unwrap_or(d),
                None => required(name)?,
            };
            match v {
                0 | 1 => Ok(v == 1),
                _ => Err(AttrError {
                    op: self.op.into(),
                    attr: name.into(),
                    problem: format!("is {v}; it must be 0 or 1"),
                }),
            }
        };
        let rounding = |default: Option<&str>| -> Result<Rounding, AttrError> {
            let mode = match (self.string("rounding_mode")?, default) {
                (Some(m), _) => m,
                (None, Some(d)) => d.to_string(),
                (None, None) => {
                    return Err(AttrError {
                        op: self.op.into(),
                        attr: "rounding_mode".into(),
                        problem: "is required (qonnx requires it)".into(),
                    })
                }
            };
            Rounding::parse(&mode).ok_or_else(|| AttrError {
                op: self.op.into(),
                attr: "rounding_mode".into(),
                problem: format!(
                    "is \"{}\"; it must be ROUND, HALF_EVEN, CEIL, FLOOR, UP, DOWN, HALF_UP or HALF_DOWN",
                    mode.escape_debug()
                ),
            })
        };
        Ok(match self.op {
            "Quant" | "IntQuant" => Op::Quant(IntQuant {
                signed: bit("signed", None)?,
                narrow: bit("narrow", None)?,
                rounding: rounding(Some("ROUND"))?,
            }),
            "BipolarQuant" => Op::BipolarQuant,
            "Trunc" => Op::Trunc(Trunc {
                rounding: rounding(None)?,
                signed: bit("signed", Some(1))?,
                narrow: bit("narrow", Some(0))?,
            }),
            _ => Op::Other,
        })
    }

    fn constant_value(&self) -> Result<Op, AttrError> {
        let value = if let Some(v) = self.get("value") {
            match v {
                AttrValue::Tensor(t, _) => t.clone(),
                v => return Err(self.wrong("value", AttrType::Tensor, v)),
            }
        } else if let Some(v) = self.float("value_float")? {
            Tensor {
                elem: ElemType::F32,
                dims: vec![],
                data: Some(crate::tensor::Data::F32(vec![v])),
                external: None,
            }
        } else if let Some(AttrValue::Floats(v)) = self.get("value_floats") {
            Tensor {
                elem: ElemType::F32,
                dims: vec![v.len() as i64],
                data: Some(crate::tensor::Data::F32(v.clone())),
                external: None,
            }
        } else if let Some(v) = self.int("value_int")? {
            Tensor::from_i64(vec![], vec![v])
        } else if let Some(v) = self.ints("value_ints")? {
            Tensor::from_i64(vec![v.len() as i64], v)
        } else {
            // value_string(s), sparse_value, or a reference: nothing etch computes with.
            return Ok(Op::Other);
        };
        Ok(Op::Constant { value })
    }
}

impl Op {
    /// Whether input `k` holds a setting or a statistic rather than a learned value (Clip's
    /// bounds, Resize's scales or sizes, Pad's pads and fill, BatchNormalization's running mean
    /// and variance, ScatterND's indices and updates, the mask PyTorch's exporters build):
    /// `inspect` does not count such an initializer among a model's parameters, as PyTorch's
    /// parameter count does not.
    pub fn setting_input(&self, k: usize) -> bool {
        match self {
            Op::Clip { .. } | Op::Resize(_) | Op::Pad { .. } | Op::ScatterND(_) => k >= 1,
            Op::BatchNormalization { .. } => k >= 3,
            _ => false,
        }
    }

    /// Whether the op combines its inputs element by element, where a one-element initializer
    /// is a constant of the formula (an attention scale, GELU's `1/√2`) that one exporter writes
    /// as an initializer and another as a `Constant` node: not a parameter either way.
    pub fn elementwise(&self) -> bool {
        matches!(
            self,
            Op::Add | Op::Sub | Op::Mul | Op::Div | Op::Pow | Op::Where | Op::Compare(_)
        )
    }
}

impl Op {
    /// Derives the typed view of a node from its op type and attributes.
    pub fn from_parts(domain: &str, op_type: &str, attrs: &[Attribute]) -> Result<Op, AttrError> {
        // a function body's `@ref` attributes are only known once the function is called
        let has_ref = attrs.iter().any(|a| matches!(a.value, AttrValue::Ref(..)));
        let a = Attrs { op: op_type, attrs };
        if crate::qonnx::DOMAINS.contains(&domain) && !has_ref {
            return a.qonnx_op();
        }
        if domain == crate::qoperator::MS_DOMAIN && !has_ref {
            return Ok(match op_type {
                "QGemm" => Op::QGemm {
                    alpha: a.float("alpha")?.unwrap_or(1.0),
                    trans_a: a.flag("transA")?,
                    trans_b: a.flag("transB")?,
                },
                "QLinearAdd" => Op::QLinearAdd,
                _ => Op::Other,
            });
        }
        if !(domain.is_empty() || domain == "ai.onnx") || has_ref {
            return Ok(Op::Other);
        }
        Ok(match op_type {
            "Conv" => Op::Conv {
                window: a.window()?,
                group: a.int("group")?.unwrap_or(1),
            },
            "ConvTranspose" => {
                let window = a.window()?;
                if !matches!(window.auto_pad.as_str(), "NOTSET" | "")
                    || a.get("output_shape").is_some()
                {
                    return Err(AttrError {
                        op: op_type.into(),
                        attr: if a.get("output_shape").is_some() { "output_shape" } else { "auto_pad" }.into(),
                        problem: "is not supported; give explicit `pads` and `output_padding` (as PyTorch exports them)".into(),
                    });
                }
                Op::ConvTranspose {
                    window,
                    group: a.int("group")?.unwrap_or(1),
                    output_padding: a.ints("output_padding")?,
                }
            }
            "QLinearConv" => Op::QLinearConv {
                window: a.window()?,
                group: a.int("group")?.unwrap_or(1),
            },
            "QLinearMatMul" => Op::QLinearMatMul,
            "Gemm" => Op::Gemm {
                alpha: a.float("alpha")?.unwrap_or(1.0),
                beta: a.float("beta")?.unwrap_or(1.0),
                trans_a: a.flag("transA")?,
                trans_b: a.flag("transB")?,
            },
            "MatMul" => Op::MatMul,
            "Relu" => Op::Relu,
            "Clip" => Op::Clip {
                min: a.float("min")?,
                max: a.float("max")?,
            },
            "Sigmoid" => Op::Sigmoid,
            "HardSigmoid" => Op::HardSigmoid {
                alpha: a.float("alpha")?.unwrap_or(0.2),
                beta: a.float("beta")?.unwrap_or(0.5),
            },
            "HardSwish" => Op::HardSwish,
            "Abs" => Op::Unary(Unary::Abs),
            "Neg" => Op::Unary(Unary::Neg),
            "Exp" => Op::Unary(Unary::Exp),
            "Log" => Op::Unary(Unary::Log),
            "Sqrt" => Op::Unary(Unary::Sqrt),
            "Reciprocal" => Op::Unary(Unary::Reciprocal),
            "Floor" => Op::Unary(Unary::Floor),
            "Ceil" => Op::Unary(Unary::Ceil),
            "Sin" => Op::Unary(Unary::Sin),
            "Cos" => Op::Unary(Unary::Cos),
            "Tanh" => Op::Unary(Unary::Tanh),
            "Erf" => Op::Unary(Unary::Erf),
            "Softplus" => Op::Unary(Unary::Softplus),
            "Softsign" => Op::Unary(Unary::Softsign),
            "Mish" => Op::Unary(Unary::Mish),
            "LeakyRelu" => Op::Unary(Unary::LeakyRelu {
                alpha: a.float("alpha")?.unwrap_or(0.01),
            }),
            "Elu" => Op::Unary(Unary::Elu {
                alpha: a.float("alpha")?.unwrap_or(1.0),
            }),
            "Gelu" => Op::Unary(Unary::Gelu {
                tanh: match a.string("approximate")?.as_deref() {
                    None | Some("none") => false,
                    Some("tanh") => true,
                    Some(other) => {
                        return Err(AttrError {
                            op: op_type.into(),
                            attr: "approximate".into(),
                            problem: format!(
                                "is \"{}\"; it must be \"none\" or \"tanh\"",
                                other.escape_debug()
                            ),
                        })
                    }
                },
            }),
            "Add" => Op::Add,
            "Sub" => Op::Sub,
            "Mul" => Op::Mul,
            "Div" => Op::Div,
            "MaxPool" => Op::MaxPool {
                window: a.window()?,
            },
            "AveragePool" => Op::AveragePool {
                window: a.window()?,
                count_include_pad: a.flag("count_include_pad")?,
            },
            "GlobalAveragePool" => Op::GlobalAveragePool,
            "GlobalMaxPool" => Op::GlobalMaxPool,
            "ReduceMean" | "ReduceMax" | "ReduceMin" | "ReduceSum" | "ReduceL2" => Op::Reduce {
                kind: match op_type {
                    "ReduceMean" => Reduction::Mean,
                    "ReduceMax" => Reduction::Max,
                    "ReduceMin" => Reduction::Min,
                    "ReduceSum" => Reduction::Sum,
                    _ => Reduction::L2,
                },
                axes: a.ints("axes")?,
                keepdims: a.int("keepdims")?.unwrap_or(1) != 0,
                noop_with_empty_axes: a.flag("noop_with_empty_axes")?,
            },
            "Flatten" => Op::Flatten {
                axis: a.int("axis")?.unwrap_or(1),
            },
            "Reshape" => Op::Reshape {
                allowzero: a.flag("allowzero")?,
            },
            "Concat" => Op::Concat {
                axis: a.int("axis")?.ok_or_else(|| AttrError {
                    op: op_type.into(),
                    attr: "axis".into(),
                    problem: "is required".into(),
                })?,
            },
            "Split" => Op::Split {
                axis: a.int("axis")?.unwrap_or(0),
                split: a.ints("split")?,
                num_outputs: a.int("num_outputs")?,
            },
            "Slice" => Op::Slice {
                starts: a.ints("starts")?,
                ends: a.ints("ends")?,
                axes: a.ints("axes")?,
            },
            "Transpose" => Op::Transpose {
                perm: a.ints("perm")?,
            },
            "Squeeze" => Op::Squeeze {
                axes: a.ints("axes")?,
            },
            "Unsqueeze" => Op::Unsqueeze {
                axes: a.ints("axes")?,
            },
            "Pad" => Op::Pad {
                mode: a.string("mode")?.unwrap_or_else(|| "constant".to_string()),
                pads: a.ints("pads")?,
                value: a.float("value")?.unwrap_or(0.0),
            },
            "Identity" => Op::Identity,
            "Dropout" => Op::Dropout,
            "Constant" => a.constant_value()?,
            "BatchNormalization" => Op::BatchNormalization {
                epsilon: a.float("epsilon")?.unwrap_or(1e-5),
            },
            "LayerNormalization" => Op::LayerNormalization {
                axis: a.int("axis")?.unwrap_or(-1),
                epsilon: a.float("epsilon")?.unwrap_or(1e-5),
            },
            "Softmax" => Op::Softmax {
                axis: a.int("axis")?.unwrap_or(-1),
            },
            "Shape" => Op::Shape {
                start: a.int("start")?.unwrap_or(0),
                end: a.int("end")?,
            },
            "Gather" => Op::Gather {
                axis: a.int("axis")?.unwrap_or(0),
            },
            "QuantizeLinear" | "DequantizeLinear" => {
                if a.get("block_size")
                    .is_some_and(|v| !matches!(v, AttrValue::Int(0)))
                {
                    // blocked quantization (opset 21): kept intact, not computed with
                    return Ok(Op::Other);
                }
                let axis = a.int("axis")?.unwrap_or(1);
                if op_type == "QuantizeLinear" {
                    Op::QuantizeLinear { axis }
                } else {
                    Op::DequantizeLinear { axis }
                }
            }
            "Where" => Op::Where,
            "Equal" => Op::Compare(Comparison::Equal),
            "Less" => Op::Compare(Comparison::Less),
            "LessOrEqual" => Op::Compare(Comparison::LessOrEqual),
            "Greater" => Op::Compare(Comparison::Greater),
            "GreaterOrEqual" => Op::Compare(Comparison::GreaterOrEqual),
            "Not" => Op::Not,
            "And" => Op::Logic(Logic::And),
            "Or" => Op::Logic(Logic::Or),
            "Xor" => Op::Logic(Logic::Xor),
            "Mod" => Op::Mod {
                fmod: a.flag("fmod")?,
            },
            "Pow" => Op::Pow,
            "ConstantOfShape" => Op::ConstantOfShape {
                value: match a.get("value") {
                    None => Tensor {
                        elem: ElemType::F32,
                        dims: vec![1],
                        data: Some(crate::tensor::Data::F32(vec![0.0])),
                        external: None,
                    },
                    Some(AttrValue::Tensor(t, _)) if t.data.is_some() && t.numel() == 1 => {
                        t.clone()
                    }
                    Some(AttrValue::Tensor(..)) => {
                        return Err(AttrError {
                            op: op_type.into(),
                            attr: "value".into(),
                            problem: "must hold exactly one value".into(),
                        })
                    }
                    Some(v) => return Err(a.wrong("value", AttrType::Tensor, v)),
                },
            },
            "Expand" => Op::Expand,
            "Range" => Op::Range,
            "Tile" => Op::Tile,
            "Resize" => {
                let unsupported = |attr: &str, problem: String| a.error(attr, problem);
                if a.int("antialias")?.unwrap_or(0) != 0 {
                    return Err(unsupported("antialias", "is not supported (0 is)".into()));
                }
                if a.int("exclude_outside")?.unwrap_or(0) != 0 {
                    return Err(unsupported(
                        "exclude_outside",
                        "is not supported (0 is)".into(),
                    ));
                }
                if a.ints("axes")?.is_some() {
                    return Err(unsupported(
                        "axes",
                        "is not supported: give scales or sizes for every axis".into(),
                    ));
                }
                if a.string("keep_aspect_ratio_policy")?
                    .is_some_and(|p| p != "stretch")
                {
                    return Err(unsupported(
                        "keep_aspect_ratio_policy",
                        "is not supported (stretch is)".into(),
                    ));
                }
                let mode = a.string("mode")?;
                let coords = a.string("coordinate_transformation_mode")?;
                let nearest = a.string("nearest_mode")?;
                Op::Resize(
                    crate::resize::Resize::parse(
                        mode.as_deref(),
                        coords.as_deref(),
                        nearest.as_deref(),
                    )
                    .map_err(|(attr, p)| unsupported(attr, p))?,
                )
            }
            "ArgMax" | "ArgMin" => Op::Arg {
                max: op_type == "ArgMax",
                axis: a.int("axis")?.unwrap_or(0),
                keepdims: a.int("keepdims")?.unwrap_or(1) != 0,
                last: a.flag("select_last_index")?,
            },
            "CumSum" => Op::CumSum {
                exclusive: a.flag("exclusive")?,
                reverse: a.flag("reverse")?,
            },
            "Einsum" => {
                let eq = a
                    .string("equation")?
                    .ok_or_else(|| a.error("equation", "is required".into()))?;
                Op::Einsum(crate::einsum::Equation::parse(&eq).map_err(|p| {
                    a.error("equation", format!("is `{}`: {p}", eq.escape_default()))
                })?)
            }
            // `sorted = 0` leaves the order to the runtime; etch's sorted order is one
            "TopK" => Op::TopK {
                axis: a.int("axis")?.unwrap_or(-1),
                largest: a.int("largest")?.unwrap_or(1) != 0,
            },
            "ScatterND" => Op::ScatterND(match a.string("reduction")?.as_deref() {
                None | Some("none") => Scatter::Replace,
                Some("add") => Scatter::Add,
                Some("mul") => Scatter::Mul,
                Some("max") => Scatter::Max,
                Some("min") => Scatter::Min,
                Some(r) => {
                    return Err(a.error(
                        "reduction",
                        format!(
                            "is `{}`; none, add, mul, max and min are",
                            r.escape_default()
                        ),
                    ))
                }
            }),
            "Cast" => {
                let to = a.int("to")?.ok_or_else(|| AttrError {
                    op: op_type.into(),
                    attr: "to".into(),
                    problem: "is required".into(),
                })?;
                Op::Cast {
                    to: elem_from_onnx_code(to).ok_or_else(|| AttrError {
                        op: op_type.into(),
                        attr: "to".into(),
                        problem: format!("is {to}, which is not an ONNX element type code"),
                    })?,
                }
            }
            _ => Op::Other,
        })
    }
}

/// Maps an ONNX `TensorProto.DataType` code (as in Cast's `to`) to an element type.
pub fn elem_from_onnx_code(code: i64) -> Option<ElemType> {
    use ElemType::*;
    Some(match code {
        1 => F32,
        2 => U8,
        3 => I8,
        4 => U16,
        5 => I16,
        6 => I32,
        7 => I64,
        8 => Str,
        9 => Bool,
        10 => F16,
        11 => F64,
        12 => U32,
        13 => U64,
        14 => Complex64,
        15 => Complex128,
        16 => BF16,
        17 => F8E4M3FN,
        18 => F8E4M3FNUZ,
        19 => F8E5M2,
        20 => F8E5M2FNUZ,
        21 => U4,
        22 => I4,
        23 => F4E2M1,
        24 => F8E8M0,
        25 => U2,
        26 => I2,
        _ => return None,
    })
}
