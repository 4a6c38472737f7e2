//! The model pipeline as one library call: read → parse (ONNX text or binary protobuf) → fill
//! shape-only weights → verify and infer shapes → passes → verify again, and on request lower the
//! result to an accelerator program. The CLI, the examples and the tests all get their models
//! here, so they cannot drift apart (cranelift's `Context::compile` is the model).
//!
//! It lives in `etch-sim` because that is the lowest crate that sees all it needs: the passes
//! (`etch-ir`), the compiler (`etch-program`) and the calibrator the passes run the CPU executor
//! with (`reference::calibrate`). Errors are typed and keep their locations (byte spans, the
//! verifier's focus, the pass spec), so a front end renders them against the source as it likes;
//! nothing between the stages is a rendered string. Notes and warnings are data too.

use std::fmt;

use etch_hw::Accelerator;
use etch_ir::front::onnx_proto::ProtoError;
use etch_ir::infer::GraphInfo;
use etch_ir::limits::FileError;
use etch_ir::passes::{Calibrator, PassContext, PassError, PassReport, RunOptions};
use etch_ir::stats::thousands;
use etch_ir::verify::VerifyError;
use etch_ir::weights::WeightError;
use etch_ir::{Model, ParseError, Span};
use etch_program::tiling::Objective;
use etch_program::{Program, ProgramError};

use crate::reference::calibrate::CsvCalibrator;

/// A model file's name and bytes: errors are located in these bytes, so the caller keeps them to
/// render the error against.
#[derive(Debug, Clone)]
pub struct Source {
    /// The name messages give the file (as the user wrote it).
    pub path: String,
    /// The file's contents, ONNX text or a binary protobuf.
    pub bytes: Vec<u8>,
}

impl Source {
    /// Reads a model file under the model-file limit (a regular file, at most `--max-bytes`), so
    /// every front end refuses the same hostile inputs.
    pub fn read(path: &str) -> Result<Source, PipelineError> {
        let bytes = etch_ir::limits::read_file(path, etch_ir::limits::FileKind::Model)?;
        Ok(Source {
            path: path.to_string(),
            bytes,
        })
    }

    /// A model already in memory (a test's text, a fuzzer's bytes), named `path` in messages.
    pub fn new(path: impl Into<String>, bytes: impl Into<Vec<u8>>) -> Source {
        Source {
            path: path.into(),
            bytes: bytes.into(),
        }
    }

    /// Whether the bytes are a binary ONNX protobuf rather than ONNX text: by the file's name, or
    /// by its first byte (a protobuf model starts with a field tag; text starts with `<`, a name
    /// or a comment).
    pub fn is_binary(&self) -> bool {
        let text_start = |b: u8| {
            b.is_ascii_whitespace()
                || b.is_ascii_alphanumeric()
                || matches!(b, b'<' | b'#' | b'"' | b'_')
        };
        (self.path.ends_with(".onnx") && !self.path.ends_with(".onnx.txt"))
            || self.bytes.first().is_some_and(|&b| !text_start(b))
    }
}

/// How a model is to be prepared: which optional stages run, and with what. `Default` reads,
/// parses and verifies only.
#[derive(Default, Clone, Copy)]
pub struct Pipeline<'a> {
    /// Fill shape-only weights with seeded random values (always done when `passes` is set: the
    /// passes need values).
    pub fill: bool,
    /// The seed shape-only weights are filled from.
    pub seed: u64,
    /// A pass spec (`fold-bn,quant(bits=8)`), run after the first verification.
    pub passes: Option<&'a str>,
    /// Run the verifier after every pass, not only after the last (cranelift's `verify_if`).
    pub verify_each: bool,
    /// Let a model through whose output shapes cannot all be inferred, with a warning, rather
    /// than refuse it (figures past such a node would be silently short).
    pub allow_partial: bool,
    /// What `quant` and `binarize` calibrate with; `None` is the CPU executor on the CSV the
    /// spec names ([`CsvCalibrator`]).
    pub calibrator: Option<&'a dyn Calibrator>,
}

/// A model that has been through the pipeline: verified after its passes, so `info` is its
/// shapes and types (the proof object later stages require).
#[derive(Debug)]
pub struct Prepared {
    /// The model after the passes.
    pub model: Model,
    /// The model's inferred shapes and types.
    pub info: GraphInfo,
    /// What each pass changed, in order (empty without passes).
    pub reports: Vec<PassReport>,
}

/// Something the user should be told that is not an error: the library does not print, so the
/// front end decides where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// Shape-only weights were given seeded random values: figures are real, outputs are not.
    Filled {
        /// How many weights were filled.
        weights: usize,
        /// How many values they hold together.
        values: u64,
        /// The seed they were filled from.
        seed: u64,
    },
    /// `import-quant` rewrote a trained low-bit model's quantizers (QONNX, QCDQ) into etch's
    /// quantized layers; what it changed and what it kept in float.
    Imported {
        /// The pass's report lines.
        changes: Vec<String>,
    },
    /// A node's output shape is unknown and `allow_partial` let the model through.
    Partial {
        /// The model file's name.
        path: String,
        /// The node's display name.
        node: String,
        /// Its op type.
        op: String,
        /// Why its shape is unknown.
        why: String,
    },
}

impl fmt::Display for Note {
    /// The line the CLI prints on stderr.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Note::Filled { weights, values, seed } => write!(
                f,
                "note: filled {weights} shape-only weights ({} values) with seeded random values (seed {seed}); they are not trained weights.",
                thousands(*values)
            ),
            Note::Imported { changes } => write!(
                f,
                "note: imported the model's low-bit quantizers (pass `{IMPORT}`): {}",
                changes.join("; ")
            ),
            Note::Partial { path, node, op, why } => write!(
                f,
                "warning: {path}: node `{node}` ({op}): {why}; figures leave out what depends on it (partial)"
            ),
        }
    }
}

/// Why a stage of the pipeline failed, with what locates it in the source.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The model file cannot be read (missing, not a regular file, over the limit).
    #[error("model: {0}")]
    Read(#[from] FileError),
    /// The binary protobuf does not decode to a model.
    #[error(transparent)]
    Proto(ProtoError),
    /// The ONNX text does not parse; its byte span is where.
    #[error(transparent)]
    Parse(ParseError),
    /// Shape-only weights cannot be listed or filled.
    #[error("{error}")]
    Weights {
        /// What is wrong (boxed: it is the largest error, and every stage returns this type).
        error: Box<WeightError>,
        /// The declaration of the weight it is about, when it has one in the source (otherwise
        /// the error is about the metadata key that makes graph inputs weights).
        span: Option<Span>,
    },
    /// The parsed model does not verify; the error carries the node's span and focus.
    #[error(transparent)]
    Verify(VerifyError),
    /// A node's output shape is unknown (and `allow_partial` is off).
    #[error("node `{node}` ({op}): {why}. etch cannot size what depends on it, so its figures would be silently short; declare the shape in value_info, or pass --allow-partial to go on with partial figures")]
    Incomplete {
        /// The node's display name.
        node: String,
        /// Its op type.
        op: String,
        /// Why its shape is unknown.
        why: String,
        /// Where the node is in the source.
        span: Span,
    },
    /// A pass spec does not parse, or a pass refuses or fails; `spec` is kept so a spec error can
    /// be shown with a caret under it ([`etch_ir::passes::spec::SpecError::render`]).
    #[error("{error}")]
    Passes {
        /// What went wrong.
        error: PassError,
        /// The spec that was run.
        spec: String,
    },
    /// The graph the passes left does not verify.
    #[error("after the passes: {0}")]
    AfterPasses(VerifyError),
    /// The model cannot become a program for the accelerator.
    #[error(transparent)]
    Lower(#[from] ProgramError),
}

impl PipelineError {
    /// A shape-only weight error located at the weight's declaration: for front ends that list
    /// shape-only weights themselves (`etch inspect`) and want the pipeline's located report.
    pub fn weights(model: &Model, error: WeightError) -> PipelineError {
        let g = &model.graph;
        let span = error.weight().and_then(|name| {
            g.inputs
                .iter()
                .find(|vi| vi.name == name)
                .map(|vi| vi.span)
                .or_else(|| g.initializer(name).map(|i| i.span))
        });
        PipelineError::Weights {
            error: Box::new(error),
            span,
        }
    }
}

/// The pass that brings trained low-bit models into etch's quantized layers.
const IMPORT: &str = "import-quant";

impl<'a> Pipeline<'a> {
    /// Runs read-to-verified on `source`: parse, fill, verify, refuse unknown shapes, passes,
    /// verify again. Notes go to `notes` as they arise, so a caller that prints them before an
    /// error prints them in the order they happened, even when a later stage fails.
    pub fn run(&self, source: &Source, notes: &mut Vec<Note>) -> Result<Prepared, PipelineError> {
        let mut model = parse(source)?;
        if self.fill || self.passes.is_some() {
            let filled = match etch_ir::weights::fill_shape_only(&mut model, self.seed) {
                Ok(filled) => filled,
                Err(e) => return Err(PipelineError::weights(&model, e)),
            };
            if !filled.is_empty() {
                notes.push(Note::Filled {
                    weights: filled.len(),
                    values: filled.iter().map(|w| w.numel()).sum(),
                    seed: self.seed,
                });
            }
        }
        let mut info = etch_ir::verify::verify(&model).map_err(PipelineError::Verify)?;
        self.check_complete(&source.path, &model, &info, notes)?;
        let csv = CsvCalibrator;
        let run = RunOptions {
            verify_each: self.verify_each,
            cx: PassContext {
                calibrator: self.calibrator.or(Some(&csv)),
            },
        };
        let passes = |model: &mut Model, spec: &str| {
            etch_ir::passes::run_spec(model, spec, &run).map_err(|error| PipelineError::Passes {
                error,
                spec: spec.to_string(),
            })
        };
        // a trained low-bit model comes into etch's quantized-layer form first, where that is exact
        let mut reports = Vec::new();
        if etch_ir::passes::import_quant::has_imports(&model) {
            reports = passes(&mut model, IMPORT)?;
            notes.push(Note::Imported {
                changes: reports.iter().flat_map(|r| r.changes.clone()).collect(),
            });
            info = etch_ir::verify::verify(&model).map_err(PipelineError::AfterPasses)?;
        }
        let Some(spec) = self.passes else {
            return Ok(Prepared {
                model,
                info,
                reports,
            });
        };
        reports.extend(passes(&mut model, spec)?);
        let info = etch_ir::verify::verify(&model).map_err(PipelineError::AfterPasses)?;
        Ok(Prepared {
            model,
            info,
            reports,
        })
    }

    /// Reads the file at `path` and runs the pipeline on it: for examples and tests, which have
    /// no use for the notes or for rendering an error against the source.
    pub fn load(&self, path: &str) -> Result<Prepared, PipelineError> {
        self.run(&Source::read(path)?, &mut Vec::new())
    }

    /// A model with a node whose output shape is unknown is an error naming that node, or a
    /// warning under `allow_partial`.
    fn check_complete(
        &self,
        path: &str,
        model: &Model,
        info: &GraphInfo,
        notes: &mut Vec<Note>,
    ) -> Result<(), PipelineError> {
        let Some((idx, why)) = etch_ir::infer::first_unknown(model, info) else {
            return Ok(());
        };
        let n = &model.graph.nodes[idx];
        let (node, op) = (n.display_name(), n.op_type.clone());
        if self.allow_partial {
            notes.push(Note::Partial {
                path: path.to_string(),
                node,
                op,
                why,
            });
            return Ok(());
        }
        Err(PipelineError::Incomplete {
            node,
            op,
            why,
            span: n.span,
        })
    }
}

/// Parses a model: ONNX text, or a binary `.onnx` protobuf ([`Source::is_binary`]).
pub fn parse(source: &Source) -> Result<Model, PipelineError> {
    if source.is_binary() {
        return etch_ir::front::onnx_proto::read_model(&source.bytes).map_err(PipelineError::Proto);
    }
    etch_ir::parse_model(&source.bytes).map_err(PipelineError::Parse)
}

impl Prepared {
    /// The lower step: compiles the model to a program for `acc` (tiling search included), so
    /// callers that simulate or emit hardware start from the same verified model.
    pub fn lower(
        &self,
        acc: &Accelerator,
        batch: u64,
        objective: Objective,
    ) -> Result<Program, PipelineError> {
        Ok(etch_program::compile(
            &self.model,
            &self.info,
            acc,
            batch,
            objective,
        )?)
    }
}
