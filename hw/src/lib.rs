//! etch's accelerator descriptions: a systolic array with its dataflow and PE kind, on-chip
//! buffers, DRAM, clock, a vector unit and an energy table, read from RON and validated; the
//! energy model (`energy`) and the area / FPGA resource model (`area`), and the check of a
//! description against a target's resources (`fit`).
//!
//! ```ron
//! Accelerator(
//!     name: "ws-16x16-int8",
//!     clock_mhz: 200.0,
//!     array: Systolic(rows: 16, cols: 16, dataflow: WeightStationary),
//!     pe: IntMac(weight_bits: 8, act_bits: 8, acc_bits: 32),
//!     sparse: Some((n: 2, m: 4)),          // optional N:M support
//!     buffers: (ifmap_kib: 64, filter_kib: 64, ofmap_kib: 64, banks: 1, double_buffered: true,
//!               // optional: activations stay on chip between layers when they fit
//!               global: Some((kib: 512, bytes_per_cycle: 64.0, latency_cycles: 2))),
//!     dram: (bytes_per_cycle: 16.0, latency_cycles: 100),
//!     vector: (lanes: 16),
//!     energy: "horowitz-45nm",             // or "eyeriss-65nm", or an inline EnergyTable(...)
//!     static_mw: 150.0,                    // optional static power, charged per cycle
//! )
//! ```

pub mod area;
pub mod energy;
pub mod fit;

use serde::{Deserialize, Serialize};

pub use energy::{EnergyBreakdown, EnergyTable};

/// An accelerator description.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Accelerator {
    pub name: String,
    pub clock_mhz: f64,
    pub array: Array,
    pub pe: Pe,
    /// N:M structured-sparsity support: the array skips the zero weights of N:M-sparse layers
    /// (compressed weights with per-group indices, as in sparse tensor cores).
    #[serde(default)]
    pub sparse: Option<NmSupport>,
    pub buffers: Buffers,
    pub dram: Dram,
    #[serde(default)]
    pub vector: VectorUnit,
    #[serde(default)]
    pub energy: EnergySpec,
    /// The technology node the energy table is scaled to; `None` keeps the table's own node.
    #[serde(default)]
    pub node_nm: Option<f64>,
    /// Static power in milliwatts (leakage, clock tree, I/O: what the design draws whether it
    /// computes or not), charged for every cycle of a run; the energy tables hold only dynamic
    /// access energies, so without it a slow design looks as cheap as a fast one. 0 when the
    /// description gives none.
    #[serde(default)]
    pub static_mw: f64,
}

/// The compute array.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Array {
    Systolic {
        rows: u32,
        cols: u32,
        dataflow: Dataflow,
    },
}

/// Which operand stays in the PEs while the others stream through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dataflow {
    WeightStationary,
    OutputStationary,
    InputStationary,
}

impl Dataflow {
    /// The short name SCALE-Sim uses (`ws`, `os`, `is`).
    pub fn short(self) -> &'static str {
        match self {
            Dataflow::WeightStationary => "ws",
            Dataflow::OutputStationary => "os",
            Dataflow::InputStationary => "is",
        }
    }
}

/// What one processing element computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Pe {
    /// Integer multiply-accumulate at the given operand and accumulator widths.
    IntMac {
        weight_bits: u32,
        act_bits: u32,
        acc_bits: u32,
    },
    /// Floating-point multiply-accumulate, 16 or 32 bits.
    FloatMac { bits: u32 },
    /// Shift-add for power-of-two weights `±2^e`: `weight_bits` is the code width (sign, exponent,
    /// zero), the product is the activation shifted.
    ShiftAdd {
        weight_bits: u32,
        act_bits: u32,
        acc_bits: u32,
    },
    /// XNOR-popcount for binary (±1) weights; `act_bits` 1 for binary activations, more for
    /// binary weights only (the activation's bits are then processed as bit-planes).
    XnorPopcount { act_bits: u32, acc_bits: u32 },
}

/// The kind of arithmetic a layer's MACs use, which selects their energy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MacKind {
    Int,
    Float,
    Shift,
    Xnor,
}

impl MacKind {
    pub fn name(self) -> &'static str {
        match self {
            MacKind::Int => "int MAC",
            MacKind::Float => "float MAC",
            MacKind::Shift => "shift-add",
            MacKind::Xnor => "xnor-popcount",
        }
    }
}

impl Pe {
    pub fn kind(&self) -> MacKind {
        match self {
            Pe::IntMac { .. } => MacKind::Int,
            Pe::FloatMac { .. } => MacKind::Float,
            Pe::ShiftAdd { .. } => MacKind::Shift,
            Pe::XnorPopcount { .. } => MacKind::Xnor,
        }
    }
    /// Width of a weight as stored and moved.
    pub fn weight_bits(&self) -> u32 {
        match *self {
            Pe::IntMac { weight_bits, .. } | Pe::ShiftAdd { weight_bits, .. } => weight_bits,
            Pe::FloatMac { bits } => bits,
            Pe::XnorPopcount { .. } => 1,
        }
    }
    /// Width of an activation as stored and moved.
    pub fn act_bits(&self) -> u32 {
        match *self {
            Pe::IntMac { act_bits, .. }
            | Pe::ShiftAdd { act_bits, .. }
            | Pe::XnorPopcount { act_bits, .. } => act_bits,
            Pe::FloatMac { bits } => bits,
        }
    }
    /// Width of a partial sum.
    pub fn acc_bits(&self) -> u32 {
        match *self {
            Pe::IntMac { acc_bits, .. }
            | Pe::ShiftAdd { acc_bits, .. }
            | Pe::XnorPopcount { acc_bits, .. } => acc_bits,
            Pe::FloatMac { bits } => bits,
        }
    }
}

/// N:M structured sparsity: at most `n` nonzero weights in every `m` consecutive ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NmSupport {
    pub n: u32,
    pub m: u32,
}

/// On-chip buffers (SRAM).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Buffers {
    pub ifmap_kib: u32,
    pub filter_kib: u32,
    pub ofmap_kib: u32,
    /// Banks per buffer (the SRAM energy is that of one bank's size).
    #[serde(default = "one")]
    pub banks: u32,
    /// Each buffer is split in two halves: one feeds the array while the other fills from DRAM.
    pub double_buffered: bool,
    /// A global buffer: on-chip memory where an activation stays between the layer that makes it
    /// and the layers that read it, instead of going to DRAM and back, when it fits.
    #[serde(default)]
    pub global: Option<GlobalBuffer>,
}

/// The global buffer: its size, and the channel the load and store units reach it by (the same
/// rule as DRAM's, with its own bandwidth and latency).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalBuffer {
    pub kib: u32,
    pub bytes_per_cycle: f64,
    #[serde(default)]
    pub latency_cycles: u32,
}

fn one() -> u32 {
    1
}

impl Buffers {
    /// The bytes of one buffer that one tile may use (half of it when double-buffered).
    pub fn working_bytes(&self, kib: u32) -> u64 {
        let b = kib as u64 * 1024;
        if self.double_buffered {
            b / 2
        } else {
            b
        }
    }
}

/// Off-chip memory as the accelerator sees it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dram {
    pub bytes_per_cycle: f64,
    #[serde(default)]
    pub latency_cycles: u32,
}

/// The vector unit that runs pooling, element-wise ops and activations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorUnit {
    pub lanes: u32,
}

impl Default for VectorUnit {
    fn default() -> Self {
        VectorUnit { lanes: 16 }
    }
}

/// The energy table: a named default or one given inline.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EnergySpec {
    Named(String),
    Inline(EnergyTable),
}

// By hand rather than `untagged`: serde's untagged buffering loses RON's struct names, and its
// error ("did not match any variant") would hide which field of an inline table is wrong.
impl<'de> Deserialize<'de> for EnergySpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = EnergySpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("the name of an energy table (\"horowitz-45nm\", \"eyeriss-65nm\") or an inline EnergyTable(...)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<EnergySpec, E> {
                Ok(EnergySpec::Named(v.to_string()))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<EnergySpec, A::Error> {
                EnergyTable::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(EnergySpec::Inline)
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for EnergySpec {
    fn default() -> Self {
        EnergySpec::Named("horowitz-45nm".into())
    }
}

/// The most PEs etch models in one array (1024 x 1024): every PE costs the simulator and the
/// emitted design state, and a larger array is a typo rather than a design.
pub const MAX_PES: u64 = 1 << 20;

/// A description that cannot be read or used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HwError {
    #[error("{path}:{line}:{col}: {message}")]
    Ron {
        path: String,
        line: usize,
        col: usize,
        message: String,
    },
    /// `message` names the path (it is what the shared file reader says).
    #[error("{message}")]
    Io { path: String, message: String },
    /// A description that reads but is invalid: the file, then what is wrong with it.
    #[error("{path}: {error}")]
    Invalid { path: String, error: Box<HwError> },
    #[error("the array has {rows} rows and {cols} columns; both must be at least 1")]
    EmptyArray { rows: u32, cols: u32 },
    #[error("the array has {rows} x {cols} PEs; etch models at most 65,536 rows or columns and {MAX_PES} PEs in all")]
    HugeArray { rows: u32, cols: u32 },
    /// The buffers together are larger than the memory limit (what a simulator or an emitted
    /// design would have to hold).
    #[error("the buffers: {0}")]
    HugeBuffers(etch_ir::limits::LimitError),
    #[error("clock_mhz is {0}; it must be a positive number")]
    BadClock(f64),
    #[error("static_mw is {0}; it must be a number of milliwatts, 0 or more")]
    BadStaticPower(f64),
    #[error("the {pe} PE cannot take {what} of {bits} bits: {why}")]
    BadWidth {
        pe: &'static str,
        what: &'static str,
        bits: u32,
        why: String,
    },
    #[error("the {buffer} buffer ({kib} KiB{half}) is too small for one tile: {need} bytes are needed ({why})")]
    BufferTooSmall {
        buffer: &'static str,
        kib: u32,
        half: &'static str,
        need: u64,
        why: String,
    },
    #[error("buffers.banks is {0}; it must be at least 1")]
    NoBanks(u32),
    #[error("dram.bytes_per_cycle is {0}; it must be at least 0.001 (one byte per 1,000 cycles)")]
    BadDram(f64),
    #[error("buffers.global.bytes_per_cycle is {0}; it must be at least 0.001")]
    BadGlobal(f64),
    #[error("vector.lanes is 0; the vector unit needs at least one lane")]
    NoLanes,
    #[error("N:M support {n}:{m} is invalid: need 1 <= n < m <= 64")]
    BadNm { n: u32, m: u32 },
    #[error("N:M sparse support needs a multiplying PE; a {0} PE has no zero weights to skip")]
    NmOnXnor(&'static str),
    #[error("unknown energy table `{name}`; the built-in tables are: {known}")]
    UnknownEnergy { name: String, known: String },
    #[error("energy table `{name}`: {problem}")]
    BadEnergy { name: String, problem: String },
}

impl Accelerator {
    /// Reads a description from RON text; `path` names it in errors.
    pub fn from_ron(path: &str, text: &str) -> Result<Accelerator, HwError> {
        let acc: Accelerator = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME)
            .from_str(text)
            .map_err(|e| ron_error(path, &e))?;
        acc.validate().map_err(|error| HwError::Invalid {
            path: path.to_string(),
            error: Box::new(error),
        })?;
        Ok(acc)
    }

    /// Reads and validates a description file.
    pub fn from_file(path: &str) -> Result<Accelerator, HwError> {
        let text =
            etch_ir::limits::read_text(path, etch_ir::limits::FileKind::Data).map_err(|e| {
                HwError::Io {
                    path: path.to_string(),
                    message: e.to_string(),
                }
            })?;
        Accelerator::from_ron(path, &text)
    }

    /// The default description of a built-in target.
    pub fn for_target(name: &str) -> Result<(etch_targets::Target, Accelerator), String> {
        let b = etch_targets::built_in(name).map_err(|e| e.to_string())?;
        let target = etch_targets::parse(b.name, b.target_ron).map_err(|e| e.to_string())?;
        let acc = Accelerator::from_ron(&format!("<built-in {name}.hw.ron>"), b.accelerator_ron)
            .map_err(|e| e.to_string())?;
        Ok((target, acc))
    }

    pub fn rows(&self) -> u32 {
        match self.array {
            Array::Systolic { rows, .. } => rows,
        }
    }
    pub fn cols(&self) -> u32 {
        match self.array {
            Array::Systolic { cols, .. } => cols,
        }
    }
    pub fn dataflow(&self) -> Dataflow {
        match self.array {
            Array::Systolic { dataflow, .. } => dataflow,
        }
    }
    pub fn pes(&self) -> u64 {
        self.rows() as u64 * self.cols() as u64
    }

    /// The static energy of one clock cycle in pJ: `static_mw` over the clock (mW / MHz = nJ).
    pub fn static_pj_per_cycle(&self) -> f64 {
        self.static_mw / self.clock_mhz * 1e3
    }

    /// The energy table this description uses, scaled to its node.
    pub fn energy_table(&self) -> Result<EnergyTable, HwError> {
        let table = match &self.energy {
            EnergySpec::Named(name) => energy::preset(name)?,
            EnergySpec::Inline(t) => {
                t.check()?;
                t.clone()
            }
        };
        Ok(match self.node_nm {
            Some(node) => table.scaled_to(node),
            None => table,
        })
    }

    /// Checks everything a description must satisfy on its own (a target's limits are `fit`'s).
    pub fn validate(&self) -> Result<(), HwError> {
        let (rows, cols) = (self.rows(), self.cols());
        if rows == 0 || cols == 0 {
            return Err(HwError::EmptyArray { rows, cols });
        }
        if rows > 65536 || cols > 65536 || rows as u64 * cols as u64 > MAX_PES {
            return Err(HwError::HugeArray { rows, cols });
        }
        if !(self.clock_mhz.is_finite() && self.clock_mhz > 0.0) {
            return Err(HwError::BadClock(self.clock_mhz));
        }
        if !(self.static_mw.is_finite() && self.static_mw >= 0.0) {
            return Err(HwError::BadStaticPower(self.static_mw));
        }
        self.check_widths()?;
        let b = &self.buffers;
        if b.banks == 0 {
            return Err(HwError::NoBanks(b.banks));
        }
        if !(self.dram.bytes_per_cycle.is_finite() && self.dram.bytes_per_cycle >= 1e-3) {
            return Err(HwError::BadDram(self.dram.bytes_per_cycle));
        }
        if self.vector.lanes == 0 {
            return Err(HwError::NoLanes);
        }
        if let Some(NmSupport { n, m }) = self.sparse {
            if !(1 <= n && n < m && m <= 64) {
                return Err(HwError::BadNm { n, m });
            }
            if let Pe::XnorPopcount { .. } = self.pe {
                return Err(HwError::NmOnXnor("XNOR-popcount"));
            }
        }
        if let Some(g) = b.global {
            if !(g.bytes_per_cycle.is_finite() && g.bytes_per_cycle >= 1e-3) {
                return Err(HwError::BadGlobal(g.bytes_per_cycle));
            }
        }
        let global_kib = b.global.map_or(0, |g| g.kib);
        let kib = [b.ifmap_kib, b.filter_kib, b.ofmap_kib, global_kib]
            .iter()
            .map(|&k| k as u64)
            .sum::<u64>();
        etch_ir::limits::Limits::current()
            .model("ifmap, filter, ofmap and global buffers", Some(kib), 1024)
            .map_err(HwError::HugeBuffers)?;
        // The smallest tile: one fold's stationary operand and one row of the streams.
        let half = if b.double_buffered { " per half" } else { "" };
        let (wb, ab, accb) = (
            self.pe.weight_bits() as u64,
            self.pe.act_bits() as u64,
            self.pe.acc_bits() as u64,
        );
        let (r, c) = (rows as u64, cols as u64);
        let need_filter = (r * c * wb).div_ceil(8);
        if need_filter > b.working_bytes(b.filter_kib) {
            return Err(HwError::BufferTooSmall {
                buffer: "filter",
                kib: b.filter_kib,
                half,
                need: need_filter,
                why: format!("one fold of {rows} x {cols} weights at {wb} bits"),
            });
        }
        let need_ifmap = (r.max(c) * ab).div_ceil(8);
        if need_ifmap > b.working_bytes(b.ifmap_kib) {
            return Err(HwError::BufferTooSmall {
                buffer: "ifmap",
                kib: b.ifmap_kib,
                half,
                need: need_ifmap,
                why: format!("one wavefront of {} activations at {ab} bits", r.max(c)),
            });
        }
        let need_ofmap = (r * c * accb).div_ceil(8);
        if need_ofmap > b.working_bytes(b.ofmap_kib) {
            return Err(HwError::BufferTooSmall {
                buffer: "ofmap",
                kib: b.ofmap_kib,
                half,
                need: need_ofmap,
                why: format!("one fold of {rows} x {cols} partial sums at {accb} bits"),
            });
        }
        self.energy_table()?;
        Ok(())
    }

    fn check_widths(&self) -> Result<(), HwError> {
        let bad = |pe: &'static str, what: &'static str, bits: u32, why: &str| {
            Err(HwError::BadWidth {
                pe,
                what,
                bits,
                why: why.to_string(),
            })
        };
        match self.pe {
            Pe::IntMac {
                weight_bits,
                act_bits,
                acc_bits,
            } => {
                for (what, b) in [("weights", weight_bits), ("activations", act_bits)] {
                    if !(1..=32).contains(&b) {
                        return bad("integer MAC", what, b, "integer operands are 1 to 32 bits");
                    }
                }
                let product = weight_bits + act_bits;
                if acc_bits < product || acc_bits > 64 {
                    return bad("integer MAC", "an accumulator", acc_bits, &format!("it must hold a {weight_bits} x {act_bits}-bit product ({product} bits) and be at most 64 bits"));
                }
            }
            Pe::FloatMac { bits } => {
                if bits != 16 && bits != 32 {
                    return bad(
                        "float MAC",
                        "operands",
                        bits,
                        "float MACs are 16 (half) or 32 (single) bits",
                    );
                }
            }
            Pe::ShiftAdd {
                weight_bits,
                act_bits,
                acc_bits,
            } => {
                if !(2..=8).contains(&weight_bits) {
                    return bad(
                        "shift-add",
                        "weight codes",
                        weight_bits,
                        "a power-of-two weight code is a sign plus an exponent: 2 to 8 bits",
                    );
                }
                if !(1..=32).contains(&act_bits) {
                    return bad(
                        "shift-add",
                        "activations",
                        act_bits,
                        "activations are 1 to 32 bits",
                    );
                }
                // the largest shift is 2^(weight_bits-1) - 1 places
                let max_shift = (1u32 << (weight_bits - 1)) - 1;
                let need = act_bits + max_shift;
                if acc_bits < need.min(64) || acc_bits > 64 {
                    return bad("shift-add", "an accumulator", acc_bits, &format!("it must hold a {act_bits}-bit activation shifted by up to {max_shift} places ({need} bits, at most 64)"));
                }
            }
            Pe::XnorPopcount { act_bits, acc_bits } => {
                if !(1..=16).contains(&act_bits) {
                    return bad(
                        "XNOR-popcount",
                        "activations",
                        act_bits,
                        "binary activations are 1 bit; bit-plane activations at most 16 bits",
                    );
                }
                if !(8..=32).contains(&acc_bits) {
                    return bad(
                        "XNOR-popcount",
                        "a popcount accumulator",
                        acc_bits,
                        "popcount accumulators are 8 to 32 bits",
                    );
                }
            }
        }
        Ok(())
    }
}

pub(crate) fn ron_error(path: &str, e: &ron::error::SpannedError) -> HwError {
    HwError::Ron {
        path: path.to_string(),
        line: e.span.start.line,
        col: e.span.start.col,
        message: e.code.to_string(),
    }
}
