//! `notify_command`: tells the user about the events that need them (spec completed, failed,
//! circuit open, waiting for a rate limit). Fire and forget: it never blocks the runner, and
//! its failure is only logged.

use std::path::Path;
use std::process::{Command, Stdio};

/// How long a notifier may run before it is killed.
const NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The `SWR_EVENT` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    Completed,
    Failed,
    CircuitOpen,
    Waiting,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "completed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::CircuitOpen => "circuit_open",
            NotifyEvent::Waiting => "waiting",
        }
    }
}

/// Starts `argv` with the event in its environment and reaps it on a background thread.
pub fn notify(
    argv: &[String],
    event: NotifyEvent,
    project: &Path,
    spec: &str,
    runner_id: &str,
    reason: &str,
) {
    let Some((program, args)) = argv.split_first() else {
        return;
    };
    let child = Command::new(program)
        .args(args)
        .current_dir(project)
        .env("SWR_EVENT", event.as_str())
        .env("SWR_PROJECT", project)
        .env("SWR_SPEC", spec)
        .env("SWR_RUNNER_ID", runner_id)
        .env("SWR_REASON", reason)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    match child {
        Ok(mut child) => {
            // Reaped off the runner's path so a slow notifier never delays it; one that hangs
            // is killed rather than left behind.
            std::thread::spawn(move || {
                let deadline = std::time::Instant::now() + NOTIFY_TIMEOUT;
                while std::time::Instant::now() < deadline {
                    if !matches!(child.try_wait(), Ok(None)) {
                        return;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                tracing::warn!("notify_command still running after {NOTIFY_TIMEOUT:?}: killed");
                let _ = child.kill();
                let _ = child.wait();
            });
        }
        Err(e) => tracing::warn!("notify_command {program:?} could not start: {e}"),
    }
}
