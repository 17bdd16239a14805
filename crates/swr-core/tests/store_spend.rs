//! Tokens, cost and the evidence of ticks in the store: what an attempt records, the spend of a
//! spec across runs (kept when runners are pruned), sums per task, spec, runner, iteration and
//! day, and the snapshot `swr metrics` exports.
#![allow(clippy::unwrap_used)]

use std::path::Path;

use jiff::{SignedDuration, Timestamp};
use swr_core::outcome::Outcome;
use swr_core::provider::TokenUsage;
use swr_core::spec::TaskCounts;
use swr_core::store::*;

fn at(minutes: i64) -> Timestamp {
    let t0: Timestamp = "2026-01-01T23:00:00Z".parse().unwrap();
    t0 + SignedDuration::from_mins(minutes)
}

fn runner(store: &Store, id: &str, spec: &str, provider: &str) -> RunnerId {
    let rid: RunnerId = id.parse().unwrap();
    store
        .create_runner(&NewRunner {
            runner_id: rid.clone(),
            project: "/p".into(),
            spec: spec.into(),
            provider: provider.into(),
            model: None,
            pid: 1,
            pid_start_time: None,
            boot_id: None,
            max_retries: 3,
            tasks: TaskCounts::default(),
            worktree: None,
        })
        .unwrap();
    rid
}

struct A {
    iteration: u32,
    minute: i64,
    outcome: Outcome,
    cost: Option<f64>,
    estimated: bool,
    tokens: Option<(u64, u64, u64)>,
    ticks: Vec<(&'static str, bool, Option<bool>)>,
    delay_ms: Option<u64>,
}

fn a(iteration: u32, minute: i64, outcome: Outcome) -> A {
    A {
        iteration,
        minute,
        outcome,
        cost: None,
        estimated: false,
        tokens: None,
        ticks: Vec::new(),
        delay_ms: None,
    }
}

fn record(store: &Store, rid: &RunnerId, attempt: u32, x: &A) -> i64 {
    let aid = store
        .start_attempt(&NewAttempt {
            runner_id: rid.clone(),
            iteration: x.iteration,
            attempt,
            started_at: at(x.minute),
            log_path: format!("/logs/{rid}-{attempt}.log").into(),
            resumed_session: None,
        })
        .unwrap();
    let mut end = AttemptEnd::new(at(x.minute + 1), x.outcome);
    end.cost_usd = x.cost;
    end.cost_estimated = x.estimated;
    end.tokens = x.tokens.map(|(i, c, o)| TokenUsage {
        input: Some(i),
        cached_input: Some(c),
        output: Some(o),
    });
    end.model = Some("m".into());
    end.delay_before_next_ms = x.delay_ms;
    let ticks: Vec<NewTick> = x
        .ticks
        .iter()
        .map(|(id, accepted, empty)| NewTick {
            task_id: id.to_string(),
            title: Some(format!("Task {id}")),
            head: Some("abc".into()),
            empty: *empty,
            accepted: *accepted,
            check: (!accepted).then(|| Check {
                command: vec!["cargo".into(), "test".into()],
                source: "config".into(),
                exit_code: Some(101),
                signal: None,
                timed_out: false,
                duration_ms: 2500,
                output_tail: "FAILED".into(),
                log_path: Some("/logs/v.log".into()),
            }),
        })
        .collect();
    store
        .transaction(|tx| {
            tx.add_ticks(aid, &ticks)?;
            tx.finish_attempt(aid, &end)
        })
        .unwrap();
    aid
}

fn close(x: f64, y: f64) -> bool {
    (x - y).abs() < 1e-9
}

#[test]
fn an_attempt_keeps_its_tokens_cost_and_model() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let rid = runner(&store, "r-a", "s", "codex");
    let mut x = a(1, 0, Outcome::Success);
    x.cost = Some(0.25);
    x.estimated = true;
    x.tokens = Some((1000, 800, 50));
    let aid = record(&store, &rid, 1, &x);
    let rec = store.attempt(aid).unwrap().unwrap();
    assert_eq!(rec.cost_usd, Some(0.25));
    assert_eq!(rec.cost_estimated, Some(true));
    assert_eq!(
        (rec.input_tokens, rec.cached_tokens, rec.output_tokens),
        (Some(1000), Some(800), Some(50))
    );
    assert_eq!(rec.model.as_deref(), Some("m"));
    let json = serde_json::to_value(&rec).unwrap();
    assert_eq!(json["input_tokens"], 1000);
    assert_eq!(json["cost_estimated"], true);
    // Without a cost, "estimated" means nothing: it is not set.
    let aid = record(&store, &rid, 2, &a(1, 5, Outcome::Crash));
    assert_eq!(store.attempt(aid).unwrap().unwrap().cost_estimated, None);
}

/// A spec's spend adds each attempt once (finishing it again adds nothing), and survives the
/// pruning of its runners: `spec_budget_usd` counts every run there ever was.
#[test]
fn the_spec_spend_adds_each_attempt_once_and_survives_pruning() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let r1 = runner(&store, "r-1", "s", "claude");
    let mut x = a(1, 0, Outcome::Success);
    x.cost = Some(1.5);
    x.tokens = Some((100, 10, 5));
    let aid = record(&store, &r1, 1, &x);
    record(&store, &r1, 2, &a(1, 2, Outcome::Crash));
    store
        .finish_attempt(aid, &AttemptEnd::new(at(9), Outcome::Success))
        .unwrap();
    let t = store.spec_spend(Path::new("/p"), "s").unwrap();
    assert_eq!((t.attempts, t.priced, t.metered), (2, 1, 1));
    assert!(close(t.cost_usd, 1.5));
    assert_eq!(t.tokens(), 105);
    store
        .update_runner(
            &r1,
            &RunnerUpdate {
                status: Some(RunnerStatus::Completed),
                ended_at: Some(Some(at(10))),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(store.prune(at(60)).unwrap(), 1);
    assert!(
        store
            .attempts(&AttemptFilter::default())
            .unwrap()
            .is_empty()
    );
    let r2 = runner(&store, "r-2", "s", "claude");
    let mut y = a(1, 100, Outcome::Success);
    y.cost = Some(0.5);
    record(&store, &r2, 1, &y);
    let t = store.spec_spend(Path::new("/p"), "s").unwrap();
    assert!(close(t.cost_usd, 2.0), "{t:?}");
    assert_eq!(t.attempts, 3);
    assert_eq!(
        store.spec_spend(Path::new("/p"), "other").unwrap(),
        swr_core::cost::Totals::default()
    );
}

#[test]
fn a_runner_record_carries_its_spend() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let rid = runner(&store, "r-a", "s", "claude");
    let r = store.runner(&rid).unwrap().unwrap();
    assert_eq!((r.cost_usd, r.input_tokens), (None, None));
    let mut t = swr_core::cost::Totals::default();
    t.add(&swr_core::cost::Usage {
        tokens: Some(TokenUsage {
            input: Some(10),
            cached_input: Some(4),
            output: Some(2),
        }),
        cost_usd: Some(0.3),
        estimated: true,
        model: None,
    });
    let r = store
        .update_runner(
            &rid,
            &RunnerUpdate {
                spend: Some(t),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(r.cost_usd, Some(0.3));
    assert_eq!(r.cost_estimated_usd, Some(0.3));
    assert_eq!(
        (r.input_tokens, r.cached_tokens, r.output_tokens),
        (Some(10), Some(4), Some(2))
    );
}

#[test]
fn ticks_keep_their_evidence() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let rid = runner(&store, "r-a", "s", "claude");
    let mut x = a(1, 0, Outcome::NoProgress);
    x.ticks = vec![("1", false, Some(true))];
    record(&store, &rid, 1, &x);
    let mut y = a(2, 5, Outcome::Success);
    y.ticks = vec![("1", true, Some(false)), ("2", true, None)];
    record(&store, &rid, 1, &y);
    let ticks = store.ticks(&TickFilter::default()).unwrap();
    assert_eq!(ticks.len(), 3);
    let first = &ticks[0];
    assert_eq!((first.iteration, first.attempt), (1, 1));
    assert_eq!(first.tick.task_id, "1");
    assert!(!first.tick.accepted);
    assert_eq!(first.tick.empty, Some(true));
    let c = first.tick.check.as_ref().unwrap();
    assert_eq!(c.command, vec!["cargo".to_string(), "test".to_string()]);
    assert_eq!((c.exit_code, c.duration_ms), (Some(101), 2500));
    assert!(!c.passed());
    assert_eq!(c.log_path.as_deref(), Some(Path::new("/logs/v.log")));
    assert!(ticks[1].tick.accepted && ticks[1].tick.check.is_none());
    assert_eq!(ticks[2].tick.empty, None);
    let json = serde_json::to_value(&ticks[0]).unwrap();
    assert_eq!(json["task_id"], "1");
    assert_eq!(json["check"]["exit_code"], 101);
    let only = store
        .ticks(&TickFilter {
            spec: Some("other".into()),
            ..TickFilter::default()
        })
        .unwrap();
    assert!(only.is_empty());
}

/// A known history: two specs, three runners, attempts on two days, ticks accepted and
/// rejected.
fn history(store: &Store) {
    let r1 = runner(store, "r-1", "auth", "claude");
    let mut x = a(1, 0, Outcome::Crash);
    x.cost = Some(0.1);
    x.tokens = Some((100, 0, 10));
    x.delay_ms = Some(5000);
    record(store, &r1, 1, &x);
    let mut x = a(1, 10, Outcome::Success);
    x.cost = Some(0.6);
    x.tokens = Some((600, 300, 60));
    x.ticks = vec![("1", true, Some(false)), ("2", true, Some(false))];
    record(store, &r1, 2, &x);
    let mut x = a(2, 70, Outcome::NoProgress);
    x.cost = Some(0.2);
    x.tokens = Some((200, 100, 20));
    x.ticks = vec![("3", false, Some(true))];
    record(store, &r1, 1, &x);
    let r2 = runner(store, "r-2", "api", "codex");
    let mut x = a(1, 80, Outcome::Success);
    x.cost = Some(0.4);
    x.estimated = true;
    x.tokens = Some((400, 0, 40));
    x.ticks = vec![("1", true, Some(true))];
    record(store, &r2, 1, &x);
    let mut x = a(2, 90, Outcome::RateLimited);
    x.delay_ms = Some(60_000);
    record(store, &r2, 1, &x);
}

#[test]
fn spend_sums_per_spec_day_runner_iteration_and_task() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    history(&store);

    let by = store.spend(None, SpendGroup::Spec).unwrap();
    assert!(close(by.total.cost_usd, 1.3));
    assert!(close(by.total.estimated_usd, 0.4));
    assert_eq!(
        (by.total.attempts, by.total.priced, by.total.metered),
        (5, 4, 4)
    );
    assert_eq!(by.total.input_tokens, 1300);
    let rows: Vec<(String, f64, u64)> = by
        .rows
        .iter()
        .map(|r| {
            (
                r.key.spec.clone().unwrap(),
                r.totals.cost_usd,
                r.totals.attempts,
            )
        })
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].0, "auth");
    assert!(close(rows[0].1, 0.9) && rows[0].2 == 3);
    assert_eq!(rows[1].0, "api");

    // The first day ends at minute 60 (23:00 + 60 min = midnight UTC).
    let by = store.spend(None, SpendGroup::Day).unwrap();
    let days: Vec<(&str, u64)> = by
        .rows
        .iter()
        .map(|r| (r.key.day.as_deref().unwrap(), r.totals.attempts))
        .collect();
    assert_eq!(days, vec![("2026-01-01", 2), ("2026-01-02", 3)]);

    let by = store.spend(None, SpendGroup::Runner).unwrap();
    assert_eq!(by.rows.len(), 2);
    assert_eq!(by.rows[0].key.runner_id.as_ref().unwrap().as_str(), "r-1");
    let by = store.spend(None, SpendGroup::Iteration).unwrap();
    let its: Vec<(String, u32, u64)> = by
        .rows
        .iter()
        .map(|r| {
            (
                r.key.runner_id.as_ref().unwrap().to_string(),
                r.key.iteration.unwrap(),
                r.totals.attempts,
            )
        })
        .collect();
    assert_eq!(
        its,
        vec![
            ("r-1".into(), 1, 2),
            ("r-1".into(), 2, 1),
            ("r-2".into(), 1, 1),
            ("r-2".into(), 2, 1)
        ]
    );

    // Per task: the $0.60 attempt that ticked 1 and 2 gives each $0.30; the rejected tick of
    // task 3 is no one's; the rest is unattributed.
    let by = store.spend(None, SpendGroup::Task).unwrap();
    let tasks: Vec<(String, String, f64, u64)> = by
        .rows
        .iter()
        .map(|r| {
            (
                r.key.spec.clone().unwrap(),
                r.key.task_id.clone().unwrap(),
                r.totals.cost_usd,
                r.totals.input_tokens,
            )
        })
        .collect();
    assert_eq!(tasks.len(), 3, "{tasks:?}");
    assert_eq!((tasks[0].0.as_str(), tasks[0].1.as_str()), ("auth", "1"));
    assert!(close(tasks[0].2, 0.3) && tasks[0].3 == 300);
    assert_eq!(tasks[1].1, "2");
    assert!(close(tasks[1].2, 0.3));
    assert_eq!((tasks[2].0.as_str(), tasks[2].1.as_str()), ("api", "1"));
    assert!(close(tasks[2].2, 0.4));
    assert_eq!(by.rows[0].key.title.as_deref(), Some("Task 1"));
    let un = by.unattributed.unwrap();
    assert_eq!(un.attempts, 3);
    assert!(close(un.cost_usd, 0.3));
    let attributed: f64 = by.rows.iter().map(|r| r.totals.cost_usd).sum();
    assert!(close(attributed + un.cost_usd, by.total.cost_usd));

    // `since` keeps attempts started at or after it.
    let by = store.spend(Some(at(70)), SpendGroup::Spec).unwrap();
    assert_eq!(by.total.attempts, 3);
    assert!(close(by.total.cost_usd, 0.6));
}

#[test]
fn the_metrics_snapshot_counts_what_stats_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    history(&store);
    let m = store.metrics().unwrap();
    assert_eq!(m.runners.len(), RunnerStatus::ALL.len());
    assert_eq!(
        m.runners
            .iter()
            .find(|(s, _)| *s == RunnerStatus::Running)
            .unwrap()
            .1,
        2
    );
    let mut by_outcome = std::collections::BTreeMap::new();
    for c in &m.attempts {
        *by_outcome.entry(c.outcome).or_insert(0u64) += c.count;
    }
    assert_eq!(by_outcome, store.retry_stats(None).unwrap().by_outcome);
    assert_eq!(m.retries, vec![("claude".to_string(), 1)]);
    assert_eq!(m.rate_limit_waits, vec![("codex".to_string(), 1, 60.0)]);
    let n: usize = m.attempt_seconds.iter().map(|(_, v)| v.len()).sum();
    assert_eq!(n, 5);
    assert!(
        m.attempt_seconds
            .iter()
            .all(|(_, v)| v.iter().all(|s| *s == 60.0))
    );
    assert_eq!(m.verify_seconds, vec![2.5]);
    let total = m
        .spend
        .iter()
        .fold(swr_core::cost::Totals::default(), |acc, (_, t)| {
            acc.merged(t)
        });
    assert_eq!(total, store.spend(None, SpendGroup::Spec).unwrap().total);
    assert_eq!(
        (m.ticks_accepted, m.ticks_rejected, m.ticks_empty),
        (3, 1, 2)
    );
}
