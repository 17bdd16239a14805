//! The typed outcome of one agent attempt: the vocabulary shared by the retry policy, the store,
//! `swr history` and the TUI.

use serde::{Deserialize, Serialize};

/// What one attempt came to, after its exit and the agent's own output were classified.
/// The serialized names are part of the JSON contract of `swr history`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The agent finished and the iteration made progress.
    Success,
    /// The agent finished cleanly but neither committed nor ticked a task.
    NoProgress,
    /// Non-zero exit without a more precise classification.
    Crash,
    /// Killed by a signal it did not get from swr (SIGSEGV, SIGKILL by the OOM killer...).
    Signal,
    /// No output at all for `activity_timeout_seconds`.
    IdleTimeout,
    /// Ran longer than `iteration_timeout_seconds`.
    WallTimeout,
    /// A rate or usage limit: waited out, not counted as a retry.
    RateLimited,
    /// The provider is overloaded or at capacity (529, 503, "at capacity").
    Overloaded,
    /// The prompt or conversation no longer fits the model's context window.
    ContextLimit,
    /// Authentication or billing failure: retrying cannot help.
    Auth,
    /// The agent could not be started (missing binary, not executable).
    SpawnFailed,
    /// The agent rejected its command line or configuration.
    Usage,
    /// Stopped by the user (Ctrl-C, SIGTERM, `swr stop`).
    Stopped,
}

impl Outcome {
    pub const ALL: [Outcome; 13] = [
        Outcome::Success,
        Outcome::NoProgress,
        Outcome::Crash,
        Outcome::Signal,
        Outcome::IdleTimeout,
        Outcome::WallTimeout,
        Outcome::RateLimited,
        Outcome::Overloaded,
        Outcome::ContextLimit,
        Outcome::Auth,
        Outcome::SpawnFailed,
        Outcome::Usage,
        Outcome::Stopped,
    ];

    /// The snake_case name used in JSON, the store and config (`retry_on`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::NoProgress => "no_progress",
            Outcome::Crash => "crash",
            Outcome::Signal => "signal",
            Outcome::IdleTimeout => "idle_timeout",
            Outcome::WallTimeout => "wall_timeout",
            Outcome::RateLimited => "rate_limited",
            Outcome::Overloaded => "overloaded",
            Outcome::ContextLimit => "context_limit",
            Outcome::Auth => "auth",
            Outcome::SpawnFailed => "spawn_failed",
            Outcome::Usage => "usage",
            Outcome::Stopped => "stopped",
        }
    }

    pub fn parse(s: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == s)
    }
}

impl std::fmt::Display for Outcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
