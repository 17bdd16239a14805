//! The runner's rules, tested on the pure machine: a fake clock, scripted attempt results, no
//! process and no file.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use jiff::Timestamp;
use rand::SeedableRng;

use super::classify::Classified;
use super::machine::*;
use crate::event::{RunEnd, RunnerEvent, StopCause};
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
    }
}

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
        })
    }

    fn end(&mut self, report: AttemptReport) -> Vec<Effect> {
        self.now = later(self.now, secs(1));
        let now = self.now;
        self.step(Input::AttemptEnded {
            now,
            report: Box::new(report),
        })
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
