//! Regression tests for what breaking `swr run` from the outside found: kill -9 of swr in the
//! middle of an attempt, a reader of swr's output that goes away, pointless bounds, a log
//! directory that disappears mid-run, and two `--all` runs on one project.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::process::Stdio;
use std::time::Duration;

use run_support::{World, git};
use serde_json::json;

/// The attempt a runner was supervising when swr was SIGKILLed must not stay "running" in
/// the history forever once the runner is found dead.
#[test]
fn kill_9_of_swr_closes_the_attempt_it_was_supervising() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("hang");
    w.wait_for("the attempt", Duration::from_secs(20), |w| {
        w.history().len() == 1 && w.status()[0]["agent"]["pid"].as_u64().unwrap_or(0) > 0
    });
    child.kill().unwrap();
    child.wait().unwrap();
    // Looking changes nothing: the record still says running, but not alive.
    let st = &w.status()[0];
    assert_eq!(
        (&st["status"], &st["alive"]),
        (&json!("running"), &json!(false))
    );
    assert_eq!(w.status_reaped()[0]["status"], "crashed");
    let h = w.history();
    assert_eq!(h.len(), 1);
    assert!(
        h[0]["ended_at"].is_string(),
        "the attempt of a crashed runner is still open: {:?}",
        h[0]
    );
    assert!(h[0]["outcome"].is_null(), "{:?}", h[0]);
    assert!(
        h[0]["error"].as_str().unwrap().contains("swr died"),
        "{:?}",
        h[0]
    );
    let out = w.cmd("").args(["history"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("unknown"), "{text}");
    assert!(!text.contains("running"), "{text}");
}

/// `swr run 2>&1 | head -2`: once the reader is gone the runner must go on (not panic and
/// die mid-attempt), and a later SIGTERM must still stop it.
#[test]
fn a_closed_stderr_neither_kills_the_runner_nor_swallows_a_stop() {
    let w = World::new(2, json!({}));
    let run = |plan: &str| {
        let mut c = w.cmd(plan);
        c.args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--spec",
            &w.spec,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child = c.spawn().unwrap();
        drop(child.stderr.take()); // the reader goes away before swr writes anything
        child
    };
    let mut child = run("sleep:0.3,sleep:0.3");
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0), "swr died when stderr was closed");
    assert_eq!(w.status()[0]["status"], "completed");

    let w2 = World::new(1, json!({}));
    let mut c = w2.cmd("hang");
    c.args([
        "run",
        "--project",
        &w2.project.display().to_string(),
        "--spec",
        &w2.spec,
    ])
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = c.spawn().unwrap();
    drop(child.stderr.take());
    w2.wait_for("the agent", Duration::from_secs(20), |w| {
        w.status()
            .first()
            .is_some_and(|r| r["agent"]["pid"].as_u64().unwrap_or(0) > 0)
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let code = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("swr ignored SIGTERM after its stderr was closed");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(code, Some(130));
    assert_eq!(w2.status()[0]["status"], "stopped");
}

/// `swr history | head`: no panic message, the exit status of a process killed by SIGPIPE.
#[test]
fn a_closed_stdout_ends_observers_quietly() {
    let w = World::new(3, json!({}));
    assert_eq!(w.run("ok,ok,ok").code, 0);
    for args in [vec!["history"], vec!["status", "--all"]] {
        let mut child = w
            .cmd("")
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
    }
}

#[test]
fn zero_bounds_are_usage_errors_not_empty_runs() {
    let w = World::new(1, json!({}));
    for bound in [["--max-iterations", "0"], ["--max-runtime", "0s"]] {
        let mut args = w.run_args();
        args.extend(bound.iter().map(|s| s.to_string()));
        let out = w.cmd("ok").args(&args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "{bound:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(w.status().is_empty(), "no runner may be created");
}

/// The log directory replaced by a file mid-run: the run fails naming the log directory,
/// not the project.
#[test]
fn a_log_dir_that_breaks_mid_run_is_named_in_the_failure() {
    let w = World::new(2, json!({}));
    let child = w.spawn("sleep:1.5,ok");
    w.wait_for("the first attempt", Duration::from_secs(20), |w| {
        w.history().len() == 1
    });
    let logs = w.project.join(".spec-workflow/logs").join(&w.spec);
    std::fs::remove_dir_all(&logs).unwrap();
    std::fs::write(&logs, "not a directory").unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let reason = w.status()[0]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains(&logs.display().to_string()),
        "the failure does not name the log dir: {reason}"
    );
}

/// Two `swr run --all` on one project: the second skips the spec the first holds and does
/// the others instead of giving up on all of them.
#[test]
fn run_all_skips_a_spec_another_runner_holds() {
    let w = World::new(1, json!({}));
    let other = w.project.join(".spec-workflow/specs/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("tasks.md"), "- [ ] 1. Other task\n").unwrap();
    git(&w.project, &["add", "-A"]);
    git(&w.project, &["commit", "-q", "-m", "other spec"]);

    let mut holder = w.spawn("hang"); // holds `feat`
    w.wait_for("the holder", Duration::from_secs(20), |w| {
        w.status().first().is_some_and(|r| r["status"] == "running")
    });
    let out = w
        .cmd("ok")
        .args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--all",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(75),
        "feat is still being run: {stderr}"
    );
    assert!(stderr.contains("skipping spec 'feat'"), "{stderr}");
    let done = std::fs::read_to_string(other.join("tasks.md")).unwrap();
    assert!(
        done.contains("- [x] 1."),
        "the free spec was not run: {stderr}"
    );

    let stop = w.cmd("").args(["stop", "feat"]).output().unwrap();
    assert!(stop.status.success());
    assert_eq!(holder.wait().unwrap().code(), Some(130));
}

/// `swr logs -f` on a runner that is then killed -9 must end instead of following a log
/// nobody writes forever. It only looks (it used to reap the runner as a side effect): the
/// orphaned agent is killed by `swr status --reap`.
#[test]
fn logs_follow_ends_when_the_runner_is_killed_9() {
    let w = World::new(1, json!({}));
    let mut runner = w.spawn("hang");
    w.wait_for("the agent", Duration::from_secs(20), |w| {
        w.status()
            .first()
            .is_some_and(|r| r["agent"]["pid"].as_u64().unwrap_or(0) > 0)
    });
    let agent = w.status()[0]["agent"]["pid"].as_u64().unwrap() as u32;
    let mut follow = w
        .cmd("")
        .args(["logs", "feat", "-f"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(300));
    runner.kill().unwrap();
    runner.wait().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(s) = follow.try_wait().unwrap() {
            assert!(s.success(), "{s:?}");
            break;
        }
        if std::time::Instant::now() > deadline {
            let _ = follow.kill();
            panic!("logs -f kept following a dead runner");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        run_support::alive(agent),
        "a read-only command killed the agent"
    );
    w.status_reaped();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while run_support::alive(agent) && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !run_support::alive(agent),
        "the orphaned agent is still alive"
    );
}

/// `swr run --spec feat` from a subdirectory of the project finds the project, like git.
#[test]
fn run_without_project_finds_it_from_a_subdirectory() {
    let w = World::new(1, json!({}));
    let sub = w.project.join("src/deep");
    std::fs::create_dir_all(&sub).unwrap();
    let out = w
        .cmd("ok")
        .args(["run", "--spec", "feat", "--json"])
        .current_dir(&sub)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(w.tasks_done(), 1);
    assert_eq!(w.status()[0]["project"], w.project.display().to_string());
}

/// An agent that deletes tasks.md no longer ends the run (it did, as "tasks.md became
/// unreadable", before the tasks.md guard): swr puts the file back after every attempt, warns on
/// the attempt, and the agent, which never gets anything done, is stopped by the circuit
/// breaker with the user's task list intact.
#[test]
fn an_agent_deleting_tasks_md_gets_it_restored_every_time() {
    let w = World::new(
        2,
        json!({"provider": "rm", "providers": {"rm": {
            "command": ["sh", "-c", "rm \"$SWR_TASKS_PATH\"; echo removed"],
            "prompt": "stdin", "output": "text"}}}),
    );
    let tasks = w.project.join(".spec-workflow/specs/feat/tasks.md");
    let before = std::fs::read_to_string(&tasks).unwrap();
    let r = w.run("");
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "circuit_open");
    assert_eq!(std::fs::read_to_string(&tasks).unwrap(), before);
    let st = &w.status()[0];
    assert_eq!(st["status"], "failed");
    let id = st["runner_id"].as_str().unwrap();
    assert!(
        w.project
            .join(".spec-workflow/logs/retries")
            .join(format!("{id}.json"))
            .is_file()
    );
    let h = w.history();
    assert_eq!(h.len(), 3, "no_commit_limit attempts");
    for a in &h {
        let warning = a["warning"].as_str().unwrap_or_default();
        assert!(warning.contains("was missing: restored"), "{a}");
        let log = std::fs::read_to_string(a["log_path"].as_str().unwrap()).unwrap();
        assert!(log.contains("# outcome: "), "no footer: {log}");
    }
}

/// A rate limit whose reset is already past, repeated: waits grow like the retry backoff
/// (never under a second) instead of re-running the agent in a tight loop that never uses up
/// a retry.
#[test]
fn a_repeated_rate_limit_with_a_past_reset_backs_off() {
    let w = World::new(1, json!({}));
    let plan = vec!["ratelimit:0"; 200].join(",");
    let mut child = w.spawn(&plan);
    w.wait_for("three attempts", Duration::from_secs(60), |w| {
        w.history().len() >= 3
    });
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(130));
    let h = w.history();
    // The first at once, then retry_backoff_seconds 0.2 (raised to the 1 s floor) × 2.0:
    // 1 s, 2 s, 4 s...
    let delays: Vec<u64> = h
        .iter()
        .filter_map(|a| a["delay_before_next_ms"].as_u64())
        .collect();
    assert!(delays.len() >= 2, "{h:?}");
    assert!(delays[1] >= 1000, "{h:?}");
    if let Some(d) = delays.get(2) {
        assert!(*d >= 2000, "{h:?}");
    }
}

/// `run --all --max-runtime D` bounds the whole command: a later spec gets what is left of
/// D, not a fresh D.
#[test]
fn max_runtime_bounds_run_all_as_a_whole() {
    let w = World::new(1, json!({}));
    let other = w.project.join(".spec-workflow/specs/other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(
        other.join("tasks.md"),
        "- [ ] 1. One\n- [ ] 2. Two\n- [ ] 3. Three\n",
    )
    .unwrap();
    git(&w.project, &["add", "-A"]);
    git(&w.project, &["commit", "-q", "-m", "other spec"]);
    let plan = ["sleep:1.5"; 10].join(",");
    let out = w
        .cmd(&plan)
        .args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--all",
            "--max-runtime",
            "2s",
            "--json",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let other_attempts = w.history().iter().filter(|a| a["spec"] == "other").count();
    // feat takes 1.5 s of the 2 s; `other` may start one iteration, not two.
    assert!(
        other_attempts <= 1,
        "{other_attempts} attempts on the second spec"
    );
}
