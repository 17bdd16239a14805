//! The runner's rules, tested on the pure machine: a fake clock, scripted attempt results, no
//! process and no file.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jiff::Timestamp;
use rand::SeedableRng;

use super::classify::Classified;
use super::machine::*;
use crate::cost::{Totals, Usage};
use crate::event::{BudgetKind, RunEnd, RunnerEvent, StopCause};
use crate::outcome::Outcome;
use crate::provider::{ErrorClass, ProviderKind};
use crate::retry::{Jitter, RetryPolicy};
use crate::spec::TaskCounts;

fn t0() -> Timestamp {
    "2026-11-30T12:00:00Z".parse().unwrap()
}

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn at(s: u64) -> Timestamp {
    later(t0(), secs(s))
}

fn settings() -> LoopSettings {
    LoopSettings {
        policy: RetryPolicy {
            jitter: Jitter::None,
            rate_limit_jitter: Duration::ZERO,
            ..RetryPolicy::default()
        },
        max_iterations: None,
        max_runtime: None,
        no_commit_limit: 3,
        no_progress_limit: 6,
        resume: true,
        ignore_wait: false,
        clock_started: None,
        provider: ProviderKind::Claude,
        provider_name: "claude".into(),
        retry_budget: 0,
        tasks_path: "tasks.md".into(),
        tasks_in_repo: Some(TASKS.into()),
        budgets: Budgets::default(),
    }
}

const TASKS: &str = ".spec-workflow/specs/s/tasks.md";

fn counts(done: usize, total: usize) -> TaskCounts {
    TaskCounts {
        total,
        done,
        pending: total - done,
        ..TaskCounts::default()
    }
}

fn obs(done: usize, total: usize, head: &str) -> Observation {
    Observation {
        counts: counts(done, total),
        head: Some(head.to_string()),
        next_task: (done < total).then(|| format!("{} Task", done + 1)),
        account_wait: None,
        optional: 0,
        done: (1..=done)
            .map(|i| (i.to_string(), format!("Task {i}")))
            .collect(),
    }
}

fn classified(outcome: Outcome) -> Classified {
    Classified {
        outcome,
        error: (outcome != Outcome::Success).then(|| format!("{outcome} happened")),
        reset_at: None,
        class: None,
    }
}

fn ended(outcome: Outcome, after: Observation) -> AttemptReport {
    AttemptReport {
        classified: classified(outcome),
        session_id: Some("s1".into()),
        resumed: None,
        stopped_by: None,
        exit_code: Some(if outcome == Outcome::Success { 0 } else { 1 }),
        signal: None,
        duration_ms: 1000,
        after,
        usage: Usage::default(),
        changed: None,
    }
}

/// A machine and its fake clock.
struct Harness {
    m: Machine,
    now: Timestamp,
    log: Vec<Effect>,
}

impl Harness {
    fn new(s: LoopSettings) -> Harness {
        Harness {
            m: Machine::new(s, rand::rngs::StdRng::seed_from_u64(7)),
            now: t0(),
            log: Vec::new(),
        }
    }

    fn step(&mut self, input: Input) -> Vec<Effect> {
        let fx = self.m.step(input);
        self.log.extend(fx.iter().cloned());
        fx
    }

    fn start(&mut self, observed: Observation) -> Vec<Effect> {
        let now = self.now;
        self.step(Input::Started {
            now,
            observed,
            wait: None,
            spec_spent: Totals::default(),
        })
    }

    /// The attempt ends; ticks it made are checked by no command (none is configured).
    fn end(&mut self, report: AttemptReport) -> Vec<Effect> {
        let mut fx = self.end_raw(report);
        if verify_of(&fx).is_some() {
            fx.extend(self.verified(Vec::new()));
        }
        fx
    }

    fn end_raw(&mut self, report: AttemptReport) -> Vec<Effect> {
        self.now = later(self.now, secs(1));
        let now = self.now;
        self.step(Input::AttemptEnded {
            now,
            report: Box::new(report),
        })
    }

    fn verified(&mut self, checks: Vec<CheckRun>) -> Vec<Effect> {
        let now = self.now;
        self.step(Input::Verified { now, checks })
    }

    /// Lets the sleep the last step asked for pass, and answers the observation after it.
    fn sleep_through(&mut self, fx: &[Effect], observed: Observation) -> Vec<Effect> {
        let until = sleep_of(fx).expect("a sleep");
        self.now = until;
        let wake = self.step(Input::TimerFired { now: until });
        if wake.iter().any(|e| matches!(e, Effect::Observe)) {
            let now = self.now;
            let mut out = wake;
            out.extend(self.step(Input::Observed { now, observed }));
            out
        } else {
            wake
        }
    }

    fn attempts_recorded(&self) -> Vec<AttemptVerdict> {
        self.log
            .iter()
            .filter_map(|e| match e {
                Effect::Record(Record::Attempt(v)) => Some(v.clone()),
                _ => None,
            })
            .collect()
    }
}

fn spawn_of(fx: &[Effect]) -> Option<AttemptPlan> {
    fx.iter().find_map(|e| match e {
        Effect::Spawn(p) => Some(p.clone()),
        _ => None,
    })
}

fn finish_of(fx: &[Effect]) -> Option<RunEnd> {
    fx.iter().find_map(|e| match e {
        Effect::Finish(end) => Some(end.clone()),
        _ => None,
    })
}

fn verify_of(fx: &[Effect]) -> Option<Vec<String>> {
    fx.iter().find_map(|e| match e {
        Effect::Verify { tasks, .. } => Some(tasks.clone()),
        _ => None,
    })
}

fn sleep_of(fx: &[Effect]) -> Option<Timestamp> {
    fx.iter().find_map(|e| match e {
        Effect::SleepUntil(t) => Some(*t),
        _ => None,
    })
}

fn plan(iteration: u32, attempt: u32, resume: Option<&str>) -> AttemptPlan {
    AttemptPlan {
        iteration,
        attempt,
        resume: resume.map(str::to_string),
        verify_failure: None,
    }
}

#[test]
fn a_complete_spec_ends_at_once_without_an_attempt() {
    let mut h = Harness::new(settings());
    let fx = h.start(obs(3, 3, "a"));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
    assert_eq!(spawn_of(&fx), None);
}

#[test]
fn no_tasks_and_blocked_only_specs_end_without_an_attempt() {
    let mut h = Harness::new(settings());
    let fx = h.start(obs(0, 0, "a"));
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::NonRetryable { outcome: Outcome::Usage, ref reason }) if reason.contains("no tasks")
    ));
    let mut h = Harness::new(settings());
    let blocked = Observation {
        counts: TaskCounts {
            total: 2,
            done: 1,
            blocked: 1,
            ..TaskCounts::default()
        },
        head: None,
        next_task: None,
        account_wait: None,
        optional: 0,
        done: [("1".to_string(), "Task 1".to_string())]
            .into_iter()
            .collect(),
    };
    let fx = h.start(blocked);
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::NonRetryable { outcome: Outcome::NoProgress, ref reason }) if reason.contains("blocked")
    ));
}

#[test]
fn each_clean_attempt_with_a_tick_starts_the_next_iteration_until_done() {
    let mut h = Harness::new(settings());
    assert_eq!(spawn_of(&h.start(obs(0, 2, "a"))), Some(plan(1, 1, None)));
    let fx = h.end(ended(Outcome::Success, obs(1, 2, "b")));
    assert_eq!(spawn_of(&fx), Some(plan(2, 1, None)));
    let fx = h.end(ended(Outcome::Success, obs(2, 2, "c")));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
    let v = h.attempts_recorded();
    assert_eq!(v.len(), 2, "one verdict per attempt, written once");
    assert!(
        v.iter()
            .all(|v| v.outcome == Outcome::Success && v.ticked == 1 && v.committed)
    );
}

#[test]
fn progress_counts_however_the_attempt_ended() {
    // Six tasks, an agent that ticks one per call and then exits 1: every call is progress,
    // no retry is used, and the run completes.
    let mut h = Harness::new(settings());
    let mut fx = h.start(obs(0, 6, "h0"));
    for done in 1..=6 {
        let p = spawn_of(&fx).expect("an attempt");
        assert_eq!(p, plan(done as u32, 1, Some("s1")).with_resume_if(done > 1));
        fx = h.end(ended(Outcome::Crash, obs(done, 6, &format!("h{done}"))));
        assert_eq!(sleep_of(&fx), None, "no backoff after a productive crash");
    }
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
    let v = h.attempts_recorded();
    assert_eq!(v.len(), 6);
    assert!(
        v.iter()
            .all(|v| v.outcome == Outcome::Crash && v.ticked == 1)
    );
    // The last one completed the spec; the others say why no retry followed.
    assert!(v[0].note.as_deref().unwrap().contains("made progress"));
}

trait WithResume {
    fn with_resume_if(self, yes: bool) -> Self;
}

impl WithResume for AttemptPlan {
    fn with_resume_if(mut self, yes: bool) -> Self {
        if !yes {
            self.resume = None;
        }
        self
    }
}

#[test]
fn a_failure_without_progress_is_retried_with_backoff_then_given_up() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let mut delays = Vec::new();
    let mut fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    for attempt in 2..=4 {
        let until = sleep_of(&fx).expect("a backoff");
        delays.push(until.duration_since(h.now).as_secs());
        let events: Vec<_> = fx
            .iter()
            .filter_map(|e| match e {
                Effect::Emit(RunnerEvent::RetryScheduled { retry, resume, .. }) => {
                    Some((*retry, resume.clone()))
                }
                _ => None,
            })
            .collect();
        assert_eq!(events, vec![(attempt - 1, Some("s1".to_string()))]);
        let wake = h.sleep_through(&fx, obs(0, 2, "a"));
        assert_eq!(spawn_of(&wake), Some(plan(1, attempt, Some("s1"))));
        fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    }
    assert_eq!(delays, vec![5, 10, 20]);
    match finish_of(&fx) {
        Some(RunEnd::RetriesExhausted { reason, detail }) => {
            assert!(
                reason.contains("retries exhausted after 3 retries"),
                "{reason}"
            );
            assert!(reason.contains("(crash happened)"), "{reason}");
            assert_eq!(detail.last_outcome, Outcome::Crash);
            assert_eq!(detail.retries, 3);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_complete_spec_wins_over_a_failed_last_attempt() {
    let mut h = Harness::new(settings());
    h.start(obs(1, 2, "a"));
    let fx = h.end(ended(Outcome::Signal, obs(2, 2, "b")));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
    // Even a non-retryable failure: the work is done.
    let mut h = Harness::new(settings());
    h.start(obs(1, 2, "a"));
    let fx = h.end(ended(Outcome::Auth, obs(2, 2, "b")));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
}

#[test]
fn the_retry_counter_resets_after_a_productive_attempt() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 3, "a")));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
    // Productive crash: the next attempt is iteration 2, attempt 1, retries back at 0.
    let fx = h.end(ended(Outcome::Crash, obs(1, 3, "b")));
    assert_eq!(
        spawn_of(&fx).map(|p| (p.iteration, p.attempt)),
        Some((2, 1))
    );
    let fx = h.end(ended(Outcome::Crash, obs(1, 3, "b")));
    let until = sleep_of(&fx).unwrap();
    assert_eq!(
        until.duration_since(h.now).as_secs(),
        5,
        "first retry of a new iteration"
    );
}

#[test]
fn clean_attempts_without_progress_open_the_circuit_breaker() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let mut fx = Vec::new();
    for _ in 0..3 {
        fx = h.end(ended(Outcome::Success, obs(0, 2, "a")));
    }
    assert!(
        matches!(finish_of(&fx), Some(RunEnd::CircuitOpen { ref reason }) if reason.contains("no_commit_limit 3"))
    );
    assert!(
        h.attempts_recorded()
            .iter()
            .all(|v| v.outcome == Outcome::NoProgress)
    );

    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "h0"));
    let mut fx = Vec::new();
    for i in 1..=6 {
        fx = h.end(ended(Outcome::Success, obs(0, 2, &format!("h{i}"))));
    }
    assert!(
        matches!(finish_of(&fx), Some(RunEnd::CircuitOpen { ref reason }) if reason.contains("no_progress_limit 6"))
    );
}

#[test]
fn a_rate_limit_is_waited_out_persisted_and_resumed_without_using_a_retry() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let mut r = ended(Outcome::RateLimited, obs(0, 2, "a"));
    r.classified.reset_at = Some(at(3600));
    r.classified.error = Some("Claude AI usage limit reached|1764507600".into());
    let fx = h.end(r);
    assert_eq!(sleep_of(&fx), Some(at(3600)));
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Record(Record::SetWait { until, reason }) if *until == at(3600) && reason == "Claude AI usage limit reached")));
    assert!(fx.iter().any(|e| matches!(e, Effect::Notify { .. })));
    let fx = h.sleep_through(&fx, obs(0, 2, "a"));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::ClearWait)))
    );
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
    // Still three retries left after the wait.
    let mut fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    for _ in 0..3 {
        assert!(sleep_of(&fx).is_some());
        h.sleep_through(&fx, obs(0, 2, "a"));
        fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    }
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::RetriesExhausted { .. })
    ));
}

#[test]
fn resets_already_past_get_a_growing_floor() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let mut waits = Vec::new();
    let mut fx = Vec::new();
    for _ in 0..4 {
        let mut r = ended(Outcome::RateLimited, obs(0, 2, "a"));
        r.classified.reset_at = Some(t0());
        fx = h.end(r);
        let until = sleep_of(&fx).unwrap();
        waits.push(until.duration_since(h.now).as_secs());
        h.sleep_through(&fx, obs(0, 2, "a"));
    }
    assert_eq!(waits, vec![0, 5, 10, 20]);
    let _ = fx;
}

#[test]
fn a_productive_attempt_that_hits_a_rate_limit_ends_its_iteration_and_waits() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let mut r = ended(Outcome::RateLimited, obs(1, 3, "b"));
    r.classified.reset_at = Some(at(60));
    let fx = h.end(r);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Emit(RunnerEvent::IterationFinished { ticked: 1, .. })
    )));
    let fx = h.sleep_through(&fx, obs(1, 3, "b"));
    assert_eq!(spawn_of(&fx), Some(plan(2, 1, Some("s1"))));
}

#[test]
fn sessions_resume_only_after_retryable_failures_and_when_allowed() {
    // A clean end starts the next iteration afresh.
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::Success, obs(1, 3, "b")));
    assert_eq!(spawn_of(&fx), Some(plan(2, 1, None)));

    // A context overflow never resumes.
    let mut s = settings();
    s.policy.retry_on.insert(Outcome::ContextLimit);
    let mut h = Harness::new(s);
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::ContextLimit, obs(0, 3, "a")));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, None)));

    // resume_on_retry = false (or a provider that cannot resume).
    let mut s = settings();
    s.resume = false;
    let mut h = Harness::new(s);
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::IdleTimeout, obs(0, 3, "a")));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, None)));

    // No session id reported: nothing to resume.
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let mut r = ended(Outcome::WallTimeout, obs(0, 3, "a"));
    r.session_id = None;
    let fx = h.end(r);
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, None)));
}

#[test]
fn a_rejected_resume_falls_back_to_a_fresh_session_at_once() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 3, "a")));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
    let mut r = ended(Outcome::Crash, obs(0, 3, "a"));
    r.resumed = Some("s1".into());
    r.classified.class = Some(ErrorClass::BadResume);
    r.classified.error = Some("No conversation found with session ID: s1".into());
    let fx = h.end(r);
    assert_eq!(sleep_of(&fx), None, "no backoff");
    assert_eq!(spawn_of(&fx), Some(plan(1, 3, None)));
    let note = h.attempts_recorded().last().unwrap().note.clone().unwrap();
    assert!(note.contains("could not resume session s1"), "{note}");
    // The fresh session crashes: its retry is the second, not the third.
    let mut r = ended(Outcome::Crash, obs(0, 3, "a"));
    r.session_id = Some("s2".into());
    let fx = h.end(r);
    assert!(fx.iter().any(|e| matches!(
        e,
        Effect::Emit(RunnerEvent::RetryScheduled { retry: 2, .. })
    )));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 4, Some("s2"))));
    // A session the CLI refused is never tried again, even if an agent reports it.
    let fx = h.end(ended(Outcome::Crash, obs(0, 3, "a")));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 5, None)));
}

#[test]
fn stops_end_the_run_with_their_cause() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    assert!(sleep_of(&fx).is_some());
    let now = h.now;
    let fx = h.step(Input::StopRequested {
        now,
        cause: StopCause::HangUp,
    });
    assert_eq!(
        finish_of(&fx),
        Some(RunEnd::Stopped {
            by: StopCause::HangUp
        })
    );
    // A stop during an attempt arrives as its outcome.
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let mut r = ended(Outcome::Stopped, obs(0, 2, "a"));
    r.stopped_by = Some(StopCause::User);
    let fx = h.end(r);
    assert_eq!(
        finish_of(&fx),
        Some(RunEnd::Stopped {
            by: StopCause::User
        })
    );
}

#[test]
fn max_runtime_ends_an_attempt_a_backoff_and_a_wait_at_its_time() {
    let mut s = settings();
    s.max_runtime = Some(secs(3));
    // During an attempt: the driver stops it at the deadline.
    let mut h = Harness::new(s.clone());
    h.start(obs(0, 2, "a"));
    assert_eq!(h.m.deadline(), Some(at(3)));
    let mut r = ended(Outcome::Stopped, obs(0, 2, "a"));
    r.stopped_by = Some(StopCause::MaxRuntime);
    let fx = h.end(r);
    let end = finish_of(&fx).unwrap();
    assert_eq!(end, RunEnd::MaxRuntime { limit: secs(3) });
    assert_eq!(
        end.reason(),
        "stopped after --max-runtime 3s with work left"
    );

    // During a backoff of 5 s: the sleep is cut at the deadline.
    let mut h = Harness::new(s.clone());
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    assert_eq!(sleep_of(&fx), Some(at(3)));
    let fx = h.step(Input::TimerFired { now: at(3) });
    assert_eq!(finish_of(&fx), Some(RunEnd::MaxRuntime { limit: secs(3) }));

    // During a rate-limit wait of an hour.
    let mut h = Harness::new(s);
    h.start(obs(0, 2, "a"));
    let mut r = ended(Outcome::RateLimited, obs(0, 2, "a"));
    r.classified.reset_at = Some(at(3600));
    let fx = h.end(r);
    assert_eq!(sleep_of(&fx), Some(at(3)));
    let fx = h.step(Input::TimerFired { now: at(3) });
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::ClearWait))),
        "the wait stays for the next run"
    );
    assert_eq!(finish_of(&fx), Some(RunEnd::MaxRuntime { limit: secs(3) }));
}

#[test]
fn the_max_runtime_clock_can_start_before_the_run() {
    let mut s = settings();
    s.max_runtime = Some(secs(10));
    s.clock_started = Some(
        later(t0(), Duration::ZERO)
            .checked_sub(jiff::SignedDuration::from_secs(10))
            .unwrap(),
    );
    let mut h = Harness::new(s);
    let fx = h.start(obs(0, 2, "a"));
    assert_eq!(finish_of(&fx), Some(RunEnd::MaxRuntime { limit: secs(10) }));
}

#[test]
fn max_iterations_counts_iterations_not_attempts() {
    let mut s = settings();
    s.max_iterations = Some(2);
    let mut h = Harness::new(s);
    h.start(obs(0, 5, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 5, "a")));
    let fx = h.sleep_through(&fx, obs(0, 5, "a"));
    assert_eq!(spawn_of(&fx).map(|p| p.iteration), Some(1));
    let fx = h.end(ended(Outcome::Success, obs(1, 5, "b")));
    assert_eq!(spawn_of(&fx).map(|p| p.iteration), Some(2));
    let fx = h.end(ended(Outcome::Success, obs(2, 5, "c")));
    assert_eq!(
        finish_of(&fx),
        Some(RunEnd::MaxIterations { iterations: 2 })
    );
}

#[test]
fn a_wait_left_by_an_earlier_run_is_honoured_or_ignored_on_request() {
    let wait = PersistedWait {
        until: at(600),
        reason: "usage limit".into(),
    };
    let mut h = Harness::new(settings());
    let fx = h.step(Input::Started {
        now: t0(),
        observed: obs(0, 2, "a"),
        wait: Some(wait.clone()),
        spec_spent: Totals::default(),
    });
    assert_eq!(spawn_of(&fx), None);
    assert_eq!(sleep_of(&fx), Some(at(600)));
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::Notify { .. })),
        "not a new limit: no second notification"
    );
    let fx = h.sleep_through(&fx, obs(0, 2, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 1, None)));

    let mut s = settings();
    s.ignore_wait = true;
    let mut h = Harness::new(s);
    let fx = h.step(Input::Started {
        now: t0(),
        observed: obs(0, 2, "a"),
        wait: Some(wait.clone()),
        spec_spent: Totals::default(),
    });
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::ClearWait)))
    );
    assert_eq!(spawn_of(&fx), Some(plan(1, 1, None)));

    // A wait already over is cleared.
    let mut h = Harness::new(settings());
    let fx = h.step(Input::Started {
        now: at(601),
        observed: obs(0, 2, "a"),
        wait: Some(wait),
        spec_spent: Totals::default(),
    });
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::ClearWait)))
    );
    assert!(spawn_of(&fx).is_some());
}

#[test]
fn failures_no_retry_fixes_give_up_with_a_hint() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Auth, obs(0, 2, "a")));
    match finish_of(&fx) {
        Some(RunEnd::NonRetryable { outcome, reason }) => {
            assert_eq!(outcome, Outcome::Auth);
            assert!(reason.contains("claude /login"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Even after a tick: the next attempt would fail the same way.
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::SpawnFailed, obs(1, 3, "b")));
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::NonRetryable {
            outcome: Outcome::SpawnFailed,
            ..
        })
    ));
}

#[test]
fn every_attempt_is_planned_from_tasks_as_observed_after_a_sleep() {
    // The user ticks the last task by hand during a backoff: the run completes, no attempt.
    let mut h = Harness::new(settings());
    h.start(obs(1, 2, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(1, 2, "a")));
    let fx = h.sleep_through(&fx, obs(2, 2, "a"));
    assert_eq!(spawn_of(&fx), None);
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
}

#[test]
fn inputs_after_the_end_do_nothing() {
    let mut h = Harness::new(settings());
    h.start(obs(2, 2, "a"));
    assert!(h.m.is_done());
    let fx = h.step(Input::TimerFired { now: at(1) });
    assert!(fx.is_empty());
}

#[test]
fn huge_limits_never_overflow_the_clock() {
    let mut s = settings();
    s.max_runtime = Some(Duration::from_secs(u64::MAX));
    s.policy.backoff = Duration::from_secs(u64::MAX / 4);
    s.policy.max_backoff = Duration::from_secs(u64::MAX / 4);
    let mut h = Harness::new(s);
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    assert!(sleep_of(&fx).is_some());
}

fn with_account_wait(mut o: Observation, until: Timestamp) -> Observation {
    o.account_wait = Some(PersistedWait {
        until,
        reason: "usage limit reached".into(),
    });
    o
}

#[test]
fn a_limit_another_runner_hit_is_waited_out_without_an_attempt() {
    let mut h = Harness::new(settings());
    let fx = h.start(with_account_wait(obs(0, 2, "a"), at(300)));
    assert_eq!(spawn_of(&fx), None, "no attempt of its own");
    assert_eq!(sleep_of(&fx), Some(at(300)));
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Emit(RunnerEvent::Waiting { reason, .. }) if reason.starts_with("shared rate limit (claude, until "))));
    assert!(!fx.iter().any(|e| matches!(
        e,
        Effect::Notify { .. } | Effect::Record(Record::SetWait { .. })
    )));
    // At the reset the runner observes again: the wait is over, its first attempt starts.
    let fx = h.sleep_through(&fx, obs(0, 2, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 1, None)));
    // A wait already over is ignored.
    let mut h = Harness::new(settings());
    let fx = h.start(with_account_wait(obs(0, 2, "a"), t0()));
    assert!(spawn_of(&fx).is_some());
}

#[test]
fn a_named_reset_is_shared_with_the_account_and_a_clean_attempt_clears_it() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let mut r = ended(Outcome::RateLimited, obs(0, 3, "a"));
    r.classified.reset_at = Some(at(600));
    let fx = h.end(r);
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Record(Record::SetAccountWait { reset_at, .. }) if *reset_at == at(600))));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert!(spawn_of(&fx).is_some());
    let fx = h.end(ended(Outcome::Success, obs(1, 3, "b")));
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::ClearAccountWait)))
    );
    // A limit without a named reset is not shared (swr's own guess of an hour).
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(ended(Outcome::RateLimited, obs(0, 3, "a")));
    assert!(
        !fx.iter()
            .any(|e| matches!(e, Effect::Record(Record::SetAccountWait { .. })))
    );
}

#[test]
fn retries_take_a_grant_of_the_retry_budget_and_wait_when_it_is_spent() {
    let mut s = settings();
    s.retry_budget = 2;
    let mut h = Harness::new(s);
    assert_eq!(spawn_of(&h.start(obs(0, 2, "a"))), Some(plan(1, 1, None)));
    let fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    let until = sleep_of(&fx).unwrap();
    h.now = until;
    let wake = h.step(Input::TimerFired { now: until });
    assert!(wake.iter().any(|e| matches!(e, Effect::Observe)));
    let fx = h.step(Input::Observed {
        now: until,
        observed: obs(0, 2, "a"),
    });
    assert!(fx.iter().any(|e| matches!(e, Effect::TakeRetry)), "{fx:?}");
    assert_eq!(spawn_of(&fx), None);
    // Spent: wait until a grant frees up; neither a retry nor a failure.
    let fx = h.step(Input::RetryGrant {
        now: until,
        grant: RetryGrant::Spent {
            free_at: at(1800),
            used: 2,
        },
    });
    assert_eq!(sleep_of(&fx), Some(at(1800)));
    assert!(fx.iter().any(|e| matches!(e,
        Effect::Emit(RunnerEvent::Waiting { reason, .. }) if reason.starts_with("retry budget: 2 retries"))));
    assert!(finish_of(&fx).is_none());
    h.now = at(1800);
    h.step(Input::TimerFired { now: at(1800) });
    let fx = h.step(Input::Observed {
        now: at(1800),
        observed: obs(0, 2, "a"),
    });
    assert!(fx.iter().any(|e| matches!(e, Effect::TakeRetry)));
    let fx = h.step(Input::RetryGrant {
        now: at(1800),
        grant: RetryGrant::Granted,
    });
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
    // A first attempt of an iteration is not a retry: no grant asked.
    let fx = h.end(ended(Outcome::Success, obs(1, 2, "b")));
    assert_eq!(spawn_of(&fx), Some(plan(2, 1, None)));
}

#[test]
fn a_max_runtime_while_queued_for_a_slot_ends_the_run_as_max_runtime() {
    let mut s = settings();
    s.max_runtime = Some(secs(5));
    let mut h = Harness::new(s);
    h.start(obs(0, 2, "a"));
    let fx = h.step(Input::StopRequested {
        now: at(5),
        cause: StopCause::MaxRuntime,
    });
    assert_eq!(finish_of(&fx), Some(RunEnd::MaxRuntime { limit: secs(5) }));
}

// ---------------------------------------------------------------------------------------------
// Budgets

fn costing(mut r: AttemptReport, usd: f64, tokens: u64) -> AttemptReport {
    r.usage = Usage {
        tokens: Some(crate::provider::TokenUsage {
            input: Some(tokens),
            cached_input: Some(0),
            output: Some(0),
        }),
        cost_usd: Some(usd),
        estimated: false,
        model: None,
    };
    r
}

fn budgets(max_cost_usd: Option<f64>, max_tokens: Option<u64>, spec: Option<f64>) -> LoopSettings {
    let mut s = settings();
    s.budgets = Budgets {
        max_cost_usd,
        max_tokens,
        spec_budget_usd: spec,
    };
    s
}

fn notified(fx: &[Effect]) -> Vec<crate::runner::notify::NotifyEvent> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Notify { event, .. } => Some(*event),
            _ => None,
        })
        .collect()
}

/// $0.40 an attempt against $1.00: after two ($0.80 spent, $0.20 left) the third is expected
/// to cost $0.40 and is not started.
#[test]
fn max_cost_stops_the_run_before_the_attempt_that_would_exceed_it() {
    let mut h = Harness::new(budgets(Some(1.0), None, None));
    assert!(spawn_of(&h.start(obs(0, 5, "a"))).is_some());
    let fx = h.end(costing(ended(Outcome::Success, obs(1, 5, "b")), 0.4, 100));
    assert_eq!(spawn_of(&fx), Some(plan(2, 1, None)));
    let fx = h.end(costing(ended(Outcome::Success, obs(2, 5, "c")), 0.4, 100));
    assert_eq!(
        spawn_of(&fx),
        None,
        "the third attempt would pass the budget"
    );
    let end = finish_of(&fx).unwrap();
    match &end {
        RunEnd::Budget {
            budget,
            limit,
            spent,
            expected,
        } => {
            assert_eq!(*budget, BudgetKind::MaxCostUsd);
            assert_eq!(*limit, 1.0);
            assert!((spent - 0.8).abs() < 1e-9);
            assert!((expected.unwrap() - 0.4).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
    let reason = end.reason();
    assert!(
        reason.contains("max_cost_usd") && reason.contains("$0.80") && reason.contains("$0.40"),
        "{reason}"
    );
    assert_eq!(
        notified(&fx),
        vec![crate::runner::notify::NotifyEvent::Budget]
    );
    assert_eq!(h.attempts_recorded().len(), 2);
    assert!((h.m.run_spent().cost_usd - 0.8).abs() < 1e-9);
}

/// An attempt that costs more than the whole budget: the run ends right after it, without a
/// retry or a next iteration; its verdict is written once.
#[test]
fn a_budget_used_up_by_an_attempt_ends_the_run_after_it() {
    let mut h = Harness::new(budgets(Some(1.0), None, None));
    h.start(obs(0, 5, "a"));
    let fx = h.end(costing(ended(Outcome::Crash, obs(0, 5, "a")), 1.5, 100));
    assert_eq!(sleep_of(&fx), None, "no retry after the budget is gone");
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::Budget {
            budget: BudgetKind::MaxCostUsd,
            expected: None,
            ..
        })
    ));
    assert_eq!(h.attempts_recorded().len(), 1);
    // The work still decides first: a spec completed by that attempt is completed.
    let mut h = Harness::new(budgets(Some(1.0), None, None));
    h.start(obs(1, 2, "a"));
    let fx = h.end(costing(ended(Outcome::Success, obs(2, 2, "b")), 1.5, 100));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
}

/// `max_tokens` counts input plus output of this run, and also stops before an attempt.
#[test]
fn max_tokens_stops_the_run_before_an_attempt_expected_to_pass_it() {
    let mut h = Harness::new(budgets(None, Some(2500), None));
    h.start(obs(0, 5, "a"));
    let fx = h.end(costing(ended(Outcome::Success, obs(1, 5, "b")), 0.0, 1000));
    assert!(spawn_of(&fx).is_some());
    let fx = h.end(costing(ended(Outcome::Success, obs(2, 5, "c")), 0.0, 1000));
    let end = finish_of(&fx).unwrap();
    assert!(
        matches!(
            end,
            RunEnd::Budget {
                budget: BudgetKind::MaxTokens,
                ..
            }
        ),
        "{end:?}"
    );
    assert!(end.reason().contains("max_tokens"), "{}", end.reason());
}

/// The spec's budget counts earlier runs (from the store) and this one; the expected cost is
/// the mean of every attempt of the spec so far.
#[test]
fn the_spec_budget_counts_earlier_runs() {
    let earlier = Totals {
        attempts: 10,
        priced: 10,
        cost_usd: 9.5,
        ..Totals::default()
    };
    // $0.50 left, an attempt costs $0.95 on average: nothing starts.
    let mut h = Harness::new(budgets(None, None, Some(10.0)));
    let fx = h.step(Input::Started {
        now: t0(),
        observed: obs(0, 3, "a"),
        wait: None,
        spec_spent: earlier,
    });
    assert_eq!(spawn_of(&fx), None);
    match finish_of(&fx) {
        Some(RunEnd::Budget {
            budget: BudgetKind::SpecBudgetUsd,
            spent,
            expected: Some(e),
            ..
        }) => {
            assert_eq!(spent, 9.5);
            assert!((e - 0.95).abs() < 1e-9);
        }
        other => panic!("{other:?}"),
    }
    // Already used up: it says so, and no attempt starts.
    let mut h = Harness::new(budgets(None, None, Some(9.0)));
    let fx = h.step(Input::Started {
        now: t0(),
        observed: obs(0, 3, "a"),
        wait: None,
        spec_spent: earlier,
    });
    assert!(matches!(
        finish_of(&fx),
        Some(RunEnd::Budget { expected: None, .. })
    ));
    // Room for it: the attempt runs, and this run's spend joins the spec's.
    let mut h = Harness::new(budgets(None, None, Some(20.0)));
    let fx = h.step(Input::Started {
        now: t0(),
        observed: obs(0, 3, "a"),
        wait: None,
        spec_spent: earlier,
    });
    assert!(spawn_of(&fx).is_some());
    h.end(costing(ended(Outcome::Success, obs(1, 3, "b")), 0.5, 10));
    assert!((h.m.spec_spent().cost_usd - 10.0).abs() < 1e-9);
    assert_eq!(h.m.spec_spent().attempts, 11);
}

/// With nothing to go by (no attempt of the spec reported a cost), the first attempt starts.
#[test]
fn with_no_attempt_to_go_by_the_first_one_starts() {
    let mut h = Harness::new(budgets(Some(0.01), Some(1), Some(0.01)));
    assert!(spawn_of(&h.start(obs(0, 2, "a"))).is_some());
}

#[test]
fn each_end_of_a_run_notifies_as_it_should() {
    use crate::runner::notify::NotifyEvent;
    let mut h = Harness::new(settings());
    h.start(obs(1, 2, "a"));
    let fx = h.end(ended(Outcome::Success, obs(2, 2, "b")));
    assert_eq!(notified(&fx), vec![NotifyEvent::Completed]);
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Auth, obs(0, 2, "a")));
    assert_eq!(notified(&fx), vec![NotifyEvent::Failed]);
    let mut s = settings();
    s.max_iterations = Some(1);
    let mut h = Harness::new(s);
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Success, obs(1, 2, "b")));
    assert!(notified(&fx).is_empty(), "a limit the user set is no news");
}

/// The iteration's spend goes with its end; the run's is the sum.
#[test]
fn spend_is_summed_per_iteration_and_per_run() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end(costing(ended(Outcome::Crash, obs(0, 3, "a")), 0.1, 10));
    let fx = h.sleep_through(&fx, obs(0, 3, "a"));
    assert!(spawn_of(&fx).is_some());
    let fx = h.end(costing(ended(Outcome::Success, obs(1, 3, "b")), 0.2, 20));
    let spend = fx
        .iter()
        .find_map(|e| match e {
            Effect::Emit(RunnerEvent::IterationFinished { spend, .. }) => Some(*spend),
            _ => None,
        })
        .unwrap();
    assert_eq!(spend.attempts, 2);
    assert!((spend.cost_usd - 0.3).abs() < 1e-9);
    assert_eq!(spend.input_tokens, 30);
    h.end(costing(ended(Outcome::Success, obs(2, 3, "c")), 0.5, 50));
    assert!((h.m.run_spent().cost_usd - 0.8).abs() < 1e-9);
    assert_eq!(h.m.run_spent().attempts, 3);
}

// ---------------------------------------------------------------------------------------------
// Verified ticks

fn check(command: &str, exit: i32, output: &str) -> crate::store::Check {
    crate::store::Check {
        command: command.split(' ').map(str::to_string).collect(),
        source: "config".into(),
        exit_code: Some(exit),
        signal: None,
        timed_out: false,
        duration_ms: 1200,
        output_tail: output.into(),
        log_path: None,
    }
}

fn run_of(tasks: &[&str], c: crate::store::Check) -> CheckRun {
    CheckRun {
        tasks: tasks.iter().map(|t| t.to_string()).collect(),
        check: c,
    }
}

fn ticks_recorded(fx: &[Effect]) -> Vec<crate::store::NewTick> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Record(Record::Ticks(t)) => Some(t.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

fn untick_of(fx: &[Effect]) -> Option<(Vec<String>, String)> {
    fx.iter().find_map(|e| match e {
        Effect::Untick { tasks, message } => Some((tasks.clone(), message.clone())),
        _ => None,
    })
}

/// A failing check puts the tick back, the attempt is no progress, and the next prompt says
/// which check failed and how; a later passing check accepts the tick.
#[test]
fn a_failing_check_unticks_reprompts_with_the_failure_and_a_passing_one_accepts() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let fx = h.end_raw(ended(Outcome::Success, obs(1, 2, "b")));
    assert_eq!(verify_of(&fx), Some(vec!["1".to_string()]));
    assert_eq!(spawn_of(&fx), None, "nothing goes on before the check");
    assert!(h.attempts_recorded().is_empty(), "not judged yet");

    let fx = h.verified(vec![run_of(
        &["1"],
        check(
            "cargo test",
            101,
            "test greeting ... FAILED\nassertion failed",
        ),
    )]);
    let (tasks, message) = untick_of(&fx).expect("the tick is put back");
    assert_eq!(tasks, vec!["1".to_string()]);
    assert!(
        message.contains("verify failed") && message.contains("`cargo test`"),
        "{message}"
    );
    assert!(
        fx.iter()
            .any(|e| matches!(e, Effect::Emit(RunnerEvent::Checked { passed: false, .. })))
    );

    // tasks.md after swr put it back and committed that.
    let now = h.now;
    let fx = h.step(Input::Unticked {
        now,
        observed: obs(0, 2, "swr-untick"),
    });
    let v = h.attempts_recorded();
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].outcome, Outcome::NoProgress);
    assert_eq!((v[0].ticked, v[0].committed), (0, false));
    assert!(
        v[0].note
            .as_deref()
            .unwrap()
            .contains("verify `cargo test` failed")
    );
    let rejected = ticks_recorded(&fx);
    assert_eq!(rejected.len(), 1);
    assert!(!rejected[0].accepted);
    assert_eq!(rejected[0].check.as_ref().unwrap().exit_code, Some(101));
    assert_eq!(
        rejected[0].head.as_deref(),
        Some("b"),
        "checked against the agent's HEAD"
    );

    let p = spawn_of(&fx).expect("the next attempt");
    let failure = p.verify_failure.expect("the prompt hears of the failure");
    assert!(
        failure.contains("`cargo test`") && failure.contains("exit 101"),
        "{failure}"
    );
    assert!(failure.contains("    assertion failed"), "{failure}");
    assert!(failure.contains("1 (Task 1)"), "{failure}");

    // The retry ticks again and the check passes: accepted, the run completes.
    let fx = h.end_raw(ended(Outcome::Success, obs(1, 2, "c")));
    assert_eq!(verify_of(&fx), Some(vec!["1".to_string()]));
    let fx = h.verified(vec![run_of(&["1"], check("cargo test", 0, "ok"))]);
    assert_eq!(untick_of(&fx), None);
    let accepted = ticks_recorded(&fx);
    assert!(accepted[0].accepted);
    let p = spawn_of(&fx).expect("task 2");
    assert_eq!(
        p.verify_failure, None,
        "a tick stands: the failure is old news"
    );
    let v = h.attempts_recorded();
    assert_eq!((v[1].outcome, v[1].ticked), (Outcome::Success, 1));
    let fx = h.end(ended(Outcome::Success, obs(2, 2, "d")));
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
}

/// Three attempts whose ticks all fail their check add to the no-commit streak, whatever they
/// committed: the circuit breaker opens.
#[test]
fn rejected_ticks_feed_the_circuit_breaker() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "h0"));
    let mut fx = Vec::new();
    for i in 1..=3 {
        h.end_raw(ended(Outcome::Success, obs(1, 2, &format!("agent{i}"))));
        h.verified(vec![run_of(&["1"], check("make check", 2, ""))]);
        let now = h.now;
        fx = h.step(Input::Unticked {
            now,
            observed: obs(0, 2, &format!("swr{i}")),
        });
    }
    assert!(
        matches!(finish_of(&fx), Some(RunEnd::CircuitOpen { ref reason }) if reason.contains("no_commit_limit")),
        "{fx:?}"
    );
}

/// Of two ticks, the one whose check fails goes back; the other (no check for it) stands,
/// and the attempt is progress.
#[test]
fn only_the_ticks_whose_check_failed_go_back() {
    let mut h = Harness::new(settings());
    h.start(obs(0, 3, "a"));
    let fx = h.end_raw(ended(Outcome::Success, obs(2, 3, "b")));
    assert_eq!(verify_of(&fx), Some(vec!["1".to_string(), "2".to_string()]));
    let fx = h.verified(vec![run_of(&["1"], check("make one", 1, "no"))]);
    assert_eq!(untick_of(&fx).unwrap().0, vec!["1".to_string()]);
    let mut after = obs(0, 3, "swr");
    after.counts = counts(1, 3);
    after.done = [("2".to_string(), "Task 2".to_string())]
        .into_iter()
        .collect();
    let now = h.now;
    let fx = h.step(Input::Unticked {
        now,
        observed: after,
    });
    let v = h.attempts_recorded();
    assert_eq!((v[0].outcome, v[0].ticked), (Outcome::Success, 1));
    let ticks = ticks_recorded(&fx);
    assert_eq!(
        ticks
            .iter()
            .map(|t| (t.task_id.as_str(), t.accepted, t.check.is_some()))
            .collect::<Vec<_>>(),
        vec![("1", false, true), ("2", true, false)]
    );
    let failure = spawn_of(&fx).unwrap().verify_failure.unwrap();
    assert!(
        failure.contains("`make one`") && failure.contains("1 (Task 1)"),
        "{failure}"
    );
    assert!(!failure.contains("2 (Task 2)"), "{failure}");
}

/// A tick whose attempt changed nothing but tasks.md is flagged empty, with or without a
/// check; unknown outside git.
#[test]
fn a_tick_with_nothing_but_tasks_md_changed_is_flagged_empty() {
    let cases: [(Option<Vec<&str>>, Option<bool>); 4] = [
        (Some(vec![TASKS]), Some(true)),
        (Some(vec![]), Some(true)),
        (Some(vec![TASKS, "src/greet.rs"]), Some(false)),
        (None, None),
    ];
    for (changed, want) in cases {
        let mut h = Harness::new(settings());
        h.start(obs(0, 2, "a"));
        let mut r = ended(Outcome::Success, obs(1, 2, "b"));
        r.changed = changed
            .clone()
            .map(|c| c.into_iter().map(str::to_string).collect());
        let fx = h.end(r);
        let ticks = ticks_recorded(&fx);
        assert_eq!(ticks.len(), 1);
        assert_eq!(ticks[0].empty, want, "{changed:?}");
        assert!(ticks[0].accepted, "flagged, not rejected");
        let warned = fx.iter().any(|e| {
            matches!(
                e,
                Effect::Emit(RunnerEvent::Warning { message }) if message.contains("flagged empty")
            )
        });
        assert_eq!(warned, want == Some(true));
    }
}

/// A complete spec is judged after its last ticks are checked: a failing check means it is not
/// complete.
#[test]
fn the_last_tick_is_checked_before_the_spec_counts_as_complete() {
    let mut h = Harness::new(settings());
    h.start(obs(1, 2, "a"));
    let fx = h.end_raw(ended(Outcome::Success, obs(2, 2, "b")));
    assert_eq!(finish_of(&fx), None);
    h.verified(vec![run_of(&["2"], check("make", 1, ""))]);
    let now = h.now;
    let fx = h.step(Input::Unticked {
        now,
        observed: obs(1, 2, "swr"),
    });
    assert_eq!(finish_of(&fx), None);
    assert!(spawn_of(&fx).is_some());
}

#[test]
fn a_spec_with_only_optional_tasks_left_out_is_complete() {
    let mut h = Harness::new(settings());
    let mut o = obs(0, 0, "a");
    o.optional = 2;
    let fx = h.start(o);
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));
}

#[test]
fn after_waiting_for_a_slot_the_machine_decides_again_from_a_fresh_look() {
    // The spec was finished by hand while the runner stood in line: no attempt.
    let mut h = Harness::new(settings());
    assert_eq!(spawn_of(&h.start(obs(0, 2, "a"))), Some(plan(1, 1, None)));
    let fx = h.step(Input::Deferred {
        now: at(30),
        observed: obs(2, 2, "a"),
    });
    assert_eq!(spawn_of(&fx), None);
    assert_eq!(finish_of(&fx), Some(RunEnd::Completed));

    // A retry planned to resume s1 is planned again with the same number and session.
    let mut h = Harness::new(settings());
    h.start(obs(0, 2, "a"));
    let fx = h.end(ended(Outcome::Crash, obs(0, 2, "a")));
    let fx = h.sleep_through(&fx, obs(0, 2, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
    let fx = h.step(Input::Deferred {
        now: at(60),
        observed: obs(0, 2, "a"),
    });
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));

    // A limit another runner hit meanwhile: wait it out, then the same attempt.
    let fx = h.step(Input::Deferred {
        now: at(61),
        observed: with_account_wait(obs(0, 2, "a"), at(300)),
    });
    assert_eq!(spawn_of(&fx), None);
    assert_eq!(sleep_of(&fx), Some(at(300)));
    let fx = h.sleep_through(&fx, obs(0, 2, "a"));
    assert_eq!(spawn_of(&fx), Some(plan(1, 2, Some("s1"))));
}
