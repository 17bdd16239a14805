//! The commands around a run as a user meets them: `--dry-run`, `logs -f`, `stop`,
//! `status` and `history` output, `stats`.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::io::Read;
use std::process::Stdio;
use std::time::{Duration, Instant};

use run_support::World;
use serde_json::json;

#[test]
fn dry_run_shows_the_command_and_prompt_and_runs_nothing() {
    let w = World::new(2, json!({}));
    let out = w
        .cmd("crash")
        .args(w.run_args())
        .arg("--dry-run")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("sim-agent -- <prompt>"), "{text}");
    assert!(text.contains("Task 1: Task number 1"), "{text}");
    assert!(text.contains("0/2 tasks done"), "{text}");
    assert!(w.history().is_empty(), "a dry run starts no agent");
}

#[test]
fn logs_follow_moves_to_the_next_attempt_and_ends_with_the_runner() {
    let w = World::new(2, json!({}));
    let mut runner = w.spawn("sleep:1.5,sleep:1.5");
    w.wait_for("the first attempt", Duration::from_secs(20), |w| {
        w.status()
            .first()
            .is_some_and(|r| r["log_path"].is_string())
    });
    let mut logs = w
        .cmd("")
        .args(["logs", &w.spec, "-f"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while logs.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "logs -f did not end with the runner"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut text = String::new();
    logs.stdout
        .take()
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    assert!(text.contains("# swr attempt log"), "{text}");
    assert!(text.contains("# outcome: success"), "{text}");
    assert!(
        text.contains("==> "),
        "moved to the second attempt's log: {text}"
    );
    assert!(text.contains("step 2 of the plan"), "{text}");
    assert_eq!(runner.wait().unwrap().code(), Some(0));
}

#[test]
fn stop_ends_a_waiting_runner_and_status_explains_it() {
    let w = World::new(1, json!({}));
    let mut runner = w.spawn("ratelimit:120");
    w.wait_for("the waiting status", Duration::from_secs(20), |w| {
        w.status().first().is_some_and(|r| r["status"] == "waiting")
    });
    let text = String::from_utf8(w.cmd("").args(["status"]).output().unwrap().stdout).unwrap();
    assert!(text.contains("waiting"), "{text}");
    assert!(text.contains("rate limit ends in"), "{text}");
    let out = w.cmd("").args(["stop", &w.spec]).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(runner.wait().unwrap().code(), Some(130));
    let st = &w.status()[0];
    assert_eq!(st["status"], "stopped");
    assert_eq!(st["reason"], "stopped by the user");
}

#[test]
fn status_and_history_json_carry_the_documented_fields() {
    let w = World::new(1, json!({}));
    let r = w.run("crash,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = &w.status()[0];
    for key in [
        "runner_id",
        "project",
        "spec",
        "provider",
        "model",
        "status",
        "reason",
        "pid",
        "retry_count",
        "max_retries",
        "next_attempt_at",
        "tasks",
        "started_at",
        "updated_at",
    ] {
        assert!(st.get(key).is_some(), "status lacks {key}: {st}");
    }
    for key in ["total", "done", "in_progress", "pending", "blocked"] {
        assert!(st["tasks"].get(key).is_some(), "tasks lacks {key}");
    }
    let started = st["started_at"].as_str().unwrap();
    assert!(
        started.len() == "2026-11-28T13:00:00.000Z".len() && started.ends_with('Z'),
        "RFC 3339 with milliseconds: {started}"
    );
    let h = w.history();
    for key in [
        "runner_id",
        "iteration",
        "attempt",
        "started_at",
        "ended_at",
        "exit_code",
        "signal",
        "outcome",
        "error",
        "delay_before_next_ms",
        "log_path",
        "session_id",
    ] {
        assert!(h[0].get(key).is_some(), "history lacks {key}: {}", h[0]);
    }
    assert_eq!(h[0]["exit_code"], 1);
    assert!(h[0]["session_id"].as_str().unwrap().starts_with("sim-"));
    let stats = w.json(&["stats", "--json"]);
    assert_eq!(stats["iterations"], 1);
    assert_eq!(stats["retry_success_rate"], 1.0);
}
