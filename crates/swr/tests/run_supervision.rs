//! `swr run` end to end with real processes: the simulated agent crashes, hangs, ignores
//! SIGTERM, floods, leaves grandchildren and hits rate limits; swr must retry, time out, kill,
//! wait and record exactly as documented. Timing bounds are generous on purpose.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::time::{Duration, Instant};

use run_support::{World, alive, ms};
use serde_json::json;

#[test]
fn crash_then_recovery_with_exact_delays() {
    let w = World::new(2, json!({}));
    let r = w.run("crash,crash,ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "completed");
    let h = w.history();
    let outcomes: Vec<&str> = h.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["crash", "crash", "success", "success"]);
    // retry_backoff_seconds 0.2 × 2.0 with retry_jitter none: exactly 200 then 400 ms.
    assert_eq!(h[0]["delay_before_next_ms"], 200);
    assert_eq!(h[1]["delay_before_next_ms"], 400);
    assert!(h[2]["delay_before_next_ms"].is_null());
    let gap1 = ms(&h[1]["started_at"]).unwrap() - ms(&h[0]["ended_at"]).unwrap();
    let gap2 = ms(&h[2]["started_at"]).unwrap() - ms(&h[1]["ended_at"]).unwrap();
    assert!((200..3000).contains(&gap1), "first retry after {gap1} ms");
    assert!((400..3000).contains(&gap2), "second retry after {gap2} ms");
    assert_eq!(h[0]["attempt"], 1);
    assert_eq!(h[1]["attempt"], 2);
    assert_eq!(h[2]["attempt"], 3);
    assert_eq!(h[3]["iteration"], 2);
    assert_eq!(
        h[3]["attempt"], 1,
        "the retry counter resets after a success"
    );
    assert!(
        h[0]["error"].as_str().unwrap().contains("simulated crash"),
        "{}",
        h[0]
    );
    let retries = r.of("retry_scheduled");
    assert_eq!(retries.len(), 2);
    assert_eq!(retries[1]["retry"], 2);
    assert_eq!(retries[1]["max_retries"], 3);
    assert_eq!(w.tasks_done(), 2);
    assert_eq!(w.git_status(), "", "swr's logs must not dirty the tree");
    // Every attempt has its own log with a header and a footer.
    for a in &h {
        let log = std::fs::read_to_string(a["log_path"].as_str().unwrap()).unwrap();
        assert!(log.starts_with("# swr attempt log"), "{log}");
        assert!(log.contains("# outcome: "), "{log}");
    }
    let status = w.status();
    assert_eq!(status[0]["status"], "completed");
    assert_eq!(status[0]["tasks"]["done"], 2);
}

#[test]
fn gives_up_after_max_retries_naming_the_last_outcome() {
    let w = World::new(1, json!({"retry_max_retries": 2}));
    let r = w.run("crash,crash,crash,ok");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "retries_exhausted");
    let h = w.history();
    assert_eq!(h.len(), 3, "1 attempt + 2 retries");
    assert!(h[2]["delay_before_next_ms"].is_null());
    let st = &w.status()[0];
    assert_eq!(st["status"], "failed");
    let reason = st["reason"].as_str().unwrap();
    assert!(
        reason.contains("retries exhausted after 2 retries: last attempt crash"),
        "{reason}"
    );
    assert!(reason.contains("exit code 1"), "{reason}");
    // The Python tool's per-runner retry log.
    let id = st["runner_id"].as_str().unwrap();
    let log = w
        .project
        .join(".spec-workflow/logs/retries")
        .join(format!("{id}.json"));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    assert_eq!(v["attempts"].as_array().unwrap().len(), 3);
}

#[test]
fn idle_and_wall_timeouts_end_attempts_and_are_retried() {
    let w = World::new(
        1,
        json!({"activity_timeout_seconds": 0.5, "iteration_timeout_seconds": 1.5}),
    );
    let t = Instant::now();
    let r = w.run("hang,noisy-hang,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    let outcomes: Vec<&str> = h.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["idle_timeout", "wall_timeout", "success"]);
    let d0 = ms(&h[0]["ended_at"]).unwrap() - ms(&h[0]["started_at"]).unwrap();
    let d1 = ms(&h[1]["ended_at"]).unwrap() - ms(&h[1]["started_at"]).unwrap();
    assert!((500..5000).contains(&d0), "idle timeout took {d0} ms");
    assert!((1500..6000).contains(&d1), "wall timeout took {d1} ms");
    assert!(t.elapsed() < Duration::from_secs(30));
}

#[test]
fn sigterm_ignored_is_followed_by_sigkill_after_the_grace() {
    let w = World::new(
        1,
        json!({"iteration_timeout_seconds": 0.5, "stop_grace_seconds": 1}),
    );
    let r = w.run("hang-term,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h[0]["outcome"], "wall_timeout");
    assert_eq!(h[0]["signal"], "SIGKILL", "{:?}", h[0]);
    let d = ms(&h[0]["ended_at"]).unwrap() - ms(&h[0]["started_at"]).unwrap();
    assert!((1500..8000).contains(&d), "timeout + grace took {d} ms");
}

#[test]
fn grandchildren_are_gone_after_success_timeout_and_stop() {
    // After a success: one holds the pipe, one escaped with setsid.
    let w = World::new(3, json!({"iteration_timeout_seconds": 1}));
    let r = w.run("grandchild+detached+ok,grandchild+detached+hang,ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let pids = w.left_behind_pids();
    assert_eq!(pids.len(), 4, "{pids:?}");
    std::thread::sleep(Duration::from_millis(200));
    for p in &pids {
        assert!(!alive(*p), "process {p} survived its attempt");
    }
    let h = w.history();
    assert_eq!(h[0]["outcome"], "success");
    assert_eq!(h[1]["outcome"], "wall_timeout");

    // On a stop by the user.
    let w = World::new(1, json!({}));
    let mut child = w.spawn("grandchild+detached+hang");
    w.wait_for("the agent's grandchildren", Duration::from_secs(20), |w| {
        w.left_behind_pids().len() == 2
    });
    let pids = w.left_behind_pids();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    std::thread::sleep(Duration::from_millis(200));
    for p in &pids {
        assert!(!alive(*p), "process {p} survived the stop");
    }
    let h = w.history();
    assert_eq!(h[0]["outcome"], "stopped");
    assert_eq!(w.status()[0]["status"], "stopped");
}

#[test]
fn a_flood_of_output_keeps_memory_flat() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("flood:200,ok");
    let pid = child.id();
    let mut peak_kb = 0u64;
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        if let Ok(s) = std::fs::read_to_string(format!("/proc/{pid}/status"))
            && let Some(line) = s.lines().find(|l| l.starts_with("VmHWM:"))
        {
            let kb: u64 = line
                .split_whitespace()
                .nth(1)
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            peak_kb = peak_kb.max(kb);
        }
        assert!(Instant::now() < deadline, "flood did not finish in time");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(child.wait().unwrap().code(), Some(0));
    eprintln!(
        "peak RSS of swr during a 200 MB flood: {} MB",
        peak_kb / 1024
    );
    // The target is 30 MB (release); a debug build gets room, an unbounded buffer would not.
    assert!(peak_kb < 100 * 1024, "peak RSS {peak_kb} kB");
    let h = w.history();
    let log = std::fs::metadata(h[0]["log_path"].as_str().unwrap()).unwrap();
    assert!(
        log.len() >= 200 * 1024 * 1024,
        "log has {} bytes",
        log.len()
    );
}

#[test]
fn a_rate_limit_is_waited_until_its_reset_without_using_a_retry() {
    let w = World::new(1, json!({"retry_max_retries": 0}));
    let r = w.run("ratelimit:2,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h[0]["outcome"], "rate_limited");
    assert_eq!(h[1]["outcome"], "success");
    let waiting = r.of("waiting");
    assert_eq!(waiting.len(), 1);
    let until = ms(&waiting[0]["until"]).unwrap();
    let next = ms(&h[1]["started_at"]).unwrap();
    assert!(
        next >= until,
        "next attempt at {next} before the reset {until}"
    );
    assert!(
        next - until < 3000,
        "waited {} ms past the reset",
        next - until
    );
    assert!(h[0]["delay_before_next_ms"].as_i64().unwrap() > 500);
}

#[test]
fn a_rate_limit_wait_survives_a_stop_and_a_new_run() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("ratelimit:60,ok");
    w.wait_for("the waiting status", Duration::from_secs(20), |w| {
        w.status().first().is_some_and(|r| r["status"] == "waiting")
    });
    let first = w.status()[0].clone();
    assert!(first["next_attempt_at"].is_string(), "{first}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    // A new run waits for the rest of the same wait, without starting the agent.
    let mut child = w.spawn("ok");
    w.wait_for("the new runner waiting", Duration::from_secs(20), |w| {
        w.status()
            .iter()
            .any(|r| r["status"] == "waiting" && r["runner_id"] != first["runner_id"])
    });
    let second = w
        .status()
        .into_iter()
        .find(|r| r["runner_id"] != first["runner_id"])
        .unwrap();
    assert_eq!(
        ms(&second["next_attempt_at"]),
        ms(&first["next_attempt_at"])
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    assert_eq!(w.history().len(), 1, "no agent ran during the wait");
}

#[test]
fn missing_binary_and_auth_failure_are_never_retried() {
    let w = World::new(
        1,
        json!({"providers": {"ghost": {"command": ["/nonexistent/agent-cli"]}}}),
    );
    let out = w
        .cmd("")
        .args(w.run_args())
        .args(["--provider", "ghost"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let h = w.history();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["outcome"], "spawn_failed");
    assert!(
        h[0]["error"]
            .as_str()
            .unwrap()
            .contains("/nonexistent/agent-cli")
    );

    let w = World::new(1, json!({}));
    let r = w.run("auth,ok");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "non_retryable");
    let reason = r.finished()["end"]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("check the agent's credentials"), "{reason}");
    let h = w.history();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0]["outcome"], "auth");
    assert!(h[0]["error"].as_str().unwrap().contains("Not logged in"));
}

#[test]
fn a_second_runner_on_the_same_spec_exits_75_naming_the_holder() {
    let w = World::new(1, json!({}));
    let mut first = w.spawn("sleep:30");
    w.wait_for("the first runner", Duration::from_secs(20), |w| {
        w.status().first().is_some_and(|r| r["status"] == "running")
    });
    let out = w.cmd("").args(w.run_args()).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(75), "{stderr}");
    assert!(stderr.contains(&format!("pid {}", first.id())), "{stderr}");
    let stop = w.cmd("").args(["stop", &w.spec]).output().unwrap();
    assert!(
        stop.status.success(),
        "{}",
        String::from_utf8_lossy(&stop.stderr)
    );
    assert_eq!(first.wait().unwrap().code(), Some(130));
}

#[test]
fn kill_9_of_swr_then_the_orphaned_agent_is_killed_and_the_runner_marked_crashed() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("grandchild+detached+hang");
    w.wait_for("the agent", Duration::from_secs(20), |w| {
        w.left_behind_pids().len() == 2
    });
    let agent = w.status()[0]["agent"]["pid"].as_u64().unwrap() as u32;
    child.kill().unwrap(); // SIGKILL: swr gets no chance to clean up
    child.wait().unwrap();
    assert!(
        alive(agent),
        "the agent outlives a kill -9 of swr (it is in its own group)"
    );
    // A read-only look kills nothing and records nothing (it used to reap as a side effect).
    let st = w.status();
    assert_eq!(st[0]["status"], "running", "{:?}", st[0]);
    assert_eq!(st[0]["alive"], false, "{:?}", st[0]);
    assert!(alive(agent), "plain `swr status` must not kill processes");
    let st = w.status_reaped();
    assert_eq!(st[0]["status"], "crashed", "{:?}", st[0]);
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while alive(agent) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!alive(agent), "the orphaned agent was not killed");
    for p in w.left_behind_pids() {
        assert!(!alive(p), "orphaned descendant {p} was not killed");
    }
    // The spec is free again.
    let r = w.run("ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
}

#[test]
fn the_circuit_breaker_opens_after_iterations_without_progress() {
    let w = World::new(2, json!({"no_commit_limit": 2}));
    let r = w.run("nocommit,nocommit,ok");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "circuit_open");
    let h = w.history();
    let outcomes: Vec<&str> = h.iter().map(|a| a["outcome"].as_str().unwrap()).collect();
    assert_eq!(outcomes, ["no_progress", "no_progress"]);

    let w = World::new(2, json!({"no_progress_limit": 2}));
    let r = w.run("commit,commit,ok");
    assert_eq!(r.code, 1, "{}", r.stderr);
    let reason = r.finished()["end"]["reason"].as_str().unwrap().to_string();
    assert!(reason.contains("commits but no task ticked"), "{reason}");
}

#[test]
fn notify_command_hears_about_completion() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("notified");
    let w = World::new(
        1,
        json!({"notify_command": ["sh", "-c",
            format!("echo \"$SWR_EVENT $SWR_SPEC $SWR_RUNNER_ID\" > {}", out.display())]}),
    );
    let r = w.run("ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut text = String::new();
    for _ in 0..100 {
        text = std::fs::read_to_string(&out).unwrap_or_default();
        if !text.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(text.starts_with("completed feat r-"), "{text:?}");
}

#[test]
fn a_killed_by_signal_attempt_names_the_signal() {
    let w = World::new(1, json!({}));
    let r = w.run("signal,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h[0]["outcome"], "signal");
    assert_eq!(h[0]["signal"], "SIGSEGV");
    assert_eq!(h[0]["error"], "killed by SIGSEGV");
}

#[test]
fn the_stored_retry_count_resets_when_the_retried_iteration_succeeds() {
    let w = World::new(2, json!({}));
    let r = w.run("ok,crash,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let st = &w.status()[0];
    assert_eq!(st["status"], "completed");
    assert_eq!(st["retry_count"], 0, "{st}");
}
