//! Splitting a byte stream into lines with bounded memory, and the bounded tail kept for
//! classification. Nothing here does I/O.

use std::collections::VecDeque;

use super::Stream;

/// One line of agent output as handed to the caller.
#[derive(Debug, Clone, Copy)]
pub struct Line<'a> {
    pub stream: Stream,
    /// The line without its `\n` (and without a trailing `\r`), decoded lossily, cut to
    /// `max_line_bytes` when `truncated`.
    pub text: &'a str,
    /// The line was longer than `max_line_bytes`; the log file has it whole.
    pub truncated: bool,
    /// Length of the whole line in bytes, terminator excluded.
    pub len: u64,
}

/// Cuts a stream into lines. Keeps at most `max` bytes of the current line, so a line of
/// gigabytes costs `max` bytes of memory: the rest is only counted.
pub(crate) struct LineSplitter {
    stream: Stream,
    buf: Vec<u8>,
    line_len: u64,
    max: usize,
}

impl LineSplitter {
    pub(crate) fn new(stream: Stream, max: usize) -> Self {
        Self {
            stream,
            buf: Vec::new(),
            line_len: 0,
            max: max.max(1),
        }
    }

    /// Feeds a chunk; `emit` is called for every line the chunk completes.
    pub(crate) fn push(&mut self, mut data: &[u8], emit: &mut impl FnMut(Line<'_>)) {
        while let Some(pos) = data.iter().position(|&b| b == b'\n') {
            let head = &data[..pos];
            if self.line_len == 0 && head.len() <= self.max {
                // The common case: a whole short line inside one chunk, no copy.
                deliver(self.stream, head, false, head.len() as u64, emit);
            } else {
                self.append(head);
                let truncated = self.line_len > self.buf.len() as u64;
                deliver(self.stream, &self.buf, truncated, self.line_len, emit);
                self.buf.clear();
                self.line_len = 0;
            }
            data = &data[pos + 1..];
        }
        self.append(data);
    }

    /// End of stream: a last line without a newline is still a line.
    pub(crate) fn finish(&mut self, emit: &mut impl FnMut(Line<'_>)) {
        if self.line_len > 0 {
            let truncated = self.line_len > self.buf.len() as u64;
            deliver(self.stream, &self.buf, truncated, self.line_len, emit);
        }
        self.buf = Vec::new();
        self.line_len = 0;
    }

    fn append(&mut self, data: &[u8]) {
        let room = self.max.saturating_sub(self.buf.len());
        self.buf.extend_from_slice(&data[..data.len().min(room)]);
        self.line_len += data.len() as u64;
    }
}

fn deliver(
    stream: Stream,
    bytes: &[u8],
    truncated: bool,
    len: u64,
    emit: &mut impl FnMut(Line<'_>),
) {
    let bytes = if !truncated {
        bytes.strip_suffix(b"\r").unwrap_or(bytes)
    } else {
        bytes
    };
    let text = String::from_utf8_lossy(bytes);
    emit(Line {
        stream,
        text: &text,
        truncated,
        len,
    });
}

/// The last `lines` lines of both streams, each cut to `line_bytes`.
pub(crate) struct Tail {
    lines: VecDeque<(Stream, String)>,
    max_lines: usize,
    line_bytes: usize,
}

impl Tail {
    pub(crate) fn new(max_lines: usize, line_bytes: usize) -> Self {
        Self {
            lines: VecDeque::with_capacity(max_lines.min(1024)),
            max_lines,
            line_bytes,
        }
    }

    pub(crate) fn push(&mut self, stream: Stream, text: &str) {
        if self.max_lines == 0 {
            return;
        }
        if self.lines.len() == self.max_lines {
            self.lines.pop_front();
        }
        self.lines.push_back((
            stream,
            cut_at_char_boundary(text, self.line_bytes).to_string(),
        ));
    }

    pub(crate) fn into_vec(self) -> Vec<(Stream, String)> {
        self.lines.into()
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
pub(crate) fn cut_at_char_boundary(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn split(max: usize, chunks: &[&[u8]]) -> Vec<(String, bool, u64)> {
        let mut s = LineSplitter::new(Stream::Stdout, max);
        let mut out = Vec::new();
        let mut emit = |l: Line<'_>| out.push((l.text.to_string(), l.truncated, l.len));
        for c in chunks {
            s.push(c, &mut emit);
        }
        s.finish(&mut emit);
        out
    }

    #[test]
    fn lines_across_chunks_and_a_last_line_without_newline() {
        let got = split(100, &[b"ab", b"c\nde\r\n", b"", b"f\n\ng"]);
        let texts: Vec<_> = got.iter().map(|(t, _, _)| t.as_str()).collect();
        assert_eq!(texts, ["abc", "de", "f", "", "g"]);
        assert!(got.iter().all(|(_, tr, _)| !tr));
    }

    #[test]
    fn long_lines_are_cut_and_flagged_with_their_real_length() {
        let got = split(4, &[b"0123", b"456789\nxy", b"z\n"]);
        assert_eq!(got[0], ("0123".to_string(), true, 10));
        assert_eq!(got[1], ("xyz".to_string(), false, 3));
        let got = split(4, &[b"0123456789\n"]);
        assert_eq!(got[0], ("0123".to_string(), true, 10));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let got = split(100, &[b"a\xffb\n"]);
        assert_eq!(got[0].0, "a\u{fffd}b");
    }

    #[test]
    fn tail_keeps_the_last_lines_cut_on_char_boundaries() {
        let mut t = Tail::new(2, 3);
        t.push(Stream::Stdout, "one");
        t.push(Stream::Stderr, "two");
        t.push(Stream::Stdout, "éé");
        let v = t.into_vec();
        assert_eq!(
            v,
            [(Stream::Stderr, "two".into()), (Stream::Stdout, "é".into())]
        );
    }
}
