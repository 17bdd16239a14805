//! The records the store holds and the patches that change them.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use jiff::Timestamp;
use rand::Rng;
use serde::{Deserialize, Serialize, Serializer};

use crate::outcome::Outcome;
use crate::spec::TaskCounts;

/// The id of one `swr run` process's lifetime, e.g. `r-20261128T132855-4f2a`: the UTC start
/// second (so ids sort by start time) and a random suffix (so runners started in the same
/// second differ). Safe in file names: only ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RunnerId(String);

impl RunnerId {
    /// A new id for a runner starting at `now`.
    pub fn generate(now: Timestamp, rng: &mut impl Rng) -> RunnerId {
        let suffix: u16 = rng.random();
        RunnerId(format!("r-{}-{suffix:04x}", now.strftime("%Y%m%dT%H%M%S")))
    }

    /// A new id for a runner starting now.
    pub fn new_now() -> RunnerId {
        RunnerId::generate(Timestamp::now(), &mut rand::rng())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A runner id with characters that are unsafe in a file name, or empty.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid runner id {0:?}: expected letters, digits, '-' or '_' (like r-20261128T132855-4f2a)"
)]
pub struct RunnerIdError(pub String);

impl FromStr for RunnerId {
    type Err = RunnerIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(RunnerId(s.to_string()))
        } else {
            Err(RunnerIdError(s.to_string()))
        }
    }
}

impl TryFrom<String> for RunnerId {
    type Error = RunnerIdError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl From<RunnerId> for String {
    fn from(id: RunnerId) -> String {
        id.0
    }
}

impl fmt::Display for RunnerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where a runner is in its life. `Queued`, `Running` and `Waiting` are active: a live `swr run`
/// process owns the record. The others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStatus {
    /// Waiting for an agent slot (`max_concurrent_agents`).
    Queued,
    /// An attempt is running, or about to.
    Running,
    /// Sleeping before a retry or until a rate limit resets (`next_attempt_at`).
    Waiting,
    /// Stopped by the user.
    Stopped,
    /// The `swr run` process itself died (found by reconciliation).
    Crashed,
    /// Every task is done.
    Completed,
    /// Gave up: retries exhausted, a permanent error, or no progress.
    Failed,
    /// Stopped by a budget (`max_cost_usd`, `max_tokens`, `spec_budget_usd`) with work left.
    Budget,
}

impl RunnerStatus {
    pub const ALL: [RunnerStatus; 8] = [
        RunnerStatus::Queued,
        RunnerStatus::Running,
        RunnerStatus::Waiting,
        RunnerStatus::Stopped,
        RunnerStatus::Crashed,
        RunnerStatus::Completed,
        RunnerStatus::Failed,
        RunnerStatus::Budget,
    ];

    pub fn is_active(self) -> bool {
        matches!(
            self,
            RunnerStatus::Queued | RunnerStatus::Running | RunnerStatus::Waiting
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunnerStatus::Queued => "queued",
            RunnerStatus::Running => "running",
            RunnerStatus::Waiting => "waiting",
            RunnerStatus::Stopped => "stopped",
            RunnerStatus::Crashed => "crashed",
            RunnerStatus::Completed => "completed",
            RunnerStatus::Failed => "failed",
            RunnerStatus::Budget => "budget",
        }
    }

    pub fn parse(s: &str) -> Option<RunnerStatus> {
        RunnerStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl fmt::Display for RunnerStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The agent process of the attempt running now, recorded so that after a crash of `swr` its
/// process group can be found and killed, and only if it is still the same process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentProcess {
    pub pid: u32,
    pub pgid: u32,
    /// `/proc/PID/stat` start time, to tell the agent from a recycled pid.
    pub start_time: Option<u64>,
    /// A marker placed in the agent's environment, to find descendants that left its group.
    pub marker: Option<String>,
}

/// One runner as stored. Timestamps serialize as RFC 3339 with milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunnerRecord {
    pub runner_id: RunnerId,
    pub project: PathBuf,
    pub spec: String,
    pub provider: String,
    pub model: Option<String>,
    pub status: RunnerStatus,
    pub reason: Option<String>,
    /// The `swr run` process.
    pub pid: u32,
    pub pid_start_time: Option<u64>,
    pub boot_id: Option<String>,
    pub iteration: u32,
    pub retry_count: u32,
    pub max_retries: u32,
    #[serde(serialize_with = "ser_opt_ts")]
    pub next_attempt_at: Option<Timestamp>,
    pub tasks: TaskCounts,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: Timestamp,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: Timestamp,
    #[serde(serialize_with = "ser_opt_ts")]
    pub ended_at: Option<Timestamp>,
    pub agent: Option<AgentProcess>,
    pub last_outcome: Option<Outcome>,
    pub last_commit: Option<String>,
    /// What its attempts cost, reported and estimated together (`None`: none reported one).
    pub cost_usd: Option<f64>,
    /// The part of `cost_usd` estimated from the `prices` table.
    pub cost_estimated_usd: Option<f64>,
    /// Its attempts' tokens (`None`: none reported any).
    pub input_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The log file of the current (or last) attempt.
    pub log_path: Option<PathBuf>,
    /// The git worktree the agent works in, when not the project itself.
    pub worktree: Option<PathBuf>,
}

/// What `create_runner` needs; the rest starts at zero / none, with status `Running`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRunner {
    /// Generated before the record so the spec lock can name it ([`RunnerId::new_now`]).
    pub runner_id: RunnerId,
    pub project: PathBuf,
    pub spec: String,
    pub provider: String,
    pub model: Option<String>,
    pub pid: u32,
    pub pid_start_time: Option<u64>,
    pub boot_id: Option<String>,
    pub max_retries: u32,
    pub tasks: TaskCounts,
    pub worktree: Option<PathBuf>,
}

/// A patch of a runner: `None` leaves a field as it is. Nullable fields are
/// `Option<Option<T>>`: `Some(None)` clears them. `updated_at` is always set to now; setting a
/// final status also sets `ended_at` to now unless the patch or the record already has one.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunnerUpdate {
    pub status: Option<RunnerStatus>,
    pub reason: Option<Option<String>>,
    pub model: Option<Option<String>>,
    pub pid: Option<u32>,
    pub pid_start_time: Option<Option<u64>>,
    pub boot_id: Option<Option<String>>,
    pub iteration: Option<u32>,
    pub retry_count: Option<u32>,
    pub max_retries: Option<u32>,
    pub next_attempt_at: Option<Option<Timestamp>>,
    pub tasks: Option<TaskCounts>,
    pub ended_at: Option<Option<Timestamp>>,
    pub agent: Option<Option<AgentProcess>>,
    pub last_outcome: Option<Option<Outcome>>,
    pub last_commit: Option<Option<String>>,
    pub cost_usd: Option<Option<f64>>,
    /// The runner's spend so far: sets `cost_usd`, `cost_estimated_usd` and the tokens.
    pub spend: Option<crate::cost::Totals>,
    pub log_path: Option<Option<PathBuf>>,
}

/// Which runners to list. Empty filter = all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunnerFilter {
    /// Only `Running` / `Waiting`.
    pub active_only: bool,
    pub project: Option<PathBuf>,
    pub spec: Option<String>,
}

/// One attempt (one agent process) of an iteration.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AttemptRecord {
    pub id: i64,
    pub runner_id: RunnerId,
    pub project: PathBuf,
    pub spec: String,
    pub iteration: u32,
    /// 1 for the first attempt of an iteration, 2 for its first retry...
    pub attempt: u32,
    #[serde(serialize_with = "ser_ts")]
    pub started_at: Timestamp,
    #[serde(serialize_with = "ser_opt_ts")]
    pub ended_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    /// Signal name, e.g. `SIGKILL`.
    pub signal: Option<String>,
    pub outcome: Option<Outcome>,
    pub error: Option<String>,
    /// The delay scheduled after this attempt (a retry backoff or a rate-limit wait).
    pub delay_before_next_ms: Option<u64>,
    pub log_path: PathBuf,
    pub session_id: Option<String>,
    /// USD as the agent reported it, or estimated from `prices` when `cost_estimated`.
    pub cost_usd: Option<f64>,
    pub cost_estimated: Option<bool>,
    /// Tokens as the agent reported them: input counts cached ones too.
    pub input_tokens: Option<u64>,
    pub cached_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    /// The model(s) it ran on, when the agent said.
    pub model: Option<String>,
    /// Tasks this attempt ticked, however it ended (`None` for attempts recorded before swr
    /// judged progress per attempt, or that never ended).
    pub ticked: Option<u32>,
    /// Whether HEAD moved during this attempt.
    pub committed: Option<bool>,
    /// The agent session this attempt continued (`--resume`).
    pub resumed_session: Option<String>,
    /// What swr did about this attempt that the outcome does not say.
    pub note: Option<String>,
    /// Something that went wrong around the attempt (tasks.md damaged and restored...).
    pub warning: Option<String>,
}

/// What `start_attempt` needs; project and spec are copied from the runner.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAttempt {
    pub runner_id: RunnerId,
    pub iteration: u32,
    pub attempt: u32,
    pub started_at: Timestamp,
    pub log_path: PathBuf,
    /// The session this attempt resumes.
    pub resumed_session: Option<String>,
}

/// How an attempt ended: written once, when it is judged.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptEnd {
    pub ended_at: Timestamp,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub outcome: Outcome,
    pub error: Option<String>,
    pub session_id: Option<String>,
    pub cost_usd: Option<f64>,
    /// `cost_usd` is an estimate from `prices`.
    pub cost_estimated: bool,
    pub tokens: Option<crate::provider::TokenUsage>,
    pub model: Option<String>,
    pub ticked: Option<u32>,
    pub committed: Option<bool>,
    /// The delay scheduled after it (a retry backoff or a rate-limit wait).
    pub delay_before_next_ms: Option<u64>,
    pub note: Option<String>,
    pub warning: Option<String>,
}

impl AttemptEnd {
    /// An end with only its outcome known; the rest is filled in by the caller.
    pub fn new(ended_at: Timestamp, outcome: Outcome) -> AttemptEnd {
        AttemptEnd {
            ended_at,
            exit_code: None,
            signal: None,
            outcome,
            error: None,
            session_id: None,
            cost_usd: None,
            cost_estimated: false,
            tokens: None,
            model: None,
            ticked: None,
            committed: None,
            delay_before_next_ms: None,
            note: None,
            warning: None,
        }
    }
}

/// The verify check a tick went through: `verify_command`, or the spec's or the task's own.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    pub command: Vec<String>,
    /// Where the command came from: `task` (its `_Verify:` line), `spec` (the spec's
    /// `swr.json`) or `config` (`verify_command`).
    pub source: String,
    pub exit_code: Option<i32>,
    /// The signal that ended it (after a timeout or a stop: swr's own).
    pub signal: Option<String>,
    /// Killed at `verify_timeout_seconds`.
    pub timed_out: bool,
    pub duration_ms: u64,
    /// The last lines of its output, both streams.
    pub output_tail: String,
    /// Its whole output.
    pub log_path: Option<PathBuf>,
}

impl Check {
    /// Exit 0 within its time.
    pub fn passed(&self) -> bool {
        self.exit_code == Some(0) && !self.timed_out
    }

    /// "exit 1", "timed out after 600s", "killed by SIGTERM".
    pub fn describe_end(&self) -> String {
        match (self.timed_out, self.exit_code, &self.signal) {
            (true, _, _) => format!("timed out after {:.0}s", self.duration_ms as f64 / 1000.0),
            (false, Some(c), _) => format!("exit {c}"),
            (false, None, Some(s)) => format!("killed by {s}"),
            (false, None, None) => "did not run".to_string(),
        }
    }
}

/// One task an attempt ticked, with the evidence of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewTick {
    pub task_id: String,
    pub title: Option<String>,
    /// HEAD after the attempt: what the check ran against.
    pub head: Option<String>,
    /// The attempt changed nothing but tasks.md (`None`: unknown, not a git project).
    pub empty: Option<bool>,
    /// The tick stands: its check passed, or it had none. A rejected tick was put back to
    /// in progress.
    pub accepted: bool,
    pub check: Option<Check>,
}

/// A tick as stored, with the attempt it came from.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TickRecord {
    pub id: i64,
    pub attempt_id: i64,
    pub runner_id: RunnerId,
    pub project: PathBuf,
    pub spec: String,
    pub iteration: u32,
    pub attempt: u32,
    #[serde(serialize_with = "ser_ts")]
    pub at: Timestamp,
    #[serde(flatten)]
    pub tick: NewTick,
}

/// Which ticks to list, oldest first. Empty filter = all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickFilter {
    pub project: Option<PathBuf>,
    pub spec: Option<String>,
    pub runner: Option<RunnerId>,
}

/// Which attempts to list, oldest first. Empty filter = all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttemptFilter {
    pub runner: Option<RunnerId>,
    pub project: Option<PathBuf>,
    pub spec: Option<String>,
    /// Attempts started at or after this time.
    pub since: Option<Timestamp>,
}

/// RFC 3339 in UTC with exactly three fractional digits: the store keeps milliseconds.
pub fn format_ts(t: Timestamp) -> String {
    format!("{t:.3}")
}

pub(crate) fn ser_ts<S: Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_ts(*t))
}

pub(crate) fn ser_opt_ts<S: Serializer>(t: &Option<Timestamp>, s: S) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&format_ts(*t)),
        None => s.serialize_none(),
    }
}
