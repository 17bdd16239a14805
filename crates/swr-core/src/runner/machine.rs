//! The runner's rules as a pure state machine: `step(input) -> effects`.
//!
//! It owns every decision of a run: when an iteration starts and ends, how an attempt is judged
//! (its outcome *and* its progress), retries and their backoff, rate-limit waits, session
//! resume, the circuit breaker, blocked-only specs, `--max-iterations` and `--max-runtime`.
//! It performs no I/O and reads no clock: the time comes with each [`Input`], randomness from
//! the seeded RNG it is built with, so every rule is unit-tested with a fake clock and
//! scripted attempt results (see `machine_tests.rs`).
//!
//! It must not touch processes, files, the store or the terminal: the driver
//! (`runner::driver`) performs the [`Effect`]s and feeds what happened back as [`Input`]s.

use std::collections::BTreeSet;
use std::time::Duration;

use jiff::Timestamp;
use rand::rngs::StdRng;

use crate::event::{GiveUp, RunEnd, RunnerEvent, StopCause};
use crate::outcome::Outcome;
use crate::provider::ProviderKind;
use crate::retry::{self, Decision, RetryPolicy, RetryState};
use crate::spec::TaskCounts;
use crate::store::{RunnerStatus, RunnerUpdate};

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
}

/// A rate-limit wait recorded by an earlier run of this spec.
#[derive(Debug, Clone, PartialEq)]
pub struct PersistedWait {
    pub until: Timestamp,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// The run begins: tasks.md and HEAD as they are, and a wait left by an earlier run.
    Started {
        now: Timestamp,
        observed: Observation,
        wait: Option<PersistedWait>,
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
    /// The answer to [`Effect::SleepUntil`] when the time came.
    TimerFired { now: Timestamp },
    /// A stop arrived while no attempt ran (during a sleep, before a spawn, while queued for an
    /// agent slot). A stop during an attempt reaches the machine as that attempt's `stopped`
    /// outcome. `MaxRuntime` is the run's own limit.
    StopRequested { now: Timestamp, cause: StopCause },
    /// The answer to [`Effect::TakeRetry`].
    RetryGrant { now: Timestamp, grant: RetryGrant },
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
        }
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
                },
            ) => {
                let from = self.s.clock_started.unwrap_or(now);
                self.deadline = self.s.max_runtime.map(|d| later(from, d));
                self.started(now, observed, wait, &mut fx);
            }
            (Phase::Observing(then), Input::Observed { now, observed }) => {
                self.before_attempt(now, observed, then, &mut fx);
            }
            (Phase::Granting, Input::RetryGrant { now, grant }) => {
                self.retry_granted(now, grant, &mut fx);
            }
            (Phase::Attempting, Input::AttemptEnded { now, report }) => {
                self.attempt_ended(now, *report, &mut fx);
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
        self.phase = Phase::Attempting;
        fx.push(Effect::Spawn(AttemptPlan {
            iteration: self.iteration,
            attempt: self.attempt,
            resume,
        }));
    }

    /// Waits for the rate-limit clock of this runner's account.
    fn shared_wait(&mut self, w: PersistedWait, then: Resume, fx: &mut Vec<Effect>) {
        let reason = format!(
            "shared rate limit ({}, until {}): {}",
            self.s.provider_name,
            local_hm(w.until),
            w.reason
        );
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

    fn attempt_ended(&mut self, now: Timestamp, r: AttemptReport, fx: &mut Vec<Effect>) {
        let j = self.judge(&r);
        if j.class == Outcome::Success {
            fx.push(Effect::Record(Record::ClearAccountWait));
        }
        // The work decides first: a complete spec is done however the last attempt ended.
        if r.after.counts.is_complete() {
            self.close_attempt(&r, j.verdict, fx);
            self.iteration_finished(j.ticked, j.committed, fx);
            return self.finish(RunEnd::Completed, fx);
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
        if j.class == Outcome::Stopped {
            return self.stopped(&r, j, fx);
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
    /// picks the session the next attempt may continue.
    fn judge(&mut self, r: &AttemptReport) -> Judged {
        let before = std::mem::replace(&mut self.last, r.after.clone());
        let ticked = r.after.counts.done.saturating_sub(before.counts.done);
        let committed = r.after.head.is_some() && r.after.head != before.head;
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

    fn close_attempt(&mut self, r: &AttemptReport, v: AttemptVerdict, fx: &mut Vec<Effect>) {
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
            ..Default::default()
        }))));
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
        }));
    }

    fn max_runtime_end(&self) -> RunEnd {
        RunEnd::MaxRuntime {
            limit: self.s.max_runtime.unwrap_or_default(),
        }
    }

    fn finish(&mut self, end: RunEnd, fx: &mut Vec<Effect>) {
        self.phase = Phase::Done;
        fx.push(Effect::Finish(end));
    }
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
