//! Escaping for `ledger-verify`'s human-readable output.
//!
//! Entries are written by agents, so anything read from a leaf or a bundle
//! (agent ids, field names, revealed values, actions, resources, verdict
//! reasons) is attacker-controlled text. Printed raw, a revealed value
//! `"ACME\n  proven    amount ≤ 10"` adds a line that looks exactly like
//! one the verifier printed itself, and a carriage return, an ANSI escape
//! or a bidi override can hide or reorder what follows it on a terminal.
//! Every such string goes through one of these functions before it is
//! printed, so one printed line is one line the verifier meant to print.

use std::fmt::Write as _;

/// Whether `c` would change the layout or the look of the surrounding text
/// instead of just showing up: control characters (C0, DEL, C1), and the
/// invisible, format and separator characters Rust's `escape_debug`
/// escapes (U+2028, U+202E, U+200B, unassigned code points, …).
/// Combining marks are printable here: they only decorate the character
/// before them, and escaping them would mangle decomposed accented text.
fn is_invisible(c: char) -> bool {
    if c.is_ascii() {
        return c.is_ascii_control();
    }
    if c.is_control() {
        return true;
    }
    // `str::escape_debug` escapes a grapheme extender only at the start of
    // the string; behind an `a` it escapes exactly the unprintable ones.
    let mut pair = String::with_capacity(8);
    pair.push('a');
    pair.push(c);
    !pair.escape_debug().eq(pair.chars())
}

fn push_escaped(c: char, out: &mut String) {
    match c {
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        _ => {
            let _ = write!(out, "\\u{{{:x}}}", c as u32);
        }
    }
}

/// Agent-controlled text as a fragment of one output line: invisible
/// characters and backslashes are escaped as in a Rust string literal
/// (`\n`, `\u{202e}`, `\\`), everything else, quotes included, is kept.
/// Escaping the backslash keeps the rendering unambiguous: a value holding
/// a backslash and an `n` never prints like one holding a newline.
pub fn text(s: &str) -> String {
    escaped(s, true)
}

/// A whole message (an error that may quote agent text through `Display`)
/// as one line: only invisible characters are escaped. Backslashes are
/// kept, so escapes that `Debug` formatting already wrote stay readable.
pub fn line(s: &str) -> String {
    escaped(s, false)
}

/// Escapes invisible characters, and backslashes too when `backslashes`.
fn escaped(s: &str, backslashes: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if backslashes && c == '\\' {
            out.push_str("\\\\");
        } else if is_invisible(c) {
            push_escaped(c, &mut out);
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON text (from `serde_json`) for a terminal: serde_json escapes
/// control characters but writes invisible ones (U+2028, bidi overrides)
/// raw; those become `\uXXXX` escapes, so the text stays valid JSON that
/// parses to the same value. Pretty-printed JSON keeps its newlines, which
/// only ever occur between tokens.
pub fn json(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c != '\n' && is_invisible(c) {
            let mut units = [0u16; 2];
            for unit in c.encode_utf16(&mut units) {
                let _ = write!(out, "\\u{unit:04x}");
            }
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
    fn text_stays_on_one_line_and_is_unambiguous() {
        assert_eq!(text("ACME Corp"), "ACME Corp");
        assert_eq!(text("x\n  proven    amount ≤ 1"), "x\\n  proven    amount ≤ 1");
        assert_eq!(text("a\\nb"), "a\\\\nb");
        assert_eq!(text("\r\t\u{1b}[2K\u{7f}\u{85}"), "\\r\\t\\u{1b}[2K\\u{7f}\\u{85}");
        assert_eq!(text("abc\u{202e}fed\u{2028}\u{200b}"), "abc\\u{202e}fed\\u{2028}\\u{200b}");
        assert_eq!(text("\"quoted\" 'and' café é spiffe://x/y"), "\"quoted\" 'and' café é spiffe://x/y");
        assert_eq!(text("\u{301}x"), "\u{301}x", "a leading combining mark is kept");
    }

    #[test]
    fn line_escapes_only_invisible_characters() {
        assert_eq!(line("entry 3: kind \"a\\nb\"\nFAKE"), "entry 3: kind \"a\\nb\"\\nFAKE");
    }

    #[test]
    fn json_stays_json() {
        let value = serde_json::json!({"k\u{202e}": "a\nb\u{2028}\u{1F600}"});
        let printed = json(&serde_json::to_string_pretty(&value).unwrap_or_default());
        assert!(!printed.contains('\u{202e}') && !printed.contains('\u{2028}'), "{printed}");
        assert_eq!(serde_json::from_str::<serde_json::Value>(&printed).ok(), Some(value));
    }
}
