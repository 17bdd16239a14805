//! `--max-runtime` wherever the run is (an attempt, a backoff, a rate-limit wait), and
//! notifiers that never outlive the run. Real processes, generous bounds.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::time::{Duration, Instant};

use run_support::{World, alive};
use serde_json::json;

fn run_for(w: &World, plan: &str, limit: &str) -> (run_support::RunResult, Duration) {
    let started = Instant::now();
    let out = w
        .cmd(plan)
        .args(w.run_args())
        .args(["--max-runtime", limit])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    (run_support::RunResult::from(out), started.elapsed())
}

#[test]
fn max_runtime_stops_a_hung_agent_in_the_middle_of_its_attempt() {
    // The idle timeout (60 s) would take far longer than the limit.
    let w = World::new(2, json!({"activity_timeout_seconds": 60}));
    let (r, took) = run_for(&w, "hang", "3s");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "{took:?}");
    let end = &r.finished()["end"];
    assert_eq!(end["kind"], "max_runtime");
    assert_eq!(end["seconds"], 3.0);
    let st = &w.status()[0];
    assert_eq!(
        st["reason"],
        "stopped after --max-runtime 3s with work left"
    );
    let h = w.history();
    assert_eq!(h[0]["outcome"], "stopped");
    assert_eq!(h[0]["error"], "stopped at --max-runtime");
}

#[test]
fn max_runtime_cuts_a_noisy_hang_a_backoff_and_a_rate_limit_wait_short() {
    let w = World::new(2, json!({"activity_timeout_seconds": 60}));
    let (r, took) = run_for(&w, "noisy-hang", "2s");
    assert_eq!(r.finished()["end"]["kind"], "max_runtime", "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "{took:?}");

    let w = World::new(
        2,
        json!({"retry_backoff_seconds": 120, "retry_max_backoff_seconds": 300}),
    );
    let (r, took) = run_for(&w, "crash", "2s");
    assert_eq!(r.finished()["end"]["kind"], "max_runtime", "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "a 120 s backoff: {took:?}");

    let w = World::new(2, json!({}));
    let (r, took) = run_for(&w, "ratelimit:600", "2s");
    assert_eq!(r.finished()["end"]["kind"], "max_runtime", "{}", r.stderr);
    assert!(took < Duration::from_secs(20), "a 600 s wait: {took:?}");
    // The wait is not forgotten: the next run still honours it.
    assert_eq!(w.status()[0]["status"], "stopped");
    let (r, _) = run_for(&w, "ok,ok", "2s");
    assert!(r.of("waiting").len() == 1, "{:?}", r.events);
}

/// A notifier that hangs is killed with its whole process group after
/// `notify_timeout_seconds`, and swr waits for it before exiting: nothing is left with parent 1.
#[test]
fn a_hanging_notifier_is_killed_before_swr_exits() {
    let w = World::new(1, json!({}));
    let pids = w.dir.path().join("notifier-pids");
    let script = format!(
        "echo $$ >> {p}; sleep 300 & echo $! >> {p}; wait",
        p = pids.display()
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap().replacen(
        "{",
        &format!(
            "{{\"notify_command\": [\"sh\", \"-c\", {}], \"notify_timeout_seconds\": 1,",
            serde_json::to_string(&script).unwrap()
        ),
        1,
    );
    std::fs::write(&w.config, cfg).unwrap();
    let started = Instant::now();
    let r = w.run("ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(started.elapsed() < Duration::from_secs(15));
    let found: Vec<u32> = std::fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .map(|l| l.trim().parse().unwrap())
        .collect();
    assert_eq!(found.len(), 2, "the notifier ran: {found:?}");
    let deadline = Instant::now() + Duration::from_secs(5);
    while found.iter().any(|p| alive(*p)) {
        assert!(
            Instant::now() < deadline,
            "notifier processes outlive swr: {found:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A quick notifier is waited for, not killed: its work (here a file) is done.
#[test]
fn a_quick_notifier_finishes_its_work() {
    let w = World::new(1, json!({}));
    let out = w.dir.path().join("notified");
    let script = format!(
        "sleep 0.3; echo \"$SWR_EVENT $SWR_SPEC\" > {}",
        out.display()
    );
    let cfg = std::fs::read_to_string(&w.config).unwrap().replacen(
        "{",
        &format!(
            "{{\"notify_command\": [\"sh\", \"-c\", {}],",
            serde_json::to_string(&script).unwrap()
        ),
        1,
    );
    std::fs::write(&w.config, cfg).unwrap();
    let r = w.run("ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap().trim(),
        "completed feat"
    );
}
