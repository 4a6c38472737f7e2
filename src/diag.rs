//! Error reports for the terminal: what went wrong, where (file, line, column), and a caret under
//! the offending text. Lines are cropped around the caret, since a real model's weights sit on one
//! line hundreds of megabytes long.

use std::fmt::Write;

/// A located error message over a source file.
pub struct Located<'a> {
    pub path: &'a str,
    pub src: &'a [u8],
    pub offset: usize,
    pub len: usize,
    pub message: &'a str,
}

/// How many bytes of the source line to show on each side of the caret.
const CONTEXT: usize = 60;

/// Renders a located error with the offending line and a caret under it.
pub fn render(e: &Located) -> String {
    let offset = e.offset.min(e.src.len());
    let line_start = memrchr(b'\n', &e.src[..offset]).map_or(0, |n| n + 1);
    let line_end = e.src[offset..]
        .iter()
        .position(|&b| b == b'\n')
        .map_or(e.src.len(), |n| offset + n);
    // a CRLF file's `\r` would move the terminal's cursor back to the start of the line
    let line_end = if line_end > offset && e.src[line_end - 1] == b'\r' {
        line_end - 1
    } else {
        line_end
    };
    let line_no = e.src[..line_start].iter().filter(|&&b| b == b'\n').count() + 1;
    let column = offset - line_start + 1;
    let from = offset.saturating_sub(CONTEXT).max(line_start);
    let from = (from..=offset)
        .find(|&k| k == line_start || is_char_start(e.src, k))
        .unwrap_or(offset);
    let to = (offset + e.len.max(1) + CONTEXT).min(line_end);
    let to = (to..=line_end)
        .find(|&k| k == line_end || is_char_start(e.src, k))
        .unwrap_or(line_end);
    let mut shown = String::new();
    if from > line_start {
        shown.push('…');
    }
    let before = String::from_utf8_lossy(&e.src[from..offset]).replace('\t', " ");
    shown.push_str(&before);
    let caret_col = shown.chars().count();
    shown.push_str(&String::from_utf8_lossy(&e.src[offset..to]).replace('\t', " "));
    if to < line_end {
        shown.push('…');
    }
    let caret_len = String::from_utf8_lossy(&e.src[offset..(offset + e.len).min(to)])
        .chars()
        .count()
        .max(1);
    let gutter = line_no.to_string().len();
    let mut out = String::new();
    let _ = writeln!(out, "error: {}", e.message);
    let _ = writeln!(out, "{:gutter$}--> {}:{line_no}:{column}", "", e.path);
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line_no} | {shown}");
    let _ = write!(
        out,
        "{:gutter$} | {}{}",
        "",
        " ".repeat(caret_col),
        "^".repeat(caret_len)
    );
    out
}

fn is_char_start(src: &[u8], k: usize) -> bool {
    src.get(k).is_none_or(|&b| (b as i8) >= -0x40)
}

fn memrchr(needle: u8, hay: &[u8]) -> Option<usize> {
    hay.iter().rposition(|&b| b == needle)
}
