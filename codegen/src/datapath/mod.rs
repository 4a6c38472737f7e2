//! What the accelerator program computes: its DRAM image and its values, instruction by
//! instruction. The program (`etch_program`) says what each unit does and when; this module says
//! what the bytes are. [`image`] lays out a quantized model's weights and requantization
//! parameters in DRAM exactly where the program's weight loads read them, and the input codes
//! where its first layer reads them. [`execute`] runs the instructions on that image as the
//! datapath does (DMA copies into buffer slots, the array's tiles as im2col products on the
//! slots, requantization, stores) and returns the output codes, which must equal the CPU
//! executor's golden codes bit for bit. The RTL datapath is held to the same image and the same
//! values.
//!
//! Covered so far: the integer chain of `crate::program` (convolutions of any groups, depthwise
//! ones on the vector unit, and GEMMs, with integer, power-of-two or binary weights, integer or
//! binary activations held as 8-bit codes; max pooling whose windows tile its input; layout-only
//! and fused layers between them). Anything else in the chain (N:M or pruned-channel layers,
//! sub-byte activation storage, overlapping pooling) is an error naming the layer.

pub mod execute;
pub mod image;

pub use execute::execute;
pub use image::{build, AddConsts, Image, LayerConsts, WeightForm};

/// Why a program cannot be run for its values.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum DatapathError {
    /// The model is not an integer chain the datapath can run.
    #[error(transparent)]
    Program(#[from] crate::program::ProgramError),
    /// A layer the functional datapath does not run yet.
    #[error("layer `{layer}`: {what} does not run on the functional datapath yet")]
    NotYet { layer: String, what: String },
    /// The program's geometry of a layer differs from the reference's.
    #[error("layer `{layer}`: the program has {program} but the reference {reference}")]
    Geometry {
        layer: String,
        program: String,
        reference: String,
    },
    /// The program and the reference disagree about a layer, or an instruction breaks the
    /// datapath's rules (a compiler bug: the message names the instruction).
    #[error("instruction {insn} (layer `{layer}`): {message}")]
    Insn {
        insn: usize,
        layer: String,
        message: String,
    },
    /// The input codes do not fit the program's input.
    #[error("the input has {got} codes; the program's first layer reads {want}")]
    InputLength { got: usize, want: usize },
    /// The input or output region lies outside its memory (the image and the program disagree).
    #[error("the {what} codes lie outside memory: {message}")]
    Region { what: &'static str, message: String },
    /// A layer the RTL datapath (`verilog::datapath`) does not run yet.
    #[error("the RTL datapath's DRAM bus: a bandwidth of {bytes_per_cycle:.3} bytes a cycle needs beats of {beat_bytes} bytes, wider than AXI4's {limit}; give the description at most {limit} bytes a cycle")]
    BusTooWide {
        bytes_per_cycle: f64,
        beat_bytes: u64,
        limit: u64,
    },
    #[error("the RTL datapath's DRAM bus: a latency of {latency} cycles is shorter than the AXI4 master's own {master} cycles of request and response registers; give the description a latency of at least {}", master + 1)]
    LatencyTooShort { latency: u64, master: u64 },
    #[error("the RTL datapath's DRAM bus: a latency of {latency} cycles is longer than the {limit} the AXI4 master's burst queue is built for")]
    LatencyTooLong { latency: u64, limit: u64 },
    #[error("layer `{layer}`: {what} does not run on the RTL datapath yet")]
    NotInRtl { layer: String, what: String },
    /// A memory of the RTL datapath would be larger than its 32-bit addresses reach.
    #[error("the RTL datapath's {what} would take {bytes} bytes, more than the {limit} its addresses reach")]
    RtlMemory {
        what: &'static str,
        bytes: u64,
        limit: u64,
    },
    /// The image would be larger than etch allocates.
    #[error("the DRAM image would take {bytes} bytes, more than the {limit} etch allocates")]
    TooLarge { bytes: u64, limit: u64 },
}
