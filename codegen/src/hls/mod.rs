//! `--emit hls`: the quantized model as Vitis-HLS-style C++. One function per layer, the layers
//! joined by `hls::stream`s under `#pragma HLS dataflow`, weights and requantization constants as
//! `const` arrays, `<cstdint>` types only, and a C-simulation testbench that feeds the golden
//! input codes through the design and compares every output code with the CPU executor's.
//!
//! Files written (all in one folder):
//!
//! | file | what |
//! |---|---|
//! | `etch_stream.h` | `hls::stream`: Xilinx's `<hls_stream.h>` where it exists, else a minimal one for g++ |
//! | `etch_int.h` | wrap-around accumulation, popcount and requantization (= `etch_sim`'s `int`) |
//! | `etch_weights.h` | every layer's weights, biases, multipliers, shifts, thresholds |
//! | `etch_top.h` / `etch_top.cpp` | the layer functions and the dataflow top `etch_top` |
//! | `etch_tb.cpp` | the C-simulation testbench |
//! | `tb_input.txt` / `tb_golden.txt` | input codes and golden output codes, one sample per line |
//! | `tb_output.txt` | written by the testbench: the codes the design produced, one sample per line |

pub mod cpp;
mod kernels;
mod testbench;

use etch_ir::infer::GraphInfo;
use etch_ir::tensor::ElemType;

use crate::program::{IntProgram, SampleGolden};
use crate::CodegenError;
use cpp::File;

/// The C++ support headers, copied beside the generated files.
pub const ETCH_STREAM_H: &str = include_str!("support/etch_stream.h");
pub const ETCH_INT_H: &str = include_str!("support/etch_int.h");

/// The testbench's source file; `etch verify` compiles it.
pub const TESTBENCH: &str = "etch_tb.cpp";
/// The design's source file.
pub const TOP_SOURCE: &str = "etch_top.cpp";
/// Input and golden output codes for the testbench.
pub const INPUT_FILE: &str = "tb_input.txt";
pub const GOLDEN_FILE: &str = "tb_golden.txt";
/// The output codes the testbench wrote, one sample a line, which `etch verify` compares.
pub const OUTPUT_FILE: &str = "tb_output.txt";

/// The range of a tensor's integer codes, which picks its C type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeRange {
    pub min: i32,
    pub max: i32,
}

impl CodeRange {
    /// The narrowest `<cstdint>` type that holds every code.
    pub fn c_type(self) -> &'static str {
        let fits = |lo: i64, hi: i64| self.min as i64 >= lo && self.max as i64 <= hi;
        if fits(-128, 127) {
            "int8_t"
        } else if fits(0, 255) {
            "uint8_t"
        } else if fits(-32768, 32767) {
            "int16_t"
        } else if fits(0, 65535) {
            "uint16_t"
        } else {
            "int32_t"
        }
    }
}

/// A generated file.
#[derive(Debug, Clone, PartialEq)]
pub struct OutFile {
    pub name: String,
    pub text: String,
}

pub(crate) fn numel(dims: &[usize]) -> usize {
    dims.iter().product()
}

/// The range of the program's input codes, from their element type in the graph (int8 unless
/// the graph says otherwise).
pub fn input_range(info: &GraphInfo, program: &IntProgram) -> CodeRange {
    match info.ty(&program.input).map(|t| t.elem) {
        Some(ElemType::U8) => CodeRange { min: 0, max: 255 },
        Some(ElemType::I16) => CodeRange {
            min: -32768,
            max: 32767,
        },
        Some(ElemType::U16) => CodeRange { min: 0, max: 65535 },
        _ => CodeRange {
            min: -128,
            max: 127,
        },
    }
}

/// What the emitter needs besides the program: names for comments and the input codes' range.
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    /// The model's name, for comments.
    pub model: String,
    pub input_range: CodeRange,
}

/// Writes the HLS C++ of `program` and its testbench data.
pub fn emit(
    program: &IntProgram,
    options: &Options,
    golden: &[SampleGolden],
) -> Result<Vec<OutFile>, CodegenError> {
    program
        .check_layer_chain()
        .map_err(|e| CodegenError::Unsupported(e.to_string()))?;
    let (n_in, n_out) = (numel(&program.input_shape), numel(&program.output_shape));
    for (i, g) in golden.iter().enumerate() {
        if g.input.len() != n_in || g.output.len() != n_out {
            return Err(CodegenError::Unsupported(format!(
                "golden sample {i} has {} input and {} output codes; the design takes {n_in} and writes {n_out}",
                g.input.len(),
                g.output.len(),
            )));
        }
    }
    let design = kernels::design(program, options)?;
    let files: Vec<File> = vec![
        design.weights,
        design.header,
        design.source,
        testbench::testbench(program),
    ];
    let mut out: Vec<OutFile> = vec![
        OutFile {
            name: "etch_stream.h".into(),
            text: ETCH_STREAM_H.into(),
        },
        OutFile {
            name: "etch_int.h".into(),
            text: ETCH_INT_H.into(),
        },
    ];
    out.extend(files.iter().map(|f| OutFile {
        name: f.name.clone(),
        text: f.print(),
    }));
    out.push(OutFile {
        name: INPUT_FILE.into(),
        text: testbench::vector_file(golden.iter().map(|g| &g.input), n_in),
    });
    out.push(OutFile {
        name: GOLDEN_FILE.into(),
        text: testbench::vector_file(golden.iter().map(|g| &g.output), n_out),
    });
    Ok(out)
}

/// Writes the files into `dir` (created if missing).
pub fn write(dir: &std::path::Path, files: &[OutFile]) -> Result<(), CodegenError> {
    std::fs::create_dir_all(dir).map_err(|e| CodegenError::Io {
        path: dir.display().to_string(),
        message: e.to_string(),
    })?;
    for f in files {
        let path = dir.join(&f.name);
        std::fs::write(&path, &f.text).map_err(|e| CodegenError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(())
}
