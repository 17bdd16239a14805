//! Exit codes of swr, documented in `swr --help` and the README. `main` owns them: commands
//! return a code or an error, never call `process::exit` themselves.

/// Success: every task done, or the command did what it was asked.
pub const OK: u8 = 0;
/// A runtime failure: retries exhausted, circuit open, non-retryable agent failure, failed check.
pub const FAILURE: u8 = 1;
/// Bad arguments (clap's own code for usage errors).
pub const USAGE: u8 = 2;
/// Temporary: the spec is locked by another runner (EX_TEMPFAIL).
pub const TEMPFAIL: u8 = 75;
/// Configuration error (EX_CONFIG).
pub const CONFIG: u8 = 78;
/// Stopped by the user (128 + SIGINT).
pub const STOPPED: u8 = 130;

/// An error that carries the exit code it must end the process with.
#[derive(Debug)]
pub struct ExitError {
    pub code: u8,
    pub message: String,
}

impl ExitError {
    pub fn new(code: u8, message: impl Into<String>) -> ExitError {
        ExitError {
            code,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> ExitError {
        ExitError::new(USAGE, message)
    }
}

impl std::fmt::Display for ExitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ExitError {}
