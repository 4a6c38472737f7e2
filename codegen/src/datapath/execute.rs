//! The program run for its values, one instruction after another in program order (a valid
//! order: every unit's instructions keep their order, and a reader follows the writer it waits
//! for). Loads copy their rows into a buffer slot, which remembers the tile the load named; a
//! GEMM walks its tile's output pixels, output channels and reduction (channels × kernel) over
//! the slots, as im2col would lay them out; the first reduction tile of an output tile starts
//! the accumulators at the bias and latches the channels' requantization parameters; the
//! requantization turns accumulators into codes with the executor's own arithmetic; stores copy
//! the codes out; a residual Add adds the two operand rows its load brought, and an activation
//! looks its codes up in its table. Every access is checked: a tile that reads outside its slot, a slot that holds
//! another tile than the one computed, a transfer outside memory: each is an error naming the
//! instruction, never a silently wrong value.

use etch_program::isa::{Buffer, Dma, Gemm, Insn, Kind, Space, Tile, Vector, VectorOp};
use etch_program::tiling::{ConvShape, PARAM_BYTES};
use etch_program::Program;
use etch_sim::reference::cpu::int::requant::requantize;

use super::image::{Image, LayerConsts, WeightForm};
use super::DatapathError;
use crate::program::Requant;

/// A tile of a convolution as the array (GEMM) or the vector unit (depthwise) computes it.
struct ConvTile {
    input_slot: u32,
    weight_slot: u32,
    output_slot: u32,
    m: usize,
    channels: usize,
    co: usize,
    accumulate: bool,
    tile: Tile,
    depthwise: bool,
}

/// A buffer slot's bytes and the tile its load named.
#[derive(Debug, Clone, Default)]
struct Slot {
    bytes: Vec<u8>,
    tile: Tile,
    rows: u64,
    row_bytes: u64,
    layer: u32,
}

/// One output channel's requantization, latched from the weight slot.
#[derive(Debug, Clone, Copy)]
struct Params {
    requant: Requant,
    zero_point: i32,
    qmin: i32,
    qmax: i32,
}

/// An output slot: accumulators of `images × channels × pixels` (channel-major per image, as
/// the store writes them), the channels' parameters, and the codes once requantized.
#[derive(Debug, Clone, Default)]
struct OutSlot {
    acc: Vec<i32>,
    params: Vec<Params>,
    channels: usize,
    pixels: usize,
    codes: Vec<u8>,
}

/// An 8-bit code as the layer's type holds it.
fn code(byte: u8, signed: bool) -> i32 {
    if signed {
        byte as i8 as i32
    } else {
        byte as i32
    }
}

struct Datapath<'a> {
    program: &'a Program,
    image: &'a Image,
    dram: Vec<u8>,
    global: Vec<u8>,
    input: Vec<Slot>,
    weight: Vec<Slot>,
    output: Vec<OutSlot>,
    /// Per layer: the first output element of its next vector tile.
    next_element: Vec<u64>,
}

/// Runs `program` on its image with `input` codes (row-major, the chain's input shape); returns
/// the output codes.
pub fn execute(program: &Program, image: &Image, input: &[i64]) -> Result<Vec<i64>, DatapathError> {
    if input.len() as u64 != image.input.bytes {
        return Err(DatapathError::InputLength {
            got: input.len(),
            want: image.input.bytes as usize,
        });
    }
    let slots = program.machine.slots.max(1) as usize;
    let mut dp = Datapath {
        program,
        image,
        dram: image.dram.clone(),
        global: vec![0; program.machine.global_bytes as usize],
        input: vec![Slot::default(); slots],
        weight: vec![Slot::default(); slots],
        output: vec![OutSlot::default(); slots],
        next_element: vec![0; program.layers.len()],
    };
    let bytes: Vec<u8> = input.iter().map(|&c| c as u8).collect();
    let r = image.input;
    dp.memory(r.space, r.addr, r.bytes)
        .map_err(|message| DatapathError::Region {
            what: "input",
            message,
        })?
        .copy_from_slice(&bytes);
    for (i, insn) in program.insns.iter().enumerate() {
        let li = insn.layer as usize;
        if !(image.first..=image.last).contains(&li) {
            continue;
        }
        dp.step(insn).map_err(|message| DatapathError::Insn {
            insn: i,
            layer: program.layers[li].name.clone(),
            message,
        })?;
    }
    let r = image.output;
    let out = dp
        .memory(r.space, r.addr, r.bytes)
        .map_err(|message| DatapathError::Region {
            what: "output",
            message,
        })?;
    Ok(out
        .iter()
        .map(|&b| code(b, image.output_signed) as i64)
        .collect())
}

impl Datapath<'_> {
    /// `bytes` bytes of a memory from `addr`.
    fn memory(&mut self, space: Space, addr: u64, bytes: u64) -> Result<&mut [u8], String> {
        let mem = match space {
            Space::Dram => &mut self.dram,
            Space::Global => &mut self.global,
        };
        let len = mem.len() as u64;
        match addr.checked_add(bytes) {
            Some(end) if end <= len => Ok(&mut mem[addr as usize..end as usize]),
            _ => Err(format!(
                "it reaches {} bytes from {addr} of the {} ({len} bytes)",
                bytes,
                space.name()
            )),
        }
    }

    fn step(&mut self, insn: &Insn) -> Result<(), String> {
        match &insn.kind {
            Kind::Load(d) => self.load(d, insn.layer),
            Kind::Store(d) => self.store(d),
            Kind::Gemm(g) => self.gemm(g, insn.layer),
            Kind::Vector(v) => self.vector(v, insn.layer),
        }
    }

    fn load(&mut self, d: &Dma, layer: u32) -> Result<(), String> {
        let mut bytes = Vec::with_capacity((d.rows * d.row_bytes) as usize);
        for r in 0..d.rows {
            bytes.extend_from_slice(self.memory(d.space, d.addr + r * d.stride, d.row_bytes)?);
        }
        let slot = Slot {
            bytes,
            tile: d.tile,
            rows: d.rows,
            row_bytes: d.row_bytes,
            layer,
        };
        let s = d.slot as usize;
        match d.buffer {
            Buffer::Input => *self.input.get_mut(s).ok_or("no such input slot")? = slot,
            Buffer::Weight => *self.weight.get_mut(s).ok_or("no such weight slot")? = slot,
            Buffer::Output => return Err("a load into the output buffer".into()),
        }
        Ok(())
    }

    fn store(&mut self, d: &Dma) -> Result<(), String> {
        let slot = self
            .output
            .get(d.slot as usize)
            .ok_or("no such output slot")?;
        if slot.codes.len() as u64 != d.rows * d.row_bytes {
            return Err(format!(
                "it stores {} × {} bytes but the output slot holds {} codes",
                d.rows,
                d.row_bytes,
                slot.codes.len()
            ));
        }
        let codes = slot.codes.clone();
        for (r, row) in codes.chunks(d.row_bytes.max(1) as usize).enumerate() {
            self.memory(d.space, d.addr + r as u64 * d.stride, d.row_bytes)?
                .copy_from_slice(row);
        }
        Ok(())
    }

    fn consts(&self, layer: u32) -> Result<(&ConvShape, &LayerConsts, u32, bool), String> {
        let pl = &self.program.layers[layer as usize];
        let c = self.image.layers[layer as usize]
            .as_ref()
            .ok_or("the layer is not in the integer chain")?;
        let s = pl.shape.as_ref().ok_or("the layer has no shape")?;
        let whole = pl.tiling.is_some_and(|t| t.whole_weights);
        Ok((s, c, pl.arith.weight_bits, whole))
    }

    fn gemm(&mut self, g: &Gemm, layer: u32) -> Result<(), String> {
        let ka = self.consts(layer)?.0.kernel_area as usize;
        if !(g.k as usize).is_multiple_of(ka) {
            return Err(format!("k = {} is not whole kernels of {ka}", g.k));
        }
        self.conv_tile(
            &ConvTile {
                input_slot: g.input_slot,
                weight_slot: g.weight_slot,
                output_slot: g.output_slot,
                m: g.m as usize,
                channels: g.k as usize / ka,
                co: g.n as usize,
                accumulate: g.accumulate,
                tile: g.tile,
                depthwise: false,
            },
            layer,
        )
    }

    /// A depthwise tile: each output channel reads its own input channel.
    fn depthwise(&mut self, v: &Vector, layer: u32) -> Result<(), String> {
        let pl = &self.program.layers[layer as usize];
        let (s, t) = (pl.shape.as_ref(), pl.tiling.as_ref());
        let (Some(s), Some(t)) = (s, t) else {
            return Err("a depthwise tile of a layer without a tiling".into());
        };
        let co = t
            .out_channels
            .max(1)
            .min(s.cout.saturating_sub(v.tile.co0 as u64)) as usize;
        if co == 0 || !(v.elements as usize).is_multiple_of(co) {
            return Err(format!(
                "{} elements are not whole pixels of {co} channels",
                v.elements
            ));
        }
        self.conv_tile(
            &ConvTile {
                input_slot: v.input_slot,
                weight_slot: v.weight_slot,
                output_slot: v.output_slot,
                m: v.elements as usize / co,
                channels: 1,
                co,
                accumulate: false,
                tile: v.tile,
                depthwise: true,
            },
            layer,
        )
    }

    /// One tile of a convolution: `m` output pixels (whole rows of `tile`'s images) of `co`
    /// output channels from `tile.co0`, over `channels` reduction channels from `tile.c0`.
    fn conv_tile(&mut self, g: &ConvTile, layer: u32) -> Result<(), String> {
        let (s, c, bits, whole_weights) = self.consts(layer)?;
        let (s, c) = (*s, c.clone());
        let t = g.tile;
        let w = &c.window;
        let (kh, kw) = (w.kernel[0], w.kernel[1]);
        let ka = kh * kw;
        let (out_w, in_w) = (s.out_w as usize, s.in_w as usize);
        // the tile: images × rows output rows, channels c0.. and co0..
        let rows_total = g.m / out_w.max(1);
        if rows_total * out_w != g.m {
            return Err(format!("m = {} is not whole rows of {out_w}", g.m));
        }
        let (images, rows) = if t.row0 == 0 && rows_total > s.out_h as usize {
            (rows_total / s.out_h as usize, s.out_h as usize)
        } else {
            (1, rows_total)
        };
        let (c0, cc, co0, co) = (t.c0 as usize, g.channels, t.co0 as usize, g.co);
        // the input channels the tile reads (within its group): its reduction channels, or a
        // depthwise tile's own output channels
        let (read0, reads) = if g.depthwise { (co0, co) } else { (c0, cc) };
        let channels_in_memory = if g.depthwise {
            s.cout
        } else {
            s.cin * s.groups
        } as usize;
        // the input slot: rows of (image, channel) from channel `ic0`, input rows from `in_row0`
        let islot = &self.input[g.input_slot as usize];
        if islot.layer != layer
            || islot.tile.image != t.image
            || islot.tile.row0 != t.row0
            || islot.tile.group != t.group
        {
            return Err(format!(
                "its input slot holds group {} image {} row {} of layer {}, not group {} image {} row {}",
                islot.tile.group, islot.tile.image, islot.tile.row0, islot.layer, t.group, t.image, t.row0
            ));
        }
        let ic0 = islot.tile.c0 as usize;
        let ich = islot.rows as usize / images;
        let in_rows = islot.row_bytes as usize / in_w.max(1);
        let in_row0 = s.in_row0(t.row0 as u64, rows as u64) as usize;
        if read0 < ic0 || read0 + reads > ic0 + ich || (images > 1 && ich != channels_in_memory) {
            return Err(format!(
                "it reads channels {read0}..{} but its input slot holds {ic0}..{} of {images} image(s)",
                read0 + reads,
                ic0 + ich
            ));
        }
        // the weight slot: parameters (on the tile holding reduction channel 0), then codes
        let wslot = &self.weight[g.weight_slot as usize];
        if wslot.layer != layer || wslot.tile.co0 as usize != co0 || wslot.tile.group != t.group {
            return Err(format!(
                "its weight slot holds output channels from {} of layer {}, not from {co0}",
                wslot.tile.co0, wslot.layer
            ));
        }
        let wc0 = wslot.tile.c0 as usize;
        let wc = if whole_weights { s.cin as usize } else { cc };
        if c0 < wc0 || c0 + cc > wc0 + wc {
            return Err(format!(
                "it reads weights of channels {c0}..{} but its slot holds {wc0}..{}",
                c0 + cc,
                wc0 + wc
            ));
        }
        let param_bytes = if wc0 == 0 {
            co * PARAM_BYTES as usize
        } else {
            0
        };
        let need = param_bytes + (co * wc * ka * bits as usize).div_ceil(8);
        if wslot.bytes.len() != need {
            return Err(format!(
                "its weight slot holds {} bytes, not the {need} of {co} × {wc} × {ka} weights",
                wslot.bytes.len()
            ));
        }
        // the slot's weights decoded once: `[reduction channel][kernel][output channel]`
        let decode = |i: usize| -> i32 {
            let at = i * bits as usize;
            let bytes = &wslot.bytes[param_bytes..];
            let mut v = 0u32;
            for b in 0..bits as usize {
                v |= ((bytes[(at + b) / 8] >> ((at + b) % 8)) & 1) as u32 * (1 << b);
            }
            match c.weights {
                // sign-extend
                WeightForm::Int => ((v << (32 - bits)) as i32) >> (32 - bits),
                WeightForm::Shift => {
                    let field = v & ((1 << (bits - 1)) - 1);
                    let mag = if field == 0 { 0 } else { 1i32 << (field - 1) };
                    if v >> (bits - 1) == 1 {
                        -mag
                    } else {
                        mag
                    }
                }
                WeightForm::Binary => {
                    if v == 1 {
                        1
                    } else {
                        -1
                    }
                }
            }
        };
        let weights: Vec<i32> = (0..co * wc * ka).map(decode).collect();
        // output channel `o` of the tile, reduction channel `ci` of the layer
        let weight = |o: usize, ci: usize, kk: usize| weights[((ci - wc0) * ka + kk) * co + o];
        let out = &mut self.output[g.output_slot as usize];
        let pixels = rows * out_w;
        if !g.accumulate {
            if param_bytes == 0 {
                return Err("the first reduction tile's weight slot has no parameters".into());
            }
            let p = &wslot.bytes[..param_bytes];
            let word = |o: usize, k: usize| {
                let at = o * PARAM_BYTES as usize + k;
                i32::from_le_bytes([p[at], p[at + 1], p[at + 2], p[at + 3]])
            };
            *out = OutSlot {
                acc: (0..images)
                    .flat_map(|_| {
                        (0..co).flat_map(move |o| std::iter::repeat_n(word(o, 0), pixels))
                    })
                    .collect(),
                params: (0..co)
                    .map(|o| {
                        let at = o * PARAM_BYTES as usize + 8;
                        Params {
                            requant: Requant {
                                multiplier: word(o, 4),
                                shift: p[at] as u32,
                            },
                            zero_point: code(p[at + 1], c.output_signed),
                            qmin: code(p[at + 2], c.output_signed),
                            qmax: code(p[at + 3], c.output_signed),
                        }
                    })
                    .collect(),
                channels: co,
                pixels,
                codes: Vec::new(),
            };
        } else if out.acc.len() != images * co * pixels {
            return Err(format!(
                "it accumulates {images} × {co} × {pixels} values onto an output slot of {}",
                out.acc.len()
            ));
        }
        let (sh, sw) = (w.stride[0] as isize, w.stride[1] as isize);
        let (dh, dw) = (w.dilation[0] as isize, w.dilation[1] as isize);
        let (ph, pw) = (w.pad[0] as isize, w.pad[1] as isize);
        let in_h = s.in_h as isize;
        for img in 0..images {
            for y in 0..rows {
                for x in 0..out_w {
                    for o in 0..co {
                        let mut acc = out.acc[(img * co + o) * pixels + y * out_w + x];
                        for ci in c0..c0 + cc {
                            // the input channel within the group, and in the layer's input
                            let ch = if g.depthwise { co0 + o } else { ci };
                            let abs_ch = t.group as usize * s.cin as usize + ch;
                            let row = (img * ich + ch - ic0) * islot.row_bytes as usize;
                            for ky in 0..kh {
                                let iy =
                                    (t.row0 as usize + y) as isize * sh + ky as isize * dh - ph;
                                if iy < 0 || iy >= in_h {
                                    continue;
                                }
                                let ry = iy as usize;
                                if ry < in_row0 || ry >= in_row0 + in_rows {
                                    return Err(format!(
                                        "it reads input row {ry}, outside rows {in_row0}..{} in its slot",
                                        in_row0 + in_rows
                                    ));
                                }
                                for kx in 0..kw {
                                    let ix = x as isize * sw + kx as isize * dw - pw;
                                    if ix < 0 || ix >= in_w as isize {
                                        continue;
                                    }
                                    let q = code(
                                        islot.bytes[row + (ry - in_row0) * in_w + ix as usize],
                                        c.input_signed,
                                    );
                                    let xd = c.input.value(q as i64, abs_ch);
                                    let wv = weight(o, ci, ky * kw + kx);
                                    acc = acc.wrapping_add(xd.wrapping_mul(wv));
                                }
                            }
                        }
                        out.acc[(img * co + o) * pixels + y * out_w + x] = acc;
                    }
                }
            }
        }
        Ok(())
    }

    /// Max pooling of whole output rows (or planes): the input slot holds the input rows their
    /// windows read, one contiguous run from the first row the tile's first output row reads
    /// (`lower::PoolRows::input_span`); padding takes no part in a maximum.
    fn pool(&mut self, v: &Vector, layer: u32) -> Result<(), String> {
        let c = self.image.layers[layer as usize]
            .as_ref()
            .ok_or("the layer is not in the integer chain")?;
        let w = &c.window;
        let (kh, kw, oh, ow) = (w.kernel[0], w.kernel[1], w.out[0], w.out[1]);
        let [in_h, in_w] = c.input_hw;
        let (plane, in_plane) = (oh * ow, in_h * in_w);
        let e0 = v.tile.c0 as usize * plane + v.tile.row0 as usize * ow;
        let expected = &mut self.next_element[layer as usize];
        if e0 as u64 != *expected {
            return Err(format!(
                "its tile starts at output element {e0} (plane {}, row {}), but the layer's next is {expected}: pooling tiles must be whole output rows in order",
                v.tile.c0, v.tile.row0
            ));
        }
        *expected += v.elements;
        let islot = &self.input[v.input_slot as usize];
        let e = v.elements as usize;
        if islot.layer != layer {
            return Err(format!(
                "its input slot holds layer {}, not this one",
                islot.layer
            ));
        }
        if !e.is_multiple_of(ow) {
            return Err(format!(
                "its tile of {e} outputs is not whole output rows of {ow}: an output row's windows do not fit the input slot"
            ));
        }
        // the first input element the slot holds: the first row the tile's first output row reads
        let lo = (v.tile.row0 as usize * w.stride[0])
            .saturating_sub(w.pad[0])
            .min(in_h);
        let first = v.tile.c0 as usize * in_plane + lo * in_w;
        let mut codes = Vec::with_capacity(e);
        for el in e0..e0 + e {
            let (p, y, x) = (el / plane, el % plane / ow, el % ow);
            let mut best = i32::MIN;
            for ky in 0..kh {
                let iy = (y * w.stride[0] + ky * w.dilation[0]) as isize - w.pad[0] as isize;
                if iy < 0 || iy >= in_h as isize {
                    continue;
                }
                for kx in 0..kw {
                    let ix = (x * w.stride[1] + kx * w.dilation[1]) as isize - w.pad[1] as isize;
                    if ix < 0 || ix >= in_w as isize {
                        continue;
                    }
                    let at = (p * in_plane + iy as usize * in_w + ix as usize)
                        .checked_sub(first)
                        .filter(|&a| a < islot.bytes.len())
                        .ok_or_else(|| {
                            format!(
                                "output ({p}, {y}, {x}) reads input row {iy} of plane {p}, outside the {} bytes its slot holds from element {first}",
                                islot.bytes.len()
                            )
                        })?;
                    best = best.max(code(islot.bytes[at], c.input_signed));
                }
            }
            codes.push(best as u8);
        }
        self.output[v.output_slot as usize] = OutSlot {
            codes,
            ..OutSlot::default()
        };
        Ok(())
    }

    /// A residual Add: the input slot holds the two operands' runs of the tile as two rows.
    fn add(&mut self, v: &Vector, layer: u32) -> Result<(), String> {
        let c = self.image.layers[layer as usize]
            .as_ref()
            .ok_or("the layer is not in the integer chain")?;
        let add = c
            .add
            .ok_or("an element-wise instruction of a layer that is not an Add")?;
        let islot = &self.input[v.input_slot as usize];
        let e = v.elements as usize;
        if islot.layer != layer || islot.rows != 2 || islot.row_bytes as usize != e {
            return Err(format!(
                "its input slot holds {} × {} bytes of layer {}, not the two operands' {e} codes of this one",
                islot.rows, islot.row_bytes, islot.layer
            ));
        }
        let codes = (0..e)
            .map(|i| {
                let a = code(islot.bytes[i], c.input_signed);
                let b = code(islot.bytes[e + i], add.second_signed);
                (a + b + add.offset).clamp(add.qmin, add.qmax) as u8
            })
            .collect();
        self.output[v.output_slot as usize] = OutSlot {
            codes,
            ..OutSlot::default()
        };
        Ok(())
    }

    /// A quantized activation: each code of the input slot looked up in the layer's table.
    fn table(&mut self, v: &Vector, layer: u32) -> Result<(), String> {
        let c = self.image.layers[layer as usize]
            .as_ref()
            .ok_or("the layer is not in the integer chain")?;
        let table = c
            .table
            .as_ref()
            .ok_or("a table instruction of a layer without a table")?;
        let islot = &self.input[v.input_slot as usize];
        let e = v.elements as usize;
        if islot.layer != layer || islot.bytes.len() != e {
            return Err(format!(
                "its input slot holds {} bytes of layer {}, not the {e} codes of this one",
                islot.bytes.len(),
                islot.layer
            ));
        }
        let codes = islot.bytes.iter().map(|&b| table[b as usize]).collect();
        self.output[v.output_slot as usize] = OutSlot {
            codes,
            ..OutSlot::default()
        };
        Ok(())
    }

    fn vector(&mut self, v: &Vector, layer: u32) -> Result<(), String> {
        if v.op == VectorOp::Pool {
            return self.pool(v, layer);
        }
        if v.op == VectorOp::Depthwise {
            return self.depthwise(v, layer);
        }
        if v.op == VectorOp::Elementwise {
            return self.add(v, layer);
        }
        if v.op == VectorOp::Table {
            return self.table(v, layer);
        }
        if v.op != VectorOp::Requantize {
            let name = &self.program.layers[layer as usize].name;
            return Err(format!(
                "layer `{name}`: vector {} is not run yet",
                v.op.name()
            ));
        }
        let out = &mut self.output[v.output_slot as usize];
        if out.acc.len() as u64 != v.elements {
            return Err(format!(
                "it requantizes {} values but the output slot holds {}",
                v.elements,
                out.acc.len()
            ));
        }
        let (channels, pixels) = (out.channels, out.pixels);
        out.codes = out
            .acc
            .iter()
            .enumerate()
            .map(|(i, &a)| {
                let p = &out.params[(i / pixels) % channels];
                requantize(a, &p.requant, p.zero_point, p.qmin, p.qmax) as u8
            })
            .collect();
        Ok(())
    }
}
