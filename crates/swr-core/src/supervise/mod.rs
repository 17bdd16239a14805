//! Process mechanics of one agent attempt: spawn in its own process group, stream its output
//! line by line, idle and wall timers, graceful stop with escalation, and making sure nothing
//! of the attempt survives it. It knows nothing about specs, providers or retries.
//!
//! Layout: `lines` cuts output into bounded lines, `log` writes the attempt's log file from
//! its own thread, `procs` finds and kills leftovers by process group and by the marker
//! variable, and this file drives one attempt from spawn to its typed end.

mod lines;
mod log;
mod procs;

use std::path::PathBuf;
use std::process::ExitStatus;
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::watch;
use tokio::time::Instant;

pub use lines::Line;
pub use procs::{KillReason, MARKER_VAR, OrphanReport, ProcId, kill_orphans, signal_name};

use lines::{LineSplitter, Tail};
use log::LogWriter;

/// What to run: built by a provider, executed by the supervisor. Never passed to a shell.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CommandSpec {
    /// The executable, as given in config (looked up on PATH when it has no slash).
    pub program: String,
    /// Arguments after the program, one element each; the prompt is one of them or stdin.
    pub args: Vec<String>,
    /// Variables to set for the agent on top of the inherited environment.
    pub env: Vec<(String, String)>,
    /// Inherited variables to remove before spawning.
    pub env_remove: Vec<String>,
    /// Working directory: the project.
    pub cwd: PathBuf,
    /// What the agent reads on stdin.
    pub stdin: StdinInput,
}

/// The agent's stdin. Never an open pipe that stays open: codex blocks on it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub enum StdinInput {
    /// `/dev/null`.
    Null,
    /// Write these bytes, then close the pipe.
    Text(String),
}

/// How one attempt is supervised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuperviseOptions {
    /// Stop the attempt when neither stream printed anything for this long.
    pub idle_timeout: Option<Duration>,
    /// Stop the attempt this long after spawn.
    pub wall_timeout: Option<Duration>,
    /// Between SIGTERM and SIGKILL to the group on a stop or timeout.
    pub stop_grace: Duration,
    /// Token put in [`MARKER_VAR`] of the agent so every descendant can be found later. Record
    /// it before spawning; empty means "generate one" (see [`RunningAttempt::marker`]).
    pub marker: String,
    /// How many last lines (both streams) the report keeps.
    pub tail_lines: usize,
    /// Longer lines reach the callback cut to this many bytes (the log gets them whole).
    pub max_line_bytes: usize,
    /// Each tail line is cut to this many bytes.
    pub tail_line_bytes: usize,
    /// After the leader exited: SIGTERM to leftovers, this grace, then SIGKILL.
    pub cleanup_grace: Duration,
    /// After the leader exited and leftovers are dead, how long the pipes may stay open before
    /// reading stops (a holder swr cannot find must not stall the runner).
    pub leak_timeout: Duration,
    /// After [`StopHandle::result_seen`]: how long the agent may take to exit by itself before
    /// it is stopped (TERM, grace, KILL) and the attempt ends as
    /// [`AttemptExit::StoppedAfterResult`].
    pub result_grace: Duration,
}

impl Default for SuperviseOptions {
    fn default() -> Self {
        Self {
            idle_timeout: None,
            wall_timeout: None,
            stop_grace: Duration::from_secs(10),
            marker: new_marker(),
            tail_lines: 50,
            max_line_bytes: 1024 * 1024,
            tail_line_bytes: 4096,
            cleanup_grace: Duration::from_millis(500),
            leak_timeout: Duration::from_millis(200),
            result_grace: Duration::from_secs(10),
        }
    }
}

/// A fresh marker token, unique across processes and attempts.
pub fn new_marker() -> String {
    format!("swr-{}-{:016x}", std::process::id(), rand::random::<u64>())
}

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Stream {
    Stdout,
    Stderr,
}

/// Which timer ended an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum TimeoutKind {
    /// No output on either stream for `idle_timeout`.
    Idle,
    /// `wall_timeout` since spawn.
    Wall,
}

/// How an attempt ended, from the supervisor's point of view. A stop request or a timeout
/// wins over whatever the process did afterwards; the raw status is in [`ExitReport`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttemptExit {
    Exited {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut {
        kind: TimeoutKind,
    },
    Stopped,
    /// The agent had reported the end of its work ([`StopHandle::result_seen`]) and was still
    /// alive `result_grace` later, so swr stopped it: a lingering shutdown, not a failure.
    StoppedAfterResult,
    SpawnFailed(SpawnError),
}

/// Why the agent could not be started. ENOENT and EACCES/ENOEXEC are told apart because they
/// are never worth a retry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot run `{program}`: not found")]
    NotFound { program: String },
    #[error("cannot run `{program}`: permission denied or not an executable")]
    PermissionDenied { program: String },
    #[error("cannot run `{program}`: {message}")]
    Other { program: String, message: String },
}

impl SpawnError {
    fn from_io(program: &str, e: &std::io::Error) -> Self {
        let program = program.to_string();
        match e.kind() {
            std::io::ErrorKind::NotFound => Self::NotFound { program },
            std::io::ErrorKind::PermissionDenied => Self::PermissionDenied { program },
            _ if e.raw_os_error() == Some(nix::errno::Errno::ENOEXEC as i32) => {
                Self::PermissionDenied { program }
            }
            _ => Self::Other {
                program,
                message: e.to_string(),
            },
        }
    }
}

/// Everything known about an attempt once it is over.
#[derive(Debug, Clone)]
pub struct ExitReport {
    pub exit: AttemptExit,
    /// The leader's exit code, when it exited normally.
    pub raw_code: Option<i32>,
    /// The signal that killed the leader, when it was killed.
    pub raw_signal: Option<i32>,
    pub started_at: jiff::Timestamp,
    pub ended_at: jiff::Timestamp,
    pub duration: Duration,
    /// SIGKILL was sent to the group while the leader was alive (grace ran out, or `kill()`).
    pub escalated_to_kill: bool,
    /// Processes of the attempt still alive after the leader exited, which were killed.
    pub leftovers_killed: usize,
    /// The last lines of both streams, in arrival order.
    pub tail: Vec<(Stream, String)>,
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// A pipe was still open `leak_timeout` after the leader's exit and the cleanup: something
    /// outside swr's reach holds it. Reading stopped.
    pub pipes_leaked: bool,
    /// The first error writing the log file, if any (the attempt is not failed for it).
    pub log_error: Option<String>,
    /// From the moment the leader's exit was seen to the end of `wait`: leftover cleanup and
    /// draining the pipes.
    pub after_exit: Duration,
}

/// What a [`StopHandle`] asked for; only ever increases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum StopLevel {
    None,
    /// The work is over: exit within `result_grace` or be stopped.
    ResultSeen,
    Graceful,
    Kill,
}

/// Asks a running attempt to stop. Cheap to clone, usable from any task or thread; does
/// nothing once the attempt is over.
#[derive(Debug, Clone)]
pub struct StopHandle {
    tx: Arc<watch::Sender<StopLevel>>,
}

impl StopHandle {
    /// SIGTERM to the group, `stop_grace`, then SIGKILL.
    pub fn stop(&self) {
        self.raise(StopLevel::Graceful);
    }

    /// SIGKILL to the group now (the second Ctrl-C).
    pub fn kill(&self) {
        self.raise(StopLevel::Kill);
    }

    /// The agent reported the end of its turn (its final result event). From now on its
    /// output resets no timer: it has `result_grace` to exit by itself, then it is stopped
    /// like on [`StopHandle::stop`] and the attempt ends as [`AttemptExit::StoppedAfterResult`].
    pub fn result_seen(&self) {
        self.raise(StopLevel::ResultSeen);
    }

    fn raise(&self, level: StopLevel) {
        self.tx.send_if_modified(|l| {
            let raise = *l < level;
            if raise {
                *l = level;
            }
            raise
        });
    }
}

/// A spawned attempt. Dropping it without [`RunningAttempt::wait`] (or dropping the `wait`
/// future) SIGKILLs the whole attempt.
#[derive(Debug)]
pub struct RunningAttempt {
    pub pid: u32,
    /// Equal to `pid`: the agent leads its own group.
    pub pgid: u32,
    /// Leader start time from `/proc`, to recognise it after a crash of swr.
    pub start_time: Option<u64>,
    /// The marker token the attempt's processes carry.
    pub marker: String,
    child: tokio::process::Child,
    stdin_task: Option<tokio::task::JoinHandle<()>>,
    log: Option<LogWriter>,
    opts: SuperviseOptions,
    stop_tx: Arc<watch::Sender<StopLevel>>,
    started: Instant,
    started_at: jiff::Timestamp,
    guard: AttemptGuard,
}

impl std::fmt::Debug for LogWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogWriter")
    }
}

/// Kills the attempt if it is abandoned before its cleanup ran.
#[derive(Debug)]
struct AttemptGuard {
    pgid: u32,
    marker: String,
    start_time: Option<u64>,
    armed: bool,
}

impl Drop for AttemptGuard {
    fn drop(&mut self) {
        if self.armed {
            procs::killpg_raw(self.pgid, Signal::SIGKILL);
            for (p, _) in procs::scan(None, Some(&self.marker), self.start_time) {
                procs::kill_verified(p, Signal::SIGKILL);
            }
        }
    }
}

/// Starts `cmd` in its own process group with stdout and stderr piped. `log` gets both
/// streams (stderr lines prefixed `[stderr] `); open it in append mode.
pub async fn spawn(
    cmd: &CommandSpec,
    opts: &SuperviseOptions,
    log: Option<std::fs::File>,
) -> Result<RunningAttempt, SpawnError> {
    let mut opts = opts.clone();
    if opts.marker.is_empty() {
        opts.marker = new_marker();
    }
    if !cmd.cwd.is_dir() {
        // Checked here because a failed chdir in the child reports ENOENT, which would read
        // as "program not found".
        return Err(SpawnError::Other {
            program: cmd.program.clone(),
            message: format!("working directory {} is not a directory", cmd.cwd.display()),
        });
    }
    let mut c = tokio::process::Command::new(&cmd.program);
    c.args(&cmd.args)
        .current_dir(&cmd.cwd)
        .process_group(0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(match cmd.stdin {
            StdinInput::Null => std::process::Stdio::null(),
            StdinInput::Text(_) => std::process::Stdio::piped(),
        })
        .kill_on_drop(true);
    for k in &cmd.env_remove {
        c.env_remove(k);
    }
    for (k, v) in &cmd.env {
        c.env(k, v);
    }
    c.env(MARKER_VAR, marker_value(cmd, &opts.marker));

    let mut child = c
        .spawn()
        .map_err(|e| SpawnError::from_io(&cmd.program, &e))?;
    let started = Instant::now();
    let started_at = jiff::Timestamp::now();
    let Some(pid) = child.id() else {
        return Err(SpawnError::Other {
            program: cmd.program.clone(),
            message: "the process exited before its pid was read".into(),
        });
    };
    let start_time = crate::procinfo::start_time(pid);
    let guard = AttemptGuard {
        pgid: pid,
        marker: opts.marker.clone(),
        start_time,
        armed: true,
    };

    let stdin_task = match (&cmd.stdin, child.stdin.take()) {
        (StdinInput::Text(text), Some(mut pipe)) => {
            let bytes = text.clone().into_bytes();
            // Its own task: an agent that reads its prompt slowly, or not at all, must not
            // block the output loop (a full pipe both ways is a deadlock).
            Some(tokio::spawn(async move {
                let _ = pipe.write_all(&bytes).await;
                drop(pipe);
            }))
        }
        _ => None,
    };
    let log = match log {
        Some(f) => match LogWriter::start(f) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!(error = %e, "cannot start the log writer thread; attempt runs unlogged");
                None
            }
        },
        None => None,
    };
    let (stop_tx, _) = watch::channel(StopLevel::None);
    Ok(RunningAttempt {
        pid,
        pgid: pid,
        start_time,
        marker: opts.marker.clone(),
        child,
        stdin_task,
        log,
        opts,
        stop_tx: Arc::new(stop_tx),
        started,
        started_at,
        guard,
    })
}

/// The marker variable's value for the agent: the new token, after any token inherited from
/// an enclosing attempt so that one can still find this one.
fn marker_value(cmd: &CommandSpec, token: &str) -> String {
    let inherited = match cmd.env.iter().rev().find(|(k, _)| k == MARKER_VAR) {
        Some((_, v)) => Some(v.clone()),
        None if cmd.env_remove.iter().any(|k| k == MARKER_VAR) => None,
        None => std::env::var(MARKER_VAR).ok(),
    };
    match inherited.filter(|v| !v.is_empty()) {
        Some(v) => format!("{v},{token}"),
        None => token.to_string(),
    }
}

/// Why the supervisor ended the attempt itself.
#[derive(Debug, Clone, Copy)]
enum Cause {
    Stop,
    Timeout(TimeoutKind),
    AfterResult,
}

/// One output pipe and its line state.
struct OutputPipe<R> {
    stream: Stream,
    pipe: Option<R>,
    splitter: LineSplitter,
    buf: Vec<u8>,
    bytes: u64,
}

impl<R: AsyncRead + Unpin> OutputPipe<R> {
    fn new(stream: Stream, pipe: Option<R>, max_line: usize) -> Self {
        Self {
            stream,
            pipe,
            splitter: LineSplitter::new(stream, max_line),
            buf: vec![0; 64 * 1024],
            bytes: 0,
        }
    }

    fn is_open(&self) -> bool {
        self.pipe.is_some()
    }

    /// Reads one chunk; `None` at end of stream (or on a read error, which ends it too).
    async fn read(&mut self) -> Option<usize> {
        let pipe = self.pipe.as_mut()?;
        match pipe.read(&mut self.buf).await {
            Ok(0) => None,
            Ok(n) => Some(n),
            Err(e) => {
                tracing::warn!(stream = ?self.stream, error = %e, "reading agent output failed");
                None
            }
        }
    }
}

/// `from + after`, or `None` ("never") when there is no timer or the sum would overflow the
/// clock: a timer too long to represent can never fire, and must not panic either.
pub fn deadline_after(from: Instant, after: Option<Duration>) -> Option<Instant> {
    after.and_then(|d| from.checked_add(d))
}

async fn at(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

impl RunningAttempt {
    pub fn stop_handle(&self) -> StopHandle {
        StopHandle {
            tx: Arc::clone(&self.stop_tx),
        }
    }

    /// Drives the attempt to its end; `on_line` is called for each (possibly truncated) line,
    /// in order per stream.
    pub async fn wait(self, mut on_line: impl FnMut(Stream, &str) + Send) -> ExitReport {
        self.wait_lines(|l: Line<'_>| on_line(l.stream, l.text))
            .await
    }

    /// Like [`RunningAttempt::wait`], with each line's truncation flag and real length.
    pub async fn wait_lines(mut self, mut on_line: impl FnMut(Line<'_>) + Send) -> ExitReport {
        let opts = self.opts.clone();
        let mut out = OutputPipe::new(
            Stream::Stdout,
            self.child.stdout.take(),
            opts.max_line_bytes,
        );
        let mut err = OutputPipe::new(
            Stream::Stderr,
            self.child.stderr.take(),
            opts.max_line_bytes,
        );
        let mut tail = Tail::new(opts.tail_lines, opts.tail_line_bytes);
        let mut emit = |l: Line<'_>| {
            tail.push(l.stream, l.text);
            on_line(l);
        };
        let mut stop_rx = self.stop_tx.subscribe();
        // A stop requested between spawn and wait must not be lost.
        stop_rx.mark_changed();
        let wall_deadline = deadline_after(self.started, opts.wall_timeout);
        let mut last_output = self.started;
        let mut cause: Option<Cause> = None;
        let mut kill_at: Option<Instant> = None;
        let mut escalated = false;
        let mut status: Option<ExitStatus> = None;
        let mut leftovers = 0;
        let mut leak_deadline: Option<Instant> = None;
        let mut pipes_leaked = false;
        let mut exited_at: Option<Instant> = None;
        // Set once the agent reported its result: the only timer left until it exits.
        let mut linger_deadline: Option<Instant> = None;

        loop {
            if status.is_some() && !out.is_open() && !err.is_open() {
                break;
            }
            let running = status.is_none();
            let timers_on = running && cause.is_none() && linger_deadline.is_none();
            let idle_deadline =
                deadline_after(last_output, opts.idle_timeout.filter(|_| timers_on));
            tokio::select! {
                n = out.read(), if out.is_open() => {
                    handle_chunk(&mut out, n, self.log.as_ref(), &mut emit).await;
                    last_output = Instant::now();
                }
                n = err.read(), if err.is_open() => {
                    handle_chunk(&mut err, n, self.log.as_ref(), &mut emit).await;
                    last_output = Instant::now();
                }
                st = self.child.wait(), if running => {
                    exited_at = Some(Instant::now());
                    match st {
                        Ok(st) => status = Some(st),
                        Err(e) => {
                            // Only if the child was already reaped elsewhere; treat as gone.
                            tracing::error!(error = %e, "waiting for the agent failed");
                            status = Some(ExitStatus::default());
                        }
                    }
                    leftovers = reap_leftovers(self.pgid, &self.marker, self.start_time, opts.cleanup_grace).await;
                    self.guard.armed = false;
                    leak_deadline = deadline_after(Instant::now(), Some(opts.leak_timeout));
                }
                () = at(idle_deadline) => {
                    self.begin_stop(&mut cause, Cause::Timeout(TimeoutKind::Idle), &mut kill_at, &mut escalated);
                }
                () = at(wall_deadline.filter(|_| timers_on)) => {
                    self.begin_stop(&mut cause, Cause::Timeout(TimeoutKind::Wall), &mut kill_at, &mut escalated);
                }
                () = at(linger_deadline.filter(|_| running && cause.is_none())) => {
                    self.begin_stop(&mut cause, Cause::AfterResult, &mut kill_at, &mut escalated);
                }
                () = at(kill_at.filter(|_| running)) => {
                    kill_at = None;
                    escalated = true;
                    self.signal_all(Signal::SIGKILL);
                }
                Ok(()) = stop_rx.changed(), if running => {
                    let level = *stop_rx.borrow_and_update();
                    match level {
                        StopLevel::None => {}
                        StopLevel::ResultSeen => {
                            // Overflow is out of reach: validation caps result_grace_seconds.
                            if linger_deadline.is_none() {
                                linger_deadline =
                                    deadline_after(Instant::now(), Some(opts.result_grace));
                            }
                        }
                        StopLevel::Graceful => {
                            self.begin_stop(&mut cause, Cause::Stop, &mut kill_at, &mut escalated);
                        }
                        StopLevel::Kill => {
                            cause.get_or_insert(Cause::Stop);
                            kill_at = None;
                            escalated = true;
                            self.signal_all(Signal::SIGKILL);
                        }
                    }
                }
                () = at(leak_deadline) => {
                    pipes_leaked = out.is_open() || err.is_open();
                    break;
                }
            }
        }

        for p in [&mut out.splitter, &mut err.splitter] {
            p.finish(&mut emit);
        }
        if let Some(t) = self.stdin_task.take() {
            t.abort();
        }
        let log_error = match self.log.take() {
            Some(l) => l.finish().await,
            None => None,
        };
        let status = status.unwrap_or_default();
        let exit = match cause {
            Some(Cause::Stop) => AttemptExit::Stopped,
            Some(Cause::Timeout(kind)) => AttemptExit::TimedOut { kind },
            Some(Cause::AfterResult) => AttemptExit::StoppedAfterResult,
            None => exit_of(status),
        };
        let duration = self.started.elapsed();
        ExitReport {
            exit,
            raw_code: status.code(),
            raw_signal: std::os::unix::process::ExitStatusExt::signal(&status),
            started_at: self.started_at,
            ended_at: jiff::Timestamp::now(),
            duration,
            escalated_to_kill: escalated,
            leftovers_killed: leftovers,
            tail: tail.into_vec(),
            stdout_bytes: out.bytes,
            stderr_bytes: err.bytes,
            pipes_leaked,
            log_error,
            after_exit: exited_at.map(|t| t.elapsed()).unwrap_or_default(),
        }
    }

    fn begin_stop(
        &self,
        cause: &mut Option<Cause>,
        why: Cause,
        kill_at: &mut Option<Instant>,
        escalated: &mut bool,
    ) {
        if cause.is_some() {
            return;
        }
        *cause = Some(why);
        if self.opts.stop_grace.is_zero() {
            *escalated = true;
            self.signal_all(Signal::SIGKILL);
        } else {
            self.signal_all(Signal::SIGTERM);
            *kill_at = deadline_after(Instant::now(), Some(self.opts.stop_grace));
        }
    }

    /// Signals the group (safe: the leader is not reaped yet, so the pgid is still ours) and
    /// every marked process outside it.
    fn signal_all(&self, sig: Signal) {
        procs::killpg_raw(self.pgid, sig);
        for (p, _) in procs::scan(None, Some(&self.marker), self.start_time) {
            procs::kill_verified(p, sig);
        }
    }
}

async fn handle_chunk<R: AsyncRead + Unpin>(
    pipe: &mut OutputPipe<R>,
    n: Option<usize>,
    log: Option<&LogWriter>,
    emit: &mut impl FnMut(Line<'_>),
) {
    match n {
        Some(n) => {
            pipe.bytes += n as u64;
            let chunk = &pipe.buf[..n];
            if let Some(l) = log {
                l.write(pipe.stream, chunk).await;
            }
            pipe.splitter.push(chunk, emit);
        }
        None => {
            pipe.pipe = None;
            if let Some(l) = log {
                l.eof(pipe.stream).await;
            }
        }
    }
}

fn exit_of(status: ExitStatus) -> AttemptExit {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => AttemptExit::Exited { code },
        (None, Some(signal)) => AttemptExit::Signaled { signal },
        (None, None) => AttemptExit::Exited { code: -1 },
    }
}

/// After the leader exited: SIGTERM to what is left of the group and to every marked
/// process, `grace`, then SIGKILL to survivors. Returns how many distinct processes were
/// found alive.
async fn reap_leftovers(pgid: u32, marker: &str, since: Option<u64>, grace: Duration) -> usize {
    let mut seen = std::collections::HashSet::new();
    let mut found = procs::scan(Some(pgid), Some(marker), since);
    if found.is_empty() {
        return 0;
    }
    let deadline = deadline_after(Instant::now(), Some(grace));
    let mut sig = Signal::SIGTERM;
    loop {
        let mut group_hit = false;
        for (p, reason) in &found {
            seen.insert(*p);
            match reason {
                // Signalled as a group below: catches what forks in between too.
                KillReason::Group => group_hit = true,
                KillReason::Marker => {
                    procs::kill_verified(*p, sig);
                }
            }
        }
        if group_hit {
            procs::killpg_raw(pgid, sig);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        found = procs::scan(Some(pgid), Some(marker), since);
        if found.is_empty() {
            break;
        }
        if let Some(deadline) = deadline.filter(|d| Instant::now() >= *d) {
            let given_up = deadline_after(deadline, Some(Duration::from_secs(2)));
            if sig == Signal::SIGKILL && given_up.is_none_or(|g| Instant::now() >= g) {
                tracing::warn!(
                    pgid,
                    count = found.len(),
                    "leftover processes survive SIGKILL"
                );
                break;
            }
            sig = Signal::SIGKILL;
        }
    }
    seen.len()
}
