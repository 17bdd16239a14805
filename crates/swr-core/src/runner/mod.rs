//! The runner loop: keeps one agent working on one spec until every task is done, and
//! survives what the agent or the machine does to it.
//!
//! Each iteration reads tasks.md, builds the prompt, runs attempts of the agent until one
//! finishes cleanly (retrying failures per the retry policy, waiting out rate limits), then
//! judges progress from git and tasks.md (the circuit breaker). Every transition is written to
//! the store and reported as a [`RunnerEvent`]. The decisions live in pure functions
//! ([`classify`], [`progress`], [`crate::retry`]); this module performs their effects.

pub mod attempt_log;
pub mod classify;
pub mod git;
pub mod notify;
pub mod progress;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::SeedableRng;
use tokio::sync::watch;

use crate::config::{Config, ConfigError, JitterSetting};
use crate::event::{RunEnd, RunnerEvent};
use crate::outcome::Outcome;
use crate::prompt::{self, PromptVars};
use crate::provider::{self, AgentSignal, ProviderDef, ProviderError};
use crate::retry::{self, Decision, Jitter, RetryPolicy, RetryState};
use crate::spec::{self, SpecError, TaskCounts, TaskList};
use crate::store::{
    AgentProcess, AttemptEnd, LockError, NewAttempt, NewRunner, RunnerId, RunnerStatus,
    RunnerUpdate, SpecLock, Store, StoreError,
};
use crate::supervise::{self, AttemptExit, ExitReport, SuperviseOptions};

use self::attempt_log::LogNamer;
use self::classify::{AttemptSignals, Classified};
use self::notify::NotifyEvent;
use self::progress::Streaks;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The project directory (canonical).
    pub project: PathBuf,
    pub spec: String,
    pub provider: String,
    pub model: Option<String>,
    pub max_iterations: Option<u32>,
    pub max_runtime: Option<Duration>,
    /// Set for every attempt on top of the provider's own variables.
    pub extra_env: Vec<(String, String)>,
    /// The swr executable, for the `sim` provider.
    pub swr_exe: PathBuf,
}

/// Stop requests: 0 none, 1 graceful (SIGTERM, grace, SIGKILL), 2 kill now.
pub type StopLevel = u8;
pub const STOP_GRACEFUL: StopLevel = 1;
pub const STOP_KILL: StopLevel = 2;

/// Failures of the runner itself, before or around the loop. An agent's failure is never
/// one of these: it is an outcome.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Locked(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Provider(#[from] ProviderError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Spec(#[from] SpecError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub fn retry_policy(config: &Config) -> RetryPolicy {
    RetryPolicy {
        retry_on_crash: config.retry_on_crash,
        max_retries: config.retry_max_retries,
        backoff: config.retry_backoff,
        multiplier: config.retry_backoff_multiplier,
        max_backoff: config.retry_max_backoff,
        jitter: match config.retry_jitter {
            JitterSetting::None => Jitter::None,
            JitterSetting::Full => Jitter::Full,
            JitterSetting::Decorrelated => Jitter::Decorrelated,
            JitterSetting::Ratio(r) => Jitter::Ratio(r),
        },
        retry_on: config.retry_on.clone(),
        rate_limit_wait: config.rate_limit_wait,
        rate_limit_jitter: config.rate_limit_jitter,
    }
}

/// Where an event goes. `Send` because attempts stream activity from the output reader.
pub type EventSink<'a> = &'a mut (dyn FnMut(&RunnerEvent) + Send);

/// Runs the spec to its end. Returns why it ended; `Err` only for failures of swr itself
/// (lock held, store unusable, unknown provider, missing tasks.md).
pub async fn run(
    config: &Config,
    opts: &RunOptions,
    stop: watch::Receiver<StopLevel>,
    emit: EventSink<'_>,
) -> Result<RunEnd, RunError> {
    let registry = config.provider_registry(opts.swr_exe.clone())?;
    let def = registry.get(&opts.provider)?;
    let tasks_path = config
        .specs_dir(&opts.project)
        .join(&opts.spec)
        .join(&config.tasks_filename);
    let first = spec::read_tasks(&tasks_path)?;

    let runner_id = RunnerId::new_now();
    let lock = SpecLock::acquire(&config.lock_dir(), &opts.project, &opts.spec, &runner_id)?;
    let store = Store::open(&config.store_path())?;
    recover_crashed(&store, config, emit)?;
    if config.cache_max_age_days > 0 {
        let age = jiff::SignedDuration::from_hours(24 * config.cache_max_age_days as i64);
        if let Err(e) = store.prune(Timestamp::now() - age) {
            tracing::warn!("could not prune old runners from the store: {e}");
        }
    }

    let me = std::process::id();
    store.create_runner(&NewRunner {
        runner_id: runner_id.clone(),
        project: opts.project.clone(),
        spec: opts.spec.clone(),
        provider: opts.provider.clone(),
        model: opts.model.clone(),
        pid: me,
        pid_start_time: crate::procinfo::start_time(me),
        boot_id: crate::procinfo::boot_id(),
        max_retries: config.retry_max_retries,
        tasks: first.counts(),
    })?;
    emit(&RunnerEvent::Started {
        runner_id: runner_id.to_string(),
        project: opts.project.clone(),
        spec: opts.spec.clone(),
        provider: opts.provider.clone(),
        model: opts.model.clone(),
        tasks: first.counts(),
    });

    let mut run = Run {
        config,
        opts,
        def,
        store,
        runner_id,
        tasks_path,
        stop,
        emit,
        rng: rand::rngs::StdRng::from_os_rng(),
        policy: retry_policy(config),
        log_namer: None,
        is_root: nix::unistd::Uid::effective().is_root(),
        git: git::is_repo(&opts.project),
        counts: first.counts(),
        iterations: 0,
        last_exit: None,
        checks_time: Duration::ZERO,
        cost_total: 0.0,
        deferred: None,
    };
    let end = run.drive().await;
    let end = match end {
        Ok(end) => end,
        Err(e) => {
            // The runner itself failed mid-run: record it so nobody sees a ghost "running".
            let _ = run.store.update_runner(
                &run.runner_id,
                &RunnerUpdate {
                    status: Some(RunnerStatus::Failed),
                    reason: Some(Some(format!("swr error: {e}"))),
                    agent: Some(None),
                    ..Default::default()
                },
            );
            return Err(e);
        }
    };
    run.finish(&end)?;
    drop(lock);
    Ok(end)
}

/// Marks runners whose process died as crashed and kills the agent groups they left behind.
fn recover_crashed(store: &Store, config: &Config, emit: EventSink<'_>) -> Result<(), RunError> {
    for r in store.reconcile(&config.lock_dir())? {
        let mut killed = 0;
        if let Some(agent) = &r.agent {
            let report = supervise::kill_orphans(
                agent.marker.as_deref().unwrap_or(""),
                Some(agent.pgid),
                Some(agent.pid),
                agent.start_time,
            );
            killed = report.killed.len();
        }
        emit(&RunnerEvent::Warning {
            message: format!(
                "runner {} of {} ({}) had died without cleaning up: marked crashed{}",
                r.runner_id,
                r.spec,
                r.project.display(),
                if killed > 0 {
                    format!(", killed {killed} orphaned agent process(es)")
                } else {
                    String::new()
                }
            ),
        });
    }
    Ok(())
}

struct Run<'a, 'e> {
    config: &'a Config,
    opts: &'a RunOptions,
    def: ProviderDef,
    store: Store,
    runner_id: RunnerId,
    tasks_path: PathBuf,
    stop: watch::Receiver<StopLevel>,
    emit: EventSink<'e>,
    rng: rand::rngs::StdRng,
    policy: RetryPolicy,
    log_namer: Option<LogNamer>,
    is_root: bool,
    git: bool,
    counts: TaskCounts,
    iterations: u32,
    /// When the last agent's exit was seen, and the time spent since in git and tasks.md
    /// checks: the runner's own overhead between agents is measured from these.
    last_exit: Option<Instant>,
    checks_time: Duration,
    cost_total: f64,
    /// A runner update waiting to be written with the next one.
    deferred: Option<RunnerUpdate>,
}

/// How the attempts of one iteration ended.
enum IterationEnd {
    /// An attempt finished cleanly: judge the iteration by its progress.
    Clean(Box<AttemptResult>),
    /// The run ends (stopped, retries exhausted, a failure no retry fixes).
    Run(RunEnd),
}

/// One attempt's result, before progress is judged.
struct AttemptResult {
    attempt_id: i64,
    iteration: u32,
    attempt: u32,
    classified: Classified,
    report: ExitReport,
    signals: AttemptSignals,
    log_path: PathBuf,
}

impl Run<'_, '_> {
    fn stopped(&self) -> bool {
        *self.stop.borrow() > 0
    }

    fn read_tasks(&mut self) -> Result<TaskList, RunError> {
        let t = Instant::now();
        let list = spec::read_tasks(&self.tasks_path);
        self.checks_time += t.elapsed();
        Ok(list?)
    }

    fn update(&mut self, patch: RunnerUpdate) -> Result<(), RunError> {
        match self.deferred.take() {
            Some(first) => {
                let id = &self.runner_id;
                self.store.transaction(|tx| {
                    tx.update_runner(id, &first)?;
                    tx.update_runner(id, &patch)
                })?;
            }
            None => {
                self.store.update_runner(&self.runner_id, &patch)?;
            }
        }
        Ok(())
    }

    async fn drive(&mut self) -> Result<RunEnd, RunError> {
        self.prepare_project()?;
        if let Some(end) = self.honour_persisted_wait().await? {
            return Ok(end);
        }
        let started = Instant::now();
        let mut streaks = Streaks::default();
        let mut iteration = 0u32;
        // tasks.md and HEAD as the last iteration left them: read once per iteration.
        let mut list = self.read_tasks()?;
        let mut head_before = self.head();
        loop {
            if self.stopped() {
                return Ok(RunEnd::Stopped);
            }
            let counts = list.counts();
            self.counts = counts;
            if counts.total == 0 {
                return Ok(RunEnd::NonRetryable {
                    outcome: Outcome::Usage,
                    reason: format!("{} has no tasks", self.tasks_path.display()),
                });
            }
            if counts.is_complete() {
                return Ok(RunEnd::Completed);
            }
            if counts.pending + counts.in_progress == 0 {
                return Ok(RunEnd::NonRetryable {
                    outcome: Outcome::NoProgress,
                    reason: format!(
                        "every remaining task is blocked ({} blocked); unblock them in {}",
                        counts.blocked,
                        self.tasks_path.display()
                    ),
                });
            }
            if let Some(max) = self.opts.max_iterations
                && iteration >= max
            {
                return Ok(RunEnd::MaxIterations { iterations: max });
            }
            if let Some(max) = self.opts.max_runtime
                && started.elapsed() >= max
            {
                return Ok(RunEnd::MaxRuntime {
                    seconds: max.as_secs(),
                });
            }
            iteration += 1;
            self.iterations = iteration;
            let next = list.next_task();
            (self.emit)(&RunnerEvent::IterationStarted {
                iteration,
                tasks: counts,
                next_task: next.map(|t| format!("{} {}", t.id, t.title)),
            });
            self.update(RunnerUpdate {
                status: Some(RunnerStatus::Running),
                iteration: Some(iteration),
                tasks: Some(counts),
                retry_count: Some(0),
                next_attempt_at: Some(None),
                ..Default::default()
            })?;
            let prompt = self.prompt(&list)?;

            let result = match self.run_iteration(iteration, &prompt).await? {
                IterationEnd::Clean(result) => result,
                IterationEnd::Run(end) => return Ok(end),
            };

            list = match self.read_tasks() {
                Ok(l) => l,
                // The agent deleted or broke tasks.md: the run ends as a failure (exit 1, with
                // its notification and retry log), not as a usage error of swr.
                Err(RunError::Spec(e)) => {
                    self.finish_attempt(&result, result.classified.outcome, None)?;
                    return Ok(RunEnd::NonRetryable {
                        outcome: Outcome::Usage,
                        reason: format!(
                            "tasks.md became unreadable during iteration {iteration}: {e}"
                        ),
                    });
                }
                Err(e) => return Err(e),
            };
            let after = list.counts();
            self.counts = after;
            let ticked = after.done.saturating_sub(counts.done);
            let head_after = self.head();
            let committed = head_after.is_some() && head_after != head_before;
            let verdict = streaks.record(ticked, committed);
            let outcome = if verdict == progress::Verdict::Nothing {
                Outcome::NoProgress
            } else {
                Outcome::Success
            };
            self.finish_attempt(&result, outcome, None)?;
            // Written with the next transition, not on its own: one transaction fewer
            // between agents.
            self.deferred = Some(RunnerUpdate {
                tasks: Some(after),
                // The iteration succeeded: its retries are over.
                retry_count: Some(0),
                last_outcome: Some(Some(outcome)),
                last_commit: if committed {
                    Some(head_after.clone())
                } else {
                    None
                },
                agent: Some(None),
                ..Default::default()
            });
            head_before = head_after;
            (self.emit)(&RunnerEvent::IterationFinished {
                iteration,
                tasks: after,
                ticked,
                committed,
                no_commit_streak: streaks.no_commit,
                no_progress_streak: streaks.no_progress,
            });
            if after.is_complete() {
                return Ok(RunEnd::Completed);
            }
            if let Some(reason) =
                streaks.circuit_open(self.config.no_commit_limit, self.config.no_progress_limit)
            {
                return Ok(RunEnd::CircuitOpen { reason });
            }
        }
    }

    /// Attempts of one iteration until one finishes cleanly (to be judged by progress) or the
    /// run must end. Rate-limit waits and retries stay inside the iteration.
    async fn run_iteration(
        &mut self,
        iteration: u32,
        prompt: &str,
    ) -> Result<IterationEnd, RunError> {
        let mut state = RetryState::default();
        let mut attempt = 0u32;
        let mut rate_waits = 0u32;
        loop {
            attempt += 1;
            let result = self.run_attempt(iteration, attempt, prompt).await?;
            let outcome = result.classified.outcome;
            if outcome == Outcome::Success {
                return Ok(IterationEnd::Clean(Box::new(result)));
            }
            let now = Timestamp::now();
            let decision = retry::decide(
                &self.policy,
                &state,
                outcome,
                result.classified.reset_at,
                now,
                &mut self.rng,
            )
            .with_detail(result.classified.error.as_deref().unwrap_or(""));
            state.record(&decision);
            match decision {
                Decision::Continue => return Ok(IterationEnd::Clean(Box::new(result))),
                Decision::RetryAfter(delay) => {
                    let delay_ms = delay.as_millis() as u64;
                    let at = now + delay_span(delay);
                    self.finish_attempt(&result, outcome, Some(delay_ms))?;
                    self.update(RunnerUpdate {
                        retry_count: Some(state.retries_used),
                        next_attempt_at: Some(Some(at)),
                        last_outcome: Some(Some(outcome)),
                        agent: Some(None),
                        ..Default::default()
                    })?;
                    (self.emit)(&RunnerEvent::RetryScheduled {
                        retry: state.retries_used,
                        max_retries: self.policy.max_retries,
                        delay_ms,
                        at: format!("{at:.3}"),
                    });
                    if self.sleep_or_stop(delay).await {
                        return Ok(IterationEnd::Run(RunEnd::Stopped));
                    }
                    self.update(RunnerUpdate {
                        next_attempt_at: Some(None),
                        ..Default::default()
                    })?;
                }
                Decision::WaitUntil(until) => {
                    rate_waits += 1;
                    let until = rate_limit_floor(&self.policy, until, now, rate_waits);
                    let wait = (until - now).try_into().unwrap_or(Duration::ZERO);
                    self.finish_attempt(&result, outcome, Some(wait.as_millis() as u64))?;
                    let reason = readable_limit(result.classified.error.as_deref());
                    if let Some(end) = self.wait_until(until, &reason).await? {
                        return Ok(IterationEnd::Run(end));
                    }
                    // The same iteration goes on: a wait is not a retry and uses none up.
                }
                Decision::GiveUp { reason } => {
                    self.finish_attempt(&result, outcome, None)?;
                    let end = match outcome {
                        Outcome::Stopped => RunEnd::Stopped,
                        o if retry::NEVER_RETRY.contains(&o) => RunEnd::NonRetryable {
                            outcome: o,
                            reason: match fix_hint(o, self.def.kind) {
                                Some(hint) => format!("{reason}; {hint}"),
                                None => reason,
                            },
                        },
                        _ => RunEnd::RetriesExhausted { reason },
                    };
                    return Ok(IterationEnd::Run(end));
                }
            }
        }
    }

    /// Waits out a rate limit, persisted so that a stop and a new `swr run` wait too.
    async fn wait_until(
        &mut self,
        until: Timestamp,
        reason: &str,
    ) -> Result<Option<RunEnd>, RunError> {
        self.store
            .set_wait(&self.opts.project, &self.opts.spec, until, reason)?;
        self.update(RunnerUpdate {
            status: Some(RunnerStatus::Waiting),
            reason: Some(Some(format!("waiting for a rate limit: {reason}"))),
            next_attempt_at: Some(Some(until)),
            agent: Some(None),
            ..Default::default()
        })?;
        (self.emit)(&RunnerEvent::Waiting {
            until: format!("{until:.3}"),
            reason: reason.to_string(),
        });
        if let Some(argv) = &self.config.notify_command {
            notify::notify(
                argv,
                NotifyEvent::Waiting,
                &self.opts.project,
                &self.opts.spec,
                self.runner_id.as_str(),
                &format!("rate limited until {until:.0}: {reason}"),
            );
        }
        let wait: Duration = (until - Timestamp::now())
            .try_into()
            .unwrap_or(Duration::ZERO);
        if self.sleep_or_stop(wait).await {
            // The wait stays in the store: a new run waits for the rest of it.
            return Ok(Some(RunEnd::Stopped));
        }
        self.store.clear_wait(&self.opts.project, &self.opts.spec)?;
        self.update(RunnerUpdate {
            status: Some(RunnerStatus::Running),
            reason: Some(None),
            next_attempt_at: Some(None),
            ..Default::default()
        })?;
        Ok(None)
    }

    /// A wait recorded by an earlier run that has not ended yet.
    async fn honour_persisted_wait(&mut self) -> Result<Option<RunEnd>, RunError> {
        let Some((until, reason)) = self.store.wait_for(&self.opts.project, &self.opts.spec)?
        else {
            return Ok(None);
        };
        if until <= Timestamp::now() {
            self.store.clear_wait(&self.opts.project, &self.opts.spec)?;
            return Ok(None);
        }
        self.wait_until(until, &reason).await
    }

    /// True when a stop arrived before `d` passed.
    async fn sleep_or_stop(&mut self, d: Duration) -> bool {
        if self.stopped() {
            return true;
        }
        let mut stop = self.stop.clone();
        tokio::select! {
            _ = tokio::time::sleep(d) => false,
            r = stop.wait_for(|v| *v > 0) => r.is_ok(),
        }
    }

    fn head(&mut self) -> Option<String> {
        if !self.git {
            return None;
        }
        let t = Instant::now();
        let head = git::head(&self.opts.project);
        self.checks_time += t.elapsed();
        head
    }

    fn prepare_project(&mut self) -> Result<(), RunError> {
        let project = &self.opts.project;
        let log_dir = self.config.log_dir(project, &self.opts.spec);
        self.log_namer = Some(
            LogNamer::new(&log_dir, &self.config.log_file_template, &self.opts.spec)
                .map_err(io_err(&log_dir))?,
        );
        if !self.git {
            (self.emit)(&RunnerEvent::Warning {
                message: format!(
                    "{} is not a git repository: progress is judged by tasks.md alone",
                    project.display()
                ),
            });
            return Ok(());
        }
        let dirty = git::dirty_paths(project);
        if !dirty.is_empty() {
            (self.emit)(&RunnerEvent::Warning {
                message: format!(
                    "the working tree has {} uncommitted change(s) (e.g. {}); the agent will see them",
                    dirty.len(),
                    dirty[0]
                ),
            });
        }
        // swr's own files must never make the tree look dirty.
        let logs_root = project
            .join(&self.config.spec_workflow_dir_name)
            .join(&self.config.log_dir_name);
        let retry_dir = self.config.retry_log_dir(project);
        let patterns: Vec<String> = [logs_root, retry_dir]
            .iter()
            .filter_map(|p| git::repo_relative(project, p))
            .map(|rel| format!("/{rel}/"))
            .collect();
        if let Err(e) = git::ensure_excluded(project, &patterns) {
            (self.emit)(&RunnerEvent::Warning {
                message: format!("could not add swr's log dirs to .git/info/exclude: {e}"),
            });
        }
        Ok(())
    }

    fn prompt(&self, list: &TaskList) -> Result<String, RunError> {
        render_prompt(
            self.config,
            &self.opts.project,
            &self.opts.spec,
            &self.tasks_path,
            list,
        )
    }

    fn attempt_end(r: &AttemptResult, outcome: Outcome) -> AttemptEnd {
        AttemptEnd {
            ended_at: r.report.ended_at,
            exit_code: r.report.raw_code,
            signal: r.report.raw_signal.map(supervise::signal_name),
            outcome,
            error: r.classified.error.clone(),
            session_id: r.signals.session_id.clone(),
            cost_usd: r.signals.result.as_ref().and_then(|x| x.cost_usd),
        }
    }

    /// Closes an attempt recorded at its exit: its final outcome (a clean exit becomes
    /// `no_progress` once progress is judged), the delay before the next one, the log footer.
    fn finish_attempt(
        &mut self,
        r: &AttemptResult,
        outcome: Outcome,
        delay_ms: Option<u64>,
    ) -> Result<(), RunError> {
        if outcome != r.classified.outcome || delay_ms.is_some() {
            let end = Self::attempt_end(r, outcome);
            self.store.transaction(|tx| {
                if outcome != r.classified.outcome {
                    tx.finish_attempt(r.attempt_id, &end)?;
                }
                if let Some(ms) = delay_ms {
                    tx.set_attempt_delay(r.attempt_id, ms)?;
                }
                Ok(())
            })?;
        }
        let mut summary = format!(
            "outcome: {outcome}; {}; duration {:.3}s",
            describe_exit(&r.report),
            r.report.duration.as_secs_f64()
        );
        if let Some(e) = &r.classified.error {
            summary.push_str(&format!("; error: {}", e.replace('\n', " ")));
        }
        if let Some(ms) = delay_ms {
            summary.push_str(&format!("; next attempt in {:.3}s", ms as f64 / 1000.0));
        }
        let _ = attempt_log::write_footer(&r.log_path, &summary, Timestamp::now());
        (self.emit)(&RunnerEvent::AttemptFinished {
            iteration: r.iteration,
            attempt: r.attempt,
            outcome,
            exit_code: r.report.raw_code,
            signal: r.report.raw_signal.map(supervise::signal_name),
            duration_ms: r.report.duration.as_millis() as u64,
            error: r.classified.error.clone(),
        });
        Ok(())
    }

    async fn run_attempt(
        &mut self,
        iteration: u32,
        attempt: u32,
        prompt: &str,
    ) -> Result<AttemptResult, RunError> {
        let cmd = self.command(iteration, attempt, prompt);
        let log_dir = self.config.log_dir(&self.opts.project, &self.opts.spec);
        // Set by prepare_project before the first attempt.
        let namer = self.log_namer.as_mut().ok_or_else(|| RunError::Io {
            path: log_dir.clone(),
            source: std::io::Error::other("attempt log directory not prepared"),
        })?;
        // Named after the log directory: the project path alone hides what failed.
        let (log_path, mut log) =
            namer
                .create(iteration, attempt)
                .map_err(|source| RunError::Io {
                    path: log_dir,
                    source,
                })?;
        let started_at = Timestamp::now();
        attempt_log::write_header(
            &mut log,
            attempt_log::AttemptIds {
                runner_id: self.runner_id.as_str(),
                spec: &self.opts.spec,
                iteration,
                attempt,
            },
            &cmd,
            prompt,
            started_at,
        )
        .map_err(io_err(&log_path))?;
        let sopts = SuperviseOptions {
            idle_timeout: self.config.activity_timeout,
            wall_timeout: self.config.iteration_timeout,
            stop_grace: self.config.stop_grace,
            ..SuperviseOptions::default()
        };
        // The marker is recorded before the agent exists, so a crash of swr right after the
        // spawn still leaves what its processes can be found by.
        let new_attempt = NewAttempt {
            runner_id: self.runner_id.clone(),
            iteration,
            attempt,
            started_at,
            log_path: log_path.clone(),
        };
        let patch = RunnerUpdate {
            log_path: Some(Some(log_path.clone())),
            agent: Some(Some(AgentProcess {
                pid: 0,
                pgid: 0,
                start_time: None,
                marker: Some(sopts.marker.clone()),
            })),
            ..Default::default()
        };
        let deferred = self.deferred.take();
        let id = &self.runner_id;
        let attempt_id = self.store.transaction(|tx| {
            if let Some(d) = &deferred {
                tx.update_runner(id, d)?;
            }
            let attempt_id = tx.start_attempt(&new_attempt)?;
            tx.update_runner(id, &patch)?;
            Ok(attempt_id)
        })?;

        let spawn_started = Instant::now();
        let spawned = supervise::spawn(&cmd, &sopts, Some(log)).await;
        let spawn_time = spawn_started.elapsed();
        let mut signals = AttemptSignals::default();
        let report = match spawned {
            Err(e) => failed_spawn_report(e, started_at),
            Ok(running) => {
                if let Some(prev) = self.last_exit.take() {
                    tracing::debug!(
                        target: "swr::timing",
                        exit_to_next_spawn_us = prev.elapsed().as_micros() as u64,
                        git_and_tasks_us = std::mem::take(&mut self.checks_time).as_micros() as u64,
                        spawn_us = spawn_time.as_micros() as u64,
                        "agent started"
                    );
                }
                self.update(RunnerUpdate {
                    agent: Some(Some(AgentProcess {
                        pid: running.pid,
                        pgid: running.pgid,
                        start_time: running.start_time,
                        marker: Some(running.marker.clone()),
                    })),
                    ..Default::default()
                })?;
                (self.emit)(&RunnerEvent::AttemptStarted {
                    iteration,
                    attempt,
                    pid: Some(running.pid),
                    log_path: log_path.clone(),
                });
                let handle = running.stop_handle();
                let mut stop = self.stop.clone();
                let watcher = tokio::spawn(async move {
                    loop {
                        let level = *stop.borrow_and_update();
                        if level >= STOP_KILL {
                            handle.kill();
                            break;
                        } else if level >= STOP_GRACEFUL {
                            handle.stop();
                        }
                        if stop.changed().await.is_err() {
                            break;
                        }
                    }
                });
                let mut parser = provider::line_parser(self.def.output);
                let emit = &mut *self.emit;
                let mut last_activity = Instant::now() - Duration::from_secs(1);
                let report = running
                    .wait_lines(|line| {
                        if line.stream != supervise::Stream::Stdout {
                            return;
                        }
                        for s in parser.parse_line(line.text) {
                            collect(&mut signals, s, emit, &mut last_activity);
                        }
                    })
                    .await;
                for s in parser.finish() {
                    collect(&mut signals, s, emit, &mut last_activity);
                }
                watcher.abort();
                report
            }
        };
        let exit_seen = Instant::now().checked_sub(report.after_exit);
        let tail: Vec<String> = report.tail.iter().map(|(_, l)| l.clone()).collect();
        let classified = classify::classify(
            self.def.kind,
            &report.exit,
            &signals,
            &tail,
            Timestamp::now(),
        );
        // Recorded at once, before progress is judged: a crash of swr from here on still
        // leaves the attempt's end in the store.
        let result = AttemptResult {
            attempt_id,
            iteration,
            attempt,
            classified,
            report,
            signals,
            log_path,
        };
        self.store.finish_attempt(
            attempt_id,
            &Self::attempt_end(&result, result.classified.outcome),
        )?;
        if let Some(seen) = exit_seen {
            self.last_exit = Some(seen);
            tracing::debug!(
                target: "swr::timing",
                exit_to_recorded_us = seen.elapsed().as_micros() as u64,
                cleanup_us = result.report.after_exit.as_micros() as u64,
                "attempt recorded"
            );
        }
        if let Some(cost) = result.signals.result.as_ref().and_then(|r| r.cost_usd) {
            // Each attempt is its own session: the runner's cost is their sum.
            self.cost_total += cost;
            self.update(RunnerUpdate {
                cost_usd: Some(Some(self.cost_total)),
                ..Default::default()
            })?;
        }
        Ok(result)
    }

    fn command(&self, iteration: u32, attempt: u32, prompt: &str) -> supervise::CommandSpec {
        let req = provider::AttemptRequest {
            prompt,
            model: self.opts.model.as_deref(),
            cwd: &self.opts.project,
            is_root: self.is_root,
            resume_session: None,
        };
        let mut cmd = provider::command(&self.def, &req, &self.config.codex_config_overrides);
        cmd.env_remove = provider::inherited_env_to_remove(std::env::vars());
        let tasks = self.tasks_path.display().to_string();
        cmd.env.extend([
            ("SWR_RUNNER_ID".to_string(), self.runner_id.to_string()),
            ("SWR_SPEC".to_string(), self.opts.spec.clone()),
            (
                "SWR_PROJECT".to_string(),
                self.opts.project.display().to_string(),
            ),
            ("SWR_TASKS_PATH".to_string(), tasks),
            ("SWR_ITERATION".to_string(), iteration.to_string()),
            ("SWR_ATTEMPT".to_string(), attempt.to_string()),
        ]);
        cmd.env.extend(self.opts.extra_env.iter().cloned());
        cmd
    }

    /// Final bookkeeping: status, reason, the Python-compatible retry log, the notification.
    fn finish(&mut self, end: &RunEnd) -> Result<(), RunError> {
        let status = match end {
            RunEnd::Completed => RunnerStatus::Completed,
            RunEnd::Stopped | RunEnd::MaxIterations { .. } | RunEnd::MaxRuntime { .. } => {
                RunnerStatus::Stopped
            }
            _ => RunnerStatus::Failed,
        };
        let counts = self.read_tasks().map(|l| l.counts()).unwrap_or(self.counts);
        let waiting = matches!(end, RunEnd::Stopped)
            && self
                .store
                .wait_for(&self.opts.project, &self.opts.spec)?
                .is_some();
        self.update(RunnerUpdate {
            status: Some(status),
            reason: Some(Some(end.reason())),
            tasks: Some(counts),
            agent: Some(None),
            next_attempt_at: if waiting { None } else { Some(None) },
            ..Default::default()
        })?;
        if let Some(record) = self.store.runner(&self.runner_id)? {
            let attempts = self.store.attempts(&crate::store::AttemptFilter {
                runner: Some(self.runner_id.clone()),
                ..Default::default()
            })?;
            let dir = self.config.retry_log_dir(&self.opts.project);
            if let Err(e) = crate::store::write_retry_log(&dir, &record, &attempts) {
                (self.emit)(&RunnerEvent::Warning {
                    message: format!("could not write the retry log in {}: {e}", dir.display()),
                });
            }
        }
        let event = match end {
            RunEnd::Completed => Some(NotifyEvent::Completed),
            RunEnd::CircuitOpen { .. } => Some(NotifyEvent::CircuitOpen),
            RunEnd::RetriesExhausted { .. } | RunEnd::NonRetryable { .. } => {
                Some(NotifyEvent::Failed)
            }
            _ => None,
        };
        if let (Some(event), Some(argv)) = (event, &self.config.notify_command) {
            notify::notify(
                argv,
                event,
                &self.opts.project,
                &self.opts.spec,
                self.runner_id.as_str(),
                &end.reason(),
            );
        }
        (self.emit)(&RunnerEvent::Finished {
            end: end.clone(),
            tasks: counts,
            iterations: self.iterations,
        });
        Ok(())
    }
}

/// The prompt of one iteration: `prompt_template` with the spec's current state. Also used by
/// `swr run --dry-run`, so what it shows is what the agent gets.
pub fn render_prompt(
    config: &Config,
    project: &Path,
    spec: &str,
    tasks_path: &Path,
    list: &TaskList,
) -> Result<String, RunError> {
    let c = list.counts();
    let next = list.next_task();
    let vars = PromptVars {
        spec_name: spec.to_string(),
        progress_summary: list.progress_summary(),
        tasks_total: c.total,
        tasks_done: c.done,
        tasks_remaining: c.remaining(),
        tasks_in_progress: c.in_progress,
        timestamp: format!("{:.0}", Timestamp::now()),
        tasks_path: tasks_path
            .strip_prefix(project)
            .unwrap_or(tasks_path)
            .display()
            .to_string(),
        next_task_id: next.map(|t| t.id.clone()).unwrap_or_default(),
        next_task_title: next.map(|t| t.title.clone()).unwrap_or_default(),
        next_task_prompt: next.and_then(|t| t.prompt.clone()).unwrap_or_default(),
    };
    prompt::render(&config.prompt_template, &vars).map_err(|e| {
        RunError::Config(ConfigError::Invalid {
            origin: "prompt_template".into(),
            key: "prompt_template".into(),
            message: e.to_string(),
        })
    })
}

fn collect(
    signals: &mut AttemptSignals,
    s: AgentSignal,
    emit: &mut (dyn FnMut(&RunnerEvent) + Send),
    last_activity: &mut Instant,
) {
    // Activity is shown, not stored: at most a few lines a second reach the consumers even
    // when the agent floods.
    let mut activity = |text: String| {
        if last_activity.elapsed() >= Duration::from_millis(200) {
            *last_activity = Instant::now();
            let text: String = text.chars().take(200).collect();
            emit(&RunnerEvent::Activity { text });
        }
    };
    match s {
        AgentSignal::SessionId(id) => signals.session_id = Some(id),
        AgentSignal::Result(r) => signals.result = Some(r),
        AgentSignal::Error(e) => signals.errors.push(e),
        AgentSignal::Text(t) => {
            if let Some(line) = t.lines().find(|l| !l.trim().is_empty()) {
                activity(line.trim().to_string());
            }
        }
        AgentSignal::ToolUse { name, input } => activity(format!("{name} {input}")),
        AgentSignal::ToolResult { .. } | AgentSignal::Notice(_) => {}
    }
}

/// A rate limit that names a reset already past (a CLI misreporting it, a skewed clock) is
/// retried at once; when it keeps coming back that is a loop that never uses up a retry and
/// burns attempts forever. From the second wait of an iteration on, wait at least the retry
/// backoff, growing like it, up to `rate_limit_wait`.
fn rate_limit_floor(
    policy: &RetryPolicy,
    until: Timestamp,
    now: Timestamp,
    waits: u32,
) -> Timestamp {
    if waits < 2 {
        return until;
    }
    let exp = i32::try_from(waits - 2).unwrap_or(i32::MAX);
    let secs = policy.backoff.as_secs_f64() * policy.multiplier.max(1.0).powi(exp);
    let floor = Duration::try_from_secs_f64(secs.min(policy.rate_limit_wait.as_secs_f64()))
        .unwrap_or(policy.rate_limit_wait);
    until.max(now + delay_span(floor))
}

/// What the user can do about a failure no retry fixes.
fn fix_hint(outcome: Outcome, kind: provider::ProviderKind) -> Option<&'static str> {
    use provider::ProviderKind as K;
    match (outcome, kind) {
        (Outcome::Auth, K::Claude) => Some(
            "log in first: `claude /login`, or set ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN (`claude setup-token`)",
        ),
        (Outcome::Auth, K::Codex) => Some("log in first: `codex login`, or set CODEX_API_KEY"),
        (Outcome::Auth, K::Gemini) => {
            Some("log in first: set GEMINI_API_KEY, or run `gemini` once to choose an auth method")
        }
        (Outcome::Auth, _) => Some("check the agent's credentials"),
        (Outcome::Usage, _) => Some(
            "the agent rejected its command line: `swr run --dry-run` shows it; check the provider's command in the config",
        ),
        _ => None,
    }
}

/// A rate-limit message for people: claude's `usage limit reached|<epoch>` carries the reset
/// time as a machine suffix, which the wait's own time already says.
fn readable_limit(error: Option<&str>) -> String {
    let text = error.unwrap_or("rate limited").trim();
    match text.rsplit_once('|') {
        Some((head, epoch)) if !epoch.is_empty() && epoch.chars().all(|c| c.is_ascii_digit()) => {
            head.trim().to_string()
        }
        _ => text.to_string(),
    }
}

fn delay_span(d: Duration) -> jiff::SignedDuration {
    jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::ZERO)
}

fn failed_spawn_report(e: supervise::SpawnError, started_at: Timestamp) -> ExitReport {
    ExitReport {
        exit: AttemptExit::SpawnFailed(e),
        raw_code: None,
        raw_signal: None,
        started_at,
        ended_at: Timestamp::now(),
        duration: Duration::ZERO,
        escalated_to_kill: false,
        leftovers_killed: 0,
        tail: Vec::new(),
        stdout_bytes: 0,
        stderr_bytes: 0,
        pipes_leaked: false,
        log_error: None,
        after_exit: Duration::ZERO,
    }
}

fn describe_exit(r: &ExitReport) -> String {
    match (&r.exit, r.raw_code, r.raw_signal) {
        (AttemptExit::SpawnFailed(e), _, _) => format!("spawn failed: {e}"),
        (_, Some(code), _) => format!("exit code {code}"),
        (_, _, Some(sig)) => format!("killed by {}", supervise::signal_name(sig)),
        _ => "no exit status".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::readable_limit;

    #[test]
    fn limit_messages_drop_the_epoch_suffix_only() {
        assert_eq!(
            readable_limit(Some("Claude AI usage limit reached|1755615600")),
            "Claude AI usage limit reached"
        );
        assert_eq!(
            readable_limit(Some("You've hit your limit · resets 2pm")),
            "You've hit your limit · resets 2pm"
        );
        assert_eq!(readable_limit(Some("a|b")), "a|b");
        assert_eq!(readable_limit(None), "rate limited");
    }
}
