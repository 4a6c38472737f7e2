//! The integer program laid out for the emitted hardware: the schedule (one entry per step that
//! does work), the weight words (one array row of a fold per word, in preload order), the
//! per-channel requantization parameters, the binary-input thresholds, and the sizes the RTL is
//! built with. `etch_sim::cycle::rtl` times exactly this layout.

use etch_hw::Accelerator;
use etch_sim::cycle::rtl::{self, StepGeom};

use crate::program::{InputCode, IntOp, IntProgram, WeightCodes};

/// Schedule fields, 16 bits each, in entry order.
pub const FIELDS: [&str; 32] = [
    "kind", "mode", "src", "dst", "bin_in", "zp_in", "cin", "h", "w", "kh", "kw", "sh", "sw", "ph",
    "pw", "dh", "dw", "oh", "ow", "p", "k", "n", "fr", "fc", "lastcols", "wbase", "pbase", "tbase",
    "zp_out", "qmin", "qmax", "hw",
];

pub fn field(name: &str) -> usize {
    FIELDS
        .iter()
        .position(|f| *f == name)
        .expect("a schedule field")
}

/// PE kinds: the weight byte's meaning.
pub const MODE_MAC: i64 = 0;
pub const MODE_SHIFT: i64 = 1;
pub const MODE_XNOR: i64 = 2;

/// What the compiler emits for one design.
#[derive(Debug, Clone)]
pub struct Layout {
    pub rows: usize,
    pub cols: usize,
    /// DMA beat bytes (a power of two) and its log2.
    pub nb: usize,
    pub lnb: u32,
    pub milli_bpc: u64,
    pub latency: u64,
    /// Elements per activation buffer (a multiple of `nb`).
    pub act_depth: usize,
    /// Stage and accumulator depth: the most output pixels of an array layer.
    pub tmax: usize,
    pub has_mac: bool,
    pub has_shift: bool,
    pub has_xnor: bool,
    pub sched: Vec<[i64; 32]>,
    /// Schedule entry → program step index.
    pub sched_steps: Vec<usize>,
    /// Weight words: `cols` bytes each, lane 0 first.
    pub weights: Vec<Vec<u8>>,
    /// (bias, multiplier, shift) per output channel of every layer.
    pub params: Vec<(i32, i32, u32)>,
    pub thresholds: Vec<i32>,
    pub in_bytes: usize,
    pub out_bytes: usize,
    pub in_signed: bool,
    /// The buffer holding the output at the end.
    pub final_buf: usize,
}

/// Why a program cannot be laid out on the hardware.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LayoutError {
    #[error("{0}")]
    Hardware(String),
    #[error("step `{step}`: {message}")]
    Step { step: String, message: String },
}

fn bits(v: usize) -> u32 {
    (usize::BITS - v.saturating_sub(1).leading_zeros()).max(1)
}

/// Address bits of a memory of `depth` words.
pub fn addr_bits(depth: usize) -> u32 {
    bits(depth)
}

/// Lays out `p` for `acc`; `in_signed` says whether the input codes are int8 (else uint8).
pub fn layout(p: &IntProgram, acc: &Accelerator, in_signed: bool) -> Result<Layout, LayoutError> {
    if let Some(why) = rtl::unsupported(acc) {
        return Err(LayoutError::Hardware(why));
    }
    p.check_layer_chain()
        .map_err(|e| LayoutError::Hardware(e.to_string()))?;
    let (rows, cols) = (acc.rows() as usize, acc.cols() as usize);
    let nb = rtl::beat_bytes(acc) as usize;
    let (in_bytes, out_bytes) = rtl::io_bytes(p);
    let mut act = in_bytes as usize;
    let mut tmax = 1usize;
    let mut l = Layout {
        rows,
        cols,
        nb,
        lnb: nb.trailing_zeros(),
        milli_bpc: rtl::milli_bytes_per_cycle(acc),
        latency: acc.dram.latency_cycles as u64,
        act_depth: 0,
        tmax: 0,
        has_mac: false,
        has_shift: false,
        has_xnor: false,
        sched: Vec::new(),
        sched_steps: Vec::new(),
        weights: Vec::new(),
        params: Vec::new(),
        thresholds: Vec::new(),
        in_bytes: in_bytes as usize,
        out_bytes: out_bytes as usize,
        in_signed,
        final_buf: 0,
    };
    let mut cur = 0usize;
    for (si, step) in p.steps.iter().enumerate() {
        let err = |message: String| LayoutError::Step {
            step: step.name.clone(),
            message,
        };
        act = act.max(step.output_shape.iter().product());
        let geom = rtl::step_geom(step, rows as u64, cols as u64);
        if matches!(geom, StepGeom::Free) {
            continue;
        }
        let mut e = [0i64; 32];
        let set = |e: &mut [i64; 32], name: &str, v: i64| e[field(name)] = v;
        let [cin, h, w] = step.input_chw;
        set(&mut e, "src", cur as i64);
        set(&mut e, "dst", 1 - cur as i64);
        set(&mut e, "cin", cin as i64);
        set(&mut e, "h", h as i64);
        set(&mut e, "w", w as i64);
        set(&mut e, "hw", (h * w) as i64);
        let window = match &step.op {
            IntOp::Conv { window, .. } | IntOp::MaxPool { window } => Some(*window),
            _ => None,
        };
        let (kh, kw, oh, ow) = match window {
            Some(win) => {
                set(&mut e, "sh", win.stride[0] as i64);
                set(&mut e, "sw", win.stride[1] as i64);
                set(&mut e, "ph", win.pad[0] as i64);
                set(&mut e, "pw", win.pad[1] as i64);
                set(&mut e, "dh", win.dilation[0] as i64);
                set(&mut e, "dw", win.dilation[1] as i64);
                (win.kernel[0], win.kernel[1], win.out[0], win.out[1])
            }
            None => {
                for f in ["sh", "sw", "dh", "dw"] {
                    set(&mut e, f, 1);
                }
                (1, 1, 1, 1)
            }
        };
        set(&mut e, "kh", kh as i64);
        set(&mut e, "kw", kw as i64);
        set(&mut e, "oh", oh as i64);
        set(&mut e, "ow", ow as i64);
        set(&mut e, "p", (oh * ow) as i64);
        match (&step.op, geom) {
            (IntOp::MaxPool { .. }, _) => set(&mut e, "kind", 1),
            (
                _,
                StepGeom::Array {
                    p: px,
                    k,
                    n,
                    row_folds,
                    col_folds,
                    last_cols,
                },
            ) => {
                let layer = step.op.layer().expect("an array step has a layer");
                tmax = tmax.max(px as usize);
                set(&mut e, "kind", 0);
                set(&mut e, "k", k as i64);
                set(&mut e, "n", n as i64);
                set(&mut e, "fr", row_folds as i64);
                set(&mut e, "fc", col_folds as i64);
                set(&mut e, "lastcols", last_cols as i64);
                set(&mut e, "wbase", l.weights.len() as i64);
                set(&mut e, "pbase", l.params.len() as i64);
                set(&mut e, "zp_out", layer.zero_point as i64);
                set(&mut e, "qmin", layer.qmin as i64);
                set(&mut e, "qmax", layer.qmax as i64);
                match &layer.input {
                    InputCode::Int { zero_point } => set(&mut e, "zp_in", *zero_point as i64),
                    InputCode::Binary { thresholds } => {
                        set(&mut e, "bin_in", 1);
                        set(&mut e, "tbase", l.thresholds.len() as i64);
                        for c in 0..cin {
                            l.thresholds
                                .push(thresholds[if thresholds.len() == 1 { 0 } else { c }]);
                        }
                    }
                }
                let (k, n) = (k as usize, n as usize);
                let mode = match &layer.weights {
                    WeightCodes::Mac(_) => {
                        l.has_mac = true;
                        MODE_MAC
                    }
                    WeightCodes::Shift(_) => {
                        l.has_shift = true;
                        MODE_SHIFT
                    }
                    WeightCodes::Xnor { .. } => {
                        l.has_xnor = true;
                        MODE_XNOR
                    }
                };
                set(&mut e, "mode", mode);
                let byte = |o: usize, r: usize| -> Result<u8, LayoutError> {
                    Ok(match &layer.weights {
                        WeightCodes::Mac(w) => {
                            let v = w[o * k + r];
                            if !(-128..=127).contains(&v) {
                                return Err(err(format!("weight code {v} does not fit 8 bits")));
                            }
                            v as i8 as u8
                        }
                        WeightCodes::Shift(w) => {
                            let c = w[o * k + r];
                            match c.exp {
                                None => 0,
                                Some(x) if x < 8 => 0x40 | ((c.negative as u8) << 7) | x,
                                Some(x) => {
                                    return Err(err(format!(
                                        "shift {x} does not fit the PE's 3-bit exponent"
                                    )))
                                }
                            }
                        }
                        WeightCodes::Xnor { bits, words } => {
                            ((bits[o * words + r / 64] >> (r % 64)) & 1) as u8
                        }
                    })
                };
                for fc in 0..col_folds as usize {
                    for fr in 0..row_folds as usize {
                        for i in 0..rows {
                            let r = fr * rows + (rows - 1 - i);
                            let mut word = vec![0u8; cols];
                            for (c, b) in word.iter_mut().enumerate() {
                                let o = fc * cols + c;
                                if o < n && r < k {
                                    *b = byte(o, r)?;
                                }
                            }
                            l.weights.push(word);
                        }
                    }
                }
                for o in 0..n {
                    let rq = layer.requant[o];
                    l.params.push((layer.bias[o], rq.multiplier, rq.shift));
                }
            }
            _ => unreachable!("array and pool steps only"),
        }
        for (f, v) in FIELDS.iter().zip(e.iter()) {
            if !(-32768..=65535).contains(v) {
                return Err(err(format!(
                    "schedule field `{f}` = {v} does not fit 16 bits"
                )));
            }
        }
        l.sched.push(e);
        l.sched_steps.push(si);
        cur = 1 - cur;
    }
    if l.sched.is_empty() {
        return Err(LayoutError::Hardware(
            "the program has no step that does work".into(),
        ));
    }
    l.final_buf = cur;
    // at least two rows, so that a code address always has row bits above the bank bits
    l.act_depth = act.div_ceil(nb).max(2) * nb;
    l.tmax = tmax;
    if l.thresholds.is_empty() {
        l.thresholds.push(0);
    }
    let buf = acc.buffers.ifmap_kib.min(acc.buffers.ofmap_kib) as usize * 1024;
    if act > buf {
        return Err(LayoutError::Hardware(format!(
            "an activation of {act} codes does not fit the description's {} KiB ifmap/ofmap buffers",
            buf / 1024
        )));
    }
    Ok(l)
}
