//! The CLI's side of the model pipeline (`etch_sim::pipeline`): read the file, run the pipeline
//! with this process's `--allow-partial`, print its notes on stderr, and render its errors against
//! the source (file, line, column and a caret).

use std::sync::atomic::{AtomicBool, Ordering};

use etch_ir::passes::PassError;
use etch_ir::verify::Focus;
use etch_ir::weights::STRIPPED_KEY;
use etch_sim::pipeline::{Pipeline, PipelineError, Prepared, Source};

use crate::diag::{render, Located};

/// An error already rendered for the terminal.
pub type CliError = String;

/// Reads any other input file as text (descriptions, CSV, SCALE-Sim files): a regular file, at
/// most the data-file limit (`--max-bytes`).
pub fn read_text(path: &str) -> Result<String, CliError> {
    etch_ir::limits::read_text(path, etch_ir::limits::FileKind::Data)
        .map_err(|e| format!("error: {e}"))
}

/// Whether a model whose shapes cannot all be inferred is let through (`--allow-partial`), with a
/// warning, rather than refused. Set once by `main`, so every command's pipeline gets it.
static ALLOW_PARTIAL: AtomicBool = AtomicBool::new(false);

/// Sets `--allow-partial` for this process.
pub fn set_allow_partial(allow: bool) {
    ALLOW_PARTIAL.store(allow, Ordering::Relaxed);
}

/// Reads a model file; an error names it.
pub fn source(path: &str) -> Result<Source, CliError> {
    Source::read(path).map_err(|e| error(path, &[], &e))
}

/// Runs the pipeline on a model read with [`source`]: notes go to stderr (before any error, in
/// the order they arose), errors come back rendered against the source.
pub fn run(src: &Source, pipeline: Pipeline) -> Result<Prepared, CliError> {
    let pipeline = Pipeline {
        allow_partial: ALLOW_PARTIAL.load(Ordering::Relaxed),
        ..pipeline
    };
    let mut notes = Vec::new();
    let result = pipeline.run(src, &mut notes);
    // notes carry names from the model: escaped for the terminal
    for note in &notes {
        eprintln!("{}", etch_ir::safe_text::terminal_name(&note.to_string()));
    }
    result.map_err(|e| error(&src.path, &src.bytes, &e))
}

/// Reads, parses, fills, verifies and runs the passes: the one way every command gets its model.
pub fn prepare(path: &str, pipeline: Pipeline) -> Result<Prepared, CliError> {
    run(&source(path)?, pipeline)
}

/// Renders a pipeline error for the terminal: located errors with the offending line and a caret,
/// the others as one line naming the file.
pub fn error(path: &str, src: &[u8], e: &PipelineError) -> CliError {
    let at = |offset: usize, len: usize, message: &str| {
        render(&Located {
            path,
            src,
            offset,
            len,
            message,
        })
    };
    match e {
        PipelineError::Read(_) => format!("error: {e}"),
        PipelineError::Parse(p) => at(p.offset, p.len, &p.message),
        PipelineError::Weights { error, span } => match span {
            Some(s) if s.line > 0 => at(
                s.offset,
                first_line_len(src, s.offset, s.len),
                &error.to_string(),
            ),
            // the header has no spans; the key is near the top of the file
            _ => {
                let key = format!("\"{STRIPPED_KEY}\"");
                match src.windows(key.len()).position(|w| w == key.as_bytes()) {
                    Some(offset) => at(offset, key.len(), &error.to_string()),
                    None => format!("error: {path}: {error}"),
                }
            }
        },
        PipelineError::Verify(v) if v.span.line > 0 => {
            let (offset, len) = match v
                .focus
                .as_ref()
                .and_then(|f| focus_in(src, v.span.offset, v.span.len, f))
            {
                Some(range) => range,
                None => (
                    v.span.offset,
                    first_line_len(src, v.span.offset, v.span.len),
                ),
            };
            at(offset, len, &v.to_string())
        }
        PipelineError::Incomplete { span, .. } if span.line > 0 => at(
            span.offset,
            first_line_len(src, span.offset, span.len),
            &e.to_string(),
        ),
        PipelineError::Passes {
            error: PassError::Spec(s),
            spec,
        } => s.render(spec),
        PipelineError::Proto(_)
        | PipelineError::Verify(_)
        | PipelineError::Incomplete { .. }
        | PipelineError::Passes { .. }
        | PipelineError::AfterPasses(_)
        | PipelineError::Lower(_) => format!("error: {path}: {e}"),
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

/// The length of a span cut at the end of its first line, so the caret stays on one line.
fn first_line_len(src: &[u8], offset: usize, len: usize) -> usize {
    let end = (offset + len).min(src.len());
    src[offset.min(end)..end]
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(end - offset.min(end))
}
