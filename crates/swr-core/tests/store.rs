//! Integration tests of the state store, spec locks, reconciliation and the retry log, with
//! real child processes. Children are this test binary re-executed with `SWR_STORE_CHILD` set
//! (see `child_entry`), so no helper binary is needed.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use jiff::{SignedDuration, Timestamp};
use swr_core::outcome::Outcome;
use swr_core::procinfo;
use swr_core::spec::TaskCounts;
use swr_core::store::*;

const CHILD_ENV: &str = "SWR_STORE_CHILD";

fn tasks(total: usize, done: usize) -> TaskCounts {
    TaskCounts {
        total,
        done,
        in_progress: 0,
        pending: total - done,
        blocked: 0,
    }
}

fn new_runner(id: &str, project: &Path, spec: &str) -> NewRunner {
    NewRunner {
        runner_id: id.parse().unwrap(),
        project: project.to_path_buf(),
        spec: spec.to_string(),
        provider: "claude".into(),
        model: Some("sonnet".into()),
        pid: std::process::id(),
        pid_start_time: procinfo::start_time(std::process::id()),
        boot_id: procinfo::boot_id(),
        max_retries: 3,
        tasks: tasks(10, 2),
        worktree: None,
    }
}

fn t0() -> Timestamp {
    "2026-01-01T00:00:00Z".parse().unwrap()
}

fn at(minutes: i64) -> Timestamp {
    t0() + SignedDuration::from_mins(minutes)
}

fn id(s: &str) -> RunnerId {
    s.parse().unwrap()
}

// ---------------------------------------------------------------------------------------------
// Child processes

/// The body of every child process. A no-op when run as an ordinary test.
#[test]
fn child_entry() {
    let Ok(mode) = std::env::var(CHILD_ENV) else {
        return;
    };
    let arg = std::env::var("SWR_STORE_ARG").unwrap();
    match mode.as_str() {
        "hold_lock" => {
            let (dir, project, spec) = split3(&arg);
            let _lock = SpecLock::acquire(
                Path::new(dir),
                Path::new(project),
                spec,
                &id("r-child-holder"),
            )
            .unwrap();
            println!("LOCKED");
            std::thread::sleep(Duration::from_secs(120));
        }
        "hold_guard" => {
            let _guard = SpecGuard::acquire(Path::new(&arg)).unwrap();
            println!("GUARDED");
            std::thread::sleep(Duration::from_secs(120));
        }
        "write_loop" => {
            let store = Store::open(Path::new(&arg)).unwrap();
            for n in 0u64.. {
                write_unit(&store, n);
                println!("WROTE {n}");
            }
        }
        other => panic!("unknown child mode {other}"),
    }
}

fn split3(s: &str) -> (&str, &str, &str) {
    let mut it = s.split('\n');
    (it.next().unwrap(), it.next().unwrap(), it.next().unwrap())
}

/// One transaction of the kill -9 test: a runner, three attempts and an update. After any
/// kill, every runner in the store must have exactly 3 attempts and be `completed`.
fn write_unit(store: &Store, n: u64) {
    let rid = id(&format!("r-w{}-{n}", std::process::id()));
    store
        .transaction(|tx| {
            tx.create_runner(&new_runner(rid.as_str(), Path::new("/p"), "s"))?;
            for a in 1..=3 {
                let aid = tx.start_attempt(&NewAttempt {
                    runner_id: rid.clone(),
                    iteration: 1,
                    attempt: a,
                    started_at: Timestamp::now(),
                    log_path: PathBuf::from(format!("/logs/{n}-{a}.log")),
                    resumed_session: None,
                })?;
                tx.finish_attempt(
                    aid,
                    &AttemptEnd {
                        ended_at: Timestamp::now(),
                        exit_code: Some(1),
                        signal: None,
                        outcome: Outcome::Crash,
                        error: Some("x".repeat(2000)),
                        session_id: None,
                        cost_usd: Some(0.01),
                        cost_estimated: false,
                        tokens: None,
                        model: None,
                        ticked: None,
                        committed: None,
                        delay_before_next_ms: None,
                        note: None,
                        warning: None,
                    },
                )?;
            }
            tx.update_runner(
                &rid,
                &RunnerUpdate {
                    status: Some(RunnerStatus::Completed),
                    iteration: Some(1),
                    ..RunnerUpdate::default()
                },
            )?;
            Ok(())
        })
        .unwrap();
}

/// A child process of this test binary, killed (SIGKILL) and reaped when dropped so a failing
/// test leaves nothing behind. Its stdout lines arrive through a channel, so waits can time out.
struct ChildProc {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl ChildProc {
    fn spawn(mode: &str, arg: &str) -> ChildProc {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child_entry", "--exact", "--nocapture", "--test-threads=1"])
            .env(CHILD_ENV, mode)
            .env("SWR_STORE_ARG", arg)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let out = BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in out.lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        ChildProc { child, lines }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Wait until a stdout line satisfies `done`. libtest may print `test child_entry ... `
    /// before the child's first line, so match on line endings.
    fn wait_for(&self, mut done: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if done(line.trim()) => return,
                Ok(_) => {}
                Err(e) => panic!("child gave no expected output within 30 s: {e}"),
            }
        }
    }

    /// SIGKILL (no destructor or atexit handler runs in the child) and reap.
    fn kill9(&mut self) {
        let _ = self.child.kill();
        self.child.wait().unwrap();
    }
}

impl Drop for ChildProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// Runners and attempts

#[test]
fn open_creates_private_dirs_and_sets_wal_and_schema_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/state.db");
    let store = Store::open(&path).unwrap();
    assert_eq!(store.path(), path);
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(dir.path().join("a/b"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o700);
    drop(store);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let jm: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(jm, "wal");
    let v: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    // Reopening an up-to-date store is fine; a store from a newer swr is refused by name.
    drop(conn);
    Store::open(&path).unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::TooNew { found: 99, .. }), "{err}");
    assert!(err.to_string().contains("state.db"), "{err}");
}

#[test]
fn runner_round_trip_and_json_shape() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let before = Timestamp::now() - SignedDuration::from_secs(1);
    let created = store
        .create_runner(&new_runner(
            "r-20260101T000000-abcd",
            Path::new("/repos/app"),
            "auth",
        ))
        .unwrap();
    assert_eq!(created.status, RunnerStatus::Running);
    assert_eq!(created.tasks, tasks(10, 2));
    assert_eq!(created.model.as_deref(), Some("sonnet"));
    assert!(created.started_at >= before && created.started_at == created.updated_at);
    assert_eq!(created.ended_at, None);
    assert_eq!(created.agent, None);
    let read = store.runner(&created.runner_id).unwrap().unwrap();
    assert_eq!(read, created);
    assert_eq!(store.runner(&id("r-missing")).unwrap(), None);

    let json = serde_json::to_value(&created).unwrap();
    assert_eq!(json["status"], "running");
    assert_eq!(json["runner_id"], "r-20260101T000000-abcd");
    let started = json["started_at"].as_str().unwrap();
    // RFC 3339, UTC, exactly milliseconds.
    assert!(
        started.ends_with('Z') && started.len() == "2026-01-01T00:00:00.000Z".len(),
        "{started}"
    );
    assert_eq!(started.parse::<Timestamp>().unwrap(), created.started_at);
    assert!(json["ended_at"].is_null());

    // Duplicate ids are an error, not a silent overwrite.
    assert!(
        store
            .create_runner(&new_runner("r-20260101T000000-abcd", Path::new("/x"), "y"))
            .is_err()
    );
}

#[test]
fn update_patches_only_the_fields_set() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let r = store
        .create_runner(&new_runner("r-1", Path::new("/p"), "s"))
        .unwrap();
    std::thread::sleep(Duration::from_millis(5));

    let agent = AgentProcess {
        pid: 4242,
        pgid: 4242,
        start_time: Some(99),
        marker: Some("SWR_MARK=r-1".into()),
    };
    let next = at(90);
    let u = store
        .update_runner(
            &r.runner_id,
            &RunnerUpdate {
                status: Some(RunnerStatus::Waiting),
                iteration: Some(4),
                retry_count: Some(2),
                next_attempt_at: Some(Some(next)),
                agent: Some(Some(agent.clone())),
                last_outcome: Some(Some(Outcome::Crash)),
                cost_usd: Some(Some(1.25)),
                log_path: Some(Some(PathBuf::from("/logs/task_4.log"))),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(u.status, RunnerStatus::Waiting);
    assert_eq!((u.iteration, u.retry_count), (4, 2));
    assert_eq!(u.next_attempt_at, Some(next));
    assert_eq!(u.agent, Some(agent));
    assert_eq!(u.last_outcome, Some(Outcome::Crash));
    assert_eq!(u.cost_usd, Some(1.25));
    assert_eq!(u.log_path, Some(PathBuf::from("/logs/task_4.log")));
    assert!(u.updated_at > r.updated_at, "updated_at moves");
    // Untouched fields keep their values.
    assert_eq!(u.started_at, r.started_at);
    assert_eq!(u.model, r.model);
    assert_eq!(u.tasks, r.tasks);
    assert_eq!(u.ended_at, None, "waiting is not final");

    // Some(None) clears; a final status stamps ended_at once.
    let done = store
        .update_runner(
            &r.runner_id,
            &RunnerUpdate {
                status: Some(RunnerStatus::Failed),
                reason: Some(Some("retries exhausted".into())),
                next_attempt_at: Some(None),
                agent: Some(None),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(done.next_attempt_at, None);
    assert_eq!(done.agent, None);
    assert_eq!(done.reason.as_deref(), Some("retries exhausted"));
    let ended = done.ended_at.expect("final status sets ended_at");
    std::thread::sleep(Duration::from_millis(5));
    let again = store
        .update_runner(
            &r.runner_id,
            &RunnerUpdate {
                status: Some(RunnerStatus::Failed),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    assert_eq!(again.ended_at, Some(ended), "an existing end time is kept");

    let err = store
        .update_runner(&id("r-nope"), &RunnerUpdate::default())
        .unwrap_err();
    assert!(matches!(err, StoreError::RunnerNotFound { .. }), "{err}");
}

#[test]
fn runner_filters_and_latest_for_spec() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    for (rid, project, spec) in [
        ("r-a", "/p1", "s1"),
        ("r-b", "/p1", "s1"),
        ("r-c", "/p1", "s2"),
        ("r-d", "/p2", "s1"),
    ] {
        store
            .create_runner(&new_runner(rid, Path::new(project), spec))
            .unwrap();
        std::thread::sleep(Duration::from_millis(3));
    }
    store
        .update_runner(
            &id("r-b"),
            &RunnerUpdate {
                status: Some(RunnerStatus::Completed),
                ..RunnerUpdate::default()
            },
        )
        .unwrap();
    let ids = |f: RunnerFilter| -> Vec<String> {
        store
            .runners(&f)
            .unwrap()
            .into_iter()
            .map(|r| r.runner_id.to_string())
            .collect()
    };
    assert_eq!(
        ids(RunnerFilter::default()),
        ["r-d", "r-c", "r-b", "r-a"],
        "newest first"
    );
    assert_eq!(
        ids(RunnerFilter {
            active_only: true,
            ..RunnerFilter::default()
        }),
        ["r-d", "r-c", "r-a"]
    );
    assert_eq!(
        ids(RunnerFilter {
            project: Some("/p1".into()),
            spec: Some("s1".into()),
            ..RunnerFilter::default()
        }),
        ["r-b", "r-a"]
    );
    let latest = store
        .latest_runner_for_spec(Path::new("/p1"), "s1")
        .unwrap()
        .unwrap();
    assert_eq!(latest.runner_id.as_str(), "r-b");
    assert!(
        store
            .latest_runner_for_spec(Path::new("/p3"), "s1")
            .unwrap()
            .is_none()
    );
}

#[test]
fn attempts_round_trip_and_filter() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    store
        .create_runner(&new_runner("r-a", Path::new("/p"), "s"))
        .unwrap();
    store
        .create_runner(&new_runner("r-b", Path::new("/q"), "s"))
        .unwrap();
    let a1 = store
        .start_attempt(&NewAttempt {
            runner_id: id("r-a"),
            iteration: 1,
            attempt: 1,
            started_at: at(0),
            log_path: "/logs/task_1.log".into(),
            resumed_session: None,
        })
        .unwrap();
    let open = store.attempt(a1).unwrap().unwrap();
    assert_eq!(open.project, PathBuf::from("/p"), "copied from the runner");
    assert_eq!(open.spec, "s");
    assert_eq!(
        (open.ended_at, open.outcome, open.exit_code),
        (None, None, None)
    );

    store
        .finish_attempt(
            a1,
            &AttemptEnd {
                ended_at: at(3),
                exit_code: Some(1),
                signal: None,
                outcome: Outcome::Crash,
                error: Some("exit code 1".into()),
                session_id: Some("sess-1".into()),
                cost_usd: Some(0.5),
                cost_estimated: false,
                tokens: None,
                model: None,
                ticked: None,
                committed: None,
                delay_before_next_ms: None,
                note: None,
                warning: None,
            },
        )
        .unwrap();
    store.set_attempt_delay(a1, 5000).unwrap();
    let a2 = store
        .start_attempt(&NewAttempt {
            runner_id: id("r-a"),
            iteration: 1,
            attempt: 2,
            started_at: at(10),
            log_path: "/logs/task_2.log".into(),
            resumed_session: None,
        })
        .unwrap();
    let b1 = store
        .start_attempt(&NewAttempt {
            runner_id: id("r-b"),
            iteration: 1,
            attempt: 1,
            started_at: at(5),
            log_path: "/logs/b.log".into(),
            resumed_session: None,
        })
        .unwrap();
    let done = store.attempt(a1).unwrap().unwrap();
    assert_eq!(
        done,
        AttemptRecord {
            id: a1,
            runner_id: id("r-a"),
            project: "/p".into(),
            spec: "s".into(),
            iteration: 1,
            attempt: 1,
            started_at: at(0),
            ended_at: Some(at(3)),
            exit_code: Some(1),
            signal: None,
            outcome: Some(Outcome::Crash),
            error: Some("exit code 1".into()),
            delay_before_next_ms: Some(5000),
            log_path: "/logs/task_1.log".into(),
            session_id: Some("sess-1".into()),
            cost_usd: Some(0.5),
            cost_estimated: Some(false),
            input_tokens: None,
            cached_tokens: None,
            output_tokens: None,
            model: None,
            ticked: None,
            committed: None,
            resumed_session: None,
            note: None,
            warning: None,
        }
    );
    let ids = |f: AttemptFilter| -> Vec<i64> {
        store.attempts(&f).unwrap().iter().map(|a| a.id).collect()
    };
    assert_eq!(ids(AttemptFilter::default()), [a1, b1, a2], "oldest first");
    assert_eq!(
        ids(AttemptFilter {
            runner: Some(id("r-a")),
            ..Default::default()
        }),
        [a1, a2]
    );
    assert_eq!(
        ids(AttemptFilter {
            project: Some("/q".into()),
            ..Default::default()
        }),
        [b1]
    );
    assert_eq!(
        ids(AttemptFilter {
            since: Some(at(5)),
            ..Default::default()
        }),
        [b1, a2]
    );
    assert_eq!(
        ids(AttemptFilter {
            spec: Some("s".into()),
            since: Some(at(6)),
            ..Default::default()
        }),
        [a2]
    );

    assert!(matches!(
        store.set_attempt_delay(9999, 1).unwrap_err(),
        StoreError::AttemptNotFound { id: 9999, .. }
    ));
    assert!(matches!(
        store
            .start_attempt(&NewAttempt {
                runner_id: id("r-zz"),
                iteration: 1,
                attempt: 1,
                started_at: at(0),
                log_path: "/x".into(),
                resumed_session: None,
            })
            .unwrap_err(),
        StoreError::RunnerNotFound { .. }
    ));
}

#[test]
fn non_utf8_paths_round_trip() {
    use std::ffi::OsStr;
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let project = PathBuf::from(OsStr::from_bytes(b"/repos/caf\xe9"));
    store
        .create_runner(&new_runner("r-a", &project, "s"))
        .unwrap();
    let r = store.runner(&id("r-a")).unwrap().unwrap();
    assert_eq!(r.project, project);
    let found = store
        .runners(&RunnerFilter {
            project: Some(project.clone()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(found.len(), 1);
}

#[test]
fn a_transaction_is_all_or_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let res: Result<(), StoreError> = store.transaction(|tx| {
        tx.create_runner(&new_runner("r-a", Path::new("/p"), "s"))?;
        tx.update_runner(&id("r-missing"), &RunnerUpdate::default())?;
        Ok(())
    });
    assert!(res.is_err());
    assert_eq!(store.runner(&id("r-a")).unwrap(), None, "rolled back");
}

#[test]
fn waits_persist_per_spec() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path).unwrap();
    let p = Path::new("/p");
    assert_eq!(store.wait_for(p, "s").unwrap(), None);
    store
        .set_wait(p, "s", at(60), "claude five_hour limit")
        .unwrap();
    store.set_wait(p, "other", at(5), "x").unwrap();
    store
        .set_wait(p, "s", at(120), "claude seven_day limit")
        .unwrap();
    // A new process (a new `swr run`) sees it.
    let other = Store::open(&path).unwrap();
    assert_eq!(
        other.wait_for(p, "s").unwrap(),
        Some((at(120), "claude seven_day limit".to_string()))
    );
    other.clear_wait(p, "s").unwrap();
    assert_eq!(store.wait_for(p, "s").unwrap(), None);
    assert_eq!(
        store.wait_for(p, "other").unwrap().map(|w| w.0),
        Some(at(5))
    );
}

#[test]
fn prune_deletes_old_finished_runners_with_their_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    for rid in ["r-old", "r-active"] {
        store
            .create_runner(&new_runner(rid, Path::new("/p"), "s"))
            .unwrap();
        store
            .start_attempt(&NewAttempt {
                runner_id: id(rid),
                iteration: 1,
                attempt: 1,
                started_at: at(0),
                log_path: "/l".into(),
                resumed_session: None,
            })
            .unwrap();
    }
    store
        .update_runner(
            &id("r-old"),
            &RunnerUpdate {
                status: Some(RunnerStatus::Completed),
                ended_at: Some(Some(at(1))),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(store.prune(at(0)).unwrap(), 0, "ended after the cutoff");
    assert_eq!(store.prune(Timestamp::now()).unwrap(), 1);
    assert!(store.runner(&id("r-old")).unwrap().is_none());
    assert!(
        store.runner(&id("r-active")).unwrap().is_some(),
        "active runners are kept"
    );
    let left = store.attempts(&AttemptFilter::default()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].runner_id.as_str(), "r-active");
}

// ---------------------------------------------------------------------------------------------
// Concurrency and crashes

#[test]
fn two_connections_see_each_other_and_writers_do_not_lose_updates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let a = Store::open(&path).unwrap();
    let b = Store::open(&path).unwrap();
    a.create_runner(&new_runner("r-a", Path::new("/p"), "s"))
        .unwrap();
    assert!(
        b.runner(&id("r-a")).unwrap().is_some(),
        "committed writes are visible"
    );

    // Two threads, each with its own connection, each adding 100 attempts.
    std::thread::scope(|s| {
        for _ in 0..2 {
            let path = path.clone();
            s.spawn(move || {
                let store = Store::open(&path).unwrap();
                for n in 0..100 {
                    store
                        .start_attempt(&NewAttempt {
                            runner_id: id("r-a"),
                            iteration: 1,
                            attempt: n,
                            started_at: Timestamp::now(),
                            log_path: "/l".into(),
                            resumed_session: None,
                        })
                        .unwrap();
                }
            });
        }
        // Meanwhile, a reader keeps reading.
        for _ in 0..50 {
            b.attempts(&AttemptFilter::default()).unwrap();
        }
    });
    assert_eq!(b.attempts(&AttemptFilter::default()).unwrap().len(), 200);
}

#[test]
fn many_processes_opening_a_fresh_store_migrate_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| Store::open(&path).unwrap());
        }
    });
    let store = Store::open(&path).unwrap();
    store
        .create_runner(&new_runner("r-a", Path::new("/p"), "s"))
        .unwrap();
}

#[test]
fn kill_9_during_writes_leaves_a_consistent_readable_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    Store::open(&path).unwrap();
    for round in 0..3u64 {
        let mut child = ChildProc::spawn("write_loop", path.to_str().unwrap());
        let target = 10 + round * 7;
        child.wait_for(|l| {
            l.rsplit("WROTE ")
                .next()
                .and_then(|n| n.parse::<u64>().ok())
                .is_some_and(|n| n >= target)
        });
        // Land the kill at a different point of the write loop each round.
        std::thread::sleep(Duration::from_millis(round * 3));
        child.kill9();

        let store = Store::open(&path).unwrap();
        let conn = rusqlite::Connection::open(&path).unwrap();
        let ok: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(ok, "ok");
        let runners = store.runners(&RunnerFilter::default()).unwrap();
        assert!(
            runners.len() as u64 >= 11 * (round + 1),
            "{} runners",
            runners.len()
        );
        let attempts = store.attempts(&AttemptFilter::default()).unwrap();
        assert_eq!(
            attempts.len(),
            runners.len() * 3,
            "no half-written transaction"
        );
        for r in &runners {
            assert_eq!(r.status, RunnerStatus::Completed, "{}", r.runner_id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Locks and reconciliation

#[test]
fn spec_lock_is_exclusive_names_its_holder_and_frees_on_drop() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let p = dir.path(); // exists: canonicalized
    assert_eq!(SpecLock::is_held(&locks, p, "s"), None);
    let lock = SpecLock::acquire(&locks, p, "s", &id("r-one")).unwrap();
    assert!(lock.path().starts_with(&locks));

    let err = SpecLock::acquire(&locks, p, "s", &id("r-two")).unwrap_err();
    match &err {
        LockError::Held {
            holder_pid,
            runner_id,
            path,
        } => {
            assert_eq!(*holder_pid, Some(std::process::id()));
            assert_eq!(runner_id.as_ref().map(|r| r.as_str()), Some("r-one"));
            assert_eq!(path, lock.path());
        }
        other => panic!("{other}"),
    }
    assert!(err.to_string().contains("r-one"), "{err}");

    let holder = SpecLock::is_held(&locks, p, "s").unwrap();
    assert_eq!(holder.pid, Some(std::process::id()));
    assert_eq!(holder.start_time, procinfo::start_time(std::process::id()));
    assert_eq!(holder.runner_id, Some(id("r-one")));
    // Other specs and the same project spelled differently behave as expected.
    let other = SpecLock::acquire(&locks, p, "t", &id("r-three")).unwrap();
    let dotted = p.join(".");
    assert!(
        SpecLock::is_held(&locks, &dotted, "s").is_some(),
        "same project, other spelling"
    );

    drop(lock);
    drop(other);
    assert_eq!(SpecLock::is_held(&locks, p, "s"), None);
    SpecLock::acquire(&locks, p, "s", &id("r-two")).unwrap();
}

#[test]
fn spec_lock_held_by_a_child_frees_when_it_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let project = dir.path().join("proj");
    std::fs::create_dir(&project).unwrap();
    let arg = format!("{}\n{}\nspec", locks.display(), project.display());
    let mut child = ChildProc::spawn("hold_lock", &arg);
    child.wait_for(|l| l.ends_with("LOCKED"));

    let err = SpecLock::acquire(&locks, &project, "spec", &id("r-me")).unwrap_err();
    let LockError::Held {
        holder_pid,
        runner_id,
        ..
    } = err
    else {
        panic!("{err}")
    };
    assert_eq!(holder_pid, Some(child.pid()));
    assert_eq!(runner_id, Some(id("r-child-holder")));
    assert_eq!(
        SpecLock::is_held(&locks, &project, "spec").unwrap().pid,
        Some(child.pid())
    );

    child.kill9();
    assert_eq!(SpecLock::is_held(&locks, &project, "spec"), None);
    SpecLock::acquire(&locks, &project, "spec", &id("r-me")).unwrap();
}

#[test]
fn reconcile_marks_only_dead_runners_crashed() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let store = Store::open(&dir.path().join("s.db")).unwrap();

    // A runner whose process has died: a real `sleep`, killed and reaped.
    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let dead_pid = sleeper.id();
    let dead_start = procinfo::start_time(dead_pid).unwrap();
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    let mut dead = new_runner("r-dead", Path::new("/p"), "dead");
    dead.pid = dead_pid;
    dead.pid_start_time = Some(dead_start);
    store.create_runner(&dead).unwrap();
    let agent = AgentProcess {
        pid: 5,
        pgid: 5,
        start_time: Some(1),
        marker: None,
    };
    store
        .update_runner(
            &id("r-dead"),
            &RunnerUpdate {
                status: Some(RunnerStatus::Waiting),
                agent: Some(Some(agent.clone())),
                ..Default::default()
            },
        )
        .unwrap();

    // A live runner: this process, no lock taken (only the pid check can save it).
    store
        .create_runner(&new_runner("r-live", Path::new("/p"), "live"))
        .unwrap();

    // A runner whose pid is dead but whose lock is held by a process naming it.
    let project = dir.path().join("proj");
    std::fs::create_dir(&project).unwrap();
    let arg = format!("{}\n{}\nheld", locks.display(), project.display());
    let mut holder = ChildProc::spawn("hold_lock", &arg);
    holder.wait_for(|l| l.ends_with("LOCKED"));
    let mut held = new_runner("r-child-holder", &project, "held");
    held.pid = dead_pid;
    held.pid_start_time = Some(dead_start);
    store.create_runner(&held).unwrap();

    // A pid alive now but recorded in another boot: a recycled pid, so dead.
    let mut rebooted = new_runner("r-rebooted", Path::new("/p"), "rebooted");
    rebooted.boot_id = Some("00000000-0000-0000-0000-000000000000".into());
    store.create_runner(&rebooted).unwrap();

    // A finished runner is not touched.
    let mut finished = new_runner("r-finished", Path::new("/p"), "finished");
    finished.pid = dead_pid;
    finished.pid_start_time = Some(dead_start);
    store.create_runner(&finished).unwrap();
    store
        .update_runner(
            &id("r-finished"),
            &RunnerUpdate {
                status: Some(RunnerStatus::Completed),
                ..Default::default()
            },
        )
        .unwrap();

    let mut marked = store.reconcile(&locks).unwrap();
    marked.sort_by(|a, b| a.runner_id.cmp(&b.runner_id));
    let names: Vec<&str> = marked.iter().map(|r| r.runner_id.as_str()).collect();
    assert_eq!(names, ["r-dead", "r-rebooted"]);
    let d = &marked[0];
    assert_eq!(d.status, RunnerStatus::Crashed);
    assert_eq!(
        d.reason.as_deref(),
        Some(format!("runner process died (pid {dead_pid})").as_str())
    );
    assert!(d.ended_at.is_some());
    assert_eq!(
        d.agent,
        Some(agent),
        "kept so the caller can kill the agent group"
    );

    let status = |s: &str| store.runner(&id(s)).unwrap().unwrap().status;
    assert_eq!(status("r-live"), RunnerStatus::Running);
    assert_eq!(status("r-child-holder"), RunnerStatus::Running);
    assert_eq!(status("r-finished"), RunnerStatus::Completed);
    assert!(store.reconcile(&locks).unwrap().is_empty(), "idempotent");

    // Once the lock holder dies too, that runner is crashed as well.
    holder.kill9();
    let marked = store.reconcile(&locks).unwrap();
    assert_eq!(marked.len(), 1);
    assert_eq!(marked[0].runner_id.as_str(), "r-child-holder");
}

// ---------------------------------------------------------------------------------------------
// Statistics and the retry log

struct Hist<'a> {
    store: &'a Store,
    minute: i64,
}

impl Hist<'_> {
    /// Add an attempt; `outcome` None = still running.
    fn attempt(
        &mut self,
        rid: &str,
        iteration: u32,
        attempt: u32,
        outcome: Option<Outcome>,
        delay_ms: Option<u64>,
    ) {
        self.minute += 1;
        let aid = self
            .store
            .start_attempt(&NewAttempt {
                runner_id: id(rid),
                iteration,
                attempt,
                started_at: at(self.minute),
                log_path: format!("/logs/{rid}-{iteration}-{attempt}.log").into(),
                resumed_session: None,
            })
            .unwrap();
        if let Some(o) = outcome {
            self.store
                .finish_attempt(
                    aid,
                    &AttemptEnd {
                        ended_at: at(self.minute),
                        exit_code: Some(i32::from(o != Outcome::Success)),
                        signal: None,
                        outcome: o,
                        error: None,
                        session_id: None,
                        cost_usd: None,
                        cost_estimated: false,
                        tokens: None,
                        model: None,
                        ticked: None,
                        committed: None,
                        delay_before_next_ms: None,
                        note: None,
                        warning: None,
                    },
                )
                .unwrap();
        }
        if let Some(d) = delay_ms {
            self.store.set_attempt_delay(aid, d).unwrap();
        }
    }
}

fn build_history(store: &Store) {
    use Outcome::*;
    for (rid, status) in [
        ("r-a", RunnerStatus::Completed),
        ("r-b", RunnerStatus::Failed),
        ("r-c", RunnerStatus::Failed),
        ("r-d", RunnerStatus::Crashed),
        ("r-e", RunnerStatus::Running),
    ] {
        store
            .create_runner(&new_runner(rid, Path::new("/p"), rid))
            .unwrap();
        store
            .update_runner(
                &id(rid),
                &RunnerUpdate {
                    status: Some(status),
                    ..Default::default()
                },
            )
            .unwrap();
    }
    let mut h = Hist { store, minute: 0 };
    // r-a: clean; two retries then success; a rate-limit wait then no progress.
    h.attempt("r-a", 1, 1, Some(Success), None);
    h.attempt("r-a", 2, 1, Some(Crash), Some(5000));
    h.attempt("r-a", 2, 2, Some(Crash), Some(10000));
    h.attempt("r-a", 2, 3, Some(Success), None);
    h.attempt("r-a", 3, 1, Some(RateLimited), Some(3_600_000));
    h.attempt("r-a", 3, 2, Some(NoProgress), None);
    // r-b: one retry then success; then out of retries.
    h.attempt("r-b", 1, 1, Some(IdleTimeout), Some(5000));
    h.attempt("r-b", 1, 2, Some(Success), None);
    h.attempt("r-b", 2, 1, Some(Crash), Some(5000));
    h.attempt("r-b", 2, 2, Some(Crash), Some(10000));
    h.attempt("r-b", 2, 3, Some(Crash), Some(20000));
    h.minute = 600; // the last attempt of r-b's iteration 2 is much later
    h.attempt("r-b", 2, 4, Some(Crash), None);
    // r-c: a permanent error, never retried.
    h.attempt("r-c", 1, 1, Some(Auth), None);
    // r-d: swr itself died after a crash, before deciding.
    h.attempt("r-d", 1, 1, Some(Crash), None);
    // r-e: a retry scheduled, the retry still running.
    h.attempt("r-e", 1, 1, Some(Crash), Some(5000));
    h.attempt("r-e", 1, 2, None, None);
}

#[test]
fn retry_stats_on_a_known_history() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    assert_eq!(
        store.retry_stats(None).unwrap(),
        RetryStats::default(),
        "empty store"
    );
    build_history(&store);

    let s = store.retry_stats(None).unwrap();
    assert_eq!(s.iterations, 8);
    assert_eq!(s.iterations_needing_retry, 4, "r-a/2, r-b/1, r-b/2, r-e/1");
    assert_eq!(s.retried_then_succeeded, 2, "r-a/2, r-b/1");
    assert_eq!(s.iterations_out_of_retries, 2, "r-b/2, r-c/1");
    assert_eq!(s.retry_success_rate, Some(0.5));
    assert_eq!(s.final_failure_rate, Some(0.25));
    let avg = s.average_backoff_ms.unwrap();
    assert!((avg - 60000.0 / 7.0).abs() < 1e-6, "{avg}");
    use Outcome::*;
    let expected: std::collections::BTreeMap<Outcome, u64> = [
        (Success, 3),
        (NoProgress, 1),
        (Crash, 8),
        (IdleTimeout, 1),
        (RateLimited, 1),
        (Auth, 1),
    ]
    .into_iter()
    .collect();
    assert_eq!(s.by_outcome, expected);

    // Since minute 14: iterations whose first attempt started then or later: r-c/1 (602),
    // r-d/1 (603), r-e/1 (604). r-b/2 started earlier and is excluded though it ended later.
    let s = store.retry_stats(Some(at(14))).unwrap();
    assert_eq!(s.iterations, 3);
    assert_eq!(s.iterations_needing_retry, 1);
    assert_eq!(s.retried_then_succeeded, 0);
    assert_eq!(s.iterations_out_of_retries, 1);
    assert_eq!(s.retry_success_rate, Some(0.0));
    assert!((s.final_failure_rate.unwrap() - 1.0 / 3.0).abs() < 1e-9);
    assert_eq!(s.average_backoff_ms, Some(5000.0));
    assert_eq!(s.by_outcome.get(&Crash), Some(&2));

    let s = store.retry_stats(Some(at(10_000))).unwrap();
    assert_eq!(s, RetryStats::default(), "nothing in the period");
    let json = serde_json::to_value(store.retry_stats(None).unwrap()).unwrap();
    assert_eq!(json["by_outcome"]["crash"], 8);
}

#[test]
fn retry_log_matches_the_python_format_and_is_replaced_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    build_history(&store);
    let runner = store.runner(&id("r-b")).unwrap().unwrap();
    let attempts = store
        .attempts(&AttemptFilter {
            runner: Some(id("r-b")),
            ..Default::default()
        })
        .unwrap();
    let logs = dir.path().join("logs/retries");
    let path = write_retry_log(&logs, &runner, &attempts).unwrap();
    assert_eq!(path, logs.join("r-b.json"));
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["runner_id"], "r-b");
    assert_eq!(v["spec_name"], "r-b");
    assert_eq!(v["project"], "/p");
    assert_eq!(v["max_retries"], 3);
    assert_eq!(v["retry_count"], 0);
    assert_eq!(v["final_status"], "failed");
    let a = v["attempts"].as_array().unwrap();
    assert_eq!(a.len(), 6);
    assert_eq!(a[0]["attempt_number"], 1);
    assert_eq!(a[0]["iteration"], 1);
    assert_eq!(a[0]["timestamp"], "2026-01-01T00:07:00.000Z");
    assert_eq!(a[0]["exit_code"], 1);
    assert!(a[0]["signal"].is_null());
    assert_eq!(a[0]["outcome"], "idle_timeout");
    assert!(a[0]["error_message"].is_null());
    assert_eq!(a[0]["backoff_seconds"], 5.0);
    assert_eq!(a[0]["log_path"], "/logs/r-b-1-1.log");
    assert!(a[5]["backoff_seconds"].is_null());
    let keys: Vec<&String> = a[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 9, "{keys:?}");

    // Rewriting replaces the file and leaves no temp file behind.
    write_retry_log(&logs, &runner, &attempts[..2]).unwrap();
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert_eq!(v["attempts"].as_array().unwrap().len(), 2);
    let names: Vec<_> = std::fs::read_dir(&logs)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("r-b.json")]);
}

#[test]
fn runner_ids_sort_by_start_and_parse_back() {
    use rand::SeedableRng;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let a = RunnerId::generate("2026-11-28T13:28:55Z".parse().unwrap(), &mut rng);
    let b = RunnerId::generate("2026-11-28T13:28:56Z".parse().unwrap(), &mut rng);
    assert!(a.as_str().starts_with("r-20261128T132855-"), "{a}");
    assert_eq!(a.as_str().len(), "r-20261128T132855-4f2a".len());
    assert!(a < b);
    assert_eq!(a.to_string().parse::<RunnerId>().unwrap(), a);
    assert!("../etc".parse::<RunnerId>().is_err());
    assert!("".parse::<RunnerId>().is_err());
    assert!(RunnerId::new_now().as_str().starts_with("r-20"));
}

#[test]
fn acquire_waits_out_an_observer_probe_but_not_a_live_holder() {
    use nix::fcntl::{Flock, FlockArg};
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let p = dir.path();
    // A previous, now finished, runner left its line in the file.
    drop(SpecLock::acquire(&locks, p, "s", &id("r-old")).unwrap());
    let path = lock_file_path(&locks, p, "s");
    std::fs::write(&path, "4194305 1 r-old\n").unwrap(); // a pid that cannot exist

    // An observer holds a shared probe for 100 ms: acquire retries and gets the lock.
    let probe = Flock::lock(std::fs::File::open(&path).unwrap(), FlockArg::LockShared).unwrap();
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        drop(probe);
    });
    let start = Instant::now();
    let lock = SpecLock::acquire(&locks, p, "s", &id("r-new")).unwrap();
    release.join().unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        SpecLock::is_held(&locks, p, "s").unwrap().runner_id,
        Some(id("r-new"))
    );
    // A live holder is refused, and named.
    match SpecLock::acquire(&locks, p, "s", &id("r-third")) {
        Err(LockError::Held {
            holder_pid,
            runner_id,
            ..
        }) => {
            assert_eq!(holder_pid, Some(std::process::id()));
            assert_eq!(runner_id, Some(id("r-new")));
        }
        other => panic!("{other:?}"),
    }
    drop(lock);
}

// ---------------------------------------------------------------------------------------------
// One runner per spec, really (issue 9)

/// `specs/alias -> demo` and `demo` are one spec: one guard. It lives in no file, so deleting
/// the cache dir cannot free it; the kernel frees it when the holder dies.
#[test]
fn spec_guard_is_keyed_on_the_resolved_spec_dir_and_frees_when_its_holder_dies() {
    let dir = tempfile::tempdir().unwrap();
    let specs = dir.path().join("proj/.spec-workflow/specs");
    std::fs::create_dir_all(specs.join("demo")).unwrap();
    std::fs::create_dir_all(specs.join("other")).unwrap();
    std::os::unix::fs::symlink("demo", specs.join("alias")).unwrap();

    let guard = SpecGuard::acquire(&specs.join("demo")).unwrap();
    assert_eq!(guard.key(), specs.join("demo").canonicalize().unwrap());
    match SpecGuard::acquire(&specs.join("alias")) {
        Err(LockError::Held {
            holder_pid, path, ..
        }) => {
            assert_eq!(holder_pid, Some(std::process::id()));
            assert_eq!(path, specs.join("demo").canonicalize().unwrap());
        }
        other => panic!("the alias got its own guard: {other:?}"),
    }
    let _other = SpecGuard::acquire(&specs.join("other")).unwrap();
    drop(guard);
    drop(guard_soon(&specs.join("alias")));

    let mut child = ChildProc::spawn("hold_guard", &specs.join("alias").display().to_string());
    child.wait_for(|l| l.ends_with("GUARDED"));
    match SpecGuard::acquire(&specs.join("demo")) {
        Err(LockError::Held { holder_pid, .. }) => assert_eq!(holder_pid, Some(child.pid())),
        other => panic!("{other:?}"),
    }
    child.kill9();
    guard_soon(&specs.join("demo"));
}

/// The guard once free. Other tests of this binary fork (`sleep`, children) at any moment, and
/// a forked child holds a copy of every descriptor, the guard's socket included, until it
/// execs: a release may take that long to show.
fn guard_soon(spec_dir: &Path) -> SpecGuard {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match SpecGuard::acquire(spec_dir) {
            Ok(g) => return g,
            Err(e) if Instant::now() > deadline => panic!("still held after 5 s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// A user cleaning `~/.cache` deletes `locks/` under live runners: the next runner recreates
/// it private (0700); a symlink in its place is refused, never followed.
#[test]
fn lock_dir_is_recreated_private_and_a_symlinked_one_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("cache/locks");
    let project = dir.path();
    drop(SpecLock::acquire(&locks, project, "s", &id("r-one")).unwrap());
    std::fs::remove_dir_all(dir.path().join("cache")).unwrap();
    let lock = SpecLock::acquire(&locks, project, "s", &id("r-two")).unwrap();
    for d in [&locks, &dir.path().join("cache")] {
        let mode = std::fs::metadata(d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    drop(lock);

    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let linked = dir.path().join("linked-locks");
    std::os::unix::fs::symlink(&elsewhere, &linked).unwrap();
    match SpecLock::acquire(&linked, project, "s", &id("r-three")) {
        Err(LockError::Io { source, .. }) => {
            assert!(source.to_string().contains("symlink"), "{source}")
        }
        other => panic!("a symlinked lock dir was used: {other:?}"),
    }
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);

    // A lock file replaced by a symlink is not followed either.
    let path = lock_file_path(&locks, project, "t");
    std::os::unix::fs::symlink(elsewhere.join("target"), &path).unwrap();
    assert!(SpecLock::acquire(&locks, project, "t", &id("r-four")).is_err());
    assert!(!elsewhere.join("target").exists());
}

/// Before a run starts, the store names a live runner of the spec even when its lock file is
/// gone; this process itself and dead or finished runners do not count.
#[test]
fn live_runner_is_found_by_pid_and_start_time_without_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    // No lock dir at all: deleted under the runners.
    let locks = dir.path().join("locks");
    let p = Path::new("/p");
    store.create_runner(&new_runner("r-me", p, "s")).unwrap();
    assert!(
        store.live_runner(&locks, p, "s").unwrap().is_none(),
        "this process"
    );

    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let mut other = new_runner("r-other", p, "s");
    other.pid = sleeper.id();
    other.pid_start_time = procinfo::start_time(sleeper.id());
    store.create_runner(&other).unwrap();
    let live = store.live_runner(&locks, p, "s").unwrap().unwrap();
    assert_eq!(live.runner_id, id("r-other"));
    assert!(store.live_runner(&locks, p, "t").unwrap().is_none());
    assert!(
        store
            .live_runner(&locks, Path::new("/q"), "s")
            .unwrap()
            .is_none()
    );

    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    assert!(
        store.live_runner(&locks, p, "s").unwrap().is_none(),
        "dead now"
    );
}

/// A runner that ends because the store refused a write (a full disk) leaves the reason in
/// its lock file; the next look at the store records a failure with that reason, not "runner
/// process died", and closes its attempt with it.
#[test]
fn an_exit_note_turns_a_dead_runner_into_a_recorded_failure() {
    let dir = tempfile::tempdir().unwrap();
    let locks = dir.path().join("locks");
    let store = Store::open(&dir.path().join("s.db")).unwrap();
    let project = dir.path().join("proj");
    std::fs::create_dir(&project).unwrap();

    let mut sleeper = Command::new("sleep").arg("60").spawn().unwrap();
    let (pid, st) = (sleeper.id(), procinfo::start_time(sleeper.id()));
    sleeper.kill().unwrap();
    sleeper.wait().unwrap();
    for (rid, spec) in [("r-noted", "noted"), ("r-plain", "plain")] {
        let mut r = new_runner(rid, &project, spec);
        r.pid = pid;
        r.pid_start_time = st;
        store.create_runner(&r).unwrap();
        store
            .start_attempt(&NewAttempt {
                runner_id: id(rid),
                iteration: 1,
                attempt: 1,
                started_at: Timestamp::now(),
                log_path: PathBuf::from("/l.log"),
                resumed_session: None,
            })
            .unwrap();
        drop(SpecLock::acquire(&locks, &project, spec, &id(rid)).unwrap());
    }
    SpecLock::record_exit(
        &locks,
        &project,
        "noted",
        &id("r-noted"),
        "state store failed: database or disk is full\nsecond line",
    )
    .unwrap();
    // A note for another runner id is not written.
    SpecLock::record_exit(&locks, &project, "plain", &id("r-someone"), "x").unwrap();
    assert_eq!(
        SpecLock::exit_note(&locks, &project, "noted", &id("r-noted")).as_deref(),
        Some("state store failed: database or disk is full second line")
    );
    assert_eq!(
        SpecLock::exit_note(&locks, &project, "plain", &id("r-plain")),
        None
    );

    let marked = store.reconcile(&locks).unwrap();
    assert_eq!(marked.len(), 2);
    let noted = store.runner(&id("r-noted")).unwrap().unwrap();
    assert_eq!(noted.status, RunnerStatus::Failed);
    assert!(
        noted
            .reason
            .as_deref()
            .unwrap()
            .contains("database or disk is full"),
        "{noted:?}"
    );
    let plain = store.runner(&id("r-plain")).unwrap().unwrap();
    assert_eq!(plain.status, RunnerStatus::Crashed);
    let a = store
        .attempts(&AttemptFilter {
            runner: Some(id("r-noted")),
            ..Default::default()
        })
        .unwrap();
    assert!(
        a[0].error
            .as_deref()
            .unwrap()
            .starts_with("swr exited during this attempt"),
        "{a:?}"
    );
    // The next runner of the spec takes the lock over and the note with it.
    drop(SpecLock::acquire(&locks, &project, "noted", &id("r-next")).unwrap());
    assert_eq!(
        SpecLock::exit_note(&locks, &project, "noted", &id("r-noted")),
        None
    );
}

/// Observers read a store they cannot write: nothing is created or migrated, writes fail.
#[test]
fn a_read_only_store_reads_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    assert!(Store::open_read_only(&path).is_err(), "never created");
    assert!(!path.exists());
    {
        let store = Store::open(&path).unwrap();
        store
            .create_runner(&new_runner("r-a", Path::new("/p"), "s"))
            .unwrap();
        store
            .set_wait(Path::new("/p"), "s", at(60), "rate limited")
            .unwrap();
    }
    let ro = Store::open_read_only(&path).unwrap();
    assert_eq!(ro.runners(&RunnerFilter::default()).unwrap().len(), 1);
    assert_eq!(
        ro.wait_for(Path::new("/p"), "s").unwrap().unwrap().0,
        at(60)
    );
    assert!(ro.clear_wait(Path::new("/p"), "s").is_err());
    assert!(
        ro.dead_runners(&dir.path().join("locks"))
            .unwrap()
            .is_empty()
    );
}

// ---------------------------------------------------------------------------------------------
// The run queue and the webhook outbox (`swr serve`)

fn queue_new(project: &Path, spec: &str, priority: i64) -> NewQueueEntry {
    NewQueueEntry {
        project: project.to_path_buf(),
        spec: spec.into(),
        provider: None,
        model: None,
        priority,
    }
}

fn added(a: QueueAdd) -> QueueEntry {
    match a {
        QueueAdd::Added(e) => e,
        QueueAdd::Duplicate(e) => panic!("unexpected duplicate of {}", e.id),
    }
}

#[test]
fn queue_orders_by_priority_then_age_and_refuses_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let p = dir.path();
    let a = added(store.queue_add(&queue_new(p, "a", 0)).unwrap());
    let b = added(store.queue_add(&queue_new(p, "b", 5)).unwrap());
    let c = added(store.queue_add(&queue_new(p, "c", 0)).unwrap());
    match store.queue_add(&queue_new(p, "a", 9)).unwrap() {
        QueueAdd::Duplicate(e) => assert_eq!(e.id, a.id),
        QueueAdd::Added(e) => panic!("a second entry {} for a queued spec", e.id),
    }
    let order: Vec<String> = store
        .queue(false)
        .unwrap()
        .into_iter()
        .map(|e| e.spec)
        .collect();
    assert_eq!(order, ["b", "a", "c"]);

    // Running entries list first; a running one cannot be removed.
    assert!(
        store
            .transaction(|tx| tx.queue_mark_running(c.id, 4242, Some(7)))
            .unwrap()
    );
    assert!(
        !store
            .transaction(|tx| tx.queue_mark_running(c.id, 4243, None))
            .unwrap(),
        "already running"
    );
    let order: Vec<String> = store
        .queue(false)
        .unwrap()
        .into_iter()
        .map(|e| e.spec)
        .collect();
    assert_eq!(order, ["c", "b", "a"]);
    assert!(matches!(
        store.queue_remove(c.id).unwrap(),
        QueueRemove::Running(_)
    ));

    // An interruption puts it back (counted); a graceful stop too (not counted); an end is done.
    store
        .transaction(|tx| tx.queue_requeue(c.id, "interrupted", true))
        .unwrap();
    let e = store.queue_entry(c.id).unwrap().unwrap();
    assert_eq!((e.state, e.restarts, e.pid), (QueueState::Queued, 1, None));
    store
        .transaction(|tx| tx.queue_mark_running(c.id, 1, None))
        .unwrap();
    store
        .transaction(|tx| tx.queue_requeue(c.id, "service stopped", false))
        .unwrap();
    assert_eq!(store.queue_entry(c.id).unwrap().unwrap().restarts, 1);
    store
        .transaction(|tx| tx.queue_mark_running(c.id, 1, None))
        .unwrap();
    store
        .transaction(|tx| tx.queue_finish(c.id, "completed", "done"))
        .unwrap();
    let e = store.queue_entry(c.id).unwrap().unwrap();
    assert_eq!(
        (e.state, e.result.as_deref()),
        (QueueState::Done, Some("completed"))
    );
    assert_eq!(
        store.queue(false).unwrap().len(),
        2,
        "done entries are history"
    );
    assert_eq!(store.queue(true).unwrap().len(), 3);
    // A done spec can be queued again.
    added(store.queue_add(&queue_new(p, "c", 0)).unwrap());
    assert!(matches!(
        store.queue_remove(b.id).unwrap(),
        QueueRemove::Removed(_)
    ));
    assert!(matches!(
        store.queue_remove(b.id).unwrap(),
        QueueRemove::NotFound
    ));

    assert!(!store.queue_paused().unwrap());
    store.set_queue_paused(true).unwrap();
    assert!(
        Store::open(&dir.path().join("s.sqlite3"))
            .unwrap()
            .queue_paused()
            .unwrap(),
        "kept in the store"
    );
}

#[test]
fn webhook_deliveries_are_leased_retried_and_given_up() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sqlite3")).unwrap();
    let r1 = id("r-20260101T000000-0001");
    let row = |url: &str, runner: &RunnerId| NewDelivery {
        url: url.into(),
        format: "json".into(),
        event: "completed".into(),
        project: dir.path().to_path_buf(),
        spec: "s".into(),
        runner_id: Some(runner.clone()),
        reason: "every task is done".into(),
    };
    store
        .add_deliveries(&[
            row("http://a", &r1),
            row("http://b", &id("r-20260101T000000-0002")),
        ])
        .unwrap();
    let now = Timestamp::now();
    let lease = Duration::from_secs(30);
    let mine = store
        .claim_deliveries(&DeliveryScope::Runner(r1.clone()), now, lease, 10)
        .unwrap();
    assert_eq!(mine.len(), 1, "a runner takes only its own");
    assert_eq!(mine[0].url, "http://a");
    // Held: nobody else takes it until the lease ends.
    let all = store
        .claim_deliveries(&DeliveryScope::All, now, lease, 10)
        .unwrap();
    assert_eq!(
        all.iter().map(|d| d.url.as_str()).collect::<Vec<_>>(),
        ["http://b"]
    );
    assert!(
        store
            .claim_deliveries(&DeliveryScope::All, now, lease, 10)
            .unwrap()
            .is_empty()
    );
    let later = now + SignedDuration::from_secs(31);
    assert_eq!(
        store
            .claim_deliveries(&DeliveryScope::All, later, lease, 10)
            .unwrap()
            .len(),
        2
    );

    // A failed try with a retry time stays pending (and is a problem to show); without, failed.
    let retry = later + SignedDuration::from_secs(2);
    store
        .record_delivery_try(mine[0].id, Err("HTTP 500"), Some(retry))
        .unwrap();
    store
        .record_delivery_try(all[0].id, Err("connection refused"), None)
        .unwrap();
    let due = store
        .next_delivery_due(&DeliveryScope::Runner(r1.clone()))
        .unwrap()
        .unwrap();
    assert_eq!(due.as_millisecond(), retry.as_millisecond());
    let problems = store.delivery_problems(10).unwrap();
    assert_eq!(problems.len(), 2);
    let failed = problems.iter().find(|d| d.url == "http://b").unwrap();
    assert_eq!(
        (failed.state, failed.tries, failed.last_error.as_deref()),
        (DeliveryState::Failed, 1, Some("connection refused"))
    );
    let redo = store
        .claim_deliveries(&DeliveryScope::All, retry, lease, 10)
        .unwrap();
    assert_eq!(redo.len(), 1);
    store.record_delivery_try(redo[0].id, Ok(()), None).unwrap();
    let d = store
        .deliveries(10)
        .unwrap()
        .into_iter()
        .find(|d| d.url == "http://a")
        .unwrap();
    assert_eq!((d.state, d.tries), (DeliveryState::Delivered, 2));
    assert!(d.delivered_at.is_some());
    assert_eq!(
        store.delivery_problems(10).unwrap().len(),
        1,
        "only the given-up one is left"
    );
}
