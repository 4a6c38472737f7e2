//! Reading a model file into a verified graph, with errors rendered against the source.

use std::sync::atomic::{AtomicBool, Ordering};

use etch_ir::infer::GraphInfo;
use etch_ir::verify::Focus;
use etch_ir::weights::{WeightError, STRIPPED_KEY};
use etch_ir::Model;

use crate::diag::{render, Located};

/// A model read and checked, with the source kept for later error reports.
pub struct Loaded {
    pub model: Model,
    pub info: GraphInfo,
}

/// An error already rendered for the terminal.
pub type CliError = String;

/// Reads the model file (an error names it), so later messages can quote its text: a regular
/// file, at most the model-file limit (`--max-bytes`).
pub fn read(path: &str) -> Result<Vec<u8>, CliError> {
    etch_ir::limits::read_file(path, etch_ir::limits::FileKind::Model)
        .map_err(|e| format!("error: model: {e}"))
}

/// Reads any other input file as text (descriptions, CSV, SCALE-Sim files): a regular file, at
/// most the data-file limit (`--max-bytes`).
pub fn read_text(path: &str) -> Result<String, CliError> {
    etch_ir::limits::read_text(path, etch_ir::limits::FileKind::Data)
        .map_err(|e| format!("error: {e}"))
}

/// Whether a file is a binary ONNX protobuf rather than ONNX text: by its name, or by its first
/// byte (a protobuf model starts with a field tag; text starts with `<`, a name, or a comment).
pub fn is_binary(path: &str, src: &[u8]) -> bool {
    let text_start = |b: u8| {
        b.is_ascii_whitespace()
            || b.is_ascii_alphanumeric()
            || matches!(b, b'<' | b'#' | b'"' | b'_')
    };
    (path.ends_with(".onnx") && !path.ends_with(".onnx.txt"))
        || src.first().is_some_and(|&b| !text_start(b))
}

/// Parses a model file: ONNX text, or a binary `.onnx` protobuf.
pub fn parse(path: &str, src: &[u8]) -> Result<Model, CliError> {
    if is_binary(path, src) {
        return etch_ir::front::onnx_proto::read_model(src)
            .map_err(|e| format!("error: {path}: {e}"));
    }
    etch_ir::parse_model(src).map_err(|e| {
        render(&Located {
            path,
            src,
            offset: e.offset,
            len: e.len,
            message: &e.message,
        })
    })
}

/// Whether a model whose shapes cannot all be inferred is let through (`--allow-partial`), with a
/// warning, rather than refused. Set once by `main`.
static ALLOW_PARTIAL: AtomicBool = AtomicBool::new(false);

/// Sets `--allow-partial` for this process.
pub fn set_allow_partial(allow: bool) {
    ALLOW_PARTIAL.store(allow, Ordering::Relaxed);
}

/// A model with a node whose output shape is unknown is an error naming that node (figures past
/// it would be silently short), or a warning under `--allow-partial`.
fn check_complete(path: &str, src: &[u8], model: &Model, info: &GraphInfo) -> Result<(), CliError> {
    let Some((idx, why)) = etch_ir::infer::first_unknown(model, info) else {
        return Ok(());
    };
    let n = &model.graph.nodes[idx];
    if ALLOW_PARTIAL.load(Ordering::Relaxed) {
        eprintln!(
            "warning: {path}: node `{}` ({}): {why}; figures leave out what depends on it (partial)",
            n.display_name(),
            n.op_type
        );
        return Ok(());
    }
    let message = format!(
        "node `{}` ({}): {why}. etch cannot size what depends on it, so its figures would be silently short; declare the shape in value_info, or pass --allow-partial to go on with partial figures",
        n.display_name(),
        n.op_type
    );
    if n.span.line > 0 {
        return Err(render(&Located {
            path,
            src,
            offset: n.span.offset,
            len: first_line_len(src, n.span.offset, n.span.len),
            message: &message,
        }));
    }
    Err(format!("error: {path}: {message}"))
}

/// Verifies a parsed model and infers its shapes; every node's output shape must be known
/// (unless `--allow-partial`).
pub fn verify(path: &str, src: &[u8], model: Model) -> Result<Loaded, CliError> {
    match etch_ir::verify::verify(&model) {
        Ok(info) => {
            check_complete(path, src, &model, &info)?;
            Ok(Loaded { model, info })
        }
        Err(e) if e.span.line > 0 => {
            let msg = e.to_string();
            let (offset, len) = match e
                .focus
                .as_ref()
                .and_then(|f| focus_in(src, e.span.offset, e.span.len, f))
            {
                Some(range) => range,
                None => (
                    e.span.offset,
                    first_line_len(src, e.span.offset, e.span.len),
                ),
            };
            Err(render(&Located {
                path,
                src,
                offset,
                len,
                message: &msg,
            }))
        }
        Err(e) => Err(format!("error: {path}: {e}")),
    }
}

/// Where a node's text (at `offset`, `len` bytes) names the input or output an error is about:
/// outputs come before its `=` (after the `[label]`), inputs after the `(` that follows the op.
fn focus_in(src: &[u8], offset: usize, len: usize, focus: &Focus) -> Option<(usize, usize)> {
    let text = src.get(offset..offset + len)?;
    let body = if text.first() == Some(&b'[') {
        text.iter().position(|&b| b == b']')? + 1
    } else {
        0
    };
    let eq = body + text[body..].iter().position(|&b| b == b'=')?;
    let (from, to, name) = match focus {
        Focus::Output(name) => (body, eq, name),
        Focus::Input(name) => (
            eq + text[eq..].iter().position(|&b| b == b'(')?,
            text.len(),
            name,
        ),
    };
    let name = name.as_bytes();
    let is_id = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    (from..to).find_map(|k| {
        if !text[k..to].starts_with(name) || name.is_empty() {
            return None;
        }
        let (before, after) = (
            k.checked_sub(1).map(|p| text[p]),
            text.get(k + name.len()).copied(),
        );
        if before == Some(b'"') && after == Some(b'"') {
            Some((offset + k - 1, name.len() + 2))
        } else if !before.is_some_and(|b| is_id(b) || b == b'"') && !after.is_some_and(is_id) {
            Some((offset + k, name.len()))
        } else {
            None
        }
    })
}

/// Renders a shape-only weight error at the weight's declaration, or at the metadata key that
/// makes graph inputs weights.
pub fn weight_error(path: &str, src: &[u8], model: &Model, e: &WeightError) -> CliError {
    let g = &model.graph;
    let span = match e.weight() {
        Some(name) => g
            .inputs
            .iter()
            .find(|vi| vi.name == name)
            .map(|vi| vi.span)
            .or_else(|| g.initializer(name).map(|i| i.span)),
        None => None,
    };
    let (offset, len) = match span {
        Some(s) if s.line > 0 => (s.offset, first_line_len(src, s.offset, s.len)),
        // the header has no spans; the key is near the top of the file
        _ => {
            let key = format!("\"{STRIPPED_KEY}\"");
            match src.windows(key.len()).position(|w| w == key.as_bytes()) {
                Some(at) => (at, key.len()),
                None => return format!("error: {path}: {e}"),
            }
        }
    };
    render(&Located {
        path,
        src,
        offset,
        len,
        message: &e.to_string(),
    })
}

/// The length of a span cut at the end of its first line, so the caret stays on one line.
fn first_line_len(src: &[u8], offset: usize, len: usize) -> usize {
    let end = (offset + len).min(src.len());
    src[offset.min(end)..end]
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(end - offset.min(end))
}

/// How a command wants its model: shape-only weights filled or not, and passes to run.
#[derive(Default)]
pub struct Prepare<'a> {
    /// Fill shape-only weights from `seed` (always done when passes are given: they need values).
    pub fill: bool,
    pub seed: u64,
    pub passes: Option<&'a str>,
    pub verify_each: bool,
    pub cx: etch_ir::passes::PassContext<'a>,
}

/// Reads, parses, fills, verifies and runs the passes: the one way every command gets its model.
pub fn prepare(
    path: &str,
    opts: Prepare,
) -> Result<(Loaded, Vec<etch_ir::passes::PassReport>), CliError> {
    let src = read(path)?;
    let mut model = parse(path, &src)?;
    if opts.fill || opts.passes.is_some() {
        let filled = etch_ir::weights::fill_shape_only(&mut model, opts.seed)
            .map_err(|e| weight_error(path, &src, &model, &e))?;
        if !filled.is_empty() {
            let values: u64 = filled.iter().map(|w| w.numel()).sum();
            eprintln!(
                "note: filled {} shape-only weights ({} values) with seeded random values (seed {}); they are not trained weights.",
                filled.len(),
                crate::inspect::thousands(values),
                opts.seed
            );
        }
    }
    let mut loaded = verify(path, &src, model)?;
    let Some(spec) = opts.passes else {
        return Ok((loaded, Vec::new()));
    };
    // quant and binarize calibrate on the data their spec names, with the CPU executor
    let csv = etch_sim::reference::calibrate::CsvCalibrator;
    let cx = etch_ir::passes::PassContext {
        calibrator: opts.cx.calibrator.or(Some(&csv)),
    };
    let run = etch_ir::passes::RunOptions {
        verify_each: opts.verify_each,
        cx,
    };
    let reports =
        etch_ir::passes::run_spec(&mut loaded.model, spec, &run).map_err(|e| match e {
            etch_ir::passes::PassError::Spec(s) => s.render(spec),
            e => format!("error: {path}: {e}"),
        })?;
    loaded.info = etch_ir::verify::verify(&loaded.model)
        .map_err(|e| format!("error: {path}: after the passes: {e}"))?;
    Ok((loaded, reports))
}
