//! The runner: keeps one agent working on one spec until every task is done, and survives
//! what the agent or the machine does to it.
//!
//! Three layers, in the shape of nextest's dispatcher and our TUI's `App::update`:
//! - [`machine`]: the rules, pure. `step(input) -> effects`: iterations, attempts judged by
//!   their outcome *and* their progress, retries, rate-limit waits, session resume, the circuit
//!   breaker, limits. Unit-tested with a fake clock and scripted attempts.
//! - `driver`: a thin async shell that performs the effects (spawn an attempt, read tasks.md
//!   and HEAD, write the store, sleep, notify) and feeds back what happened.
//! - helpers with one job each: [`classify`] (an attempt's exit and output to an outcome),
//!   [`progress`] (the circuit breaker's streaks), [`guard`] (tasks.md damage and repair),
//!   [`verify`] (which command checks a tick, and running it), [`attempt_log`], [`git`],
//!   [`notify`].
//!
//! This module holds the entry point [`run`], its options, and the routines other commands
//! share with it: [`render_prompt`] (also `--dry-run`) and [`reconcile_and_reap`].

pub mod attempt_log;
pub mod classify;
mod driver;
pub mod git;
pub mod guard;
pub mod machine;
#[cfg(test)]
mod machine_tests;
pub mod notify;
pub mod progress;
pub mod verify;
pub mod worktree;

use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::Timestamp;
use rand::SeedableRng;
use tokio::sync::watch;

use crate::config::{Config, ConfigError, JitterSetting};
use crate::event::{RunEnd, RunnerEvent, StopCause};
use crate::prompt::{self, PromptVars};
use crate::provider::ProviderError;
use crate::retry::{Jitter, RetryPolicy};
use crate::spec::{self, SpecError, TaskList};
use crate::store::{
    LockError, NewRunner, RunnerId, RunnerRecord, RunnerStatus, RunnerUpdate, SpecLock, Store,
    StoreError,
};
use crate::supervise;

use self::driver::Driver;
use self::guard::TasksGuard;
use self::machine::{Budgets, LoopSettings, Machine};

/// What to run.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The project directory (canonical).
    pub project: PathBuf,
    pub spec: String,
    pub provider: String,
    pub model: Option<String>,
    pub max_iterations: Option<u32>,
    /// `--max-runtime`: the limit as the user gave it.
    pub max_runtime: Option<Duration>,
    /// When the `--max-runtime` clock started, when it started before this run (`--all`
    /// shares one clock across its specs).
    pub clock_started: Option<Timestamp>,
    /// Skip a rate-limit wait persisted by an earlier run (`--ignore-wait`).
    pub ignore_wait: bool,
    /// Run in the spec's own git worktree (`--worktree`, `--parallel`). A spec that already
    /// has one continues there either way.
    pub worktree: bool,
    /// `--max-cost`: over `max_cost_usd`.
    pub max_cost_usd: Option<f64>,
    /// Set for every attempt on top of the provider's own variables.
    pub extra_env: Vec<(String, String)>,
    /// The swr executable, for the `sim` provider.
    pub swr_exe: PathBuf,
}

/// How hard a stop was asked for; only ever increases.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum StopLevel {
    #[default]
    None,
    /// SIGTERM to the agent's group, `stop_grace_seconds`, then SIGKILL.
    Graceful,
    /// SIGKILL to the agent's group now (the second Ctrl-C).
    Kill,
}

/// A stop request as sent to a running [`run`] through a `watch` channel.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StopRequest {
    pub level: StopLevel,
    /// Why; the first cause given is kept.
    pub cause: Option<StopCause>,
}

impl StopRequest {
    pub fn is_set(&self) -> bool {
        self.level > StopLevel::None
    }

    /// Raises the level (never lowers it); true when it changed.
    pub fn raise(&mut self, level: StopLevel, cause: StopCause) -> bool {
        if level <= self.level {
            return false;
        }
        self.level = level;
        self.cause.get_or_insert(cause);
        true
    }

    pub fn cause_or_user(&self) -> StopCause {
        self.cause.unwrap_or(StopCause::User)
    }
}

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
    #[error(transparent)]
    Worktree(#[from] worktree::WorktreeError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
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
/// (lock held, store unusable, unknown provider, unreadable tasks.md at the start).
pub async fn run(
    config: &Config,
    opts: &RunOptions,
    stop: watch::Receiver<StopRequest>,
    emit: EventSink<'_>,
) -> Result<RunEnd, RunError> {
    let registry = config.provider_registry(opts.swr_exe.clone())?;
    let def = registry.get(&opts.provider)?;
    // The spec's files must exist before anything is locked or created for it.
    let project_tasks = config.tasks_path(&opts.project, &opts.spec);
    spec::read_bytes(&project_tasks)?;

    let runner_id = RunnerId::new_now();
    let lock = SpecLock::acquire(&config.lock_dir(), &opts.project, &opts.spec, &runner_id)?;
    let store = Store::open(&config.store_path())?;
    for r in reconcile_and_reap(&store, &config.lock_dir())? {
        emit(&RunnerEvent::Warning {
            message: r.describe(),
        });
    }
    if config.cache_max_age_days > 0 {
        let hours = i64::try_from(config.cache_max_age_days.saturating_mul(24)).unwrap_or(i64::MAX);
        let age = jiff::SignedDuration::from_hours(hours.min(24 * 365 * 100));
        let cutoff = Timestamp::now()
            .saturating_sub(age)
            .unwrap_or(Timestamp::MIN);
        if let Err(e) = store.prune(cutoff) {
            tracing::warn!("could not prune old runners from the store: {e}");
        }
    }
    // Under the spec lock: two runners never create one worktree.
    let worktree = open_worktree(config, opts, emit)?;
    let tasks_path = match &worktree {
        Some(w) => config.tasks_path(&w.path, &opts.spec),
        None => project_tasks,
    };
    let mut guard = TasksGuard::new(&tasks_path);
    let first = guard.read()?;

    let me = std::process::id();
    let counts = first.counts_with(config.include_optional_tasks);
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
        tasks: counts,
        worktree: worktree.as_ref().map(|w| w.path.clone()),
    })?;
    emit(&RunnerEvent::Started {
        runner_id: runner_id.clone(),
        project: opts.project.clone(),
        spec: opts.spec.clone(),
        provider: opts.provider.clone(),
        model: opts.model.clone(),
        tasks: counts,
    });

    let resume = config.resume_on_retry && def.supports_resume();
    let kind = def.kind;
    let mut driver = Driver::new(
        config, opts, def, store, runner_id, guard, first, stop, emit, worktree,
    )?;
    let settings = LoopSettings {
        policy: retry_policy(config),
        max_iterations: opts.max_iterations,
        max_runtime: opts.max_runtime,
        no_commit_limit: config.no_commit_limit,
        no_progress_limit: config.no_progress_limit,
        resume,
        ignore_wait: opts.ignore_wait,
        clock_started: opts.clock_started,
        provider: kind,
        provider_name: opts.provider.clone(),
        retry_budget: config.retry_budget_per_hour,
        tasks_path: tasks_path.display().to_string(),
        tasks_in_repo: driver.tasks_in_repo(),
        budgets: Budgets {
            max_cost_usd: opts.max_cost_usd.or(config.max_cost_usd),
            max_tokens: config.max_tokens,
            spec_budget_usd: config.spec_budget_usd,
        },
    };
    let mut machine = Machine::new(settings, rand::rngs::StdRng::from_os_rng());
    match driver.drive(&mut machine).await {
        Ok(end) => {
            driver.finish(&end, machine.iterations(), machine.run_spent())?;
            drop(lock);
            log_own_cpu();
            Ok(end)
        }
        Err(e) => {
            driver.failed(&e);
            Err(e)
        }
    }
}

/// swr's own CPU for the whole run (its agents excluded), for the many-runners benchmark.
fn log_own_cpu() {
    use nix::sys::resource::{UsageWho, getrusage};
    if let Ok(u) = getrusage(UsageWho::RUSAGE_SELF) {
        let us = |t: nix::sys::time::TimeVal| t.tv_sec() * 1_000_000 + t.tv_usec();
        tracing::debug!(
            target: "swr::timing",
            cpu_user_us = us(u.user_time()),
            cpu_sys_us = us(u.system_time()),
            "runner finished"
        );
    }
}

/// The spec's worktree when the run asks for one or the spec already has one.
fn open_worktree(
    config: &Config,
    opts: &RunOptions,
    emit: EventSink<'_>,
) -> Result<Option<worktree::Worktree>, RunError> {
    let existing = worktree::existing(&config.cache_dir, &opts.project, &opts.spec);
    if !opts.worktree && existing.is_none() {
        return Ok(None);
    }
    let spec_rel = config.specs_dir(Path::new("")).join(&opts.spec);
    let (w, copied) = worktree::prepare(&config.cache_dir, &opts.project, &opts.spec, &spec_rel)?;
    emit(&RunnerEvent::Warning {
        message: format!(
            "{} the worktree {} on branch {} (merged into {} when the spec is done)",
            if existing.is_some() {
                "continuing in"
            } else {
                "working in"
            },
            w.path.display(),
            w.branch,
            w.base
        ),
    });
    if copied {
        emit(&RunnerEvent::Warning {
            message: format!(
                "the spec's files differ from the last commit; copied them into the worktree (commit {} to keep them in sync)",
                spec_rel.display()
            ),
        });
    }
    Ok(Some(w))
}

/// The prompt of one attempt: `prompt_template` (or `resume_prompt_template` when the attempt
/// continues the agent's session) with the spec's state as `list` has it, and the check that
/// rejected the last ticks, if one did. Also used by `swr run --dry-run`, so what it shows is
/// what the agent gets.
pub fn render_prompt(
    config: &Config,
    project: &Path,
    spec: &str,
    tasks_path: &Path,
    list: &TaskList,
    resumed: bool,
    verify_failure: Option<&str>,
) -> Result<String, RunError> {
    let optional = config.include_optional_tasks;
    let c = list.counts_with(optional);
    let next = list.next_task_with(optional);
    let vars = PromptVars {
        spec_name: spec.to_string(),
        progress_summary: list.progress_summary_with(optional),
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
        verify_failure: verify_failure.unwrap_or_default().to_string(),
    };
    let (key, template) = if resumed {
        ("resume_prompt_template", &config.resume_prompt_template)
    } else {
        ("prompt_template", &config.prompt_template)
    };
    prompt::render(template, &vars).map_err(|e| {
        RunError::Config(ConfigError::Invalid {
            origin: key.into(),
            key: key.into(),
            message: e.to_string(),
        })
    })
}

/// A runner found dead by [`reconcile_and_reap`].
#[derive(Debug, Clone)]
pub struct Reaped {
    /// As stored after reconciliation (status `crashed`).
    pub runner: RunnerRecord,
    /// Agent processes it left behind that were killed.
    pub killed: usize,
}

impl Reaped {
    pub fn describe(&self) -> String {
        let r = &self.runner;
        format!(
            "runner {} of {} ({}) had died without cleaning up: marked crashed{}",
            r.runner_id,
            r.spec,
            r.project.display(),
            if self.killed > 0 {
                format!(", killed {} orphaned agent process(es)", self.killed)
            } else {
                String::new()
            }
        )
    }
}

/// Marks runners whose `swr run` process died as crashed and kills the agent processes they
/// left behind (checked by start time and marker, never a recycled pid). The one routine for
/// it: `swr run`, the TUI and `swr status --reap` call this; read-only commands never do.
pub fn reconcile_and_reap(store: &Store, lock_dir: &Path) -> Result<Vec<Reaped>, StoreError> {
    Ok(store
        .reconcile(lock_dir)?
        .into_iter()
        .map(|runner| {
            let killed = runner.agent.as_ref().map_or(0, |a| {
                supervise::kill_orphans(
                    a.marker.as_deref().unwrap_or(""),
                    Some(a.pgid),
                    Some(a.pid),
                    a.start_time,
                )
                .killed
                .len()
            });
            Reaped { runner, killed }
        })
        .collect())
}

/// Writes the runner's end when swr itself failed mid-run, so nobody sees a ghost "running".
fn record_swr_failure(store: &Store, runner_id: &RunnerId, e: &RunError) {
    let _ = store.update_runner(
        runner_id,
        &RunnerUpdate {
            status: Some(RunnerStatus::Failed),
            reason: Some(Some(format!("swr error: {e}"))),
            agent: Some(None),
            ..Default::default()
        },
    );
}
