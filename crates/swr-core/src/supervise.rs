//! Process mechanics of one agent attempt: spawn in its own process group, stream its output
//! line by line, idle and wall timers, graceful stop with escalation, and making sure nothing
//! of the attempt survives it. It knows nothing about specs, providers or retries.

use std::path::PathBuf;

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
