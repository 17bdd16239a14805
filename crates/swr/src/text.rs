//! Text that reaches a terminal. Agents, tasks.md files, directory names and the store are not
//! ours: an ESC in an agent's last line (`\e[2J`, `\e]0;title\a`) would clear the user's screen
//! or retitle the window if printed raw, and a newline in a spec name would forge a row. Every
//! such text goes through [`escape`] (or [`one_line`] / [`lines`], its two uses) before it is
//! printed; JSON output needs none of this (serde escapes control characters).

use std::borrow::Cow;

/// Longest spec or project name a listing prints before cutting it with `…`: one odd name must
/// not widen every row.
pub const NAME_MAX: usize = 40;

/// Characters a terminal acts on instead of showing: C0 and C1 controls and DEL (`char::
/// is_control`), and the bidirectional overrides that reorder what is displayed.
fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061c}' | '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every unsafe character written visibly (`\n`, `\t`, `\r`, `\x1b`, `\u{202e}`),
/// except those in `keep`. Borrowed when nothing needed escaping, the common case.
pub fn escape<'a>(s: &'a str, keep: &[char]) -> Cow<'a, str> {
    if !s.chars().any(|c| is_unsafe(c) && !keep.contains(&c)) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if !is_unsafe(c) || keep.contains(&c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x100 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    Cow::Owned(out)
}

/// A value printed inside one line (a name, a reason, an agent's last line).
pub fn one_line(s: &str) -> Cow<'_, str> {
    escape(s, &[])
}

/// A multi-line text (an error message, a log): newlines and tabs stay.
pub fn lines(s: &str) -> Cow<'_, str> {
    escape(s, &['\n', '\t'])
}

/// [`one_line`], cut to `max` characters with a trailing `…`.
pub fn clipped(s: &str, max: usize) -> String {
    let safe = one_line(s);
    if safe.chars().count() <= max {
        return safe.into_owned();
    }
    let mut out: String = safe.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// Streams bytes of a file to a terminal as [`lines`] does, across reads that cut a UTF-8
/// sequence in two: the incomplete tail waits in `pending` for the next read.
#[derive(Debug, Default)]
pub struct ByteEscaper {
    pending: Vec<u8>,
}

impl ByteEscaper {
    pub fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        let mut out = String::new();
        loop {
            match std::str::from_utf8(&self.pending) {
                Ok(s) => {
                    out.push_str(&lines(s));
                    self.pending.clear();
                    return out;
                }
                Err(e) => {
                    let valid = e.valid_up_to();
                    // Checked by from_utf8 up to `valid`.
                    out.push_str(&lines(&String::from_utf8_lossy(&self.pending[..valid])));
                    match e.error_len() {
                        Some(n) => {
                            out.push('\u{fffd}');
                            self.pending.drain(..valid + n);
                        }
                        None => {
                            self.pending.drain(..valid);
                            return out;
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_would_act_on() {
        assert_eq!(one_line("plain text · ✓"), "plain text · ✓");
        assert!(matches!(one_line("plain"), Cow::Borrowed(_)));
        assert_eq!(one_line("\x1b[2Jgone"), "\\x1b[2Jgone");
        assert_eq!(one_line("\x1b]0;title\x07"), "\\x1b]0;title\\x07");
        assert_eq!(one_line("a\nb\tc\rd\x7f"), "a\\nb\\tc\\rd\\x7f");
        assert_eq!(one_line("\u{9b}31m"), "\\x9b31m");
        assert_eq!(one_line("abc\u{202e}fed"), "abc\\u{202e}fed");
        assert_eq!(lines("one\n\ttwo\x1b[K"), "one\n\ttwo\\x1b[K");
    }

    #[test]
    fn clips_long_names_with_an_ellipsis() {
        assert_eq!(clipped("short", 10), "short");
        assert_eq!(clipped(&"x".repeat(250), 10), format!("{}…", "x".repeat(9)));
        assert_eq!(clipped("a\x1bb", 10), "a\\x1bb");
        assert_eq!(clipped("éééé", 3), "éé…");
    }

    #[test]
    fn byte_stream_keeps_utf8_cut_between_reads() {
        let mut e = ByteEscaper::default();
        let s = "é\x1b[2J\n".as_bytes();
        let mut out = e.push(&s[..1]);
        assert_eq!(out, "");
        out.push_str(&e.push(&s[1..]));
        assert_eq!(out, "é\\x1b[2J\n");
        assert_eq!(e.push(b"a\xffb"), "a\u{fffd}b");
    }
}
