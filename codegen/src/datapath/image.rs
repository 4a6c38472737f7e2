//! The DRAM image of a compiled quantized model: each array layer's weight tiles packed where
//! the program's weight loads read them (the output channels' parameters first, then the weight
//! codes, `weight_bits` each, least significant bits first), and the regions where the input
//! codes go and the output codes come back. The layout is the program's own: this module walks
//! the weight loads and fills what each one reads, so it cannot disagree with the instructions.
//!
//! A tile's parameters are 12 bytes per output channel (`etch_program::tiling::PARAM_BYTES`):
//! the int32 bias, the int32 requantization multiplier (both little-endian), then one byte each
//! of shift, output zero point, lowest and highest output code (the codes as the layer's 8-bit
//! output type holds them).

use std::collections::HashMap;

use etch_ir::infer::GraphInfo;
use etch_ir::tensor::ElemType;
use etch_program::isa::{Buffer, Dma, Kind, Space};
use etch_program::tiling::{ConvShape, Tiling, PARAM_BYTES};
use etch_program::{Program, ProgramLayer};

use super::DatapathError;
use crate::program::{InputCode, IntLayer, IntOp, IntProgram, WeightCodes, Window2};

/// The most bytes an image may take.
pub const MAX_IMAGE_BYTES: u64 = 1 << 30;

/// How a layer's weight codes are held, `weight_bits` each: two's-complement integers;
/// power-of-two codes as a sign bit over an exponent field (0 for the weight 0, else the
/// exponent + 1); binary codes as one bit (1 for +1, 0 for −1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightForm {
    Int,
    Shift,
    Binary,
}

/// What the datapath needs of an array layer beyond its instructions and its DRAM image: the
/// window as the reference resolved it, how it reads its input codes (zero point or binary
/// thresholds), its weight codes' form and the codes' signedness.
#[derive(Debug, Clone, PartialEq)]
pub struct LayerConsts {
    /// Kernel, stride, dilation, padding and output extent per axis (height, width).
    pub window: Window2,
    /// The input plane's height and width.
    pub input_hw: [usize; 2],
    pub input: InputCode,
    pub weights: WeightForm,
    /// Whether the input and output codes are int8 (else uint8).
    pub input_signed: bool,
    pub output_signed: bool,
    /// A residual Add's constants (the layer has no weights then).
    pub add: Option<AddConsts>,
    /// A quantized unary activation's table: the output code's byte for each input code's byte.
    pub table: Option<Vec<u8>>,
}

/// What a residual Add on the vector unit needs: its input slot holds the two operands' runs as
/// two rows, the operand at the lower DRAM address first (`input_signed` tells the first
/// row's codes, `second_signed` the second's), and each output code is
/// `clamp(a + b + offset, qmin, qmax)` with `offset = zp_y − zp_a − zp_b`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddConsts {
    pub second_signed: bool,
    pub offset: i32,
    pub qmin: i32,
    pub qmax: i32,
}

/// Where a tensor of codes lives, and its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Region {
    pub space: Space,
    pub addr: u64,
    pub bytes: u64,
}

/// A program's DRAM image and what its datapath needs to run it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// DRAM as the program starts: the weight regions filled, the rest zero.
    pub dram: Vec<u8>,
    /// Per program layer: the constants of a layer of the integer chain.
    pub layers: Vec<Option<LayerConsts>>,
    /// The program layers the chain spans (first and last); instructions of layers outside run
    /// on the host (the input's float preparation, the output's reading).
    pub first: usize,
    pub last: usize,
    pub input: Region,
    pub output: Region,
    pub input_signed: bool,
    pub output_signed: bool,
}

/// The window of a GEMM: a 1×1 convolution of a 1×1 plane.
fn gemm_window() -> Window2 {
    Window2 {
        kernel: [1, 1],
        stride: [1, 1],
        dilation: [1, 1],
        pad: [0, 0],
        out: [1, 1],
    }
}

/// Checks that the program's tiler saw the layer the reference computes.
fn check_geometry(
    pl: &ProgramLayer,
    s: &ConvShape,
    c: &LayerConsts,
    group: usize,
) -> Result<(), DatapathError> {
    let w = &c.window;
    let program = [
        // a depthwise convolution runs as one group of single-channel reductions
        if s.depthwise { s.cout } else { s.groups },
        s.in_h,
        s.in_w,
        s.out_h,
        s.out_w,
        s.kernel_h,
        s.kernel_area,
        s.stride_h,
        s.dilation_h,
        s.pad_h,
    ];
    let reference = [
        group,
        c.input_hw[0],
        c.input_hw[1],
        w.out[0],
        w.out[1],
        w.kernel[0],
        w.kernel[0] * w.kernel[1],
        w.stride[0],
        w.dilation[0],
        w.pad[0],
    ]
    .map(|v| v as u64);
    if program != reference {
        let names = "[groups, in_h, in_w, out_h, out_w, kernel_h, kernel_area, stride_h, dilation_h, pad_h]";
        return Err(DatapathError::Geometry {
            layer: pl.name.clone(),
            program: format!("{names} = {program:?}"),
            reference: format!("{reference:?}"),
        });
    }
    Ok(())
}

/// Refuses what the functional datapath does not run yet.
fn check_arith(pl: &ProgramLayer, layer: &IntLayer) -> Result<WeightForm, DatapathError> {
    let not_yet = |what: String| DatapathError::NotYet {
        layer: pl.name.clone(),
        what,
    };
    let a = &pl.arith;
    let depthwise = pl.shape.is_some_and(|s| s.depthwise);
    if pl.unit != "array" && !(pl.unit == "vector" && depthwise) {
        return Err(not_yet(format!("a layer on the {} unit", pl.unit)));
    }
    if a.act_bits != 8 {
        return Err(not_yet(format!("{}-bit activations", a.act_bits)));
    }
    if a.k_ratio != 1.0 || a.n_ratio != 1.0 || a.weight_store_ratio != 1.0 {
        return Err(not_yet(
            "N:M, pruned-channel or sparse-encoded weights".into(),
        ));
    }
    let (form, least) = match layer.weights {
        WeightCodes::Mac(_) => (WeightForm::Int, 2),
        WeightCodes::Shift(_) => (WeightForm::Shift, 2),
        WeightCodes::Xnor { .. } => (WeightForm::Binary, 1),
    };
    if !(least..=8).contains(&a.weight_bits) {
        return Err(not_yet(format!(
            "{}-bit weights of the {form:?} form",
            a.weight_bits
        )));
    }
    Ok(form)
}

/// Appends `fields` of `bits` bits each, least significant bits first.
fn pack(out: &mut Vec<u8>, fields: impl Iterator<Item = u32>, bits: u32) {
    let (mut acc, mut have) = (0u64, 0u32);
    for f in fields {
        acc |= (f as u64 & ((1 << bits) - 1)) << have;
        have += bits;
        while have >= 8 {
            out.push(acc as u8);
            acc >>= 8;
            have -= 8;
        }
    }
    if have > 0 {
        out.push(acc as u8);
    }
}

/// Weight `k` of output channel `o` as its `bits`-bit field.
fn weight_field(
    w: &WeightCodes,
    o: usize,
    reduction: usize,
    k: usize,
    bits: u32,
) -> Result<u32, String> {
    match w {
        WeightCodes::Mac(codes) => {
            let c = codes[o * reduction + k];
            let (lo, hi) = (-(1i64 << (bits - 1)), (1i64 << (bits - 1)) - 1);
            if !(lo..=hi).contains(&(c as i64)) {
                return Err(format!("weight code {c} does not fit {bits} bits"));
            }
            Ok(c as u32)
        }
        WeightCodes::Shift(codes) => {
            let c = codes[o * reduction + k];
            let Some(e) = c.exp else { return Ok(0) };
            if e as u32 + 1 >= 1 << (bits - 1) {
                return Err(format!(
                    "the power-of-two weight 2^{e} does not fit a {bits}-bit code"
                ));
            }
            Ok((c.negative as u32) << (bits - 1) | (e as u32 + 1))
        }
        WeightCodes::Xnor {
            bits: words_bits,
            words,
        } => Ok((words_bits[o * words + k / 64] >> (k % 64) & 1) as u32),
    }
}

/// The bytes a weight load brings: tile (`co0`, `c0`) of `layer` under tiling `t`.
fn weight_tile(
    layer: &IntLayer,
    s: &ConvShape,
    t: &Tiling,
    bits: u32,
    d: &Dma,
) -> Result<Vec<u8>, String> {
    let (co0, c0) = (d.tile.co0 as u64, d.tile.c0 as u64);
    let co = t.out_channels.max(1).min(s.cout - co0);
    // the layer's output channels: the group's first, then the tile's
    let first = d.tile.group as u64 * s.cout + co0;
    let wc = if t.whole_weights {
        s.cin
    } else {
        t.in_channels.max(1).min(s.cin - c0)
    };
    let mut out = Vec::new();
    if c0 == 0 {
        for o in first..first + co {
            let o = o as usize;
            out.extend(layer.bias[o].to_le_bytes());
            out.extend(layer.requant[o].multiplier.to_le_bytes());
            out.push(layer.requant[o].shift as u8);
            for v in [layer.zero_point, layer.qmin, layer.qmax] {
                out.push(v as u8);
            }
        }
    }
    debug_assert_eq!(out.len() as u64, if c0 == 0 { co * PARAM_BYTES } else { 0 });
    let ka = s.kernel_area as usize;
    let mut fields = Vec::with_capacity((co * wc) as usize * ka);
    // `[reduction channel][kernel][output channel]`: a row of the array's weights (one reduction
    // element, the output channels side by side) is one run of bits
    for k in c0 as usize * ka..(c0 + wc) as usize * ka {
        for o in first as usize..(first + co) as usize {
            fields.push(weight_field(&layer.weights, o, layer.reduction, k, bits)?);
        }
    }
    pack(&mut out, fields.into_iter(), bits);
    Ok(out)
}

/// Lays out `program`'s DRAM image for the integer chain `chain` of the same model.
pub fn build(
    program: &Program,
    chain: &IntProgram,
    info: &GraphInfo,
) -> Result<Image, DatapathError> {
    let index: HashMap<&str, usize> = program
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| (l.name.as_str(), i))
        .collect();
    let mut layers: Vec<Option<LayerConsts>> = vec![None; program.layers.len()];
    let mut int_layers: Vec<Option<&IntLayer>> = vec![None; program.layers.len()];
    // whether a tensor of codes is int8 (else uint8)
    let signed = |v: &str| info.ty(v).map(|t| t.elem) == Some(ElemType::I8);
    let mut span: Option<(usize, usize)> = None;
    for step in &chain.steps {
        let Some(&li) = index.get(step.name.as_str()) else {
            continue;
        };
        let pl = &program.layers[li];
        let (layer, window, group) = match &step.op {
            IntOp::Conv {
                layer,
                window,
                group,
            } => (layer, *window, *group),
            IntOp::Gemm { layer } => (layer, gemm_window(), 1),
            IntOp::MaxPool { window } => {
                let w = window;
                if pl.unit != "vector" || pl.arith.act_bits != 8 {
                    return Err(DatapathError::NotYet {
                        layer: pl.name.clone(),
                        what: "max pooling of sub-byte codes or off the vector unit".into(),
                    });
                }
                layers[li] = Some(LayerConsts {
                    window: *w,
                    input_hw: [step.input_chw[1], step.input_chw[2]],
                    input: InputCode::Int { zero_point: 0 },
                    weights: WeightForm::Int,
                    input_signed: signed(&step.input),
                    output_signed: signed(&step.input),
                    add: None,
                    table: None,
                });
                span = Some(span.map_or((li, li), |(a, b)| (a.min(li), b.max(li))));
                continue;
            }
            IntOp::Add { add } => {
                let (Some(second), Some(at)) = (step.more.first(), pl.addrs) else {
                    return Err(DatapathError::NotYet {
                        layer: pl.name.clone(),
                        what: "an Add without its second operand's place".into(),
                    });
                };
                if pl.unit != "vector" || pl.arith.act_bits != 8 {
                    return Err(DatapathError::NotYet {
                        layer: pl.name.clone(),
                        what: "an Add of sub-byte codes or off the vector unit".into(),
                    });
                }
                // the slot's rows: the operand at the lower address first
                let mut signs = [signed(&step.input), signed(second)];
                if at.second < at.input {
                    signs.swap(0, 1);
                }
                let zp = |k: usize| add.inputs[k].1;
                layers[li] = Some(LayerConsts {
                    window: gemm_window(),
                    input_hw: [step.input_chw[1], step.input_chw[2]],
                    input: InputCode::Int { zero_point: 0 },
                    weights: WeightForm::Int,
                    input_signed: signs[0],
                    output_signed: signed(&step.output),
                    add: Some(AddConsts {
                        second_signed: signs[1],
                        offset: add.output.zero_point - zp(0) - zp(1),
                        qmin: add.output.qmin,
                        qmax: add.output.qmax,
                    }),
                    table: None,
                });
                span = Some(span.map_or((li, li), |(a, b)| (a.min(li), b.max(li))));
                continue;
            }
            IntOp::Table { table } => {
                if pl.unit != "vector" || pl.arith.act_bits != 8 {
                    return Err(DatapathError::NotYet {
                        layer: pl.name.clone(),
                        what: "an activation table of sub-byte codes or off the vector unit".into(),
                    });
                }
                let mut bytes = vec![0u8; 256];
                for (i, &out) in table.entries.iter().enumerate() {
                    bytes[(table.qmin + i as i64) as u8 as usize] = out as u8;
                }
                layers[li] = Some(LayerConsts {
                    window: gemm_window(),
                    input_hw: [step.input_chw[1], step.input_chw[2]],
                    input: InputCode::Int { zero_point: 0 },
                    weights: WeightForm::Int,
                    input_signed: signed(&step.input),
                    output_signed: signed(&step.output),
                    add: None,
                    table: Some(bytes),
                });
                span = Some(span.map_or((li, li), |(a, b)| (a.min(li), b.max(li))));
                continue;
            }
            IntOp::Reshape => continue,
            IntOp::Concat if pl.gathered => continue,
            IntOp::Concat => {
                return Err(DatapathError::NotYet {
                    layer: pl.name.clone(),
                    what: "a concatenation whose inputs the placement could not make in their runs of its output (inputs read twice, made by no layer, or runs not contiguous)".into(),
                })
            }
        };
        let form = check_arith(pl, layer)?;
        let consts = LayerConsts {
            window,
            input_hw: [step.input_chw[1], step.input_chw[2]],
            input: layer.input.clone(),
            weights: form,
            input_signed: signed(&step.input),
            output_signed: signed(&step.output),
            add: None,
            table: None,
        };
        let s = pl.shape.as_ref().expect("an array layer has its shape");
        check_geometry(pl, s, &consts, group)?;
        if layer.reduction as u64 != s.cin * s.kernel_area || layer.outs as u64 != s.cout * s.groups
        {
            return Err(DatapathError::Geometry {
                layer: pl.name.clone(),
                program: format!("{} outputs of {} reduction", s.cout, s.cin * s.kernel_area),
                reference: format!("{} outputs of {}", layer.outs, layer.reduction),
            });
        }
        layers[li] = Some(consts);
        int_layers[li] = Some(layer);
        span = Some(span.map_or((li, li), |(a, b)| (a.min(li), b.max(li))));
    }
    let Some((first, last)) = span else {
        return Err(DatapathError::Program(
            crate::program::ProgramError::NotQuantized,
        ));
    };
    // every layer between the chain's ends either is in it or moves nothing
    for (pl, consts) in program.layers[first..=last]
        .iter()
        .zip(&layers[first..=last])
    {
        if consts.is_none() && (pl.unit == "array" || pl.unit == "vector") {
            return Err(DatapathError::NotYet {
                layer: pl.name.clone(),
                what: format!("a layer on the {} unit between integer layers", pl.unit),
            });
        }
    }
    let in_chain = |layer: u32| (first..=last).contains(&(layer as usize));
    let addrs = |li: usize| {
        program.layers[li]
            .addrs
            .expect("an array layer has its addresses")
    };
    let codes = |shape: &[usize]| shape.iter().product::<usize>() as u64;
    let input = Region {
        space: addrs(first).spaces.input,
        addr: addrs(first).input,
        bytes: codes(&chain.input_shape),
    };
    let output = Region {
        space: addrs(last).spaces.output,
        addr: addrs(last).output,
        bytes: codes(&chain.output_shape),
    };
    // DRAM as far as the chain's transfers and the input and output reach
    let mut end = 0u64;
    for r in [input, output] {
        if r.space == Space::Dram {
            end = end.max(r.addr + r.bytes);
        }
    }
    for insn in program.insns.iter().filter(|i| in_chain(i.layer)) {
        if let Kind::Load(d) | Kind::Store(d) = &insn.kind {
            if d.space == Space::Dram && d.rows > 0 {
                end = end.max(d.addr + (d.rows - 1) * d.stride + d.row_bytes);
            }
        }
    }
    if end > MAX_IMAGE_BYTES {
        return Err(DatapathError::TooLarge {
            bytes: end,
            limit: MAX_IMAGE_BYTES,
        });
    }
    let mut dram = vec![0u8; end as usize];
    for (i, insn) in program.insns.iter().enumerate() {
        let Kind::Load(d) = &insn.kind else { continue };
        let li = insn.layer as usize;
        let (Some(layer), true) = (
            int_layers.get(li).copied().flatten(),
            d.buffer == Buffer::Weight,
        ) else {
            continue;
        };
        let pl = &program.layers[li];
        let err = |message: String| DatapathError::Insn {
            insn: i,
            layer: pl.name.clone(),
            message,
        };
        let (s, t) = (pl.shape.as_ref(), pl.tiling.as_ref());
        let (Some(s), Some(t)) = (s, t) else {
            return Err(err("a weight load of a layer without a tiling".into()));
        };
        let bytes = weight_tile(layer, s, t, pl.arith.weight_bits, d).map_err(&err)?;
        if d.rows != 1 || bytes.len() as u64 != d.row_bytes || d.space != Space::Dram {
            return Err(err(format!(
                "the weight load moves {} × {} bytes from {}, but its tile is {} bytes in DRAM",
                d.rows,
                d.row_bytes,
                d.space.name(),
                bytes.len()
            )));
        }
        dram[d.addr as usize..d.addr as usize + bytes.len()].copy_from_slice(&bytes);
    }
    Ok(Image {
        dram,
        layers,
        first,
        last,
        input,
        output,
        input_signed: signed(&chain.input),
        output_signed: signed(&chain.output),
    })
}
