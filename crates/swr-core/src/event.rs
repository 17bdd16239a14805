//! `RunnerEvent`: the one contract between the runner loop and whatever shows it (progress
//! bar, plain lines, `--json` event stream). Consumers never reach into the runner's state.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Serialize, Serializer};

use crate::cost::{Totals, Usage, tokens, usd};
use crate::outcome::Outcome;
use crate::spec::TaskCounts;
use crate::store::{RunnerId, ser_ts};

/// Why swr stopped a run or an agent that was not finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// Ctrl-C, SIGTERM, SIGQUIT, `swr stop`, the TUI.
    User,
    /// SIGHUP: the terminal or SSH session that started swr went away.
    HangUp,
    /// `--max-runtime` ran out.
    MaxRuntime,
}

impl StopCause {
    pub fn describe(self) -> &'static str {
        match self {
            StopCause::User => "stopped by the user",
            StopCause::HangUp => "stopped by a hang-up (SIGHUP: the terminal went away)",
            StopCause::MaxRuntime => "stopped at --max-runtime",
        }
    }
}

/// The facts behind "retries exhausted", for consumers that need more than the sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct GiveUp {
    pub last_outcome: Outcome,
    pub retries: u32,
}

fn ser_secs<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

/// A duration the way people write it in flags: `3s`, `8h`, `1h 30m`, `1.5s`.
pub fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

/// Which budget stopped a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BudgetKind {
    /// This run's cost (`max_cost_usd`, `--max-cost`).
    MaxCostUsd,
    /// This run's input plus output tokens (`max_tokens`).
    MaxTokens,
    /// The cost of every run of the spec together (`spec_budget_usd`).
    SpecBudgetUsd,
}

impl BudgetKind {
    pub fn key(self) -> &'static str {
        match self {
            BudgetKind::MaxCostUsd => "max_cost_usd",
            BudgetKind::MaxTokens => "max_tokens",
            BudgetKind::SpecBudgetUsd => "spec_budget_usd",
        }
    }

    fn amount(self, x: f64) -> String {
        match self {
            BudgetKind::MaxTokens => format!("{} tokens", tokens(x.max(0.0) as u64)),
            _ => usd(x),
        }
    }
}

/// Why a run ended. Each maps to one exit code of `swr run`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunEnd {
    /// Every task is done.
    Completed,
    /// The circuit breaker opened: iterations stopped making progress.
    CircuitOpen { reason: String },
    /// An iteration failed more often than `retry_max_retries` allows.
    RetriesExhausted {
        reason: String,
        #[serde(flatten)]
        detail: GiveUp,
    },
    /// A failure no retry can fix: auth, missing binary, usage error.
    NonRetryable { outcome: Outcome, reason: String },
    /// `--max-iterations` reached with work left.
    MaxIterations { iterations: u32 },
    /// `--max-runtime` reached with work left.
    MaxRuntime {
        /// The limit, in seconds.
        #[serde(rename = "seconds", serialize_with = "ser_secs")]
        limit: Duration,
    },
    /// Stopped before the spec was done (Ctrl-C, SIGTERM, `swr stop`, a hang-up).
    Stopped { by: StopCause },
    /// A budget is used up, or too little of it is left for one more attempt.
    Budget {
        budget: BudgetKind,
        /// The budget, in USD or tokens.
        limit: f64,
        /// What counts against it so far: this run's spend, or the spec's for
        /// `spec_budget_usd`.
        spent: f64,
        /// When the run stopped before an attempt: what one attempt of this spec is expected
        /// to use (the mean of its attempts so far).
        expected: Option<f64>,
    },
}

impl RunEnd {
    pub fn reason(&self) -> String {
        match self {
            RunEnd::Completed => "every task is done".to_string(),
            RunEnd::CircuitOpen { reason } | RunEnd::RetriesExhausted { reason, .. } => {
                reason.clone()
            }
            RunEnd::NonRetryable { reason, .. } => reason.clone(),
            RunEnd::MaxIterations { iterations } => {
                format!("stopped after --max-iterations {iterations} with work left")
            }
            RunEnd::MaxRuntime { limit } => {
                format!(
                    "stopped after --max-runtime {} with work left",
                    human_duration(*limit)
                )
            }
            RunEnd::Stopped { by } => by.describe().to_string(),
            RunEnd::Budget {
                budget,
                limit,
                spent,
                expected,
            } => {
                let whose = match budget {
                    BudgetKind::SpecBudgetUsd => "the spec's runs together spent",
                    BudgetKind::MaxTokens => "this run used",
                    BudgetKind::MaxCostUsd => "this run spent",
                };
                let (b, l, s) = (*budget, budget.amount(*limit), budget.amount(*spent));
                match expected {
                    None => format!("budget {} of {l} reached: {whose} {s}", b.key()),
                    Some(e) => format!(
                        "budget {} of {l}: {whose} {s}, {} left, and an attempt of this spec uses {} on average; no attempt started",
                        b.key(),
                        budget.amount(limit - spent),
                        budget.amount(*e)
                    ),
                }
            }
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
            RunEnd::Stopped { .. } => "stopped",
            RunEnd::Budget { .. } => "budget",
        }
    }
}

/// Everything a run reports, in order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunnerEvent {
    Started {
        runner_id: RunnerId,
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
        /// The agent session this attempt continues.
        resume: Option<String>,
    },
    /// Waiting for an agent slot: `max_concurrent_agents` (`cap`) agents run already; `ahead`
    /// runners asked before this one.
    Queued { ahead: usize, cap: u32 },
    /// A short readable line of what the agent is doing (assistant text, tool use).
    Activity { text: String },
    AttemptFinished {
        iteration: u32,
        attempt: u32,
        /// Judged with its progress: a clean end is `success` or `no_progress`.
        outcome: Outcome,
        exit_code: Option<i32>,
        signal: Option<String>,
        duration_ms: u64,
        error: Option<String>,
        /// Tasks it ticked and whether it committed, however it ended.
        ticked: usize,
        committed: bool,
        /// The agent session it continued, if it was a resume.
        resumed: Option<String>,
        /// What swr did about it that the outcome does not say.
        note: Option<String>,
        /// Its tokens and cost, as the agent reported them.
        usage: Usage,
    },
    /// A verify check ran for ticked tasks.
    Checked {
        command: Vec<String>,
        /// `task`, `spec` or `config`: where the command came from.
        source: String,
        tasks: Vec<String>,
        passed: bool,
        /// "exit 0", "exit 1", "timed out after 600s".
        end: String,
        duration_ms: u64,
    },
    RetryScheduled {
        retry: u32,
        max_retries: u32,
        delay_ms: u64,
        #[serde(serialize_with = "ser_ts")]
        at: Timestamp,
        /// The session the retry continues.
        resume: Option<String>,
    },
    Waiting {
        #[serde(serialize_with = "ser_ts")]
        until: Timestamp,
        reason: String,
    },
    IterationFinished {
        iteration: u32,
        tasks: TaskCounts,
        ticked: usize,
        committed: bool,
        no_commit_streak: u32,
        no_progress_streak: u32,
        /// What the iteration's attempts used.
        spend: Totals,
    },
    /// A completed spec's worktree branch was merged back, or kept with how to merge it.
    Merge {
        result: crate::runner::worktree::MergeResult,
    },
    Finished {
        end: RunEnd,
        tasks: TaskCounts,
        iterations: u32,
        /// What the run's attempts used.
        spend: Totals,
    },
}
