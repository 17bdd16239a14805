//! The queue loop of `swr serve`, on a thread of its own (every step is a short store call or
//! a process spawn). Each pass:
//! 1. reconciles (the routine `swr run` uses): runners whose process died become `crashed`;
//! 2. settles running entries: links each to the runner record its process registered; an
//!    entry whose runner ended is `done` with the runner's status, except a `crashed` one,
//!    which is re-queued (an interruption: crash, kill -9, reboot); a user stop, the circuit
//!    breaker, a budget or a failure is final;
//! 3. starts queued entries, highest priority then oldest, while fewer than
//!    `max_concurrent_agents` of its entries run (0: no cap), skipping specs another runner
//!    holds.
//!
//! Passes run when the store changes (the watch in `mod.rs`), when a runner it started exits,
//! and on a slow tick (a runner adopted from an earlier service that is killed -9 writes
//! nothing). On shutdown it puts its entries back to `queued` first, then stops their runners
//! gracefully, so their `stopped` end is never mistaken for a user's stop.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::time::{Duration, Instant};

use swr_core::config::Config;
use swr_core::procinfo;
use swr_core::store::{QueueEntry, QueueId, RunnerFilter, RunnerRecord, RunnerStatus, Store};

use crate::text::one_line as safe;
use crate::tui::runner_ctl::{self, Exited, StartRequest};

/// An entry interrupted this many times is not restarted again: something keeps killing it.
pub const MAX_RESTARTS: u32 = 5;
/// The safety-net pass while entries run (catches a killed runner that was not our child).
const BUSY_TICK: Duration = Duration::from_secs(5);
/// The safety-net pass when nothing runs.
const IDLE_TICK: Duration = Duration::from_secs(60);

pub enum SchedMsg {
    /// Something may have changed.
    Wake,
    /// A runner this service started has exited (reported by its reaping thread).
    Exited { entry: QueueId, exited: Exited },
    /// Stop the runners, leave their entries queued, then answer.
    Shutdown(Sender<()>),
}

pub struct Scheduler {
    config: Config,
    config_file: Option<PathBuf>,
    exe: PathBuf,
    store: Arc<Store>,
    out_dir: PathBuf,
    tx: Sender<SchedMsg>,
    /// Entries whose `swr run` this process started (not adopted from an earlier service):
    /// their exit is reported, so a dead pid without a report means "report on its way".
    children: HashSet<QueueId>,
    /// Exits reported and not yet settled.
    exited: HashMap<QueueId, Exited>,
}

impl Scheduler {
    pub fn new(
        config: Config,
        config_file: Option<PathBuf>,
        exe: PathBuf,
        store: Arc<Store>,
        tx: Sender<SchedMsg>,
    ) -> Scheduler {
        let out_dir = config.cache_dir.join("serve");
        Scheduler {
            config,
            config_file,
            exe,
            store,
            out_dir,
            tx,
            children: HashSet::new(),
            exited: HashMap::new(),
        }
    }

    pub fn run(mut self, rx: Receiver<SchedMsg>) {
        loop {
            let tick = self.pass();
            let first = match rx.recv_timeout(tick) {
                Ok(m) => Some(m),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            // Coalesce a burst (a runner's commits, several exits) into one pass.
            for m in first
                .into_iter()
                .chain(std::iter::from_fn(|| rx.try_recv().ok()))
            {
                match m {
                    SchedMsg::Wake => {}
                    SchedMsg::Exited { entry, exited } => {
                        self.exited.insert(entry, exited);
                    }
                    SchedMsg::Shutdown(done) => {
                        self.shutdown();
                        let _ = done.send(());
                        return;
                    }
                }
            }
        }
    }

    /// One pass; returns when the next safety-net pass is due.
    fn pass(&mut self) -> Duration {
        match self.try_pass() {
            Ok(busy) if busy => BUSY_TICK,
            Ok(_) => IDLE_TICK,
            Err(e) => {
                tracing::warn!("swr serve: queue pass failed: {e:#}");
                BUSY_TICK
            }
        }
    }

    fn try_pass(&mut self) -> anyhow::Result<bool> {
        for r in swr_core::runner::reconcile_and_reap(&self.store, &self.config.lock_dir())? {
            eprintln!("swr serve: {}", safe(&r.describe()));
        }
        for e in self.store.queue_running()? {
            self.settle(&e)?;
        }
        self.start_queued()?;
        let running = self.store.queue_running()?;
        Ok(!running.is_empty())
    }

    /// The runner record the entry's process registered: same spec, same pid, started after
    /// the entry was.
    fn registered(&self, e: &QueueEntry) -> anyhow::Result<Option<RunnerRecord>> {
        if let Some(id) = &e.runner_id {
            return Ok(self.store.runner(id)?);
        }
        let Some(pid) = e.pid else { return Ok(None) };
        let since = e
            .started_at
            .map(|t| t.as_millisecond() - 5_000)
            .unwrap_or(i64::MIN);
        let found = self
            .store
            .runners(&RunnerFilter {
                active_only: false,
                project: Some(e.project.clone()),
                spec: Some(e.spec.clone()),
            })?
            .into_iter()
            .find(|r| r.pid == pid && r.started_at.as_millisecond() >= since);
        if let Some(r) = &found {
            self.store
                .transaction(|tx| tx.queue_set_runner(e.id, &r.runner_id))?;
        }
        Ok(found)
    }

    fn settle(&mut self, e: &QueueEntry) -> anyhow::Result<()> {
        match self.registered(e)? {
            // Reconciliation just ran: an active record belongs to a live runner.
            Some(r) if r.status.is_active() => Ok(()),
            Some(r) => {
                self.exited.remove(&e.id);
                self.children.remove(&e.id);
                let reason = r.reason.clone().unwrap_or_default();
                if r.status == RunnerStatus::Crashed {
                    self.requeue_interrupted(
                        e,
                        &format!("runner {} was interrupted ({reason})", r.runner_id),
                    )
                } else {
                    let note = format!("runner {}: {reason}", r.runner_id);
                    self.store
                        .transaction(|tx| tx.queue_finish(e.id, r.status.as_str(), &note))?;
                    Ok(())
                }
            }
            None => {
                let alive = e
                    .pid
                    .is_some_and(|pid| procinfo::process_alive(pid, e.pid_start_time));
                if alive {
                    return Ok(()); // still starting up
                }
                if let Some(x) = self.exited.remove(&e.id) {
                    self.children.remove(&e.id);
                    let note = format!(
                        "swr run ended before it registered ({}){}",
                        x.status,
                        x.last_line.map(|l| format!(": {l}")).unwrap_or_default()
                    );
                    self.store
                        .transaction(|tx| tx.queue_finish(e.id, "error", &note))?;
                    return Ok(());
                }
                if self.children.contains(&e.id) {
                    return Ok(()); // its exit report is on its way
                }
                self.requeue_interrupted(
                    e,
                    "its swr run process disappeared before it registered (service restarted)",
                )
            }
        }
    }

    fn requeue_interrupted(&self, e: &QueueEntry, why: &str) -> anyhow::Result<()> {
        if e.restarts + 1 > MAX_RESTARTS {
            let note = format!("{why}; interrupted {MAX_RESTARTS} times, not restarted again");
            self.store
                .transaction(|tx| tx.queue_finish(e.id, "crashed", &note))?;
            return Ok(());
        }
        eprintln!(
            "swr serve: queue entry {} ({}): {}; queued again",
            e.id,
            safe(&e.spec),
            safe(why)
        );
        self.store
            .transaction(|tx| tx.queue_requeue(e.id, &format!("{why}; queued again"), true))?;
        Ok(())
    }

    fn start_queued(&mut self) -> anyhow::Result<()> {
        let (paused, queued, running) = (
            self.store.queue_paused()?,
            self.store.queue(false)?,
            self.store.queue_running()?,
        );
        let queued: Vec<QueueEntry> = queued
            .into_iter()
            .filter(|e| e.state == swr_core::store::QueueState::Queued)
            .collect();
        if paused || queued.is_empty() {
            return Ok(());
        }
        let cap = match self.config.max_concurrent_agents {
            0 => usize::MAX,
            n => usize::try_from(n).unwrap_or(usize::MAX),
        };
        let lock_dir = self.config.lock_dir();
        let mut active = running.len();
        for e in queued {
            if active >= cap {
                break;
            }
            // A runner started elsewhere (the CLI, the TUI) holds the spec: wait for its end.
            let holder = self
                .store
                .runners(&RunnerFilter {
                    active_only: true,
                    project: Some(e.project.clone()),
                    spec: Some(e.spec.clone()),
                })?
                .into_iter()
                .find(|r| swr_core::store::runner_alive(r, &lock_dir));
            if let Some(r) = holder {
                let note = format!("waiting: runner {} is running this spec", r.runner_id);
                self.store
                    .transaction(|tx| tx.queue_note(e.id, Some(&note)))?;
                continue;
            }
            // A project deleted or moved since it was queued: no `swr run` can start there,
            // now or at the next pass; the entry ends instead of waiting in front forever.
            if !e.project.is_dir() {
                let note = format!(
                    "cannot start swr run: the project directory {} no longer exists",
                    e.project.display()
                );
                eprintln!("swr serve: queue entry {}: {}", e.id, safe(&note));
                self.store
                    .transaction(|tx| tx.queue_finish_queued(e.id, "error", &note))?;
                continue;
            }
            match self.start(&e) {
                Ok(true) => active += 1,
                Ok(false) => {}
                Err(err) => {
                    let note = format!("cannot start swr run: {err:#}");
                    self.store
                        .transaction(|tx| tx.queue_note(e.id, Some(&note)))?;
                }
            }
        }
        Ok(())
    }

    /// Starts `swr run` for a queued entry: detached, in its own session, as the TUI does.
    fn start(&mut self, e: &QueueEntry) -> anyhow::Result<bool> {
        let req = StartRequest {
            project: e.project.clone(),
            spec: e.spec.clone(),
            provider: e.provider.clone(),
            model: e.model.clone(),
        };
        let tx = self.tx.clone();
        let id = e.id;
        let started = runner_ctl::start(
            &self.exe,
            self.config_file.as_deref(),
            &self.out_dir,
            &req,
            move |exited| {
                let _ = tx.send(SchedMsg::Exited { entry: id, exited });
            },
        )?;
        self.children.insert(e.id);
        let marked = self
            .store
            .transaction(|tx| tx.queue_mark_running(e.id, started.pid, started.start_time))?;
        if !marked {
            // Removed between our read and now (`swr queue rm`): not wanted any more.
            let _ = runner_ctl::terminate(started.pid);
            self.children.remove(&e.id);
            return Ok(false);
        }
        eprintln!(
            "swr serve: started queue entry {} ({} of {}): pid {}",
            e.id,
            safe(&e.spec),
            safe(&e.project.display().to_string()),
            started.pid
        );
        Ok(true)
    }

    /// Puts every running entry back in the queue, then stops its runner (SIGTERM: the runner
    /// stops its agent gracefully and records `stopped`) and waits for them all, bounded.
    fn shutdown(&mut self) {
        let running = match self.store.queue_running() {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!("swr serve: cannot read the queue at shutdown: {e}");
                return;
            }
        };
        let note = "the service stopped; resumes when it starts again";
        for e in &running {
            if let Err(err) = self
                .store
                .transaction(|tx| tx.queue_requeue(e.id, note, false))
            {
                tracing::warn!("swr serve: cannot re-queue entry {}: {err}", e.id);
            }
        }
        let procs: Vec<(u32, Option<u64>)> = running
            .iter()
            .filter_map(|e| e.pid.map(|p| (p, e.pid_start_time)))
            .filter(|(p, st)| procinfo::process_alive(*p, *st))
            .collect();
        for (pid, _) in &procs {
            let _ = runner_ctl::terminate(*pid);
        }
        let deadline = Instant::now() + self.config.stop_grace + Duration::from_secs(20);
        while Instant::now() < deadline
            && procs.iter().any(|(p, st)| procinfo::process_alive(*p, *st))
        {
            std::thread::sleep(Duration::from_millis(50));
        }
        let left = procs
            .iter()
            .filter(|(p, st)| procinfo::process_alive(*p, *st))
            .count();
        if left > 0 {
            eprintln!("swr serve: {left} runner(s) still stopping; their entries stay queued");
        }
    }
}
