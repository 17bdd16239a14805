//! Real processes under the supervisor: exits, spawn errors, stdin, timers, stop and kill,
//! leftovers (grandchildren, setsid escapees), long lines, invalid UTF-8, orphan recovery.
#![allow(clippy::unwrap_used)]

use std::io::Read;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use swr_core::supervise::{
    self, AttemptExit, CommandSpec, ExitReport, KillReason, Line, SpawnError, StdinInput, Stream,
    SuperviseOptions, TimeoutKind, kill_orphans, signal_name,
};

fn sh(script: &str) -> CommandSpec {
    CommandSpec {
        program: "sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![],
        env_remove: vec![],
        cwd: std::env::temp_dir(),
        stdin: StdinInput::Null,
    }
}

fn opts() -> SuperviseOptions {
    SuperviseOptions {
        stop_grace: Duration::from_secs(2),
        ..SuperviseOptions::default()
    }
}

type Lines = Vec<(Stream, String)>;

async fn run(cmd: &CommandSpec, o: &SuperviseOptions) -> (ExitReport, Lines) {
    let a = supervise::spawn(cmd, o, None).await.expect("spawn");
    let mut lines = Vec::new();
    let r = a.wait(|s, l| lines.push((s, l.to_string()))).await;
    (r, lines)
}

/// Dead or a zombie (pid 1 of this sandbox does not reap orphans, and zombies hold nothing).
fn is_dead(pid: u32) -> bool {
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), None).is_ok();
    if !alive {
        return true;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat[stat.rfind(')').unwrap() + 1..]
            .trim_start()
            .starts_with('Z'),
        Err(_) => true,
    }
}

/// Allows the kernel a moment to deliver a SIGKILL already sent.
fn assert_dead_soon(pid: u32, what: &str) {
    let until = Instant::now() + Duration::from_secs(2);
    while !is_dead(pid) {
        assert!(Instant::now() < until, "{what} (pid {pid}) is still alive");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pid_line(lines: &Lines) -> u32 {
    lines
        .iter()
        .find_map(|(s, l)| {
            (*s == Stream::Stdout)
                .then(|| l.trim().parse().ok())
                .flatten()
        })
        .unwrap_or_else(|| panic!("no pid line in {lines:?}"))
}

#[tokio::test]
async fn exit_zero_with_both_streams_logged() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("attempt.log");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .unwrap();
    let a = supervise::spawn(
        &sh("echo hello; echo oops >&2; sleep 0.2; echo bye"),
        &opts(),
        Some(log),
    )
    .await
    .unwrap();
    assert_eq!(a.pid, a.pgid);
    assert!(a.start_time.is_some());
    let mut lines = Vec::new();
    let r = a.wait(|s, l| lines.push((s, l.to_string()))).await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!((r.raw_code, r.raw_signal), (Some(0), None));
    assert_eq!(r.stdout_bytes, 10);
    assert_eq!(r.stderr_bytes, 5);
    assert!(lines.contains(&(Stream::Stdout, "hello".into())));
    assert!(lines.contains(&(Stream::Stderr, "oops".into())));
    assert_eq!(lines.last(), Some(&(Stream::Stdout, "bye".into())));
    assert_eq!(r.tail, lines);
    assert!(!r.escalated_to_kill && !r.pipes_leaked);
    assert_eq!(r.leftovers_killed, 0);
    assert!(r.ended_at >= r.started_at);
    let log = std::fs::read_to_string(&log_path).unwrap();
    let mut got: Vec<&str> = log.lines().collect();
    got.sort_unstable();
    assert_eq!(got, ["[stderr] oops", "bye", "hello"], "log: {log:?}");
    assert!(log.ends_with("bye\n"));
}

#[tokio::test]
async fn exit_code_is_reported() {
    let (r, _) = run(&sh("exit 3"), &opts()).await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 3 });
}

#[tokio::test]
async fn death_by_signal_is_reported_with_its_name() {
    let (r, _) = run(&sh("kill -SEGV $$"), &opts()).await;
    assert_eq!(r.exit, AttemptExit::Signaled { signal: 11 });
    assert_eq!(r.raw_signal, Some(11));
    assert_eq!(signal_name(11), "SIGSEGV");
}

#[tokio::test]
async fn missing_binary_is_not_found() {
    let mut c = sh("");
    c.program = "swr-test-no-such-binary-xyz".into();
    let e = supervise::spawn(&c, &opts(), None).await.unwrap_err();
    assert_eq!(
        e,
        SpawnError::NotFound {
            program: "swr-test-no-such-binary-xyz".into()
        }
    );
    c.program = "/nonexistent/dir/agent".into();
    let e = supervise::spawn(&c, &opts(), None).await.unwrap_err();
    assert!(matches!(e, SpawnError::NotFound { .. }), "{e:?}");
}

#[tokio::test]
async fn non_executable_file_is_permission_denied() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent");
    std::fs::write(&f, "#!/bin/sh\necho hi\n").unwrap();
    let mut c = sh("");
    c.program = f.to_string_lossy().into_owned();
    c.args.clear();
    let e = supervise::spawn(&c, &opts(), None).await.unwrap_err();
    assert!(matches!(e, SpawnError::PermissionDenied { .. }), "{e:?}");
}

#[tokio::test]
async fn missing_working_directory_is_not_mistaken_for_a_missing_program() {
    let mut c = sh("true");
    c.cwd = PathBuf::from("/nonexistent/swr/project");
    let e = supervise::spawn(&c, &opts(), None).await.unwrap_err();
    assert!(matches!(e, SpawnError::Other { .. }), "{e:?}");
}

#[tokio::test]
async fn stdin_text_is_delivered_then_closed() {
    let mut c = sh("cat; echo done");
    c.stdin = StdinInput::Text("line one\nline two".into());
    let (r, lines) = tokio::time::timeout(Duration::from_secs(10), run(&c, &opts()))
        .await
        .expect("cat must see EOF on stdin");
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    let texts: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(texts, ["line one", "line twodone"]);
}

#[tokio::test]
async fn big_stdin_does_not_deadlock_against_big_output() {
    // 4 MiB in, echoed back out: both pipes fill unless writing and reading are concurrent.
    let mut c = sh("cat");
    c.stdin = StdinInput::Text("x".repeat(1023) + "\n").map_text(|t| t.repeat(4096));
    let (r, lines) = tokio::time::timeout(Duration::from_secs(30), run(&c, &opts()))
        .await
        .expect("no deadlock");
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!(r.stdout_bytes, 4 * 1024 * 1024);
    assert_eq!(lines.len(), 4096);
}

trait MapText {
    fn map_text(self, f: impl FnOnce(String) -> String) -> Self;
}
impl MapText for StdinInput {
    fn map_text(self, f: impl FnOnce(String) -> String) -> Self {
        match self {
            StdinInput::Text(t) => StdinInput::Text(f(t)),
            StdinInput::Null => StdinInput::Null,
        }
    }
}

#[tokio::test]
async fn idle_timeout_fires_on_a_silent_process() {
    let o = SuperviseOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        ..opts()
    };
    let t = Instant::now();
    let (r, _) = run(&sh("echo start; exec sleep 30"), &o).await;
    assert_eq!(
        r.exit,
        AttemptExit::TimedOut {
            kind: TimeoutKind::Idle
        }
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert!(r.duration >= Duration::from_millis(300));
    assert_eq!(r.raw_signal, Some(15), "sleep dies of SIGTERM");
    assert!(!r.escalated_to_kill);
}

#[tokio::test]
async fn output_resets_the_idle_timer_and_the_wall_timer_still_ends_it() {
    let o = SuperviseOptions {
        idle_timeout: Some(Duration::from_millis(500)),
        wall_timeout: Some(Duration::from_secs(2)),
        ..opts()
    };
    let (r, lines) = run(&sh("while true; do echo tick; sleep 0.1; done"), &o).await;
    assert_eq!(
        r.exit,
        AttemptExit::TimedOut {
            kind: TimeoutKind::Wall
        }
    );
    assert!(r.duration >= Duration::from_secs(2), "{:?}", r.duration);
    assert!(r.duration < Duration::from_secs(10), "{:?}", r.duration);
    assert!(lines.len() >= 5, "only {} ticks", lines.len());
}

#[tokio::test]
async fn wall_timeout_fires() {
    let o = SuperviseOptions {
        wall_timeout: Some(Duration::from_millis(300)),
        ..opts()
    };
    let t = Instant::now();
    let (r, _) = run(&sh("exec sleep 30"), &o).await;
    assert_eq!(
        r.exit,
        AttemptExit::TimedOut {
            kind: TimeoutKind::Wall
        }
    );
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
}

const IGNORES_TERM: &str = "trap '' TERM; echo ready; while true; do sleep 0.05; done";

#[tokio::test]
async fn stop_escalates_to_sigkill_after_the_grace_when_term_is_ignored() {
    let o = SuperviseOptions {
        stop_grace: Duration::from_millis(700),
        ..opts()
    };
    let a = supervise::spawn(&sh(IGNORES_TERM), &o, None).await.unwrap();
    let h = a.stop_handle();
    let stopped_at = Arc::new(Mutex::new(None));
    let s2 = Arc::clone(&stopped_at);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        a.wait(move |_, l| {
            if l == "ready" {
                *s2.lock().unwrap() = Some(Instant::now());
                h.stop();
            }
        }),
    )
    .await
    .expect("SIGKILL after the grace");
    let since_stop = stopped_at.lock().unwrap().expect("saw ready").elapsed();
    assert_eq!(r.exit, AttemptExit::Stopped);
    assert!(r.escalated_to_kill);
    assert_eq!(r.raw_signal, Some(9));
    assert!(since_stop >= Duration::from_millis(700), "{since_stop:?}");
}

/// Timers too long for the clock (validation caps config values, but the supervisor must not
/// rely on it) mean "never": no "overflow when adding duration to instant" panic, neither at
/// spawn nor when a stop starts the grace period.
#[tokio::test]
async fn timers_too_long_for_the_clock_never_fire_and_never_panic() {
    let o = SuperviseOptions {
        idle_timeout: Some(Duration::MAX),
        wall_timeout: Some(Duration::MAX),
        stop_grace: Duration::MAX,
        ..opts()
    };
    let (r, lines) = run(&sh("echo done"), &o).await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!(lines, vec![(Stream::Stdout, "done".to_string())]);

    let a = supervise::spawn(&sh("echo ready; exec sleep 30"), &o, None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        a.wait(move |_, l| {
            if l == "ready" {
                h.stop();
            }
        }),
    )
    .await
    .expect("SIGTERM ends it");
    assert_eq!(r.exit, AttemptExit::Stopped);
    assert_eq!(r.raw_signal, Some(15));
    assert!(supervise::deadline_after(tokio::time::Instant::now(), Some(Duration::MAX)).is_none());
}

#[tokio::test]
async fn stop_without_escalation_when_term_works() {
    let a = supervise::spawn(&sh("echo ready; exec sleep 30"), &opts(), None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let r = a
        .wait(move |_, l| {
            if l == "ready" {
                h.stop();
                h.stop();
            }
        })
        .await;
    assert_eq!(r.exit, AttemptExit::Stopped);
    assert!(!r.escalated_to_kill);
    assert_eq!(r.raw_signal, Some(15));
}

#[tokio::test]
async fn kill_is_immediate() {
    let o = SuperviseOptions {
        stop_grace: Duration::from_secs(60),
        ..opts()
    };
    let a = supervise::spawn(&sh(IGNORES_TERM), &o, None).await.unwrap();
    let h = a.stop_handle();
    let t = Instant::now();
    let r = a
        .wait(move |_, l| {
            if l == "ready" {
                h.stop();
                h.kill();
            }
        })
        .await;
    assert_eq!(r.exit, AttemptExit::Stopped);
    assert!(r.escalated_to_kill);
    assert_eq!(r.raw_signal, Some(9));
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
}

#[tokio::test]
async fn stop_from_another_task() {
    let a = supervise::spawn(&sh("exec sleep 30"), &opts(), None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let waiter = tokio::spawn(a.wait(|_, _| {}));
    tokio::time::sleep(Duration::from_millis(200)).await;
    h.stop();
    let r = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(r.exit, AttemptExit::Stopped);
    h.stop(); // after the end: a no-op
}

#[tokio::test]
async fn grandchild_holding_the_pipe_does_not_stall_and_is_killed() {
    let t = Instant::now();
    let (r, lines) = run(&sh("sleep 1000 & echo $!; echo hi"), &opts()).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert!(lines.contains(&(Stream::Stdout, "hi".into())));
    assert_eq!(r.leftovers_killed, 1);
    assert!(!r.pipes_leaked);
    assert_dead_soon(pid_line(&lines), "grandchild sleep");
}

const ESCAPEE: &str = "setsid sleep 1000 </dev/null >/dev/null 2>&1 & echo $!";

#[tokio::test]
async fn setsid_escapee_is_dead_after_success() {
    let (r, lines) = run(&sh(ESCAPEE), &opts()).await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert!(r.leftovers_killed >= 1);
    assert_dead_soon(pid_line(&lines), "setsid escapee");
}

#[tokio::test]
async fn double_forked_setsid_escapee_holding_the_pipe_is_dead_after_success() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("pid");
    let script = format!(
        r#"F={f}; (setsid sh -c 'echo $$ > "$0"; exec sleep 1000' "$F" &); while [ ! -s "$F" ]; do sleep 0.01; done; cat "$F""#,
        f = f.display()
    );
    let t = Instant::now();
    let (r, lines) = run(&sh(&script), &opts()).await;
    assert!(
        t.elapsed() < Duration::from_secs(5),
        "took {:?}",
        t.elapsed()
    );
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert!(r.leftovers_killed >= 1);
    assert_dead_soon(pid_line(&lines), "double-forked escapee");
}

#[tokio::test]
async fn setsid_escapee_is_dead_after_a_timeout() {
    let o = SuperviseOptions {
        wall_timeout: Some(Duration::from_millis(500)),
        ..opts()
    };
    let (r, lines) = run(&sh(&format!("{ESCAPEE}; exec sleep 30")), &o).await;
    assert_eq!(
        r.exit,
        AttemptExit::TimedOut {
            kind: TimeoutKind::Wall
        }
    );
    assert_dead_soon(pid_line(&lines), "setsid escapee");
}

#[tokio::test]
async fn setsid_escapee_is_dead_after_a_stop() {
    let a = supervise::spawn(&sh(&format!("{ESCAPEE}; exec sleep 30")), &opts(), None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let mut lines = Vec::new();
    let r = a
        .wait(|s, l| {
            lines.push((s, l.to_string()));
            h.stop();
        })
        .await;
    assert_eq!(r.exit, AttemptExit::Stopped);
    assert_dead_soon(pid_line(&lines), "setsid escapee");
}

#[tokio::test]
async fn dropping_an_attempt_kills_it() {
    let a = supervise::spawn(&sh("exec sleep 1000"), &opts(), None)
        .await
        .unwrap();
    let pid = a.pid;
    drop(a);
    assert_dead_soon(pid, "abandoned attempt");
}

#[tokio::test]
async fn long_line_is_cut_for_the_callback_but_whole_in_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("attempt.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let o = SuperviseOptions {
        max_line_bytes: 1024 * 1024,
        ..opts()
    };
    let a = supervise::spawn(&sh("head -c 5000000 /dev/zero | tr '\\0' a"), &o, Some(log))
        .await
        .unwrap();
    let mut got = Vec::new();
    let r = a
        .wait_lines(|l: Line<'_>| got.push((l.text.len(), l.truncated, l.len)))
        .await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!(got, [(1024 * 1024, true, 5_000_000)]);
    assert_eq!(r.stdout_bytes, 5_000_000);
    assert!(r.tail[0].1.len() <= 4096);
    let mut content = Vec::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_end(&mut content)
        .unwrap();
    assert_eq!(content.len(), 5_000_000);
    assert!(content.iter().all(|&b| b == b'a'));
}

#[tokio::test]
async fn invalid_utf8_arrives_lossy() {
    let (r, lines) = run(&sh(r"printf 'a\377b\n'"), &opts()).await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    assert_eq!(lines, [(Stream::Stdout, "a\u{fffd}b".to_string())]);
}

#[tokio::test]
async fn the_marker_reaches_the_agent_and_nests() {
    let mut c = sh("echo \"$SWR_ATTEMPT_MARKER\"");
    c.env.push(("SWR_ATTEMPT_MARKER".into(), "outer".into()));
    let o = SuperviseOptions {
        marker: "inner-token".into(),
        ..opts()
    };
    let (_, lines) = run(&c, &o).await;
    assert_eq!(lines, [(Stream::Stdout, "outer,inner-token".to_string())]);
}

#[test]
fn kill_orphans_kills_a_marked_process_outside_any_attempt() {
    use std::os::unix::process::{CommandExt, ExitStatusExt};
    let token = supervise::new_marker();
    let mut marked = std::process::Command::new("sleep")
        .arg("1000")
        .env("SWR_ATTEMPT_MARKER", format!("someone-else,{token}"))
        .process_group(0)
        .spawn()
        .unwrap();
    let mut bystander = std::process::Command::new("sleep")
        .arg("1000")
        .process_group(0)
        .spawn()
        .unwrap();
    let st = swr_core::procinfo::start_time(bystander.id()).unwrap();
    // Marked process: killed. Bystander: recorded start time does not match, left alone.
    let report = kill_orphans(
        &token,
        Some(bystander.id()),
        Some(bystander.id()),
        Some(st + 1),
    );
    assert!(report.leader_mismatch);
    assert_eq!(report.killed.len(), 1, "{report:?}");
    assert_eq!(report.killed[0].0.pid, marked.id());
    assert_eq!(report.killed[0].1, KillReason::Marker);
    assert_eq!(marked.wait().unwrap().signal(), Some(9));
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        bystander.try_wait().unwrap().is_none(),
        "bystander was signalled"
    );

    // With the right start time the group is killed.
    let report = kill_orphans("", Some(bystander.id()), Some(bystander.id()), Some(st));
    assert!(!report.leader_mismatch);
    assert_eq!(report.killed.len(), 1, "{report:?}");
    assert_eq!(report.killed[0].1, KillReason::Group);
    assert_eq!(bystander.wait().unwrap().signal(), Some(9));
}

/// Runs `helper_in_marked_process` in a child copy of this test binary that carries the
/// marker and leads its own group, so `kill_orphans` is called from inside what it kills.
#[test]
fn kill_orphans_never_kills_the_caller() {
    use std::os::unix::process::CommandExt;
    let token = supervise::new_marker();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "helper_in_marked_process",
            "--ignored",
            "--nocapture",
        ])
        .env("SWR_ATTEMPT_MARKER", &token)
        .env("SWR_TEST_HELPER_TOKEN", &token)
        .process_group(0)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "helper died: {:?}\n{stdout}",
        out.status
    );
    assert!(stdout.contains("helper survived, killed 1"), "{stdout}");
}

#[test]
#[ignore = "run by kill_orphans_never_kills_the_caller"]
fn helper_in_marked_process() {
    use std::os::unix::process::ExitStatusExt;
    let Ok(token) = std::env::var("SWR_TEST_HELPER_TOKEN") else {
        return;
    };
    // Inherits the marker and our process group.
    let mut child = std::process::Command::new("sleep")
        .arg("1000")
        .spawn()
        .unwrap();
    let me = std::process::id();
    let pgid = nix::unistd::getpgrp().as_raw() as u32;
    assert_eq!(pgid, me);
    let st = swr_core::procinfo::start_time(me).unwrap();
    let report = kill_orphans(&token, Some(pgid), Some(me), Some(st));
    assert_eq!(child.wait().unwrap().signal(), Some(9));
    assert!(report.killed.iter().all(|(p, _)| p.pid != me));
    println!("helper survived, killed {}", report.killed.len());
}

#[tokio::test]
async fn exit_to_return_latency_of_true() {
    let mut totals = Vec::new();
    let mut afters = Vec::new();
    for _ in 0..20 {
        let mut c = sh("");
        c.program = "true".into();
        c.args.clear();
        let t = Instant::now();
        let (r, _) = run(&c, &opts()).await;
        totals.push(t.elapsed());
        afters.push(r.after_exit);
        assert_eq!(r.exit, AttemptExit::Exited { code: 0 });
    }
    totals.sort();
    afters.sort();
    println!(
        "`true`: leader exit seen -> wait() returns: median {:?}, max {:?}; spawn -> return: median {:?}, max {:?}",
        afters[10], afters[19], totals[10], totals[19]
    );
    assert!(afters[19] < Duration::from_secs(5));
}

#[tokio::test]
async fn executable_that_is_not_a_program_is_permission_denied() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("agent");
    std::fs::write(&f, b"\x7fNOT-ELF\x00\x01\x02garbage").unwrap();
    std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut c = sh("");
    c.program = f.to_string_lossy().into_owned();
    c.args.clear();
    match supervise::spawn(&c, &opts(), None).await {
        Err(e) => assert!(matches!(e, SpawnError::PermissionDenied { .. }), "{e:?}"),
        Ok(a) => panic!("spawned: {:?}", a.wait(|_, _| {}).await.exit),
    }
}

#[tokio::test]
async fn stop_requested_before_wait_is_honoured() {
    let a = supervise::spawn(&sh("exec sleep 30"), &opts(), None)
        .await
        .unwrap();
    a.stop_handle().stop();
    let r = tokio::time::timeout(Duration::from_secs(5), a.wait(|_, _| {}))
        .await
        .expect("stop seen");
    assert_eq!(r.exit, AttemptExit::Stopped);
}

#[tokio::test]
async fn log_is_visible_while_the_attempt_runs() {
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("attempt.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let a = supervise::spawn(
        &sh("echo first; echo warn >&2; exec sleep 30"),
        &opts(),
        Some(log),
    )
    .await
    .unwrap();
    let h = a.stop_handle();
    let waiter = tokio::spawn(a.wait(|_, _| {}));
    let until = Instant::now() + Duration::from_secs(3);
    loop {
        let content = std::fs::read_to_string(&log_path).unwrap();
        if content.contains("first\n") && content.contains("[stderr] warn\n") {
            break;
        }
        assert!(Instant::now() < until, "log not flushed live: {content:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!waiter.is_finished(), "the attempt is still running");
    h.kill();
    let r = waiter.await.unwrap();
    assert_eq!(r.exit, AttemptExit::Stopped);
}

/// After `result_seen` the agent has `result_grace` to exit; output after the result resets
/// no timer (here it keeps printing, which would hold off any idle timeout forever).
#[tokio::test]
async fn an_agent_lingering_after_its_result_is_stopped_after_the_grace() {
    let o = SuperviseOptions {
        idle_timeout: Some(Duration::from_millis(300)),
        result_grace: Duration::from_millis(800),
        ..opts()
    };
    let a = supervise::spawn(
        &sh("echo result; while true; do echo still here; sleep 0.1; done"),
        &o,
        None,
    )
    .await
    .unwrap();
    let h = a.stop_handle();
    let seen = Arc::new(Mutex::new(None));
    let s2 = Arc::clone(&seen);
    let r = tokio::time::timeout(
        Duration::from_secs(20),
        a.wait(move |_, l| {
            if l == "result" {
                *s2.lock().unwrap() = Some(Instant::now());
                h.result_seen();
            }
        }),
    )
    .await
    .expect("stopped after the result grace");
    let since = seen.lock().unwrap().expect("saw the result").elapsed();
    assert_eq!(r.exit, AttemptExit::StoppedAfterResult);
    assert!(since >= Duration::from_millis(800), "{since:?}");
    assert_eq!(r.raw_signal, Some(15));
}

/// An agent that exits by itself within the grace ends as it exited.
#[tokio::test]
async fn an_agent_exiting_after_its_result_within_the_grace_is_an_ordinary_exit() {
    let o = SuperviseOptions {
        result_grace: Duration::from_secs(5),
        ..opts()
    };
    let a = supervise::spawn(&sh("echo result; sleep 0.3; exit 3"), &o, None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let r = a
        .wait(move |_, l| {
            if l == "result" {
                h.result_seen();
            }
        })
        .await;
    assert_eq!(r.exit, AttemptExit::Exited { code: 3 });
}

/// A stop asked for after the result still wins: the user's stop is never swallowed.
#[tokio::test]
async fn a_stop_after_the_result_is_a_stop() {
    let o = SuperviseOptions {
        result_grace: Duration::from_secs(30),
        ..opts()
    };
    let a = supervise::spawn(&sh("echo result; exec sleep 30"), &o, None)
        .await
        .unwrap();
    let h = a.stop_handle();
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        a.wait(move |_, l| {
            if l == "result" {
                h.result_seen();
                h.stop();
            }
        }),
    )
    .await
    .unwrap();
    assert_eq!(r.exit, AttemptExit::Stopped);
}
