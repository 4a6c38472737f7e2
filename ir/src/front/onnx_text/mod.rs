//! The ONNX text front end: what `onnx.printer.to_text` writes and `onnx.parser.parse_model` reads.

mod lex;
mod parse;

use crate::graph::Model;

/// A syntax error, located in the source.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}, column {column}: {message}")]
pub struct ParseError {
    pub message: String,
    /// Byte offset of the offending text.
    pub offset: usize,
    /// Bytes the caret covers.
    pub len: usize,
    pub line: usize,
    pub column: usize,
}

/// Parses a model in the ONNX text syntax. Never panics and never allocates from a declared size:
/// vectors only grow with values actually read.
pub fn parse_model(src: &[u8]) -> Result<crate::graph::Model, ParseError> {
    let cx = parse::Cx::new(src);
    let err = match parse::model(&cx, src) {
        Ok(([], model)) => return Ok(model),
        Ok((rest, _)) => lex::PErr {
            remaining: rest.len(),
            offset: None,
            len: 1,
            message: "unexpected text after the model".into(),
        },
        Err(nom::Err::Error(e) | nom::Err::Failure(e)) => e,
        Err(nom::Err::Incomplete(_)) => lex::PErr {
            remaining: 0,
            offset: None,
            len: 1,
            message: "the input ends in the middle of the model".into(),
        },
    };
    let offset = err
        .offset
        .unwrap_or(src.len() - err.remaining.min(src.len()))
        .min(src.len());
    let (line, column) = cx.line_col(offset);
    let len = err
        .len
        .min(src.len().saturating_sub(offset))
        .max(if offset < src.len() { 1 } else { 0 });
    Err(ParseError {
        message: err.message,
        offset,
        len,
        line,
        column,
    })
}

/// Parses a model from a string.
pub fn parse_model_str(src: &str) -> Result<Model, ParseError> {
    parse_model(src.as_bytes())
}
