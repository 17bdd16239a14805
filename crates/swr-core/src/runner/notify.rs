//! `notify_command` and `notify_webhooks`: tell the user about the events that need them (spec
//! completed, failed, circuit open, stopped by a budget, waiting for a rate limit). Every event
//! goes to both, so they never disagree. Neither blocks the runner's loop and a failure is only
//! logged (and, for webhooks, kept in the store for `swr status`); but neither outlives the run
//! either: each notifier runs in its own process group, is killed with that group after
//! `notify_timeout_seconds`, and the run waits for the last ones (and the first webhook tries,
//! see [`crate::webhook`]) at most that long before it exits.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// The `SWR_EVENT` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotifyEvent {
    Completed,
    Failed,
    CircuitOpen,
    Waiting,
    /// A budget stopped the run.
    Budget,
}

impl NotifyEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Completed => "completed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::CircuitOpen => "circuit_open",
            NotifyEvent::Waiting => "waiting",
            NotifyEvent::Budget => "budget",
        }
    }
}

/// What a notification says.
#[derive(Debug, Clone, Copy)]
pub struct Notice<'a> {
    pub event: NotifyEvent,
    pub project: &'a Path,
    pub spec: &'a str,
    pub runner_id: &'a str,
    pub reason: &'a str,
}

/// The notifiers one run started, each watched by a thread that kills its process group when
/// it runs past the timeout.
#[derive(Debug)]
pub struct Notifiers {
    argv: Option<Vec<String>>,
    timeout: Duration,
    running: Vec<JoinHandle<()>>,
    webhooks: Option<crate::webhook::Outbox>,
}

impl Notifiers {
    pub fn new(argv: Option<Vec<String>>, timeout: Duration) -> Notifiers {
        Notifiers {
            argv: argv.filter(|a| !a.is_empty()),
            timeout,
            running: Vec::new(),
            webhooks: None,
        }
    }

    /// Also sends every event to these webhooks.
    pub fn with_webhooks(mut self, outbox: crate::webhook::Outbox) -> Notifiers {
        self.webhooks = Some(outbox);
        self
    }

    /// Starts the notifier for `notice`; returns at once.
    pub fn notify(&mut self, notice: Notice<'_>) {
        if let Some(w) = &mut self.webhooks {
            w.notify(
                notice.event.as_str(),
                notice.project,
                notice.spec,
                notice.reason,
            );
        }
        let Some((program, args)) = self.argv.as_ref().and_then(|a| a.split_first()) else {
            return;
        };
        self.running.retain(|h| !h.is_finished());
        let child = Command::new(program)
            .args(args)
            .current_dir(notice.project)
            .env("SWR_EVENT", notice.event.as_str())
            .env("SWR_PROJECT", notice.project)
            .env("SWR_SPEC", notice.spec)
            .env("SWR_RUNNER_ID", notice.runner_id)
            .env("SWR_REASON", notice.reason)
            // Its own group, so that what it starts (curl, a shell pipeline) dies with it.
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let mut child = match child {
            Ok(c) => c,
            Err(e) => {
                tracing::warn!("notify_command {program:?} could not start: {e}");
                return;
            }
        };
        let deadline = Instant::now() + self.timeout;
        let timeout = self.timeout;
        self.running.push(std::thread::spawn(move || {
            let group = Pid::from_raw(i32::try_from(child.id()).unwrap_or(i32::MAX));
            let mut exited = false;
            loop {
                if !exited {
                    exited = !matches!(child.try_wait(), Ok(None));
                }
                // Done when the whole group is gone: a script may background its `curl`. The
                // kernel never hands out a pid that is still some group's id, so probing the
                // group after the leader was reaped cannot hit a stranger.
                if exited && killpg(group, None).is_err() {
                    break;
                }
                if Instant::now() >= deadline {
                    tracing::warn!("notify_command still running after {timeout:?}: killed");
                    let _ = killpg(group, Signal::SIGKILL);
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }));
    }

    /// Waits for every notifier to exit or be killed, and for the webhooks' first tries (each
    /// at most the timeout; the two run side by side).
    pub fn wait_all(&mut self) {
        if let Some(w) = &mut self.webhooks {
            w.finish(self.timeout);
        }
        for h in self.running.drain(..) {
            let _ = h.join();
        }
    }
}

impl Drop for Notifiers {
    fn drop(&mut self) {
        self.wait_all();
    }
}
