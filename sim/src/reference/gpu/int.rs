//! The quantized parts of a model on the GPU: the CPU plan's fused integer layers (`cpu::int`)
//! as `intlayer.wgsl`, and the QuantizeLinear/DequantizeLinear left around them as `qdq.wgsl`.
//! Codes live in f32 buffers, exactly (the kernels check they stay below 2^24); the integer
//! arithmetic is i32 in the shader, so the outputs equal the CPU's bit for bit.

use etch_ir::op::{Op, WindowAxis};
use etch_ir::quant::QAdd;
use etch_ir::tensor::ElemType;

use super::super::cpu::conv::ConvGeom;
use super::super::cpu::int::dot::WeightCodes;
use super::super::cpu::int::qdq::IntTable;
use super::super::cpu::int::qdq::{axis_layout, zero_points};
use super::super::cpu::int::{InputCode, IntLayer};
use super::super::Value;
use super::device::Kernel;
use super::record::{DevTensor, Failure, Recorder, Val};

/// The largest code magnitude an f32 holds exactly.
const EXACT: i64 = 1 << 24;

/// The layer's weights as the products the kernel forms: an int code, `±2^e`, or `±1`.
fn effective_weights(layer: &IntLayer) -> Vec<i32> {
    match &layer.weights {
        WeightCodes::Mac(w) => w.clone(),
        WeightCodes::Shift(codes) => codes
            .iter()
            .map(|c| match c.exp {
                None => 0,
                Some(e) if c.negative => -(1i32 << e),
                Some(e) => 1i32 << e,
            })
            .collect(),
        WeightCodes::Xnor { bits, words } => (0..layer.outs)
            .flat_map(|o| {
                (0..layer.reduction).map(move |k| {
                    if bits[o * words + k / 64] >> (k % 64) & 1 == 1 {
                        1
                    } else {
                        -1
                    }
                })
            })
            .collect(),
    }
}

fn window_words(a: &WindowAxis) -> [u32; 4] {
    [a.kernel, a.stride, a.dilation, a.pad_begin].map(|v| v as i32 as u32)
}

fn check_exact(what: &str, v: i64) -> Result<(), Failure> {
    if v.abs() >= EXACT {
        return Err(format!("{what} {v} is beyond the ±2^24 the GPU path holds exactly").into());
    }
    Ok(())
}

impl Recorder<'_> {
    /// Input `k` as integer codes on the device (host integers are uploaded).
    fn codes_input(&mut self, ins: &[Option<&Val>], k: usize) -> Result<DevTensor, Failure> {
        let v = ins
            .get(k)
            .copied()
            .flatten()
            .ok_or_else(|| format!("input {} is missing", k + 1))?;
        if let Some(t) = &v.dev {
            if !t.codes {
                return Err(format!("input {} must be integer codes, not floats", k + 1).into());
            }
            return Ok(t.clone());
        }
        match v.host.as_deref() {
            Some(Value::I64(a)) => {
                for &q in &a.data {
                    check_exact("the input code", q)?;
                }
                let floats: Vec<f32> = a.data.iter().map(|&q| q as f32).collect();
                let mut t = self.upload(&super::super::Array::new(a.shape.clone(), floats))?;
                t.codes = true;
                Ok(t)
            }
            _ => Err(format!("input {} must be integer codes", k + 1).into()),
        }
    }

    /// One fused quantized layer: input codes in, output codes out.
    pub fn int_layer(
        &mut self,
        layer: &IntLayer,
        ins: &[Option<&Val>],
    ) -> Result<DevTensor, Failure> {
        let x = self.codes_input(ins, 0)?;
        for (what, v) in [
            ("the output range's bound", layer.qmin as i64),
            ("the output range's bound", layer.qmax as i64),
            ("the output zero point", layer.zero_point as i64),
        ] {
            check_exact(what, v)?;
        }
        // geometry: a convolution's, or a Gemm as the 1×1 convolution of [N, K, 1, 1]
        let (words, out_shape) = match &layer.op {
            Op::Conv { window, group } => {
                let g = ConvGeom::new(&x.shape, &layer.weight_dims, None, window, *group as usize)?;
                let [ah, aw] = g.axes;
                let mut w = vec![
                    0,
                    g.c,
                    g.h,
                    g.w,
                    g.m,
                    g.cg,
                    g.mg,
                    ah.out as usize,
                    aw.out as usize,
                ]
                .into_iter()
                .map(|v| v as u32)
                .collect::<Vec<u32>>();
                w.push(0);
                w.extend(window_words(&ah));
                w.extend(window_words(&aw));
                (w, g.out_shape.clone())
            }
            _ => {
                let k = layer.reduction;
                if x.shape.len() != 2 || x.shape[1] != k {
                    return Err(format!(
                        "the integer GEMM takes [N, {k}] inputs, got {:?}",
                        x.shape
                    )
                    .into());
                }
                let m = layer.outs;
                let one = [1, 1, 1, 0];
                let mut w: Vec<u32> = [0, k, 1, 1, m, k, m, 1, 1, 0].map(|v| v as u32).to_vec();
                w.extend(one);
                w.extend(one);
                (w, vec![x.shape[0], m])
            }
        };
        let mut p = words;
        let (binary, zp_in, thresholds) = match &layer.input {
            InputCode::Int { zero_point } => (0u32, *zero_point, Vec::new()),
            InputCode::Binary { thresholds } => (1u32, 0, thresholds.clone()),
        };
        p[9] = binary;
        p.extend([zp_in, layer.zero_point, layer.qmin, layer.qmax].map(|v| v as u32));
        p.push(u32::from(thresholds.len() > 1));
        let y = self.alloc(out_shape)?;
        p[0] = y.numel() as u32;
        let weights: Vec<u32> = effective_weights(layer)
            .into_iter()
            .map(|v| v as u32)
            .collect();
        let bias: Vec<u32> = layer.bias.iter().map(|&b| b as u32).collect();
        let mut rq: Vec<u32> = layer
            .requant
            .iter()
            .flat_map(|r| [r.multiplier as u32, r.shift])
            .collect();
        rq.extend(thresholds.iter().map(|&t| t as u32));
        let (wb, bb, rb) = (
            self.gpu.upload(&weights)?,
            self.gpu.upload(&bias)?,
            self.gpu.upload(&rq)?,
        );
        self.dispatch_1d(Kernel::IntLayer, &p, &[&x.buf, &wb, &bb, &rb, &y.buf])?;
        let mut y = y;
        y.codes = true;
        Ok(y)
    }

    /// A residual Add on codes (`etch_ir::quant::QAdd`): the exact float sum `a + b`, then
    /// the quantizer with scale 1 and zero point `zp_y − zp_a − zp_b` clamps it.
    pub fn int_add(&mut self, add: &QAdd, ins: &[Option<&Val>]) -> Result<DevTensor, Failure> {
        let (a, b) = (self.codes_input(ins, 0)?, self.codes_input(ins, 1)?);
        if a.shape != b.shape {
            return Err(format!(
                "the integer Add needs operands of one shape, got {:?} and {:?}",
                a.shape, b.shape
            )
            .into());
        }
        let sum = self.binary(0, &a, &b)?;
        let offset = add.output.zero_point as i64 - add.inputs[0].1 as i64 - add.inputs[1].1 as i64;
        check_exact("the Add's zero-point offset", offset)?;
        let mut y = self.alloc(a.shape.clone())?;
        let p = [
            y.numel() as u32,
            0,
            1,
            1,
            add.output.qmin as u32,
            add.output.qmax as u32,
        ];
        let (sb, zb) = (
            self.gpu.upload(&[1.0f32])?,
            self.gpu.upload(&[offset as i32 as u32])?,
        );
        self.dispatch_1d(Kernel::Qdq, &p, &[&sum.buf, &sb, &zb, &y.buf])?;
        y.codes = true;
        Ok(y)
    }

    /// A quantized unary activation: every input code looked up in its table.
    pub fn int_table(
        &mut self,
        table: &IntTable,
        ins: &[Option<&Val>],
    ) -> Result<DevTensor, Failure> {
        let x = self.codes_input(ins, 0)?;
        check_exact("the table's lowest code", table.qmin)?;
        let entries: Vec<f32> = table.entries.iter().map(|&c| c as f32).collect();
        let tb = self.gpu.upload(&entries)?;
        let mut y = self.alloc(x.shape.clone())?;
        let p = [y.numel() as u32, table.qmin as i32 as u32];
        self.dispatch_1d(Kernel::Table, &p, &[&x.buf, &tb, &y.buf])?;
        y.codes = true;
        Ok(y)
    }

    /// QuantizeLinear (floats to codes) or DequantizeLinear (codes to floats), per tensor or per axis.
    pub fn qdq(
        &mut self,
        op: &Op,
        out_elem: Option<ElemType>,
        ins: &[Option<&Val>],
    ) -> Result<DevTensor, Failure> {
        let (quantize, axis) = match op {
            Op::QuantizeLinear { axis } => (true, *axis),
            Op::DequantizeLinear { axis } => (false, *axis),
            _ => unreachable!("only the two quantizers"),
        };
        let x = if quantize {
            self.input(ins, 0)?
        } else {
            self.codes_input(ins, 0)?
        };
        let host = |k: usize| {
            ins.get(k)
                .copied()
                .flatten()
                .and_then(|v| v.host.as_deref())
        };
        let Some(Value::F32(scale)) = host(1) else {
            return Err("the scale must be a float constant".into());
        };
        let zp = match host(2) {
            None => zero_points(scale.data.len(), &[])?,
            Some(Value::I64(z)) => zero_points(scale.data.len(), &z.data)?,
            Some(_) => return Err("the zero point must be an integer constant".into()),
        };
        for &z in &zp {
            check_exact("the zero point", z)?;
        }
        let (len, inner) = axis_layout(scale.data.len(), &x.shape, axis, "scale")?;
        let (qmin, qmax) = out_elem.unwrap_or(ElemType::U8).int_range();
        let (qmin, qmax) = (
            qmin.max(-EXACT as i128 + 1) as i64,
            qmax.min(EXACT as i128 - 1) as i64,
        );
        let mut y = self.alloc(x.shape.clone())?;
        let p = [y.numel(), usize::from(!quantize), len, inner]
            .map(|v| v as u32)
            .into_iter()
            .chain([qmin as i32 as u32, qmax as i32 as u32])
            .collect::<Vec<u32>>();
        let zp_words: Vec<u32> = zp.iter().map(|&z| z as i32 as u32).collect();
        let (sb, zb) = (self.gpu.upload(&scale.data)?, self.gpu.upload(&zp_words)?);
        self.dispatch_1d(Kernel::Qdq, &p, &[&x.buf, &sb, &zb, &y.buf])?;
        y.codes = quantize;
        Ok(y)
    }
}
