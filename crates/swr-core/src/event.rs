//! `RunnerEvent`: the one contract between the runner loop and whatever shows it (progress
//! bar, plain lines, `--json` event stream). Consumers never reach into the runner's state.

use std::path::PathBuf;

use serde::Serialize;

use crate::outcome::Outcome;
use crate::spec::TaskCounts;

/// Why a run ended. Each maps to one exit code of `swr run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEnd {
    /// Every task is done.
    Completed,
    /// The circuit breaker opened: iterations stopped making progress.
    CircuitOpen { reason: String },
    /// An iteration failed more often than `retry_max_retries` allows.
    RetriesExhausted { reason: String },
    /// A failure no retry can fix: auth, missing binary, usage error.
    NonRetryable { outcome: Outcome, reason: String },
    /// `--max-iterations` reached with work left.
    MaxIterations { iterations: u32 },
    /// `--max-runtime` reached with work left.
    MaxRuntime { seconds: u64 },
    /// Stopped by the user (Ctrl-C, SIGTERM, `swr stop`).
    Stopped,
}

impl RunEnd {
    pub fn reason(&self) -> String {
        match self {
            RunEnd::Completed => "every task is done".to_string(),
            RunEnd::CircuitOpen { reason } | RunEnd::RetriesExhausted { reason } => reason.clone(),
            RunEnd::NonRetryable { reason, .. } => reason.clone(),
            RunEnd::MaxIterations { iterations } => {
                format!("stopped after --max-iterations {iterations} with work left")
            }
            RunEnd::MaxRuntime { seconds } => {
                format!("stopped after --max-runtime {seconds}s with work left")
            }
            RunEnd::Stopped => "stopped by the user".to_string(),
        }
    }

    /// The label used in `status` and notifications.
    pub fn kind(&self) -> &'static str {
        match self {
            RunEnd::Completed => "completed",
            RunEnd::CircuitOpen { .. } => "circuit_open",
            RunEnd::RetriesExhausted { .. } => "retries_exhausted",
            RunEnd::NonRetryable { .. } => "non_retryable",
            RunEnd::MaxIterations { .. } => "max_iterations",
            RunEnd::MaxRuntime { .. } => "max_runtime",
            RunEnd::Stopped => "stopped",
        }
    }
}

/// Everything a run reports, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunnerEvent {
    Started {
        runner_id: String,
        project: PathBuf,
        spec: String,
        provider: String,
        model: Option<String>,
        tasks: TaskCounts,
    },
    /// Something worth a line that is not part of the loop (a dirty tree at start...).
    Warning { message: String },
    IterationStarted {
        iteration: u32,
        tasks: TaskCounts,
        next_task: Option<String>,
    },
    AttemptStarted {
        iteration: u32,
        attempt: u32,
        pid: Option<u32>,
        log_path: PathBuf,
    },
    /// A short readable line of what the agent is doing (assistant text, tool use).
    Activity { text: String },
    AttemptFinished {
        iteration: u32,
        attempt: u32,
        outcome: Outcome,
        exit_code: Option<i32>,
        signal: Option<String>,
        duration_ms: u64,
        error: Option<String>,
    },
    RetryScheduled {
        retry: u32,
        max_retries: u32,
        delay_ms: u64,
        /// RFC 3339.
        at: String,
    },
    Waiting {
        /// RFC 3339.
        until: String,
        reason: String,
    },
    IterationFinished {
        iteration: u32,
        tasks: TaskCounts,
        ticked: usize,
        committed: bool,
        no_commit_streak: u32,
        no_progress_streak: u32,
    },
    Finished {
        end: RunEnd,
        tasks: TaskCounts,
        iterations: u32,
    },
}
