//! The layer functions and the dataflow top. Each layer function reads its whole input from a
//! stream into a local buffer, computes its outputs in the CPU executor's order (channel-major,
//! `[C, H, W]`) and streams them out, so a layer's stream order is the tensor's memory order.
//!
//! A dot-product layer (Conv, Gemm) gathers one receptive field (`f`, or the bit words `xb`/`vb`
//! for XNOR) per output pixel and then runs every output channel over it, as
//! `etch_sim::reference::cpu::int::{conv, gemm}` do: zero point off (or thresholded to ±1),
//! padding contributing nothing, a wrapping 32-bit accumulator, bias, requantization.

use super::cpp::{ArrayValue, ConstArray, File, Function, Item, Param, Stmt};
use super::{numel, CodeRange, Options};
use crate::program::{InputCode, IntLayer, IntOp, IntProgram, IntStep, WeightCodes, Window2};
use crate::CodegenError;

/// The three generated files of the design.
pub(super) struct Design {
    pub weights: File,
    pub header: File,
    pub source: File,
}

/// A C identifier for step `i`: `l{i}_` and the node name with everything else turned to `_`.
fn ident(i: usize, name: &str) -> String {
    let mut s = format!("l{i}_");
    let mut last_us = true;
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c);
            last_us = false;
        } else if !last_us {
            s.push('_');
            last_us = true;
        }
    }
    s.trim_end_matches('_').to_string()
}

fn ints(v: impl IntoIterator<Item = i64>) -> Vec<ArrayValue> {
    v.into_iter().map(ArrayValue::Int).collect()
}

/// `const` arrays of a dot-product layer: weights, bias, multipliers, shifts, thresholds.
fn layer_arrays(id: &str, l: &IntLayer) -> Vec<ConstArray> {
    let (m, k) = (l.outs, l.reduction);
    let mut out = Vec::new();
    let arr = |suffix: &str, ty: &'static str, dims: Vec<usize>, values, doc: &str| ConstArray {
        doc: vec![format!("{id}: {doc}")],
        ty,
        name: format!("{id}_{suffix}"),
        dims,
        values,
    };
    match &l.weights {
        WeightCodes::Mac(w) => out.push(arr(
            "w",
            "int8_t",
            vec![m, k],
            ints(w.iter().map(|&v| v as i64)),
            "integer weight codes, [output channel][reduction]",
        )),
        WeightCodes::Shift(w) => {
            out.push(arr(
                "w_sign",
                "int8_t",
                vec![m, k],
                ints(w.iter().map(|c| match (c.exp, c.negative) {
                    (None, _) => 0,
                    (Some(_), true) => -1,
                    (Some(_), false) => 1,
                })),
                "power-of-two weights: sign (+1, -1, or 0 for the code 0)",
            ));
            out.push(arr(
                "w_exp",
                "uint8_t",
                vec![m, k],
                ints(w.iter().map(|c| c.exp.unwrap_or(0) as i64)),
                "power-of-two weights: exponent (the product is x << exp)",
            ));
        }
        WeightCodes::Xnor { bits, words } => out.push(arr(
            "w",
            "uint64_t",
            vec![m, *words],
            bits.iter().map(|&b| ArrayValue::Word(b)).collect(),
            "binary weights, 64 to a word (bit 1 = +1)",
        )),
    }
    out.push(arr(
        "bias",
        "int32_t",
        vec![m],
        ints(l.bias.iter().map(|&b| b as i64)),
        "int32 bias in the accumulator's scale",
    ));
    out.push(arr(
        "mult",
        "int32_t",
        vec![m],
        ints(l.requant.iter().map(|r| r.multiplier as i64)),
        "requantization multiplier (Q0.31)",
    ));
    out.push(arr(
        "shift",
        "uint8_t",
        vec![m],
        ints(l.requant.iter().map(|r| r.shift as i64)),
        "requantization right shift",
    ));
    if let InputCode::Binary { thresholds } = &l.input {
        if thresholds.len() > 1 {
            out.push(arr(
                "thr",
                "int32_t",
                vec![thresholds.len()],
                ints(thresholds.iter().map(|&t| t as i64)),
                "binary-activation thresholds per input channel (x >= thr is +1)",
            ));
        }
    }
    out
}

/// The threshold of input channel `ch` (an expression).
fn threshold(id: &str, thresholds: &[i32], ch: &str) -> String {
    if thresholds.len() == 1 {
        thresholds[0].to_string()
    } else {
        format!("{id}_thr[{ch}]")
    }
}

/// The decoded value of code `q` in input channel `ch`: `q − zp`, or ±1.
fn decode(id: &str, input: &InputCode, q: &str, ch: &str) -> String {
    match input {
        InputCode::Int { zero_point } => format!("(int32_t){q} - ({zero_point})"),
        InputCode::Binary { thresholds } => {
            format!(
                "((int32_t){q} >= {} ? 1 : -1)",
                threshold(id, thresholds, ch)
            )
        }
    }
}

/// Whether code `q` of channel `ch` is a +1 (XNOR inputs).
fn bit(id: &str, input: &InputCode, q: &str, ch: &str) -> String {
    match input {
        InputCode::Int { zero_point } => format!("(int32_t){q} >= {zero_point}"),
        InputCode::Binary { thresholds } => {
            format!("(int32_t){q} >= {}", threshold(id, thresholds, ch))
        }
    }
}

/// `o·stride − pad + t·dilation` along axis `a` of window `w`, without the terms that are 0.
fn tap(o: &str, w: &Window2, a: usize, t: &str) -> String {
    let mut s = if w.stride[a] == 1 {
        o.to_string()
    } else {
        format!("{o} * {}", w.stride[a])
    };
    if w.pad[a] != 0 {
        s += &format!(" - {}", w.pad[a]);
    }
    if w.dilation[a] == 1 {
        s += &format!(" + {t}");
    } else {
        s += &format!(" + {t} * {}", w.dilation[a]);
    }
    s
}

fn read_loop(n: usize) -> Stmt {
    Stmt::for_range(
        "read",
        "i",
        n,
        vec![
            Stmt::pragma("pipeline II=1"),
            Stmt::expr("x[i] = in.read()"),
        ],
    )
}

fn write_loop(n: usize) -> Stmt {
    Stmt::for_range(
        "write",
        "i",
        n,
        vec![Stmt::pragma("pipeline II=1"), Stmt::expr("out.write(y[i])")],
    )
}

fn stream_params(in_t: &str, out_t: &str) -> Vec<Param> {
    vec![
        Param::new(format!("hls::stream<{in_t}> &"), "in"),
        Param::new(format!("hls::stream<{out_t}> &"), "out"),
    ]
}

/// The C types of a step's input and output codes.
#[derive(Clone, Copy)]
struct Types {
    input: &'static str,
    output: &'static str,
}

/// One dot-product layer's function: a Conv (`window` set) or a Gemm.
fn dot_layer(
    id: &str,
    step: &IntStep,
    l: &IntLayer,
    window: Option<&Window2>,
    ty: Types,
) -> Result<Function, CodegenError> {
    let (in_t, out_t) = (ty.input, ty.output);
    let [c, h, w] = step.input_chw;
    let (m, k) = (l.outs, l.reduction);
    let (ho, wo) = window.map_or((1, 1), |w| (w.out[0], w.out[1]));
    let p = ho * wo;
    let xnor = l.binary_dot();
    let words = k.div_ceil(64).max(1);
    if numel(&step.output_shape) != m * p || numel(&step.input_shape) != c * h * w {
        return Err(CodegenError::Unsupported(format!(
            "layer `{}`: shapes {:?} -> {:?} do not match its weights ({m} outputs, {k} reduction)",
            step.name, step.input_shape, step.output_shape
        )));
    }
    let mut body = vec![
        Stmt::expr(format!("{in_t} x[{}]", c * h * w)),
        Stmt::expr(format!("{out_t} y[{}]", m * p)),
    ];
    // one output channel's weights are read in one cycle
    let partition = |name: &str, n: usize| {
        if n <= 256 {
            Stmt::pragma(format!("array_partition variable={name} complete dim=2"))
        } else {
            Stmt::pragma(format!(
                "array_partition variable={name} cyclic factor=64 dim=2"
            ))
        }
    };
    match &l.weights {
        WeightCodes::Shift(_) => {
            body.push(partition(&format!("{id}_w_sign"), k));
            body.push(partition(&format!("{id}_w_exp"), k));
        }
        WeightCodes::Xnor { .. } => body.push(partition(&format!("{id}_w"), words)),
        WeightCodes::Mac(_) => body.push(partition(&format!("{id}_w"), k)),
    }
    body.push(read_loop(c * h * w));

    // the receptive field of output pixel p: input channel c, kernel row, kernel column
    let mut field = Vec::new();
    let (q, ch, inside) = match window {
        Some(win) => {
            let [kh, kw] = win.kernel;
            field.push(Stmt::expr(format!("const int c = t / {}", kh * kw)));
            let ki = if kw == 1 {
                format!("(t % {kh})")
            } else {
                format!("((t / {kw}) % {kh})")
            };
            field.push(Stmt::expr(format!(
                "const int ii = {}",
                tap("oi", win, 0, &ki)
            )));
            field.push(Stmt::expr(format!(
                "const int jj = {}",
                tap("oj", win, 1, &format!("(t % {kw})"))
            )));
            field.push(Stmt::expr(format!(
                "const bool inside = ii >= 0 && ii < {h} && jj >= 0 && jj < {w}"
            )));
            (
                format!("x[(c * {h} + ii) * {w} + jj]"),
                "c".to_string(),
                Some("inside"),
            )
        }
        // a GEMM row: channel = feature index, every position valid
        None => ("x[t]".to_string(), "t".to_string(), None),
    };
    let mut per_pixel = Vec::new();
    if xnor {
        per_pixel.push(Stmt::expr(format!("uint64_t xb[{words}]")));
        per_pixel.push(Stmt::expr(format!("uint64_t vb[{words}]")));
        per_pixel.push(Stmt::pragma("array_partition variable=xb complete"));
        per_pixel.push(Stmt::pragma("array_partition variable=vb complete"));
        per_pixel.push(Stmt::for_range(
            "clear",
            "v",
            words,
            vec![
                Stmt::pragma("unroll"),
                Stmt::expr("xb[v] = 0"),
                Stmt::expr("vb[v] = 0"),
            ],
        ));
        let set = vec![
            Stmt::expr("vb[t / 64] |= (uint64_t)1 << (t % 64)"),
            Stmt::if_(
                bit(id, &l.input, &q, &ch),
                vec![Stmt::expr("xb[t / 64] |= (uint64_t)1 << (t % 64)")],
            ),
        ];
        match inside {
            Some(cond) => field.push(Stmt::if_(cond, set)),
            None => field.extend(set),
        }
    } else {
        per_pixel.push(Stmt::expr(format!("int32_t f[{k}]")));
        per_pixel.push(Stmt::pragma("array_partition variable=f complete"));
        let v = decode(id, &l.input, &q, &ch);
        field.push(Stmt::expr(match inside {
            Some(cond) => format!("f[t] = {cond} ? {v} : 0"),
            None => format!("f[t] = {v}"),
        }));
    }
    let mut gather = vec![Stmt::pragma("pipeline II=1")];
    gather.extend(field);
    per_pixel.push(Stmt::for_range("field", "t", k, gather));

    // every output channel over that field
    let mut channel = vec![Stmt::pragma("pipeline II=1")];
    channel.extend(match &l.weights {
        WeightCodes::Mac(_) => vec![
            Stmt::expr("int32_t acc = 0"),
            Stmt::for_range(
                "mac",
                "t",
                k,
                vec![Stmt::expr(format!(
                    "acc = etch_wrap_add(acc, etch_wrap_mul(f[t], {id}_w[o][t]))"
                ))],
            ),
        ],
        WeightCodes::Shift(_) => vec![
            Stmt::expr("int32_t acc = 0"),
            Stmt::for_range(
                "shift_add",
                "t",
                k,
                vec![
                    Stmt::expr(format!(
                        "const int32_t prod = etch_wrap_shl(f[t], {id}_w_exp[o][t])"
                    )),
                    Stmt::expr(format!(
                        "acc = {id}_w_sign[o][t] > 0 ? etch_wrap_add(acc, prod) : {id}_w_sign[o][t] < 0 ? etch_wrap_sub(acc, prod) : acc"
                    )),
                ],
            ),
        ],
        WeightCodes::Xnor { .. } => vec![
            Stmt::expr("int32_t matches = 0"),
            Stmt::expr("int32_t valid = 0"),
            Stmt::for_range(
                "xnor_popcount",
                "v",
                words,
                vec![
                    Stmt::expr(format!(
                        "matches += etch_popcount64(~(xb[v] ^ {id}_w[o][v]) & vb[v])"
                    )),
                    Stmt::expr("valid += etch_popcount64(vb[v])"),
                ],
            ),
            Stmt::expr("const int32_t acc = 2 * matches - valid"),
        ],
    });
    let y_index = if p == 1 {
        "o".to_string()
    } else {
        format!("o * {p} + p")
    };
    channel.push(Stmt::expr(format!(
        "y[{y_index}] = ({out_t})etch_requantize(etch_wrap_add(acc, {id}_bias[o]), {id}_mult[o], {id}_shift[o], {}, {}, {})",
        l.zero_point, l.qmin, l.qmax
    )));
    per_pixel.push(Stmt::for_range("channel", "o", m, channel));

    match window {
        Some(_) => {
            let mut pixel = vec![
                Stmt::expr(format!("const int oi = p / {wo}")),
                Stmt::expr(format!("const int oj = p % {wo}")),
            ];
            pixel.extend(per_pixel);
            body.push(Stmt::for_range("pixel", "p", p, pixel));
        }
        None => body.extend(per_pixel),
    }
    body.push(write_loop(m * p));

    let what = match &l.weights {
        WeightCodes::Mac(_) => "integer multiply-accumulate",
        WeightCodes::Shift(_) => "power-of-two shift-add",
        WeightCodes::Xnor { .. } => "XNOR-popcount",
    };
    Ok(Function {
        doc: vec![format!(
            "{}: {} ({what}), {:?} -> {:?}",
            step.name,
            if window.is_some() { "Conv" } else { "Gemm" },
            step.input_shape,
            step.output_shape
        )],
        is_static: false,
        ret: "void".into(),
        name: id.into(),
        params: stream_params(in_t, out_t),
        body,
    })
}

/// MaxPool on codes: the largest code of each window; padding never wins.
fn max_pool(id: &str, step: &IntStep, win: &Window2, t: &str) -> Result<Function, CodegenError> {
    let [c, h, w] = step.input_chw;
    let [ho, wo] = win.out;
    let [kh, kw] = win.kernel;
    if numel(&step.output_shape) != c * ho * wo {
        return Err(CodegenError::Unsupported(format!(
            "MaxPool `{}`: output shape {:?} does not match its window",
            step.name, step.output_shape
        )));
    }
    let window = vec![
        Stmt::expr(format!(
            "const int ii = {}",
            tap("oi", win, 0, &format!("(t / {kw})"))
        )),
        Stmt::expr(format!(
            "const int jj = {}",
            tap("oj", win, 1, &format!("(t % {kw})"))
        )),
        Stmt::if_(
            format!("ii >= 0 && ii < {h} && jj >= 0 && jj < {w}"),
            vec![
                Stmt::expr(format!("const int32_t v = x[(ch * {h} + ii) * {w} + jj]")),
                Stmt::if_("v > best", vec![Stmt::expr("best = v")]),
            ],
        ),
    ];
    let pool = vec![
        Stmt::pragma("pipeline II=1"),
        Stmt::expr(format!("const int ch = i / {}", ho * wo)),
        Stmt::expr(format!("const int oi = (i / {wo}) % {ho}")),
        Stmt::expr(format!("const int oj = i % {wo}")),
        Stmt::expr("int32_t best = INT32_MIN"),
        Stmt::for_range("window", "t", kh * kw, window),
        Stmt::expr(format!("out.write(({t})best)")),
    ];
    Ok(Function {
        doc: vec![format!(
            "{}: MaxPool {kh}x{kw} on codes, {:?} -> {:?}",
            step.name, step.input_shape, step.output_shape
        )],
        is_static: false,
        ret: "void".into(),
        name: id.into(),
        params: stream_params(t, t),
        body: vec![
            Stmt::expr(format!("{t} x[{}]", c * h * w)),
            read_loop(c * h * w),
            Stmt::for_range("pool", "i", c * ho * wo, pool),
        ],
    })
}

/// The weights header, the top header and the design source.
pub(super) fn design(p: &IntProgram, opts: &Options) -> Result<Design, CodegenError> {
    let mut weights = vec![
        Item::Comment(vec![format!(
            "Weights and requantization constants of {}, as etch's integer datapath holds them.",
            opts.model
        )]),
        Item::include("cstdint", true),
    ];
    let mut functions = Vec::new();
    // (function, input type, output type, output codes) of every step that computes
    let mut calls: Vec<(String, Types, usize)> = Vec::new();
    let mut range = opts.input_range;
    for (i, step) in p.steps.iter().enumerate() {
        let id = ident(i, &step.name);
        let in_t = range.c_type();
        if let Some(l) = step.op.layer() {
            range = CodeRange {
                min: l.qmin,
                max: l.qmax,
            };
        }
        let ty = Types {
            input: in_t,
            output: range.c_type(),
        };
        let f = match &step.op {
            IntOp::Reshape => continue,
            IntOp::Conv { layer, window, .. } => {
                weights.extend(layer_arrays(&id, layer).into_iter().map(Item::Array));
                dot_layer(&id, step, layer, Some(window), ty)?
            }
            IntOp::Gemm { layer } => {
                weights.extend(layer_arrays(&id, layer).into_iter().map(Item::Array));
                dot_layer(&id, step, layer, None, ty)?
            }
            IntOp::MaxPool { window } => max_pool(&id, step, window, in_t)?,
            IntOp::Table { .. } => {
                return Err(CodegenError::Unsupported(format!(
                    "`{}`: the HLS kernels have no activation tables yet",
                    step.name
                )))
            }
            IntOp::Add { .. } | IntOp::Concat => {
                return Err(CodegenError::Unsupported(format!(
                    "`{}`: the HLS dataflow is one chain of layers, and a residual Add or a concatenation reads more than one",
                    step.name
                )))
            }
        };
        calls.push((id, ty, numel(&step.output_shape)));
        functions.push(f);
    }
    let (Some(first), Some(last)) = (calls.first(), calls.last()) else {
        return Err(CodegenError::Unsupported(
            "the model's integer program has no layer that computes".into(),
        ));
    };
    let (in_t, out_t) = (first.1.input, last.1.output);

    // the dataflow top: one stream between consecutive layers, deep enough for a whole tensor
    let mut top = vec![
        Stmt::pragma("interface axis port=in"),
        Stmt::pragma("interface axis port=out"),
        Stmt::pragma("dataflow"),
    ];
    for (i, w) in calls.windows(2).enumerate() {
        top.push(Stmt::expr(format!(
            "hls::stream<{}> s{i}(\"s{i}\")",
            w[0].1.output
        )));
        top.push(Stmt::pragma(format!(
            "stream variable=s{i} depth={}",
            w[0].2
        )));
    }
    for (i, (name, ..)) in calls.iter().enumerate() {
        let src = if i == 0 {
            "in".to_string()
        } else {
            format!("s{}", i - 1)
        };
        let dst = if i + 1 == calls.len() {
            "out".to_string()
        } else {
            format!("s{i}")
        };
        top.push(Stmt::expr(format!("{name}({src}, {dst})")));
    }
    let top_fn = Function {
        doc: vec![
            format!(
                "{}: one sample's input codes in, its output codes out.",
                opts.model
            ),
            format!(
                "in: `{}` {:?}; out: `{}` {:?}.",
                p.input, p.input_shape, p.output, p.output_shape
            ),
        ],
        is_static: false,
        ret: "void".into(),
        name: "etch_top".into(),
        params: stream_params("etch_in_t", "etch_out_t"),
        body: top,
    };

    let header = File {
        name: "etch_top.h".into(),
        header: true,
        items: vec![
            Item::Comment(vec![format!(
                "{} as HLS C++, written by etch (`etch compile --emit hls`).",
                opts.model
            )]),
            Item::include("cstdint", true),
            Item::include("etch_stream.h", false),
            Item::Alias {
                name: "etch_in_t".into(),
                ty: in_t.into(),
            },
            Item::Alias {
                name: "etch_out_t".into(),
                ty: out_t.into(),
            },
            Item::Constant {
                name: "ETCH_IN_LEN".into(),
                value: numel(&p.input_shape) as i64,
            },
            Item::Constant {
                name: "ETCH_OUT_LEN".into(),
                value: numel(&p.output_shape) as i64,
            },
            Item::Declaration(Function {
                body: vec![],
                ..top_fn.clone()
            }),
        ],
    };
    let mut items = vec![
        Item::include("cstdint", true),
        Item::include("etch_top.h", false),
        Item::include("etch_int.h", false),
        Item::include("etch_weights.h", false),
    ];
    items.extend(functions.into_iter().map(Item::Function));
    items.push(Item::Function(top_fn));
    Ok(Design {
        weights: File {
            name: "etch_weights.h".into(),
            header: true,
            items: weights,
        },
        header,
        source: File {
            name: super::TOP_SOURCE.into(),
            header: false,
            items,
        },
    })
}
