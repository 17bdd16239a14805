//! Log tailing for the log panel: opens the tail of a log of any size by reading backwards
//! from the end in blocks (never the whole file), follows appended bytes from the last
//! position, keeps at most `cap` lines (a ring buffer), and renders agent stream-json lines as
//! readable text with the provider's own line parser. It never decides which log to follow:
//! the loop hands it a path.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use swr_core::provider::{AgentSignal, LineParser, OutputFormat, line_parser};

/// Longest line kept in memory; the rest of a runaway line is cut (the file keeps it all).
const MAX_LINE_BYTES: usize = 4096;
const BLOCK: u64 = 64 * 1024;
/// Bytes read per poll at most, so a flood never stalls the loop; the rest comes next poll.
const MAX_POLL_BYTES: u64 = 8 * 1024 * 1024;
/// Bytes read backwards at most when opening a log: the tail of a multi-GB log, or one made of
/// a single endless line, opens in milliseconds with bounded memory.
const MAX_TAIL_BYTES: u64 = 8 * 1024 * 1024;

/// How a rendered line is styled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// swr's header and footer (`# `).
    Meta,
    Text,
    Tool,
    ToolResult,
    Error,
    Stderr,
    Notice,
    Result,
    Raw,
}

/// One line of the log: the raw text and its readable rendering (possibly several lines, or
/// none for events not worth showing).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub raw: String,
    pub pretty: Vec<(LineKind, String)>,
}

/// Renders one raw log line. Lines starting with `# ` are swr's header/footer; `[stderr] `
/// marks the agent's stderr; anything else goes through the provider's parser.
pub fn render_line(parser: &mut dyn LineParser, raw: &str) -> Vec<(LineKind, String)> {
    if raw.starts_with("# | ") || raw == "# |" {
        // The prompt, repeated in every attempt's header: raw mode (w) shows it.
        return Vec::new();
    }
    if raw.starts_with("# ") || raw == "#" {
        return vec![(LineKind::Meta, raw.to_string())];
    }
    if let Some(rest) = raw.strip_prefix("[stderr] ") {
        return vec![(LineKind::Stderr, format!("stderr: {rest}"))];
    }
    if raw.trim().is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for sig in parser.parse_line(raw) {
        match sig {
            AgentSignal::SessionId(id) => out.push((LineKind::Notice, format!("session {id}"))),
            AgentSignal::Text(t) => {
                for l in t.lines() {
                    out.push((LineKind::Text, l.to_string()));
                }
            }
            AgentSignal::ToolUse { name, input } => {
                out.push((
                    LineKind::Tool,
                    format!("▶ {name} {}", one_line(&input, 300)),
                ));
            }
            AgentSignal::ToolResult { is_error, output } => {
                let kind = if is_error {
                    LineKind::Error
                } else {
                    LineKind::ToolResult
                };
                let mark = if is_error { "✗" } else { "◀" };
                out.push((kind, format!("{mark} {}", one_line(&output, 300))));
            }
            AgentSignal::Result(r) => {
                let what = if r.is_success() { "done" } else { "failed" };
                let mut s = format!("■ result: {what}");
                if let Some(c) = r.cost_usd {
                    s.push_str(&format!(", ${c:.2}"));
                }
                if let Some(t) = r.num_turns {
                    s.push_str(&format!(", {t} turns"));
                }
                if let Some(t) = &r.text {
                    s.push_str(&format!(": {}", one_line(t, 300)));
                }
                let kind = if r.is_success() {
                    LineKind::Result
                } else {
                    LineKind::Error
                };
                out.push((kind, s));
            }
            AgentSignal::Error(e) => out.push((
                LineKind::Error,
                format!("error ({}): {}", e.class, one_line(&e.message, 300)),
            )),
            AgentSignal::Notice(n) => out.push((LineKind::Notice, one_line(&n, 300))),
        }
    }
    out
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s
        .chars()
        .map(|c| if c == '\n' || c == '\r' { '⏎' } else { c })
        .take(max + 1)
        .collect();
    if flat.chars().count() > max {
        let mut t: String = flat.chars().take(max).collect();
        t.push('…');
        t
    } else {
        flat
    }
}

/// Reads the last `n` lines of `path` by seeking from the end backwards in blocks. Returns the
/// lines (oldest first, without a trailing partial line) and the byte offset just after the
/// last complete line, where following should resume.
pub fn read_tail(path: &Path, n: usize) -> std::io::Result<(Vec<String>, u64)> {
    let mut f = File::open(path)?;
    let len = f.seek(SeekFrom::End(0))?;
    // Blocks from the end backwards, newest first; joined once at the end (prepending each
    // block to a growing buffer would copy quadratically on a huge line).
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    let mut newlines = 0;
    let mut pos = len;
    // Newlines needed: n lines end in n newlines, plus one before the first of them. A window
    // of MAX_TAIL_BYTES bounds time and memory when the end of the file is one giant line.
    while newlines <= n && pos > 0 && len - pos < MAX_TAIL_BYTES {
        let start = pos.saturating_sub(BLOCK);
        let mut chunk = vec![0u8; (pos - start) as usize];
        f.seek(SeekFrom::Start(start))?;
        f.read_exact(&mut chunk)?;
        newlines += chunk.iter().filter(|&&b| b == b'\n').count();
        blocks.push(chunk);
        pos = start;
    }
    let mut buf: Vec<u8> = Vec::with_capacity((len - pos) as usize);
    for b in blocks.iter().rev() {
        buf.extend_from_slice(b);
    }
    drop(blocks);
    // Drop a trailing partial line: it is read again, whole, by the next poll.
    let end = match buf.iter().rposition(|&b| b == b'\n') {
        Some(last_nl) => {
            buf.truncate(last_nl + 1);
            pos + last_nl as u64 + 1
        }
        // A small file without a newline yet: follow it from its start. A giant line: skip
        // it rather than read it again on every poll.
        None if pos == 0 => return Ok((Vec::new(), 0)),
        None => return Ok((Vec::new(), len)),
    };
    let mut lines: Vec<&[u8]> = buf.split(|&b| b == b'\n').collect();
    lines.pop(); // after the final newline
    if pos > 0 && !lines.is_empty() {
        lines.remove(0); // cut mid-line by the block boundary
    }
    let skip = lines.len().saturating_sub(n);
    let out = lines[skip..].iter().map(|l| clip_line(l)).collect();
    Ok((out, end))
}

fn clip_line(b: &[u8]) -> String {
    let b = if b.len() > MAX_LINE_BYTES {
        &b[..MAX_LINE_BYTES]
    } else {
        b
    };
    String::from_utf8_lossy(b).into_owned()
}

/// A followed log file with a bounded buffer of rendered lines.
pub struct LogTail {
    pub path: PathBuf,
    pos: u64,
    partial: Vec<u8>,
    parser: Box<dyn LineParser>,
    cap: usize,
}

impl std::fmt::Debug for LogTail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogTail")
            .field("path", &self.path)
            .field("pos", &self.pos)
            .finish()
    }
}

impl LogTail {
    /// Opens `path` at its last `cap` lines. A missing file is empty (it may appear soon).
    pub fn open(path: &Path, format: OutputFormat, cap: usize) -> (LogTail, Vec<LogLine>) {
        let mut parser = line_parser(format);
        let (lines, pos) = read_tail(path, cap).unwrap_or((Vec::new(), 0));
        let rendered = lines
            .into_iter()
            .map(|raw| LogLine {
                pretty: render_line(parser.as_mut(), &raw),
                raw,
            })
            .collect();
        (
            LogTail {
                path: path.to_path_buf(),
                pos,
                partial: Vec::new(),
                parser,
                cap,
            },
            rendered,
        )
    }

    /// New complete lines since the last call (at most `cap` of them; older ones of a burst
    /// are skipped as they would scroll out of the ring anyway).
    pub fn poll(&mut self) -> Vec<LogLine> {
        let Ok(mut f) = File::open(&self.path) else {
            return Vec::new();
        };
        let Ok(len) = f.seek(SeekFrom::End(0)) else {
            return Vec::new();
        };
        if len < self.pos {
            // Truncated or replaced: start over.
            self.pos = 0;
            self.partial.clear();
        }
        if len == self.pos {
            return Vec::new();
        }
        let mut start = self.pos;
        if len - start > MAX_POLL_BYTES {
            // A flood: jump close to the end rather than render megabytes nobody can read.
            start = len - MAX_POLL_BYTES;
            self.partial.clear();
        }
        let mut data = Vec::new();
        if f.seek(SeekFrom::Start(start)).is_err()
            || f.take(len - start).read_to_end(&mut data).is_err()
        {
            return Vec::new();
        }
        self.pos = start + data.len() as u64;
        let mut buf = std::mem::take(&mut self.partial);
        buf.extend_from_slice(&data);
        let Some(last_nl) = buf.iter().rposition(|&b| b == b'\n') else {
            self.partial = clip_partial(buf);
            return Vec::new();
        };
        self.partial = clip_partial(buf[last_nl + 1..].to_vec());
        let lines: Vec<&[u8]> = buf[..last_nl].split(|&b| b == b'\n').collect();
        let skip = lines.len().saturating_sub(self.cap);
        lines[skip..]
            .iter()
            .map(|l| {
                let raw = clip_line(l);
                LogLine {
                    pretty: render_line(self.parser.as_mut(), &raw),
                    raw,
                }
            })
            .collect()
    }
}

fn clip_partial(mut b: Vec<u8>) -> Vec<u8> {
    // A line without newline growing forever must not grow memory forever.
    if b.len() > MAX_LINE_BYTES * 4 {
        b.truncate(MAX_LINE_BYTES);
    }
    b
}

/// Appends to a bounded ring, dropping the oldest lines.
pub fn push_bounded(ring: &mut VecDeque<LogLine>, lines: Vec<LogLine>, cap: usize) {
    for l in lines {
        if ring.len() >= cap {
            ring.pop_front();
        }
        ring.push_back(l);
    }
}

/// The provider parser, for tests that build log lines by hand.
#[cfg(test)]
pub fn line_parser_for_tests(format: OutputFormat) -> Box<dyn LineParser> {
    line_parser(format)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn tail_reads_only_the_end_of_a_big_file() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big.log");
        let mut f = File::create(&p).unwrap();
        for i in 0..200_000 {
            writeln!(f, "line {i} {}", "x".repeat(40)).unwrap();
        }
        write!(f, "partial").unwrap();
        drop(f);
        let t = std::time::Instant::now();
        let (lines, end) = read_tail(&p, 5).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        assert_eq!(lines.len(), 5);
        assert!(lines[4].starts_with("line 199999 "), "{:?}", lines[4]);
        assert!(lines[0].starts_with("line 199995 "));
        let len = std::fs::metadata(&p).unwrap().len();
        assert_eq!(end, len - "partial".len() as u64);
    }

    #[test]
    fn tail_of_a_giant_single_line_is_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("one-line.log");
        let mut f = File::create(&p).unwrap();
        writeln!(f, "# header").unwrap();
        let block = vec![b'a'; 1024 * 1024];
        for _ in 0..64 {
            f.write_all(&block).unwrap();
        }
        drop(f);
        // Used to read all 64 MB backwards, prepending block by block: minutes and 64 MB+.
        let t = std::time::Instant::now();
        let (lines, end) = read_tail(&p, 200).unwrap();
        assert!(t.elapsed() < std::time::Duration::from_secs(5));
        assert!(lines.is_empty(), "no complete line in the window");
        let len = std::fs::metadata(&p).unwrap().len();
        assert_eq!(end, len, "the giant partial line is skipped, not re-read");
        // A 5 MB line with newlines around it is shown, clipped.
        let q = dir.path().join("five.log");
        let mut f = File::create(&q).unwrap();
        writeln!(f, "# before").unwrap();
        f.write_all(&vec![b'b'; 5_000_000]).unwrap();
        writeln!(f).unwrap();
        writeln!(f, "# after").unwrap();
        drop(f);
        let (lines, _) = read_tail(&q, 200).unwrap();
        assert_eq!(
            lines.len(),
            3,
            "{:?}",
            lines.iter().map(|l| l.len()).collect::<Vec<_>>()
        );
        assert_eq!(lines[1].len(), MAX_LINE_BYTES);
        assert_eq!(lines[2], "# after");
    }

    #[test]
    fn tail_of_small_file_and_follow() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.log");
        std::fs::write(&p, "# header\n[stderr] boom\n").unwrap();
        let (mut tail, lines) = LogTail::open(&p, OutputFormat::ClaudeStreamJson, 3);
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].pretty, vec![(LineKind::Meta, "# header".into())]);
        assert_eq!(lines[1].pretty[0].0, LineKind::Stderr);
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        write!(
            f,
            "{{\"type\":\"assistant\",\"message\":{{\"content\":[{{\"type\":\"text\",\"text\":\"hel"
        )
        .unwrap();
        f.flush().unwrap();
        assert!(tail.poll().is_empty(), "a partial line waits for its end");
        writeln!(f, "lo\"}}]}}}}").unwrap();
        let new = tail.poll();
        assert_eq!(new.len(), 1);
        assert_eq!(new[0].pretty, vec![(LineKind::Text, "hello".into())]);
        let mut ring = VecDeque::new();
        push_bounded(&mut ring, lines, 3);
        push_bounded(&mut ring, new, 3);
        for i in 0..5 {
            writeln!(f, "# {i}").unwrap();
        }
        push_bounded(&mut ring, tail.poll(), 3);
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.back().unwrap().raw, "# 4");
    }

    #[test]
    fn tool_calls_and_results_are_readable() {
        let mut p = line_parser(OutputFormat::ClaudeStreamJson);
        let tool = r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"ls"}}]}}"#;
        let r = render_line(p.as_mut(), tool);
        assert_eq!(r[0].0, LineKind::Tool);
        assert!(r[0].1.contains("Bash") && r[0].1.contains("ls"), "{r:?}");
        let res = r#"{"type":"result","subtype":"success","is_error":false,"num_turns":2,"total_cost_usd":0.5,"result":"all good"}"#;
        let r = render_line(p.as_mut(), res);
        assert_eq!(r[0].0, LineKind::Result);
        assert!(
            r[0].1.contains("$0.50") && r[0].1.contains("all good"),
            "{r:?}"
        );
    }
}
