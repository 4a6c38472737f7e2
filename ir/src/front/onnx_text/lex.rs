//! The lexical level of the ONNX text syntax: whitespace and comments, identifiers, strings and
//! numbers, read straight from bytes with nom. Numbers follow ONNX's spelling rules exactly (no
//! leading `+` or `.`, no hex), and floats are converted straight to `f32` with correct rounding.

use nom::bytes::complete::take_while;
use nom::{Err as NomErr, IResult, Input};

/// The parser's input: the remaining source bytes.
pub type In<'a> = &'a [u8];

/// A parse failure at a position, as a count of bytes left so the caller can turn it into an offset.
#[derive(Debug, Clone, PartialEq)]
pub struct PErr {
    /// `input.len()` at the failure point.
    pub remaining: usize,
    /// An absolute offset that overrides `remaining`, for errors found after the parser moved on.
    pub offset: Option<usize>,
    /// How many bytes the caret should cover.
    pub len: usize,
    pub message: String,
}

impl<'a> nom::error::ParseError<In<'a>> for PErr {
    fn from_error_kind(input: In<'a>, kind: nom::error::ErrorKind) -> Self {
        PErr {
            remaining: input.len(),
            offset: None,
            len: token_len(input),
            message: format!("unexpected {} ({kind:?})", found(input)),
        }
    }

    fn append(_: In<'a>, _: nom::error::ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result type of every parser here.
pub type PResult<'a, T> = IResult<In<'a>, T, PErr>;

/// A committed error: the input is malformed here, so no alternative should be tried.
pub fn fail<T>(at: In<'_>, message: impl Into<String>) -> Result<T, NomErr<PErr>> {
    Err(NomErr::Failure(PErr {
        remaining: at.len(),
        offset: None,
        len: token_len(at),
        message: message.into(),
    }))
}

/// A committed error covering `len` bytes from `at`.
pub fn fail_len<T>(at: In<'_>, len: usize, message: impl Into<String>) -> Result<T, NomErr<PErr>> {
    Err(NomErr::Failure(PErr {
        remaining: at.len(),
        offset: None,
        len: len.max(1),
        message: message.into(),
    }))
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c)
}

/// Skips whitespace and `#` comments.
pub fn ws(mut i: In<'_>) -> In<'_> {
    loop {
        match i.first() {
            Some(&b) if is_ws(b) => i = &i[1..],
            Some(b'#') => {
                i = match memchr::memchr(b'\n', i) {
                    Some(n) => &i[n + 1..],
                    None => &i[i.len()..],
                }
            }
            _ => return i,
        }
    }
}

/// The next byte after whitespace, without consuming anything.
pub fn peek(i: In<'_>) -> Option<u8> {
    ws(i).first().copied()
}

fn is_id_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_'
}

fn is_id_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Whether the next token is an identifier or a quoted name.
pub fn at_qid(i: In<'_>) -> bool {
    ws(i).first().is_some_and(|&b| is_id_start(b) || b == b'"')
}

/// Length of the token that starts at `i`, for carets and "found" messages.
pub fn token_len(i: In<'_>) -> usize {
    match i.first() {
        None => 1,
        Some(&b) if is_id_start(b) => i.iter().take_while(|&&b| is_id_continue(b)).count(),
        Some(&b) if b.is_ascii_digit() || b == b'-' => {
            1 + i[1..]
                .iter()
                .take_while(|&&b| b.is_ascii_alphanumeric() || b == b'.' || b == b'+' || b == b'-')
                .count()
        }
        Some(b'"') => match memchr::memchr(b'"', &i[1..]) {
            Some(n) => (n + 2).min(80),
            None => 1,
        },
        Some(_) => 1,
    }
}

/// Describes the token at `i` for an error message: "`xyz`" or "the end of the input".
pub fn found(i: In<'_>) -> String {
    let i = ws(i);
    if i.is_empty() {
        return "the end of the input".to_string();
    }
    let n = token_len(i).min(40);
    format!("`{}`", String::from_utf8_lossy(&i[..n]))
}

/// Consumes `c` after whitespace or fails with "expected `c` {what}, found …".
pub fn expect(c: u8, what: &str) -> impl Fn(In<'_>) -> PResult<'_, ()> + '_ {
    move |i| {
        let i = ws(i);
        if i.first() == Some(&c) {
            Ok((&i[1..], ()))
        } else {
            fail(
                i,
                format!("expected `{}` {what}, found {}", c as char, found(i)),
            )
        }
    }
}

/// Consumes `c` after whitespace if it is there.
pub fn eat(c: u8, i: In<'_>) -> Option<In<'_>> {
    let i = ws(i);
    (i.first() == Some(&c)).then(|| &i[1..])
}

/// An identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn id(i: In<'_>) -> PResult<'_, &str> {
    let i = ws(i);
    if !i.first().is_some_and(|&b| is_id_start(b)) {
        return Err(NomErr::Error(PErr {
            remaining: i.len(),
            offset: None,
            len: token_len(i),
            message: format!("expected a name, found {}", found(i)),
        }));
    }
    let (rest, word) = take_while(is_id_continue)(i)?;
    // identifiers are ASCII by construction
    Ok((rest, std::str::from_utf8(word).unwrap_or_default()))
}

/// An identifier, committed: a missing one is an error that says what was wanted.
pub fn id_for<'a>(i: In<'a>, what: &str) -> PResult<'a, &'a str> {
    match id(i) {
        Ok(r) => Ok(r),
        Err(_) => {
            let i = ws(i);
            fail(i, format!("expected {what}, found {}", found(i)))
        }
    }
}

/// A double-quoted string; a backslash makes the next byte literal, as in onnx's parser.
pub fn string(i: In<'_>) -> PResult<'_, String> {
    let i = ws(i);
    if i.first() != Some(&b'"') {
        return Err(NomErr::Error(PErr {
            remaining: i.len(),
            offset: None,
            len: token_len(i),
            message: format!("expected a string, found {}", found(i)),
        }));
    }
    let mut out = Vec::new();
    let mut k = 1;
    loop {
        match i.get(k) {
            None => return fail_len(i, 1, "this string is never closed: add a `\"`"),
            Some(b'"') => break,
            Some(b'\\') => {
                match i.get(k + 1) {
                    Some(&b) => out.push(b),
                    None => return fail_len(i, 1, "this string is never closed: add a `\"`"),
                }
                k += 2;
            }
            Some(&b) => {
                out.push(b);
                k += 1;
            }
        }
    }
    match String::from_utf8(out) {
        Ok(s) => Ok((&i[k + 1..], s)),
        Err(_) => fail_len(
            i,
            k + 1,
            "this string is not valid UTF-8: names and strings must be UTF-8 text",
        ),
    }
}

/// A quotable identifier: a bare name or a quoted string.
pub fn qid(i: In<'_>) -> PResult<'_, String> {
    let i = ws(i);
    if i.first() == Some(&b'"') {
        string(i)
    } else {
        let (rest, s) = id(i)?;
        let special = matches!(rest.first(), Some(b'-' | b'/' | b'.')) || rest.starts_with(b"::");
        if special && rest.get(1).is_some_and(|&b| is_name_byte(b)) {
            return unquoted_name(i).unwrap_or_else(|| Ok((rest, s.to_string())));
        }
        Ok((rest, s.to_string()))
    }
}

fn is_name_byte(b: u8) -> bool {
    is_id_continue(b) || matches!(b, b'-' | b'/' | b'.' | b':')
}

/// An exporter's name written without its quotes (`/conv1/Conv_output_0`, `my-x`, `onnx::Add_3`),
/// which is never valid bare: the error that says to quote it.
pub fn unquoted_name<T>(i: In<'_>) -> Option<Result<T, NomErr<PErr>>> {
    let i = ws(i);
    let n = i.iter().take_while(|&&b| is_name_byte(b)).count();
    let word = &i[..n];
    let needs_quotes = word
        .first()
        .is_some_and(|&b| is_id_start(b) || matches!(b, b'/' | b'.' | b':'))
        && word.iter().any(|&b| is_id_continue(b))
        && word.iter().any(|&b| !is_id_continue(b));
    needs_quotes.then(|| {
        let name = String::from_utf8_lossy(word);
        fail_len(i, n, format!("`{name}` is not a valid bare name: a name with characters other than letters, digits and `_` must be quoted, as in `\"{name}\"`"))
    })
}

/// A name, committed, with what was wanted in the error.
pub fn qid_for<'a>(i: In<'a>, what: &str) -> PResult<'a, String> {
    match qid(i) {
        Err(NomErr::Error(_)) => {
            let i = ws(i);
            if let Some(e) = unquoted_name(i) {
                return e;
            }
            fail(i, format!("expected {what}, found {}", found(i)))
        }
        r => r,
    }
}

/// A numeric token's spelling, before conversion.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NumKind {
    Int,
    Float,
}

/// Whether a word is one of the float specials `inf`, `infinity`, `nan` (any case).
pub fn is_special_float(word: &[u8]) -> bool {
    word.eq_ignore_ascii_case(b"inf")
        || word.eq_ignore_ascii_case(b"infinity")
        || word.eq_ignore_ascii_case(b"nan")
}

/// Whether a number starts here: a digit, a `-`, or a float special word (or a `+` or `.` before a
/// digit, which `number` then rejects with a message saying how to write it).
pub fn at_number(i: In<'_>) -> bool {
    let i = ws(i);
    match i.first() {
        Some(b) if b.is_ascii_digit() || *b == b'-' => true,
        Some(b'+' | b'.') => i.get(1).is_some_and(u8::is_ascii_digit),
        Some(b) if is_id_start(*b) => {
            let n = i.iter().take_while(|&&b| is_id_continue(b)).count();
            is_special_float(&i[..n])
        }
        _ => false,
    }
}

/// Scans one number by ONNX's rules and returns its bytes and kind; the caller converts it.
pub fn number(i: In<'_>) -> PResult<'_, (&[u8], NumKind)> {
    let i = ws(i);
    let mut k = usize::from(i.first() == Some(&b'-'));
    let digits = i[k..].iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        let n = i[k..].iter().take_while(|&&b| is_id_continue(b)).count();
        if n > 0 && is_special_float(&i[k..k + n]) {
            return Ok((&i[k + n..], (&i[..k + n], NumKind::Float)));
        }
        if k == 1 && ws(&i[1..]).first().is_some_and(|b| b.is_ascii_digit()) {
            let digits = ws(&i[1..])
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            let num = String::from_utf8_lossy(&ws(&i[1..])[..digits]);
            return fail_len(
                i,
                1,
                format!("a `-` must be written right before its digits: write `-{num}`"),
            );
        }
        if k == 0
            && matches!(i.first(), Some(b'+' | b'.'))
            && i.get(1).is_some_and(u8::is_ascii_digit)
        {
            let n = 1 + i[1..]
                .iter()
                .take_while(|&&b| b.is_ascii_digit() || b == b'.')
                .count();
            let tok = String::from_utf8_lossy(&i[1..n]);
            let (what, fix) = if i[0] == b'+' {
                ("`+`", tok.to_string())
            } else {
                ("`.`", format!("0.{tok}"))
            };
            return fail_len(
                i,
                n,
                format!("a number cannot start with {what}: write `{fix}`"),
            );
        }
        return Err(NomErr::Error(PErr {
            remaining: i.len(),
            offset: None,
            len: token_len(i),
            message: format!("expected a number, found {}", found(i)),
        }));
    }
    k += digits;
    let mut kind = NumKind::Int;
    if i.get(k) == Some(&b'.') {
        kind = NumKind::Float;
        k += 1;
        k += i[k..].iter().take_while(|b| b.is_ascii_digit()).count();
    }
    if matches!(i.get(k), Some(b'e' | b'E')) {
        kind = NumKind::Float;
        let mut e = k + 1;
        if matches!(i.get(e), Some(b'+' | b'-')) {
            e += 1;
        }
        let exp_digits = i[e..].iter().take_while(|b| b.is_ascii_digit()).count();
        if exp_digits == 0 {
            return fail_len(
                i,
                e,
                format!(
                    "the exponent of `{}` has no digits: write it as in `1e-5`",
                    String::from_utf8_lossy(&i[..e])
                ),
            );
        }
        k = e + exp_digits;
    }
    if i.get(k).is_some_and(|&b| is_id_continue(b) || b == b'.') {
        let n = k + i[k..]
            .iter()
            .take_while(|&&b| is_id_continue(b) || b == b'.')
            .count();
        return fail_len(
            i,
            n,
            format!(
                "malformed number `{}`: numbers are decimal, as in `16`, `-0.5` or `1e-5`",
                String::from_utf8_lossy(&i[..n])
            ),
        );
    }
    Ok((&i[k..], (&i[..k], kind)))
}

/// Converts a scanned number to f32 with correct rounding; `-nan` keeps its sign bit.
pub fn to_f32(tok: &[u8]) -> f32 {
    let (neg, mag) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    let v: f32 = fast_float2::parse(mag).unwrap_or(f32::NAN);
    if neg {
        -v
    } else {
        v
    }
}

/// Converts a scanned number to f64 with correct rounding.
pub fn to_f64(tok: &[u8]) -> f64 {
    let (neg, mag) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    let v: f64 = fast_float2::parse(mag).unwrap_or(f64::NAN);
    if neg {
        -v
    } else {
        v
    }
}

/// Converts an integer token to i128 (wide enough for every int64 and uint64 value), or `None` on overflow.
pub fn to_int(tok: &[u8]) -> Option<i128> {
    let (neg, mag) = match tok.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, tok),
    };
    let mut v: i128 = 0;
    for &b in mag {
        v = v.checked_mul(10)?.checked_add(i128::from(b - b'0'))?;
        if v > u64::MAX as i128 + 1 {
            return None;
        }
    }
    Some(if neg { -v } else { v })
}

/// An int64 literal, committed.
pub fn int64<'a>(i: In<'a>, what: &str) -> PResult<'a, i64> {
    let start = ws(i);
    let (rest, (tok, kind)) = match number(i) {
        Err(NomErr::Error(_)) => {
            return fail(
                start,
                format!("expected {what} (an integer), found {}", found(start)),
            )
        }
        r => r?,
    };
    if kind == NumKind::Float {
        return fail_len(
            start,
            tok.len(),
            format!(
                "expected {what} (an integer), found the float `{}`",
                String::from_utf8_lossy(tok)
            ),
        );
    }
    match to_int(tok).filter(|v| *v >= i64::MIN as i128 && *v <= i64::MAX as i128) {
        Some(v) => Ok((rest, v as i64)),
        None => fail_len(
            start,
            tok.len(),
            format!(
                "integer `{}` does not fit in 64 bits",
                String::from_utf8_lossy(tok)
            ),
        ),
    }
}

/// Whether the input is exhausted (after whitespace).
pub fn at_end(i: In<'_>) -> bool {
    ws(i).input_len() == 0
}
