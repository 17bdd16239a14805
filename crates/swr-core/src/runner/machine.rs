//! The runner's rules as a pure state machine: `step(input) -> effects`.
//!
//! It owns every decision of a run: when an iteration starts and ends, how an attempt is judged
//! (its outcome *and* its progress), retries and their backoff, rate-limit waits, session
//! resume, the circuit breaker, blocked-only specs, `--max-iterations` and `--max-runtime`,
//! budgets (what the run and the spec spent, and what the next attempt is expected to cost),
//! and verified ticks (which ticks stand after their check, which are put back, the evidence
//! of each, and the failure the next prompt reports). The notifications a run sends are
//! decided here too.
//! It performs no I/O and reads no clock: the time comes with each [`Input`], randomness from
//! the seeded RNG it is built with, so every rule is unit-tested with a fake clock and
//! scripted attempt results (see `machine_tests.rs`).
//!
//! It must not touch processes, files, the store or the terminal: the driver
//! (`runner::driver`) performs the [`Effect`]s and feeds what happened back as [`Input`]s.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;

use crate::cost::{Totals, Usage};
use crate::event::{BudgetKind, GiveUp, RunEnd, RunnerEvent, StopCause};
use crate::outcome::Outcome;
use crate::provider::ProviderKind;
use crate::retry::{self, Decision, RetryPolicy, RetryState};
use crate::spec::TaskCounts;
use crate::store::{Check, NewTick, RunnerStatus, RunnerUpdate};

use super::classify::Classified;
use super::notify::NotifyEvent;
use super::progress::Streaks;

/// The limits and switches of one run, resolved from config and flags.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    pub policy: RetryPolicy,
    pub max_iterations: Option<u32>,
    pub max_runtime: Option<Duration>,
    pub no_commit_limit: u32,
    pub no_progress_limit: u32,
    /// `resume_on_retry` and the provider can resume a session.
    pub resume: bool,
    /// Skip a rate-limit wait persisted by an earlier run (`--ignore-wait`).
    pub ignore_wait: bool,
    /// When the run's `--max-runtime` clock started (`swr run --all` shares one clock across
    /// its specs); `None`: when this run starts.
    pub clock_started: Option<Timestamp>,
    /// For the hint that goes with a failure no retry fixes.
    pub provider: ProviderKind,
    /// The provider's name, for messages.
    pub provider_name: String,
    /// `retry_budget_per_hour` (0: unlimited).
    pub retry_budget: u32,
    /// For messages only.
    pub tasks_path: String,
    /// tasks.md relative to the repository top, as the attempt's changed paths name it: a
    /// tick whose attempt changed nothing else is `empty`.
    pub tasks_in_repo: Option<String>,
    pub budgets: Budgets,
}

/// `max_cost_usd`, `max_tokens` (this run) and `spec_budget_usd` (every run of the spec).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Budgets {
    pub max_cost_usd: Option<f64>,
    pub max_tokens: Option<u64>,
    pub spec_budget_usd: Option<f64>,
}

/// tasks.md and HEAD as read at one moment.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Observation {
    pub counts: TaskCounts,
    pub head: Option<String>,
    /// `"<id> <title>"` of the task the agent is sent to next.
    pub next_task: Option<String>,
    /// A rate limit of this runner's provider account, hit by any runner, not over yet.
    pub account_wait: Option<PersistedWait>,
    /// Optional tasks (Kiro's `- [ ]*`) left out of `counts` (`include_optional_tasks` off).
    pub optional: usize,
    /// The tasks marked done, id to title: a tick is a task that joins this set.
    pub done: BTreeMap<String, String>,
}

/// What the driver learnt from one attempt, once it ended and tasks.md and HEAD were re-read.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptReport {
    pub classified: Classified,
    pub session_id: Option<String>,
    /// The session this attempt was asked to resume.
    pub resumed: Option<String>,
    /// Why swr stopped the agent itself, if it did.
    pub stopped_by: Option<StopCause>,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub duration_ms: u64,
    /// tasks.md (after the guard restored it, if it had to) and HEAD after the attempt.
    pub after: Observation,
    /// Tokens and cost, as the agent reported them (default: it reported nothing).
    pub usage: Usage,
    /// Paths the attempt changed (its commits and the files it left changed), relative to the
    /// repository top; `None` outside git.
    pub changed: Option<Vec<String>>,
}

/// One verify command as the driver ran it, for the ticked tasks it covers.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckRun {
    pub tasks: Vec<String>,
    pub check: Check,
}

/// A rate-limit wait recorded by an earlier run of this spec.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedWait {
    pub until: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The run begins: tasks.md and HEAD as they are, a wait left by an earlier run, and what
    /// the spec's earlier runs spent.
    Started {
        now: Timestamp,
        observed: Observation,
        wait: Option<PersistedWait>,
        spec_spent: Totals,
    },
    /// The answer to [`Effect::Observe`].
    Observed {
        now: Timestamp,
        observed: Observation,
    },
    /// The answer to [`Effect::Spawn`].
    AttemptEnded {
        now: Timestamp,
        report: Box<AttemptReport>,
    },
    /// The answer to [`Effect::Verify`]: the checks that ran (none: no task had one).
    Verified {
        now: Timestamp,
        checks: Vec<CheckRun>,
    },
    /// The answer to [`Effect::Untick`]: tasks.md and HEAD once the ticks were put back.
    Unticked {
        now: Timestamp,
        observed: Observation,
    },
    /// The answer to [`Effect::SleepUntil`] when the time came.
    TimerFired { now: Timestamp },
    /// A stop arrived while no attempt ran (during a sleep, before a spawn, while queued for an
    /// agent slot). A stop during an attempt reaches the machine as that attempt's `stopped`
    /// outcome. `MaxRuntime` is the run's own limit.
    StopRequested { now: Timestamp, cause: StopCause },
    /// The answer to [`Effect::TakeRetry`].
    RetryGrant { now: Timestamp, grant: RetryGrant },
    /// The planned attempt did not start: the driver waited for an agent slot, and brings
    /// tasks.md, HEAD and the account's clock as they are now. The machine decides again (the
    /// spec may be done, a rate limit may have been hit meanwhile).
    Deferred {
        now: Timestamp,
        observed: Observation,
    },
}

/// What the retry budget (`retry_budget_per_hour`, shared by every runner) said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryGrant {
    Granted,
    /// `used` retries in the last hour; the next frees up at `free_at`.
    Spent {
        free_at: Timestamp,
        used: u32,
    },
}

/// One attempt to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptPlan {
    pub iteration: u32,
    pub attempt: u32,
    /// Continue this agent session instead of starting a fresh one.
    pub resume: Option<String>,
    /// The check that rejected the last ticks, for the prompt (`{verify_failure}`).
    pub verify_failure: Option<String>,
}

/// The judged end of the current attempt, written once.
#[derive(Debug, Clone, PartialEq)]
pub struct AttemptVerdict {
    pub outcome: Outcome,
    pub ticked: usize,
    pub committed: bool,
    /// The delay scheduled after it (a retry backoff or a wait).
    pub delay: Option<Duration>,
    /// What swr did about it that the outcome does not say.
    pub note: Option<String>,
}

/// What the store must hold after a step.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    Runner(Box<RunnerUpdate>),
    /// Closes the attempt that just ended.
    Attempt(AttemptVerdict),
    /// The tasks the attempt that just ended ticked, with their evidence; written with it.
    Ticks(Vec<NewTick>),
    SetWait {
        until: Timestamp,
        reason: String,
    },
    ClearWait,
    /// The account's shared rate-limit clock: every runner of the provider and account waits.
    SetAccountWait {
        reset_at: Timestamp,
        until: Timestamp,
        reason: String,
    },
    /// An attempt of the account ended cleanly: a limit whose reset has passed is over.
    ClearAccountWait,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Read tasks.md and HEAD, answer with [`Input::Observed`].
    Observe,
    /// Run one attempt, answer with [`Input::AttemptEnded`].
    Spawn(AttemptPlan),
    /// Run the verify command of each of these ticked tasks in the project, at `head`; answer
    /// with [`Input::Verified`].
    Verify {
        tasks: Vec<String>,
        head: Option<String>,
    },
    /// Put these tasks back to in progress (`[-]`) in tasks.md and commit that with `message`;
    /// answer with [`Input::Unticked`].
    Untick {
        tasks: Vec<String>,
        message: String,
    },
    Record(Record),
    Emit(RunnerEvent),
    /// Sleep, answer with [`Input::TimerFired`] (or [`Input::StopRequested`]).
    SleepUntil(Timestamp),
    /// Take one retry from the shared retry budget, answer with [`Input::RetryGrant`].
    TakeRetry,
    Notify {
        event: NotifyEvent,
        message: String,
    },
    /// The run is over.
    Finish(RunEnd),
}

/// An attempt as judged, before the run decides what follows it.
struct Judged {
    /// Its outcome as classified from the process and output (`Success`: ended cleanly).
    class: Outcome,
    ticked: usize,
    committed: bool,
    progress: bool,
    verdict: AttemptVerdict,
}

/// What to do when a sleep ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resume {
    /// Another attempt of the same iteration (a retry, or the rest of a rate-limit wait).
    SameIteration,
    NextIteration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for [`Input::Started`].
    Idle,
    Observing(Resume),
    /// Waiting for the answer of the retry budget.
    Granting,
    Attempting,
    /// The attempt ticked tasks; their checks run.
    Verifying,
    /// Checks failed; their ticks are being put back.
    Unticking,
    Sleeping {
        until: Timestamp,
        then: Resume,
        /// A rate-limit wait (persisted), not a retry backoff.
        wait: bool,
    },
    Done,
}

pub struct Machine {
    s: LoopSettings,
    rng: StdRng,
    phase: Phase,
    deadline: Option<Timestamp>,
    iteration: u32,
    attempt: u32,
    retry: RetryState,
    streaks: Streaks,
    /// tasks.md and HEAD before the current attempt: what its progress is measured from.
    last: Observation,
    /// The session the next attempt resumes.
    session: Option<String>,
    /// Sessions the CLI refused to resume: never tried again.
    rejected: BTreeSet<String>,
    /// The next attempt is a retry: it needs the retry budget's grant.
    retry_pending: bool,
    /// The session the planned attempt resumes, kept in case it is planned again.
    planned_resume: Option<String>,
    /// An attempt that ticked tasks, while its checks run and its rejected ticks are put back.
    held: Option<Box<Held>>,
    /// The evidence and the note of the attempt being closed, written with its verdict.
    closing: Option<(Vec<NewTick>, Option<String>)>,
    /// The check that rejected the last ticks, for the next prompts until a tick stands.
    verify_failure: Option<String>,
    /// What this run, the spec (all its runs) and this iteration spent.
    run_spent: Totals,
    spec_spent: Totals,
    iteration_spent: Totals,
}

/// An attempt whose ticks are being checked.
struct Held {
    report: AttemptReport,
    ticks: Vec<NewTick>,
    rejected: usize,
    note: Option<String>,
}

impl Machine {
    pub fn new(settings: LoopSettings, rng: StdRng) -> Machine {
        Machine {
            s: settings,
            rng,
            phase: Phase::Idle,
            deadline: None,
            iteration: 0,
            attempt: 0,
            retry: RetryState::default(),
            streaks: Streaks::default(),
            last: Observation::default(),
            session: None,
            rejected: BTreeSet::new(),
            retry_pending: false,
            planned_resume: None,
            held: None,
            closing: None,
            verify_failure: None,
            run_spent: Totals::default(),
            spec_spent: Totals::default(),
            iteration_spent: Totals::default(),
        }
    }

    /// What this run's attempts used.
    pub fn run_spent(&self) -> Totals {
        self.run_spent
    }

    /// What every run of the spec used, this one included.
    pub fn spec_spent(&self) -> Totals {
        self.spec_spent
    }

    /// When `--max-runtime` ends the run; the driver stops a running attempt at this time.
    pub fn deadline(&self) -> Option<Timestamp> {
        self.deadline
    }

    pub fn iterations(&self) -> u32 {
        self.iteration
    }

    /// tasks.md as last observed.
    pub fn counts(&self) -> TaskCounts {
        self.last.counts
    }

    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    pub fn step(&mut self, input: Input) -> Vec<Effect> {
        let mut fx = Vec::new();
        match (self.phase, input) {
            (Phase::Done, _) => {}
            (
                Phase::Idle,
                Input::Started {
                    now,
                    observed,
                    wait,
                    spec_spent,
                },
            ) => {
                let from = self.s.clock_started.unwrap_or(now);
                self.deadline = self.s.max_runtime.map(|d| later(from, d));
                self.spec_spent = spec_spent;
                self.started(now, observed, wait, &mut fx);
            }
            (Phase::Observing(then), Input::Observed { now, observed }) => {
                self.before_attempt(now, observed, then, &mut fx);
            }
            (Phase::Granting, Input::RetryGrant { now, grant }) => {
                self.retry_granted(now, grant, &mut fx);
            }
            (Phase::Attempting, Input::Deferred { now, observed }) => {
                // The planned attempt keeps its number and its session when it is planned again.
                self.attempt = self.attempt.saturating_sub(1);
                self.session = self.planned_resume.take();
                self.before_attempt(now, observed, Resume::SameIteration, &mut fx);
            }
            (Phase::Attempting, Input::AttemptEnded { now, report }) => {
                self.attempt_ended(now, *report, &mut fx);
            }
            (Phase::Verifying, Input::Verified { now, checks }) => {
                self.verified(now, checks, &mut fx);
            }
            (Phase::Unticking, Input::Unticked { now, observed }) => {
                self.unticked(now, observed, &mut fx);
            }
            (Phase::Sleeping { until, then, wait }, Input::TimerFired { now }) => {
                self.woke(now, until, then, wait, &mut fx);
            }
            (_, Input::StopRequested { cause, .. }) => {
                // A persisted wait stays in the store: the next run waits for the rest of it.
                let end = match cause {
                    StopCause::MaxRuntime => self.max_runtime_end(),
                    by => RunEnd::Stopped { by },
                };
                self.finish(end, &mut fx);
            }
            (phase, input) => {
                // A driver bug, not a user's problem: say so loudly in debug builds, and end
                // the run cleanly rather than loop in release builds.
                debug_assert!(false, "input {input:?} in phase {phase:?}");
                self.finish(
                    RunEnd::NonRetryable {
                        outcome: Outcome::Usage,
                        reason: format!("swr internal error: unexpected {input:?} in {phase:?}"),
                    },
                    &mut fx,
                );
            }
        }
        fx
    }

    fn started(
        &mut self,
        now: Timestamp,
        observed: Observation,
        wait: Option<PersistedWait>,
        fx: &mut Vec<Effect>,
    ) {
        if let Some(w) = wait {
            if self.s.ignore_wait {
                fx.push(Effect::Record(Record::ClearWait));
                fx.push(Effect::Emit(RunnerEvent::Warning {
                    message: format!(
                        "ignoring the rate-limit wait until {} left by an earlier run (--ignore-wait)",
                        w.until.strftime("%H:%M:%S %Z")
                    ),
                }));
            } else if w.until > now {
                self.last = observed;
                self.wait_until(w.until, &w.reason, false, Resume::NextIteration, fx);
                return;
            } else {
                fx.push(Effect::Record(Record::ClearWait));
            }
        }
        self.before_attempt(now, observed, Resume::NextIteration, fx);
    }

    /// Decides, from tasks.md as it is now, whether the run goes on, and starts the attempt.
    fn before_attempt(
        &mut self,
        now: Timestamp,
        observed: Observation,
        then: Resume,
        fx: &mut Vec<Effect>,
    ) {
        let counts = observed.counts;
        let next_task = observed.next_task.clone();
        self.last = observed;
        if counts.total == 0 && self.last.optional > 0 {
            // Only optional tasks left out of the run: nothing required is left to do.
            return self.finish(RunEnd::Completed, fx);
        }
        if counts.total == 0 {
            return self.finish(
                RunEnd::NonRetryable {
                    outcome: Outcome::Usage,
                    reason: format!("{} has no tasks", self.s.tasks_path),
                },
                fx,
            );
        }
        if counts.is_complete() {
            return self.finish(RunEnd::Completed, fx);
        }
        if counts.pending + counts.in_progress == 0 {
            return self.finish(
                RunEnd::NonRetryable {
                    outcome: Outcome::NoProgress,
                    reason: format!(
                        "every remaining task is blocked ({} blocked); unblock them in {}",
                        counts.blocked, self.s.tasks_path
                    ),
                },
                fx,
            );
        }
        if self.deadline.is_some_and(|d| now >= d) {
            return self.finish(self.max_runtime_end(), fx);
        }
        if let Some(end) = self.budget_spent().or_else(|| self.budget_short()) {
            return self.finish(end, fx);
        }
        if let Some(w) = self.last.account_wait.clone().filter(|w| w.until > now) {
            // Another runner of this account hit the limit: wait it out without an attempt
            // of our own (which would only discover the same limit).
            return self.shared_wait(w, then, fx);
        }
        if then == Resume::SameIteration && self.retry_pending && self.s.retry_budget > 0 {
            self.phase = Phase::Granting;
            fx.push(Effect::TakeRetry);
            return;
        }
        self.start_attempt(counts, next_task, then, fx);
    }

    /// Starts the next attempt: a new iteration first when `then` says so.
    fn start_attempt(
        &mut self,
        counts: TaskCounts,
        next_task: Option<String>,
        then: Resume,
        fx: &mut Vec<Effect>,
    ) {
        let new_iteration = then == Resume::NextIteration || self.iteration == 0;
        if new_iteration {
            if let Some(max) = self.s.max_iterations
                && self.iteration >= max
            {
                return self.finish(RunEnd::MaxIterations { iterations: max }, fx);
            }
            self.iteration += 1;
            self.attempt = 0;
            self.retry.reset();
            self.iteration_spent = Totals::default();
            fx.push(Effect::Emit(RunnerEvent::IterationStarted {
                iteration: self.iteration,
                tasks: counts,
                next_task,
            }));
            fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
                status: Some(RunnerStatus::Running),
                reason: Some(None),
                iteration: Some(self.iteration),
                tasks: Some(counts),
                retry_count: Some(0),
                next_attempt_at: Some(None),
                ..Default::default()
            }))));
        } else {
            fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
                status: Some(RunnerStatus::Running),
                reason: Some(None),
                tasks: Some(counts),
                next_attempt_at: Some(None),
                ..Default::default()
            }))));
        }
        self.retry_pending = false;
        self.attempt += 1;
        let resume = self
            .session
            .take()
            .filter(|id| self.s.resume && !self.rejected.contains(id));
        self.planned_resume.clone_from(&resume);
        self.phase = Phase::Attempting;
        fx.push(Effect::Spawn(AttemptPlan {
            iteration: self.iteration,
            attempt: self.attempt,
            resume,
            verify_failure: self.verify_failure.clone(),
        }));
    }

    /// Waits for the rate-limit clock of this runner's account.
    fn shared_wait(&mut self, w: PersistedWait, then: Resume, fx: &mut Vec<Effect>) {
        let reason = shared_wait_reason(&self.s.provider_name, &w);
        fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
            status: Some(RunnerStatus::Waiting),
            reason: Some(Some(reason.clone())),
            next_attempt_at: Some(Some(w.until)),
            agent: Some(None),
            ..Default::default()
        }))));
        fx.push(Effect::Emit(RunnerEvent::Waiting {
            until: w.until,
            reason,
        }));
        self.sleep(w.until, then, false, fx);
    }

    /// The answer of the retry budget.
    fn retry_granted(&mut self, now: Timestamp, grant: RetryGrant, fx: &mut Vec<Effect>) {
        match grant {
            RetryGrant::Granted => {
                let (counts, next) = (self.last.counts, self.last.next_task.clone());
                self.start_attempt(counts, next, Resume::SameIteration, fx);
            }
            RetryGrant::Spent { free_at, used } => {
                let free_at = free_at.max(later(now, Duration::from_secs(1)));
                let reason = format!(
                    "retry budget: {used} retries in the last hour (retry_budget_per_hour {}); next retry at {}",
                    self.s.retry_budget,
                    local_hm(free_at)
                );
                fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
                    status: Some(RunnerStatus::Waiting),
                    reason: Some(Some(reason.clone())),
                    next_attempt_at: Some(Some(free_at)),
                    agent: Some(None),
                    ..Default::default()
                }))));
                fx.push(Effect::Emit(RunnerEvent::Waiting {
                    until: free_at,
                    reason,
                }));
                self.sleep(free_at, Resume::SameIteration, false, fx);
            }
        }
    }

    /// A budget this run has used up.
    fn budget_spent(&self) -> Option<RunEnd> {
        let b = self.s.budgets;
        let (run, spec) = (&self.run_spent, &self.spec_spent);
        let end = |budget, limit: f64, spent: f64| RunEnd::Budget {
            budget,
            limit,
            spent,
            expected: None,
        };
        if let Some(l) = b.max_cost_usd
            && run.priced > 0
            && run.cost_usd >= l
        {
            return Some(end(BudgetKind::MaxCostUsd, l, run.cost_usd));
        }
        if let Some(l) = b.max_tokens
            && run.tokens() >= l
        {
            return Some(end(BudgetKind::MaxTokens, l as f64, run.tokens() as f64));
        }
        if let Some(l) = b.spec_budget_usd
            && spec.priced > 0
            && spec.cost_usd >= l
        {
            return Some(end(BudgetKind::SpecBudgetUsd, l, spec.cost_usd));
        }
        None
    }

    /// A budget too small for one more attempt, judged by the mean of the spec's attempts so
    /// far (every run of it): starting one would likely overshoot it. With no attempt to go
    /// by, the first one always starts.
    fn budget_short(&self) -> Option<RunEnd> {
        let b = self.s.budgets;
        let (run, spec) = (&self.run_spent, &self.spec_spent);
        let short = |budget, limit: f64, spent: f64, mean: Option<f64>| {
            mean.filter(|m| *m > limit - spent).map(|m| RunEnd::Budget {
                budget,
                limit,
                spent,
                expected: Some(m),
            })
        };
        let cost = spec.mean_cost();
        b.max_cost_usd
            .and_then(|l| short(BudgetKind::MaxCostUsd, l, run.cost_usd, cost))
            .or_else(|| {
                b.max_tokens.and_then(|l| {
                    short(
                        BudgetKind::MaxTokens,
                        l as f64,
                        run.tokens() as f64,
                        spec.mean_tokens(),
                    )
                })
            })
            .or_else(|| {
                b.spec_budget_usd
                    .and_then(|l| short(BudgetKind::SpecBudgetUsd, l, spec.cost_usd, cost))
            })
    }

    /// The attempt is over: its spend counts at once; ticks go to their checks before the
    /// attempt is judged.
    fn attempt_ended(&mut self, now: Timestamp, r: AttemptReport, fx: &mut Vec<Effect>) {
        self.run_spent.add(&r.usage);
        self.spec_spent.add(&r.usage);
        self.iteration_spent.add(&r.usage);
        let ticked: Vec<(String, String)> = r
            .after
            .done
            .iter()
            .filter(|(id, _)| !self.last.done.contains_key(*id))
            .map(|(id, title)| (id.clone(), title.clone()))
            .collect();
        if ticked.is_empty() {
            return self.judge_and_go_on(now, r, Vec::new(), 0, None, fx);
        }
        let empty = r.changed.as_ref().map(|paths| {
            paths
                .iter()
                .all(|p| Some(p.as_str()) == self.s.tasks_in_repo.as_deref())
        });
        let ticks = ticked
            .iter()
            .map(|(id, title)| NewTick {
                task_id: id.clone(),
                title: Some(title.clone()).filter(|t| !t.is_empty()),
                head: r.after.head.clone(),
                empty,
                accepted: true,
                check: None,
            })
            .collect();
        fx.push(Effect::Verify {
            tasks: ticked.into_iter().map(|(id, _)| id).collect(),
            head: r.after.head.clone(),
        });
        self.held = Some(Box::new(Held {
            report: r,
            ticks,
            rejected: 0,
            note: None,
        }));
        self.phase = Phase::Verifying;
    }

    /// The checks of the ticked tasks are back: passing ones (and ticks without a check)
    /// stand; failing ones are put back to in progress before the attempt is judged.
    fn verified(&mut self, now: Timestamp, checks: Vec<CheckRun>, fx: &mut Vec<Effect>) {
        let Some(mut held) = self.held.take() else {
            return self.internal_error("verified without a held attempt", fx);
        };
        for c in &checks {
            fx.push(Effect::Emit(RunnerEvent::Checked {
                command: c.check.command.clone(),
                source: c.check.source.clone(),
                tasks: c.tasks.clone(),
                passed: c.check.passed(),
                end: c.check.describe_end(),
                duration_ms: c.check.duration_ms,
            }));
        }
        for t in &mut held.ticks {
            t.check = checks
                .iter()
                .find(|c| c.tasks.contains(&t.task_id))
                .map(|c| c.check.clone());
            t.accepted = t.check.as_ref().is_none_or(Check::passed);
            if t.empty == Some(true) {
                fx.push(Effect::Emit(RunnerEvent::Warning {
                    message: format!(
                        "task {} was ticked, but its attempt changed nothing but tasks.md: flagged empty in its evidence",
                        t.task_id
                    ),
                }));
            }
        }
        let rejected: Vec<&NewTick> = held.ticks.iter().filter(|t| !t.accepted).collect();
        if rejected.is_empty() {
            self.verify_failure = None;
            let Held { report, ticks, .. } = *held;
            return self.judge_and_go_on(now, report, ticks, 0, None, fx);
        }
        let ids: Vec<String> = rejected.iter().map(|t| t.task_id.clone()).collect();
        let first = rejected
            .iter()
            .find_map(|t| t.check.as_ref())
            .cloned()
            .unwrap_or_else(|| Check {
                command: Vec::new(),
                source: String::new(),
                exit_code: None,
                signal: None,
                timed_out: false,
                duration_ms: 0,
                output_tail: String::new(),
                log_path: None,
            });
        let command = shell_words(&first.command);
        let which = task_list(&ids);
        self.verify_failure = Some(verify_failure_text(&first, &command, &rejected));
        held.rejected = ids.len();
        held.note = Some(format!(
            "verify `{command}` failed ({}): {which} put back to in progress; no progress",
            first.describe_end()
        ));
        fx.push(Effect::Untick {
            message: format!(
                "swr: verify failed: `{command}` ({}); {which} back to in progress",
                first.describe_end()
            ),
            tasks: ids,
        });
        self.held = Some(held);
        self.phase = Phase::Unticking;
    }

    /// The rejected ticks are back to in progress: the attempt is judged from tasks.md and
    /// HEAD as they are now.
    fn unticked(&mut self, now: Timestamp, observed: Observation, fx: &mut Vec<Effect>) {
        let Some(held) = self.held.take() else {
            return self.internal_error("unticked without a held attempt", fx);
        };
        let Held {
            mut report,
            ticks,
            rejected,
            note,
        } = *held;
        report.after = observed;
        self.judge_and_go_on(now, report, ticks, rejected, note, fx);
    }

    fn internal_error(&mut self, what: &str, fx: &mut Vec<Effect>) {
        debug_assert!(false, "{what}");
        self.finish(
            RunEnd::NonRetryable {
                outcome: Outcome::Usage,
                reason: format!("swr internal error: {what}"),
            },
            fx,
        );
    }

    /// Judges the attempt by its outcome and the progress that stands, and decides what
    /// follows: the end of the run, a retry, a wait or the next iteration.
    fn judge_and_go_on(
        &mut self,
        now: Timestamp,
        r: AttemptReport,
        ticks: Vec<NewTick>,
        rejected: usize,
        note: Option<String>,
        fx: &mut Vec<Effect>,
    ) {
        self.closing = Some((ticks, note));
        let j = self.judge(&r, rejected);
        if j.class == Outcome::Success {
            fx.push(Effect::Record(Record::ClearAccountWait));
        }
        // The work decides first: a complete spec is done however the last attempt ended.
        if r.after.counts.is_complete() {
            self.close_attempt(&r, j.verdict, fx);
            self.iteration_finished(j.ticked, j.committed, fx);
            return self.finish(RunEnd::Completed, fx);
        }
        if j.class == Outcome::Stopped {
            return self.stopped(&r, j, fx);
        }
        if let Some(end) = self.budget_spent() {
            self.close_attempt(&r, j.verdict, fx);
            if j.progress {
                self.iteration_finished(j.ticked, j.committed, fx);
            }
            return self.finish(end, fx);
        }
        if let Some(rejected) = r
            .resumed
            .as_ref()
            .filter(|_| r.classified.rejected_resume())
        {
            // The CLI does not know the session (expired, another machine, cleaned up): start
            // a fresh one at once. No backoff and no retry used: nothing failed but our guess.
            self.rejected.insert(rejected.clone());
            self.session = None;
            if !j.progress {
                let mut verdict = j.verdict;
                verdict.note = Some(format!(
                    "the agent could not resume session {rejected}; starting a fresh session"
                ));
                self.close_attempt(&r, verdict, fx);
                return self.before_attempt(now, r.after, Resume::SameIteration, fx);
            }
        }
        let clean = j.class == Outcome::Success;
        let productive_failure =
            j.progress && !retry::NEVER_RETRY.contains(&j.class) && j.class != Outcome::RateLimited;
        if clean || productive_failure {
            return self.next_iteration(now, &r, j, fx);
        }
        let decision = retry::decide(
            &self.s.policy,
            &self.retry,
            j.class,
            r.classified.reset_at,
            now,
            &mut self.rng,
        );
        self.retry.record(&decision);
        match decision {
            // decide() continues only on clean outcomes, handled above.
            Decision::Continue => self.next_iteration(now, &r, j, fx),
            Decision::RetryAfter(delay) => self.retry_after(now, delay, &r, j, fx),
            Decision::WaitUntil(until) => self.rate_limited(now, until, &r, j, fx),
            Decision::GiveUp { reason } => self.give_up(reason, &r, j, fx),
        }
    }

    /// An attempt's outcome and progress, measured against tasks.md and HEAD before it; also
    /// picks the session the next attempt may continue. `rejected`: ticks its checks put back;
    /// an attempt whose every tick was rejected made no progress, whatever it committed.
    fn judge(&mut self, r: &AttemptReport, rejected: usize) -> Judged {
        let before = std::mem::replace(&mut self.last, r.after.clone());
        let ticked = r
            .after
            .done
            .keys()
            .filter(|id| !before.done.contains_key(*id))
            .count();
        let committed = r.after.head.is_some() && r.after.head != before.head;
        let committed = committed && !(rejected > 0 && ticked == 0);
        let progress = ticked > 0 || committed;
        let class = r.classified.outcome;
        let outcome = match (class, progress) {
            (Outcome::Success, true) => Outcome::Success,
            (Outcome::Success, false) => Outcome::NoProgress,
            (failure, _) => failure,
        };
        // Only after a failure that a retry can fix: a context overflow would overflow again,
        // and a clean end starts afresh.
        let resumable = matches!(
            class,
            Outcome::Crash
                | Outcome::Signal
                | Outcome::IdleTimeout
                | Outcome::WallTimeout
                | Outcome::Overloaded
                | Outcome::RateLimited
        );
        self.session = r
            .session_id
            .clone()
            .filter(|_| resumable && !r.classified.rejected_resume());
        Judged {
            class,
            ticked,
            committed,
            progress,
            verdict: AttemptVerdict {
                outcome,
                ticked,
                committed,
                delay: None,
                note: None,
            },
        }
    }

    fn stopped(&mut self, r: &AttemptReport, j: Judged, fx: &mut Vec<Effect>) {
        self.close_attempt(r, j.verdict, fx);
        if j.progress {
            self.iteration_finished(j.ticked, j.committed, fx);
        }
        let end = match r.stopped_by {
            Some(StopCause::MaxRuntime) => self.max_runtime_end(),
            cause => RunEnd::Stopped {
                by: cause.unwrap_or(StopCause::User),
            },
        };
        self.finish(end, fx);
    }

    /// The iteration is over (a clean end, or a failure after progress): judge it for the
    /// circuit breaker and start the next one at once.
    fn next_iteration(
        &mut self,
        now: Timestamp,
        r: &AttemptReport,
        j: Judged,
        fx: &mut Vec<Effect>,
    ) {
        let mut verdict = j.verdict;
        if j.class != Outcome::Success {
            verdict.note = Some(format!(
                "{}, but the attempt made progress: the next attempt is the next iteration",
                j.class
            ));
        }
        self.close_attempt(r, verdict, fx);
        self.iteration_finished(j.ticked, j.committed, fx);
        if let Some(reason) = self
            .streaks
            .circuit_open(self.s.no_commit_limit, self.s.no_progress_limit)
        {
            return self.finish(RunEnd::CircuitOpen { reason }, fx);
        }
        self.before_attempt(now, r.after.clone(), Resume::NextIteration, fx);
    }

    fn retry_after(
        &mut self,
        now: Timestamp,
        delay: Duration,
        r: &AttemptReport,
        j: Judged,
        fx: &mut Vec<Effect>,
    ) {
        let at = later(now, delay);
        self.retry_pending = true;
        let mut verdict = j.verdict;
        verdict.delay = Some(delay);
        self.close_attempt(r, verdict, fx);
        fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
            retry_count: Some(self.retry.retries_used),
            next_attempt_at: Some(Some(at)),
            last_outcome: Some(Some(j.class)),
            agent: Some(None),
            ..Default::default()
        }))));
        fx.push(Effect::Emit(RunnerEvent::RetryScheduled {
            retry: self.retry.retries_used,
            max_retries: self.s.policy.max_retries,
            delay_ms: millis(delay),
            at,
            resume: self.session.clone().filter(|_| self.s.resume),
        }));
        self.sleep(at, Resume::SameIteration, false, fx);
    }

    fn rate_limited(
        &mut self,
        now: Timestamp,
        until: Timestamp,
        r: &AttemptReport,
        j: Judged,
        fx: &mut Vec<Effect>,
    ) {
        let mut verdict = j.verdict;
        verdict.delay = Some(
            until
                .duration_since(now)
                .try_into()
                .unwrap_or(Duration::ZERO),
        );
        self.close_attempt(r, verdict, fx);
        // Progress before the limit ends the iteration; the wait comes before the next one.
        let then = if j.progress {
            self.iteration_finished(j.ticked, j.committed, fx);
            Resume::NextIteration
        } else {
            Resume::SameIteration
        };
        let reason = readable_limit(r.classified.error.as_deref());
        if let Some(reset_at) = r.classified.reset_at {
            // Only a reset the provider named is shared: our own guess of an hour must not
            // hold every other runner of the account.
            fx.push(Effect::Record(Record::SetAccountWait {
                reset_at,
                until,
                reason: reason.clone(),
            }));
        }
        self.wait_until(until, &reason, true, then, fx);
    }

    fn give_up(&mut self, reason: String, r: &AttemptReport, j: Judged, fx: &mut Vec<Effect>) {
        let reason = match r.classified.error.as_deref().map(str::trim) {
            Some(detail) if !detail.is_empty() => format!("{reason} ({detail})"),
            _ => reason,
        };
        self.close_attempt(r, j.verdict, fx);
        if j.progress {
            self.iteration_finished(j.ticked, j.committed, fx);
        }
        let end = if retry::NEVER_RETRY.contains(&j.class) {
            RunEnd::NonRetryable {
                outcome: j.class,
                reason: match fix_hint(j.class, self.s.provider) {
                    Some(hint) => format!("{reason}; {hint}"),
                    None => reason,
                },
            }
        } else {
            RunEnd::RetriesExhausted {
                reason,
                detail: GiveUp {
                    last_outcome: j.class,
                    retries: self.retry.retries_used,
                },
            }
        };
        self.finish(end, fx);
    }

    fn woke(
        &mut self,
        now: Timestamp,
        until: Timestamp,
        then: Resume,
        wait: bool,
        fx: &mut Vec<Effect>,
    ) {
        if self.deadline.is_some_and(|d| now >= d) {
            // The wait stays persisted: a later run still honours the rest of it.
            return self.finish(self.max_runtime_end(), fx);
        }
        if now < until {
            // Woken early (a coarse timer): sleep the rest.
            return self.sleep(until, then, wait, fx);
        }
        if wait {
            fx.push(Effect::Record(Record::ClearWait));
        }
        // tasks.md may have changed while we slept (the user ticked or added tasks): the next
        // attempt's prompt and the decision to run it at all come from a fresh read.
        self.phase = Phase::Observing(then);
        fx.push(Effect::Observe);
    }

    fn wait_until(
        &mut self,
        until: Timestamp,
        reason: &str,
        fresh: bool,
        then: Resume,
        fx: &mut Vec<Effect>,
    ) {
        fx.push(Effect::Record(Record::SetWait {
            until,
            reason: reason.to_string(),
        }));
        fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
            status: Some(RunnerStatus::Waiting),
            reason: Some(Some(format!("waiting for a rate limit: {reason}"))),
            next_attempt_at: Some(Some(until)),
            agent: Some(None),
            ..Default::default()
        }))));
        fx.push(Effect::Emit(RunnerEvent::Waiting {
            until,
            reason: reason.to_string(),
        }));
        if fresh {
            fx.push(Effect::Notify {
                event: NotifyEvent::Waiting,
                message: format!("rate limited until {until:.0}: {reason}"),
            });
        }
        // The sleep starts from the machine's view of now, which is the attempt's end.
        self.phase = Phase::Sleeping {
            until,
            then,
            wait: true,
        };
        fx.push(Effect::SleepUntil(self.wake_at(until)));
    }

    fn sleep(&mut self, until: Timestamp, then: Resume, wait: bool, fx: &mut Vec<Effect>) {
        self.phase = Phase::Sleeping { until, then, wait };
        fx.push(Effect::SleepUntil(self.wake_at(until)));
    }

    /// A sleep never outlasts `--max-runtime`.
    fn wake_at(&self, until: Timestamp) -> Timestamp {
        match self.deadline {
            Some(d) => until.min(d),
            None => until,
        }
    }

    fn close_attempt(&mut self, r: &AttemptReport, mut v: AttemptVerdict, fx: &mut Vec<Effect>) {
        let (ticks, note) = self.closing.take().unwrap_or_default();
        v.note = match (note, v.note) {
            (Some(a), Some(b)) => Some(format!("{a}; {b}")),
            (a, b) => a.or(b),
        };
        fx.push(Effect::Emit(RunnerEvent::AttemptFinished {
            iteration: self.iteration,
            attempt: self.attempt,
            outcome: v.outcome,
            exit_code: r.exit_code,
            signal: r.signal.clone(),
            duration_ms: r.duration_ms,
            error: r.classified.error.clone(),
            ticked: v.ticked,
            committed: v.committed,
            resumed: r.resumed.clone(),
            note: v.note.clone(),
            usage: r.usage.clone(),
        }));
        fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
            tasks: Some(r.after.counts),
            last_outcome: Some(Some(v.outcome)),
            last_commit: if v.committed {
                Some(r.after.head.clone())
            } else {
                None
            },
            agent: Some(None),
            spend: Some(self.run_spent),
            ..Default::default()
        }))));
        if !ticks.is_empty() {
            fx.push(Effect::Record(Record::Ticks(ticks)));
        }
        fx.push(Effect::Record(Record::Attempt(v)));
    }

    /// The iteration is over: its progress feeds the circuit breaker, its retries are done.
    fn iteration_finished(&mut self, ticked: usize, committed: bool, fx: &mut Vec<Effect>) {
        self.streaks.record(ticked, committed);
        self.retry.reset();
        fx.push(Effect::Record(Record::Runner(Box::new(RunnerUpdate {
            retry_count: Some(0),
            ..Default::default()
        }))));
        fx.push(Effect::Emit(RunnerEvent::IterationFinished {
            iteration: self.iteration,
            tasks: self.last.counts,
            ticked,
            committed,
            no_commit_streak: self.streaks.no_commit,
            no_progress_streak: self.streaks.no_progress,
            spend: self.iteration_spent,
        }));
    }

    fn max_runtime_end(&self) -> RunEnd {
        RunEnd::MaxRuntime {
            limit: self.s.max_runtime.unwrap_or_default(),
        }
    }

    /// Ends the run, with the notification its end calls for.
    fn finish(&mut self, end: RunEnd, fx: &mut Vec<Effect>) {
        self.phase = Phase::Done;
        let event = match &end {
            RunEnd::Completed => Some(NotifyEvent::Completed),
            RunEnd::CircuitOpen { .. } => Some(NotifyEvent::CircuitOpen),
            RunEnd::RetriesExhausted { .. } | RunEnd::NonRetryable { .. } => {
                Some(NotifyEvent::Failed)
            }
            RunEnd::Budget { .. } => Some(NotifyEvent::Budget),
            RunEnd::MaxIterations { .. } | RunEnd::MaxRuntime { .. } | RunEnd::Stopped { .. } => {
                None
            }
        };
        if let Some(event) = event {
            fx.push(Effect::Notify {
                event,
                message: end.reason(),
            });
        }
        fx.push(Effect::Finish(end));
    }
}

/// An argv as one would type it: words with spaces or quotes are single-quoted.
pub fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if !a.is_empty()
                && a.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c))
            {
                a.clone()
            } else {
                format!("'{}'", a.replace('\'', "'\\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// "task 2", "tasks 2, 3".
fn task_list(ids: &[String]) -> String {
    match ids {
        [one] => format!("task {one}"),
        _ => format!("tasks {}", ids.join(", ")),
    }
}

/// What the next prompt says about a check that rejected ticks (`{verify_failure}`).
fn verify_failure_text(check: &Check, command: &str, rejected: &[&NewTick]) -> String {
    let tasks = rejected
        .iter()
        .map(|t| match &t.title {
            Some(title) => format!("{} ({title})", t.task_id),
            None => t.task_id.clone(),
        })
        .collect::<Vec<_>>()
        .join(", ");
    let mut out = format!(
        "## The last check failed\n\
         After task(s) {tasks} were ticked, swr ran `{command}` in the project and it failed \
         ({}). They are back to in progress in tasks.md: make the check pass, then tick them and \
         commit again.\n",
        check.describe_end()
    );
    if !check.output_tail.trim().is_empty() {
        out.push_str("Its last lines of output:\n");
        for line in check.output_tail.lines() {
            out.push_str("    ");
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

/// What the user can do about a failure no retry fixes.
fn fix_hint(outcome: Outcome, kind: ProviderKind) -> Option<&'static str> {
    use ProviderKind as K;
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

/// `14:05` in the machine's time zone: how people read a wait's end.
/// Why a runner waits for its account's rate-limit clock, for `swr status` and the events.
pub(crate) fn shared_wait_reason(provider: &str, w: &PersistedWait) -> String {
    format!(
        "shared rate limit ({provider}, until {}): {}",
        local_hm(w.until),
        w.reason
    )
}

fn local_hm(t: Timestamp) -> String {
    t.to_zoned(jiff::tz::TimeZone::system())
        .strftime("%H:%M")
        .to_string()
}

/// `t + d`, saturating at the end of time: no duration a user can configure panics here.
pub(crate) fn later(t: Timestamp, d: Duration) -> Timestamp {
    let d = jiff::SignedDuration::try_from(d).unwrap_or(jiff::SignedDuration::MAX);
    t.saturating_add(d).unwrap_or(Timestamp::MAX)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A rate-limit message for people: claude's `usage limit reached|<epoch>` carries the reset
/// time as a machine suffix, which the wait's own time already says.
pub(crate) fn readable_limit(error: Option<&str>) -> String {
    let text = error.unwrap_or("rate limited").trim();
    match text.rsplit_once('|') {
        Some((head, epoch)) if !epoch.is_empty() && epoch.chars().all(|c| c.is_ascii_digit()) => {
            head.trim().to_string()
        }
        _ => text.to_string(),
    }
}
