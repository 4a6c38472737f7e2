//! The pass-spec language: `name(key=value, …),name,…`. A value is a number, a word, a
//! double-quoted string (a file path), or a list `[…]` of values. Errors point at the column.

use nom::branch::alt;
use nom::bytes::complete::{take_while, take_while1};
use nom::character::complete::{char, multispace0};
use nom::combinator::{cut, map, opt, recognize};
use nom::multi::separated_list0;
use nom::sequence::delimited;
use nom::{IResult, Parser};

/// A value as written, with the column (0-based byte offset) it starts at.
#[derive(Debug, Clone, PartialEq)]
pub enum SpecValue {
    Number(f64, String),
    Word(String),
    Str(String),
    List(Vec<SpecValue>),
}

impl SpecValue {
    /// How the value reads in a message.
    pub fn describe(&self) -> String {
        match self {
            SpecValue::Number(_, t) => t.clone(),
            SpecValue::Word(w) => w.clone(),
            SpecValue::Str(s) => format!("\"{s}\""),
            SpecValue::List(v) => format!(
                "[{}]",
                v.iter()
                    .map(SpecValue::describe)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

/// One `key=value` argument.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecArg {
    pub key: String,
    pub value: SpecValue,
    /// Byte offsets of the key and the value in the spec string.
    pub key_at: usize,
    pub value_at: usize,
}

/// One pass with its arguments, as written.
#[derive(Debug, Clone, PartialEq)]
pub struct SpecPass {
    pub name: String,
    pub at: usize,
    pub args: Vec<SpecArg>,
}

/// A spec string that does not parse, with the byte offset of the problem.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("column {}: {message}", .at + 1)]
pub struct SpecError {
    pub at: usize,
    pub message: String,
}

impl SpecError {
    /// The spec string with a caret under the problem, for the terminal.
    pub fn render(&self, spec: &str) -> String {
        format!(
            "error: in the pass spec, {}\n  {spec}\n  {}^",
            self,
            " ".repeat(spec[..self.at.min(spec.len())].chars().count())
        )
    }
}

type In<'a> = &'a str;

fn ws<'a, O>(
    p: impl Parser<In<'a>, Output = O, Error = nom::error::Error<In<'a>>>,
) -> impl Parser<In<'a>, Output = O, Error = nom::error::Error<In<'a>>> {
    delimited(multispace0, p, multispace0)
}

fn ident(i: In) -> IResult<In, In> {
    recognize((
        take_while1(|c: char| c.is_ascii_alphabetic()),
        take_while(|c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
    ))
    .parse(i)
}

fn number(i: In) -> IResult<In, SpecValue> {
    map(
        recognize((
            opt(char('-')),
            take_while1(|c: char| c.is_ascii_digit()),
            opt((char('.'), take_while(|c: char| c.is_ascii_digit()))),
            opt((
                alt((char('e'), char('E'))),
                opt(alt((char('+'), char('-')))),
                take_while1(|c: char| c.is_ascii_digit()),
            )),
        )),
        |t: &str| SpecValue::Number(t.parse().unwrap_or(f64::NAN), t.to_string()),
    )
    .parse(i)
}

fn string(i: In) -> IResult<In, SpecValue> {
    map(
        delimited(char('"'), take_while(|c| c != '"'), cut(char('"'))),
        |s: &str| SpecValue::Str(s.to_string()),
    )
    .parse(i)
}

fn value(i: In) -> IResult<In, SpecValue> {
    ws(alt((
        number,
        string,
        map(ident, |w: &str| SpecValue::Word(w.to_string())),
        map(
            delimited(char('['), separated_list0(char(','), value), ws(char(']'))),
            SpecValue::List,
        ),
    )))
    .parse(i)
}

/// Parses a spec string. Positions in errors count from the start of `spec`.
pub fn parse_spec(spec: &str) -> Result<Vec<SpecPass>, SpecError> {
    check_nesting(spec)?;
    let at = |rest: &str| spec.len() - rest.len();
    let mut passes = Vec::new();
    let mut i = spec;
    loop {
        let rest = i.trim_start();
        let start = at(rest);
        let (rest, name) = ident(rest).map_err(|_| SpecError {
            at: start,
            message: format!("expected a pass name, found {}", found(rest)),
        })?;
        let mut pass = SpecPass {
            name: name.to_string(),
            at: start,
            args: Vec::new(),
        };
        let mut rest = rest.trim_start();
        if let Some(after) = rest.strip_prefix('(') {
            rest = after;
            loop {
                let r = rest.trim_start();
                if let Some(after) = r.strip_prefix(')') {
                    rest = after;
                    break;
                }
                let key_at = at(r);
                let (r2, key) = ident(r).map_err(|_| SpecError {
                    at: key_at,
                    message: format!(
                        "expected `key=value` in the arguments of `{name}`, found {}",
                        found(r)
                    ),
                })?;
                let r2 = r2.trim_start();
                let r2 = r2.strip_prefix('=').ok_or_else(|| SpecError {
                    at: at(r2),
                    message: format!("expected `=` after `{key}`, found {}", found(r2)),
                })?;
                let r2 = r2.trim_start();
                let value_at = at(r2);
                let (r2, val) = value(r2).map_err(|e| {
                    let bad = match &e {
                        nom::Err::Error(e) | nom::Err::Failure(e) => e.input,
                        nom::Err::Incomplete(_) => "",
                    };
                    SpecError { at: at(bad), message: format!("expected a value for `{key}` (a number, a word, a \"quoted path\" or a [list]), found {}", found(bad)) }
                })?;
                pass.args.push(SpecArg {
                    key: key.to_string(),
                    value: val,
                    key_at,
                    value_at,
                });
                let r3 = r2.trim_start();
                if let Some(after) = r3.strip_prefix(',') {
                    rest = after;
                } else if let Some(after) = r3.strip_prefix(')') {
                    rest = after;
                    break;
                } else {
                    return Err(SpecError {
                        at: at(r3),
                        message: format!(
                            "expected `,` or `)` in the arguments of `{name}`, found {}",
                            found(r3)
                        ),
                    });
                }
            }
        }
        passes.push(pass);
        let r = rest.trim_start();
        if r.is_empty() {
            return Ok(passes);
        }
        match r.strip_prefix(',') {
            Some(after) => i = after,
            None => {
                return Err(SpecError {
                    at: at(r),
                    message: format!("expected `,` between passes, found {}", found(r)),
                })
            }
        }
    }
}

/// Lists are parsed recursively: refuse nesting past `MAX_NESTING` before parsing, at the `[`
/// that goes too deep (quoted strings are skipped).
fn check_nesting(spec: &str) -> Result<(), SpecError> {
    use crate::limits::MAX_NESTING;
    let (mut depth, mut quoted) = (0usize, false);
    for (at, c) in spec.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '[' if !quoted => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Err(SpecError {
                        at,
                        message: format!(
                            "lists nest more than {MAX_NESTING} levels deep here; etch stops there"
                        ),
                    });
                }
            }
            ']' if !quoted => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

fn found(rest: &str) -> String {
    match rest.chars().next() {
        None => "the end of the spec".to_string(),
        Some(_) => format!("`{}`", rest.chars().take(12).collect::<String>()),
    }
}
