//! The binary form of an instruction: one 256-bit word, as the accelerator's instruction memories
//! hold it. The field layout is data (`FIELDS`): `encode` writes it and the RTL emitter builds
//! the decoder from the same table, so the two cannot disagree. A value too wide for its field
//! is an error, never truncated.

use crate::isa::{Buffer, Dma, Gemm, Insn, Kind, Space, Tile, Tokens, Vector, VectorOp};

/// Bits in an instruction word.
pub const WORD_BITS: u32 = 256;

/// A field of the word: where it sits and how wide it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    pub name: &'static str,
    pub lsb: u32,
    pub width: u32,
}

const fn f(name: &'static str, lsb: u32, width: u32) -> Field {
    Field { name, lsb, width }
}

/// Which kind of instruction the word holds (`OPCODE`).
pub const OP_LOAD: u64 = 0;
pub const OP_STORE: u64 = 1;
pub const OP_GEMM: u64 = 2;
pub const OP_VECTOR: u64 = 3;

// Fields every word has.
pub const OPCODE: Field = f("opcode", 0, 2);
pub const POP: Field = f("pop", 2, 7);
pub const PUSH: Field = f("push", 9, 7);
pub const LAYER: Field = f("layer", 16, 16);
// LOAD / STORE
pub const DMA_BUFFER: Field = f("buffer", 32, 2);
pub const DMA_SLOT: Field = f("slot", 34, 2);
pub const DMA_SPACE: Field = f("space", 36, 1);
pub const DMA_ADDR: Field = f("addr", 40, 40);
pub const DMA_ROWS: Field = f("rows", 80, 24);
pub const DMA_ROW_BYTES: Field = f("row_bytes", 104, 32);
pub const DMA_STRIDE: Field = f("stride", 136, 40);
// GEMM
pub const GEMM_INPUT_SLOT: Field = f("input_slot", 32, 2);
pub const GEMM_WEIGHT_SLOT: Field = f("weight_slot", 34, 2);
pub const GEMM_OUTPUT_SLOT: Field = f("output_slot", 36, 2);
pub const GEMM_ACCUMULATE: Field = f("accumulate", 38, 1);
pub const GEMM_M: Field = f("m", 40, 24);
pub const GEMM_K: Field = f("k", 64, 24);
pub const GEMM_N: Field = f("n", 88, 24);
pub const GEMM_MACS: Field = f("macs", 112, 40);
// VECTOR
pub const VEC_OP: Field = f("vector_op", 32, 3);
pub const VEC_INPUT_SLOT: Field = f("input_slot", 35, 2);
pub const VEC_OUTPUT_SLOT: Field = f("output_slot", 37, 2);
pub const VEC_ELEMENTS: Field = f("elements", 40, 48);
pub const VEC_OPS: Field = f("ops", 88, 48);
pub const VEC_WEIGHT_SLOT: Field = f("weight_slot", 136, 2);
// the tile's coordinates, in the same place in every kind
pub const TILE_GROUP: Field = f("group", 176, 16);
pub const TILE_IMAGE: Field = f("image", 192, 16);
pub const TILE_ROW0: Field = f("row0", 208, 16);
pub const TILE_C0: Field = f("c0", 224, 16);
pub const TILE_CO0: Field = f("co0", 240, 16);

/// The tile fields.
pub const TILE_FIELDS: [Field; 5] = [TILE_GROUP, TILE_IMAGE, TILE_ROW0, TILE_C0, TILE_CO0];

/// Every field, for the decoder and the documentation.
pub const FIELDS: [Field; 30] = [
    OPCODE,
    POP,
    PUSH,
    LAYER,
    DMA_BUFFER,
    DMA_SLOT,
    DMA_SPACE,
    DMA_ADDR,
    DMA_ROWS,
    DMA_ROW_BYTES,
    DMA_STRIDE,
    GEMM_INPUT_SLOT,
    GEMM_WEIGHT_SLOT,
    GEMM_OUTPUT_SLOT,
    GEMM_ACCUMULATE,
    GEMM_M,
    GEMM_K,
    GEMM_N,
    GEMM_MACS,
    VEC_OP,
    VEC_INPUT_SLOT,
    VEC_OUTPUT_SLOT,
    VEC_ELEMENTS,
    VEC_OPS,
    VEC_WEIGHT_SLOT,
    TILE_GROUP,
    TILE_IMAGE,
    TILE_ROW0,
    TILE_C0,
    TILE_CO0,
];

/// An instruction word, least significant 64-bit limb first.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Word(pub [u64; 4]);

impl Word {
    /// Sets a field (its low `width` bits of `v`).
    pub fn set(&mut self, fld: Field, v: u64) {
        for b in 0..fld.width {
            if v >> b & 1 == 1 {
                let at = fld.lsb + b;
                self.0[(at / 64) as usize] |= 1 << (at % 64);
            }
        }
    }
    /// The value of a field.
    pub fn get(&self, fld: Field) -> u64 {
        (0..fld.width).fold(0, |v, b| {
            let at = fld.lsb + b;
            v | (self.0[(at / 64) as usize] >> (at % 64) & 1) << b
        })
    }
    /// A word from its `$readmemh` line (64 hexadecimal digits, most significant first).
    pub fn from_hex(line: &str) -> Option<Word> {
        let line = line.trim();
        if line.len() != 64 || !line.is_ascii() {
            return None;
        }
        let mut w = Word::default();
        for (k, limb) in w.0.iter_mut().rev().enumerate() {
            *limb = u64::from_str_radix(&line[k * 16..k * 16 + 16], 16).ok()?;
        }
        Some(w)
    }
    /// The word with one bit flipped.
    pub fn flip(mut self, bit: u32) -> Word {
        self.0[(bit / 64) as usize] ^= 1 << (bit % 64);
        self
    }
    /// The word as hexadecimal digits, most significant first (a `$readmemh` line).
    pub fn hex(&self) -> String {
        self.0.iter().rev().map(|l| format!("{l:016x}")).collect()
    }
}

/// An instruction a word cannot hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("instruction {insn}: its {field} is {value}, wider than the instruction word's {width}-bit field; split the layer or use a smaller input")]
pub struct EncodeError {
    pub insn: usize,
    pub field: &'static str,
    pub value: u64,
    pub width: u32,
}

fn put(w: &mut Word, i: usize, fld: Field, v: u64) -> Result<(), EncodeError> {
    if fld.width < 64 && v >> fld.width != 0 {
        return Err(EncodeError {
            insn: i,
            field: fld.name,
            value: v,
            width: fld.width,
        });
    }
    w.set(fld, v);
    Ok(())
}

fn put_tile(w: &mut Word, i: usize, t: &Tile) -> Result<(), EncodeError> {
    let values = [t.group, t.image, t.row0, t.c0, t.co0];
    for (fld, v) in TILE_FIELDS.into_iter().zip(values) {
        put(w, i, fld, v as u64)?;
    }
    Ok(())
}

fn get_tile(w: &Word) -> Tile {
    let g = |f: Field| w.get(f) as u32;
    Tile {
        group: g(TILE_GROUP),
        image: g(TILE_IMAGE),
        row0: g(TILE_ROW0),
        c0: g(TILE_C0),
        co0: g(TILE_CO0),
    }
}

fn buffer_code(b: Buffer) -> u64 {
    match b {
        Buffer::Input => 0,
        Buffer::Weight => 1,
        Buffer::Output => 2,
    }
}

fn vector_code(op: VectorOp) -> u64 {
    match op {
        VectorOp::Requantize => 0,
        VectorOp::Pool => 1,
        VectorOp::Elementwise => 2,
        VectorOp::Table => 3,
        VectorOp::Depthwise => 4,
    }
}

/// The word of instruction `i` of a program.
pub fn encode(i: usize, insn: &Insn) -> Result<Word, EncodeError> {
    let mut w = Word::default();
    put(&mut w, i, POP, insn.pop.0 as u64)?;
    put(&mut w, i, PUSH, insn.push.0 as u64)?;
    put(&mut w, i, LAYER, insn.layer as u64)?;
    match &insn.kind {
        Kind::Load(d) | Kind::Store(d) => {
            let op = if matches!(insn.kind, Kind::Load(_)) {
                OP_LOAD
            } else {
                OP_STORE
            };
            put(&mut w, i, OPCODE, op)?;
            put(&mut w, i, DMA_BUFFER, buffer_code(d.buffer))?;
            put(&mut w, i, DMA_SLOT, d.slot as u64)?;
            put(&mut w, i, DMA_SPACE, d.space as u64)?;
            put(&mut w, i, DMA_ADDR, d.addr)?;
            put(&mut w, i, DMA_ROWS, d.rows)?;
            put(&mut w, i, DMA_ROW_BYTES, d.row_bytes)?;
            put(&mut w, i, DMA_STRIDE, d.stride)?;
            put_tile(&mut w, i, &d.tile)?;
        }
        Kind::Gemm(g) => {
            put(&mut w, i, OPCODE, OP_GEMM)?;
            put(&mut w, i, GEMM_INPUT_SLOT, g.input_slot as u64)?;
            put(&mut w, i, GEMM_WEIGHT_SLOT, g.weight_slot as u64)?;
            put(&mut w, i, GEMM_OUTPUT_SLOT, g.output_slot as u64)?;
            put(&mut w, i, GEMM_ACCUMULATE, g.accumulate as u64)?;
            put(&mut w, i, GEMM_M, g.m)?;
            put(&mut w, i, GEMM_K, g.k)?;
            put(&mut w, i, GEMM_N, g.n)?;
            put(&mut w, i, GEMM_MACS, g.macs)?;
            put_tile(&mut w, i, &g.tile)?;
        }
        Kind::Vector(v) => {
            put(&mut w, i, OPCODE, OP_VECTOR)?;
            put(&mut w, i, VEC_OP, vector_code(v.op))?;
            put(&mut w, i, VEC_INPUT_SLOT, v.input_slot as u64)?;
            put(&mut w, i, VEC_OUTPUT_SLOT, v.output_slot as u64)?;
            put(&mut w, i, VEC_ELEMENTS, v.elements)?;
            put(&mut w, i, VEC_OPS, v.ops)?;
            put(&mut w, i, VEC_WEIGHT_SLOT, v.weight_slot as u64)?;
            put_tile(&mut w, i, &v.tile)?;
        }
    }
    Ok(w)
}

/// The instruction a word holds (the inverse of `encode`; `None` for a word no instruction
/// encodes to).
pub fn decode(w: &Word) -> Option<Insn> {
    let slot = |f: Field| w.get(f) as u32;
    let kind = match w.get(OPCODE) {
        OP_LOAD | OP_STORE => {
            let d = Dma {
                buffer: match w.get(DMA_BUFFER) {
                    0 => Buffer::Input,
                    1 => Buffer::Weight,
                    2 => Buffer::Output,
                    _ => return None,
                },
                slot: slot(DMA_SLOT),
                space: if w.get(DMA_SPACE) == 1 {
                    Space::Global
                } else {
                    Space::Dram
                },
                addr: w.get(DMA_ADDR),
                rows: w.get(DMA_ROWS),
                row_bytes: w.get(DMA_ROW_BYTES),
                stride: w.get(DMA_STRIDE),
                tile: get_tile(w),
            };
            if w.get(OPCODE) == OP_LOAD {
                Kind::Load(d)
            } else {
                Kind::Store(d)
            }
        }
        OP_GEMM => Kind::Gemm(Gemm {
            input_slot: slot(GEMM_INPUT_SLOT),
            weight_slot: slot(GEMM_WEIGHT_SLOT),
            output_slot: slot(GEMM_OUTPUT_SLOT),
            m: w.get(GEMM_M),
            k: w.get(GEMM_K),
            n: w.get(GEMM_N),
            accumulate: w.get(GEMM_ACCUMULATE) == 1,
            macs: w.get(GEMM_MACS),
            tile: get_tile(w),
        }),
        _ => Kind::Vector(Vector {
            op: match w.get(VEC_OP) {
                0 => VectorOp::Requantize,
                1 => VectorOp::Pool,
                2 => VectorOp::Elementwise,
                3 => VectorOp::Table,
                4 => VectorOp::Depthwise,
                _ => return None,
            },
            input_slot: slot(VEC_INPUT_SLOT),
            weight_slot: slot(VEC_WEIGHT_SLOT),
            output_slot: slot(VEC_OUTPUT_SLOT),
            elements: w.get(VEC_ELEMENTS),
            ops: w.get(VEC_OPS),
            tile: get_tile(w),
        }),
    };
    Some(Insn {
        kind,
        pop: Tokens(w.get(POP) as u8),
        push: Tokens(w.get(PUSH) as u8),
        layer: w.get(LAYER) as u32,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Token;

    fn kinds() -> Vec<Kind> {
        let d = Dma {
            buffer: Buffer::Weight,
            slot: 1,
            space: Space::Global,
            addr: (1 << 39) + 5,
            rows: (1 << 24) - 1,
            row_bytes: 7,
            stride: (1 << 40) - 1,
            tile: Tile {
                group: 3,
                image: 65535,
                row0: 17,
                c0: 1,
                co0: 40000,
            },
        };
        vec![
            Kind::Load(d),
            Kind::Store(Dma {
                buffer: Buffer::Output,
                space: Space::Dram,
                ..d
            }),
            Kind::Gemm(Gemm {
                input_slot: 1,
                weight_slot: 0,
                output_slot: 1,
                m: 3,
                k: (1 << 24) - 1,
                n: 9,
                accumulate: true,
                macs: (1 << 40) - 1,
                tile: Tile {
                    row0: 65535,
                    ..d.tile
                },
            }),
            Kind::Vector(Vector {
                op: VectorOp::Depthwise,
                input_slot: 1,
                weight_slot: 1,
                output_slot: 0,
                elements: 12345,
                ops: (1 << 48) - 1,
                tile: d.tile,
            }),
        ]
    }

    #[test]
    fn every_kind_round_trips_through_its_word_and_hex_line() {
        for (i, kind) in kinds().into_iter().enumerate() {
            let insn = Insn {
                kind,
                pop: Tokens::NONE.with(Token::InputFull).with(Token::Stored),
                push: Tokens::NONE.with(Token::OutputFree),
                layer: 65535,
            };
            let w = encode(i, &insn).unwrap();
            assert_eq!(decode(&w), Some(insn));
            assert_eq!(Word::from_hex(&w.hex()), Some(w));
        }
    }

    #[test]
    fn a_value_too_wide_for_its_field_is_an_error_naming_it() {
        let mut g = kinds()[2];
        if let Kind::Gemm(x) = &mut g {
            x.m = 1 << 24;
        }
        let insn = Insn {
            kind: g,
            pop: Tokens::NONE,
            push: Tokens::NONE,
            layer: 0,
        };
        let e = encode(7, &insn).unwrap_err();
        assert_eq!((e.insn, e.field, e.width), (7, "m", 24));
    }

    #[test]
    fn the_fields_of_one_kind_do_not_overlap_and_fit_the_word() {
        let common = [OPCODE, POP, PUSH, LAYER];
        let kinds: [&[Field]; 3] = [
            &[
                DMA_BUFFER,
                DMA_SLOT,
                DMA_SPACE,
                DMA_ADDR,
                DMA_ROWS,
                DMA_ROW_BYTES,
                DMA_STRIDE,
            ],
            &[
                GEMM_INPUT_SLOT,
                GEMM_WEIGHT_SLOT,
                GEMM_OUTPUT_SLOT,
                GEMM_ACCUMULATE,
                GEMM_M,
                GEMM_K,
                GEMM_N,
                GEMM_MACS,
            ],
            &[
                VEC_OP,
                VEC_INPUT_SLOT,
                VEC_OUTPUT_SLOT,
                VEC_ELEMENTS,
                VEC_OPS,
                VEC_WEIGHT_SLOT,
            ],
        ];
        for k in kinds {
            let mut used = [false; WORD_BITS as usize];
            for f in common.iter().chain(k).chain(&TILE_FIELDS) {
                for b in f.lsb..f.lsb + f.width {
                    assert!(b < WORD_BITS && !used[b as usize], "{} overlaps", f.name);
                    used[b as usize] = true;
                }
            }
        }
        assert_eq!(
            FIELDS.len(),
            4 + TILE_FIELDS.len() + kinds.iter().map(|k| k.len()).sum::<usize>()
        );
    }
}
