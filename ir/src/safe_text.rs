//! Text from a model or a file, made safe for where etch writes it: a line comment of emitted
//! Verilog or C++, a C string literal, the user's terminal. A node label, a tensor name or a file
//! name is data; none of these functions lets it become code, a second line or an escape sequence.

use std::fmt::Write as _;

/// `text` as the body of a `//` comment in Verilog or C++: printable ASCII is kept, everything else
/// (newlines, control characters, non-ASCII) is written as `\u{…}`, so the comment cannot end
/// early. A backslash becomes `\x5c` (a line ending in one would splice the next line into the
/// comment in C++), and `*/`, `/*` and `??` are broken up so no block comment or trigraph forms.
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev = '\0';
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\x5c"),
            '/' if prev == '*' => out.push_str("\\x2f"),
            '*' if prev == '/' => out.push_str("\\x2a"),
            '?' if prev == '?' => out.push_str("\\x3f"),
            ' '..='~' => out.push(c),
            _ => {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
        }
        prev = c;
    }
    out
}

/// `text` as the contents of a C/C++ string literal that is also a `printf` format: printable
/// ASCII is kept except `"`, `\`, `%` and `?` (escaped, `%` doubled), everything else is a
/// three-digit octal escape, so no byte of the name can end the literal or start a directive.
pub fn c_format_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'"' => out.push_str("\\\""),
            b'\\' => out.push_str("\\\\"),
            b'%' => out.push_str("%%"),
            b'?' => out.push_str("\\?"),
            b' '..=b'~' => out.push(b as char),
            _ => {
                let _ = write!(out, "\\{b:03o}");
            }
        }
    }
    out
}

/// Whether `c` would change what a terminal shows beyond the character itself: C0 and C1 control
/// characters (escape sequences start with ESC or CSI), DEL, and the bidirectional overrides and
/// isolates that reorder the rest of a line.
fn unsafe_on_terminal(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// One name (or any single-line text) for the terminal: every control character, newline and tab
/// included, is written as `\u{…}`.
pub fn terminal_name(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if unsafe_on_terminal(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

/// A message for the terminal: like [`terminal_name`], but newlines and tabs stay (a message may
/// span lines; a table is laid out with spaces).
pub fn terminal_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c != '\n' && c != '\t' && unsafe_on_terminal(c) {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_comment_stays_one_line_and_closes_nothing() {
        let hostile = "x\n#include <cstdlib>\r\nstatic int y = std::system(\"id\"); */ /* ??/ \\";
        let c = comment(hostile);
        assert!(!c.contains('\n') && !c.contains('\r'));
        assert!(!c.contains("*/") && !c.contains("/*") && !c.contains("??"));
        assert!(!c.ends_with('\\'));
        assert_eq!(comment("conv1/Conv_0 (int8)"), "conv1/Conv_0 (int8)");
    }

    #[test]
    fn a_literal_cannot_be_left() {
        let l = c_format_literal("a\"b\\c%d\n??=é");
        assert_eq!(l, "a\\\"b\\\\c%%d\\012\\?\\?=\\303\\251");
    }

    #[test]
    fn escapes_do_not_reach_the_terminal() {
        let t = terminal_name("a\u{1b}[2Jb\nc\u{202e}d");
        assert_eq!(t, "a\\u{1b}[2Jb\\u{a}c\\u{202e}d");
        assert_eq!(
            terminal_text("line 1\n\tline 2\u{7}"),
            "line 1\n\tline 2\\u{7}"
        );
    }
}
