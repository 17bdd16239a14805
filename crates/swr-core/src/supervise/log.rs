//! The per-attempt log file: written by a dedicated thread so a slow disk never blocks the
//! async loop, kept line-atomic between the two streams where it can be without unbounded
//! buffering, and flushed whenever the writer has caught up so `tail -f` sees output live.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use super::Stream;

const STDERR_PREFIX: &[u8] = b"[stderr] ";
/// Output of one stream waiting for the other stream's unfinished line is held up to this
/// much; beyond it the unfinished line is broken with a newline (the only case where the log
/// differs from the exact bytes, and only when the streams interleave mid-line).
const HOLD_CAP: usize = 256 * 1024;
/// ...or when the unfinished line has been waiting this long.
const HOLD_MAX_AGE: Duration = Duration::from_millis(500);

enum LogMsg {
    Data(Stream, Vec<u8>),
    Eof(Stream),
}

/// Handle to the writer thread.
pub(crate) struct LogWriter {
    tx: mpsc::Sender<LogMsg>,
    done: oneshot::Receiver<Option<String>>,
}

impl LogWriter {
    pub(crate) fn start(file: File) -> io::Result<Self> {
        // Bounded: at most 32 chunks (2 MiB at 64 KiB reads) queued before the reader waits.
        let (tx, mut rx) = mpsc::channel::<LogMsg>(32);
        let (done_tx, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("swr-attempt-log".into())
            .spawn(move || {
                let mut sink = LogSink::new(file);
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        LogMsg::Data(s, d) => sink.feed(s, &d),
                        LogMsg::Eof(s) => sink.eof(s),
                    }
                    if rx.is_empty() {
                        sink.flush();
                    }
                }
                sink.finish();
                let _ = done_tx.send(sink.error.map(|e| e.to_string()));
            })?;
        Ok(Self { tx, done })
    }

    pub(crate) async fn write(&self, stream: Stream, data: &[u8]) {
        // A dead writer thread already recorded its error; nothing more to do here.
        let _ = self.tx.send(LogMsg::Data(stream, data.to_vec())).await;
    }

    pub(crate) async fn eof(&self, stream: Stream) {
        let _ = self.tx.send(LogMsg::Eof(stream)).await;
    }

    /// Flushes everything and returns the first write error, if any.
    pub(crate) async fn finish(self) -> Option<String> {
        drop(self.tx);
        self.done
            .await
            .unwrap_or_else(|_| Some("log writer thread panicked".to_string()))
    }
}

/// Formats both streams into one file. `open` is the stream whose line is unfinished in the
/// file; the other stream's bytes are held meanwhile so lines don't interleave mid-line.
pub(crate) struct LogSink<W: Write> {
    w: BufWriter<W>,
    open: Option<Stream>,
    open_since: Instant,
    open_ended: bool,
    /// Raw bytes of the stream that is not `open`.
    held: Vec<u8>,
    pub(crate) error: Option<io::Error>,
}

impl<W: Write> LogSink<W> {
    pub(crate) fn new(w: W) -> Self {
        Self {
            w: BufWriter::with_capacity(64 * 1024, w),
            open: None,
            open_since: Instant::now(),
            open_ended: false,
            held: Vec::new(),
            error: None,
        }
    }

    pub(crate) fn feed(&mut self, stream: Stream, data: &[u8]) {
        if data.is_empty() {
            return;
        }
        if self.open.is_some_and(|o| o != stream) {
            self.held.extend_from_slice(data);
            if self.open_ended
                || self.held.len() > HOLD_CAP
                || self.open_since.elapsed() > HOLD_MAX_AGE
            {
                self.break_open_line();
            }
            return;
        }
        if !self.held.is_empty()
            && let Some(i) = data.iter().position(|&b| b == b'\n')
        {
            // `stream` is the open one: finish its line, let the other stream in, go on.
            self.write_raw(stream, &data[..=i]);
            let held = std::mem::take(&mut self.held);
            self.write_raw(other(stream), &held);
            self.feed(stream, &data[i + 1..]);
            return;
        }
        self.write_raw(stream, data);
    }

    pub(crate) fn eof(&mut self, stream: Stream) {
        if self.open == Some(stream) {
            // That line will never be finished: stop making the other stream wait for it.
            self.open_ended = true;
            if !self.held.is_empty() {
                self.break_open_line();
            }
        }
    }

    pub(crate) fn flush(&mut self) {
        let r = self.w.flush();
        self.record(r);
    }

    pub(crate) fn finish(&mut self) {
        if !self.held.is_empty() {
            self.break_open_line();
        }
        self.flush();
    }

    fn break_open_line(&mut self) {
        let r = self.w.write_all(b"\n");
        self.record(r);
        let Some(was_open) = self.open.take() else {
            return;
        };
        let held = std::mem::take(&mut self.held);
        self.write_raw(other(was_open), &held);
    }

    fn write_raw(&mut self, stream: Stream, mut data: &[u8]) {
        while !data.is_empty() {
            if self.open.is_none() && stream == Stream::Stderr {
                let r = self.w.write_all(STDERR_PREFIX);
                self.record(r);
            }
            match data.iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let r = self.w.write_all(&data[..=i]);
                    self.record(r);
                    self.open = None;
                    data = &data[i + 1..];
                }
                None => {
                    let r = self.w.write_all(data);
                    self.record(r);
                    if self.open.is_none() {
                        self.open_since = Instant::now();
                        self.open_ended = false;
                    }
                    self.open = Some(stream);
                    break;
                }
            }
        }
    }

    fn record(&mut self, r: io::Result<()>) {
        if let Err(e) = r
            && self.error.is_none()
        {
            self.error = Some(e);
        }
    }

    #[cfg(test)]
    fn into_inner(mut self) -> W {
        self.finish();
        match self.w.into_inner() {
            Ok(w) => w,
            Err(e) => panic!("flush failed: {e}"),
        }
    }
}

fn other(s: Stream) -> Stream {
    match s {
        Stream::Stdout => Stream::Stderr,
        Stream::Stderr => Stream::Stdout,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Stream::{Stderr, Stdout};

    fn run(ops: &[(Stream, &[u8])]) -> String {
        let mut s = LogSink::new(Vec::new());
        for (st, d) in ops {
            s.feed(*st, d);
        }
        String::from_utf8(s.into_inner()).expect("utf8")
    }

    #[test]
    fn stderr_lines_are_prefixed_stdout_kept_as_is() {
        let got = run(&[(Stdout, b"a\nb"), (Stdout, b"c\n"), (Stderr, b"e1\ne2\n")]);
        assert_eq!(got, "a\nbc\n[stderr] e1\n[stderr] e2\n");
    }

    #[test]
    fn the_other_stream_waits_for_an_unfinished_line() {
        let got = run(&[
            (Stdout, b"{\"partial"),
            (Stderr, b"err\npart"),
            (Stdout, b"\"}\nnext\n"),
            (Stderr, b"ial\n"),
        ]);
        assert_eq!(got, "{\"partial\"}\n[stderr] err\n[stderr] partial\nnext\n");
    }

    #[test]
    fn a_last_line_without_newline_stays_exact() {
        assert_eq!(run(&[(Stdout, b"no newline")]), "no newline");
    }

    #[test]
    fn held_output_is_written_at_the_end_after_a_break() {
        let got = run(&[(Stdout, b"never finished"), (Stderr, b"boom\n")]);
        assert_eq!(got, "never finished\n[stderr] boom\n");
    }
}
