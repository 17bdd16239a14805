//! Issue 9, "the overnight run survives what users and machines do to it", end to end with
//! real processes: hang-ups and SIGQUIT, two runners on one spec (a symlinked spec directory,
//! a deleted cache dir), FIFOs and devices in place of tasks.md, durations too large for the
//! clock, rate limits configured to no wait at all, a pending wait that must be visible and
//! clearable, terminal escapes from agents and file names, a store that refuses writes, a
//! read-only cache dir, and a prompt over the argv limit.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use run_support::{World, alive, git};
use serde_json::{Value, json};

fn signal(child: &Child, sig: Signal) {
    kill(Pid::from_raw(child.id() as i32), sig).unwrap();
}

/// The exit code of `child`, which must end within `limit` (killed and failed otherwise).
fn exit_within(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            if let Some(sig) = std::os::unix::process::ExitStatusExt::signal(&st) {
                panic!("swr died of signal {sig}");
            }
            return st.code();
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("swr still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Runs `cmd` to its end; a command that hangs fails the test instead of hanging it.
fn output_within(cmd: &mut Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + limit;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "hung for {limit:?}: {cmd:?}\nstderr: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The pid of the agent the runner recorded, once it has one.
fn agent_pid(w: &World) -> u32 {
    let mut pid = 0;
    w.wait_for("the agent", Duration::from_secs(30), |w| {
        pid = w
            .status()
            .first()
            .and_then(|r| r["agent"]["pid"].as_u64())
            .unwrap_or(0) as u32;
        pid > 0
    });
    pid
}

fn assert_dead_soon(pid: u32, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "{what} (pid {pid}) is still alive"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `swr run` of the world's spec, plain progress lines on stderr (no --json).
fn spawn_plain(w: &World, plan: &str, wrap: Option<&str>) -> Child {
    let mut args = w.run_args();
    args.retain(|a| a != "--json");
    let mut c = match wrap {
        Some(prog) => {
            // `nohup swr …`: the same environment, through the wrapper.
            let inner = w.cmd(plan);
            let mut c = Command::new(prog);
            c.arg(inner.get_program());
            c.args(inner.get_args());
            c.env_clear();
            for (k, v) in inner.get_envs() {
                if let Some(v) = v {
                    c.env(k, v);
                }
            }
            c.current_dir(w.dir.path());
            c
        }
        None => w.cmd(plan),
    };
    c.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

// ---------------------------------------------------------------------------------------------
// Signals

/// `nohup swr run …` then logging out: the SIGHUP that nohup told swr to ignore must stay
/// ignored, and the run goes on to its end.
#[test]
fn nohup_swr_run_survives_a_hang_up() {
    let w = World::new(1, json!({}));
    let mut child = spawn_plain(&w, "sleep:2", Some("nohup"));
    let agent = agent_pid(&w);
    signal(&child, Signal::SIGHUP);
    assert_eq!(exit_within(&mut child, Duration::from_secs(60)), Some(0));
    assert!(!alive(agent));
    let st = &w.status()[0];
    assert_eq!(st["status"], "completed", "{st}");
    assert_eq!(w.tasks_done(), 1);
}

/// Without nohup a hang-up stops the run like Ctrl-C, and says so: "hang-up", not "stopped by
/// the user", in the final line and in the store.
#[test]
fn a_hang_up_stops_the_run_and_is_named_as_such() {
    let w = World::new(1, json!({}));
    let mut child = spawn_plain(&w, "hang", None);
    let agent = agent_pid(&w);
    signal(&child, Signal::SIGHUP);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
    assert_dead_soon(agent, "the agent");
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert!(stderr.contains("hang-up"), "{stderr}");
    assert!(!stderr.contains("stopped by the user"), "{stderr}");
    let st = &w.status()[0];
    assert_eq!(st["status"], "stopped");
    assert!(st["reason"].as_str().unwrap().contains("hang-up"), "{st}");
}

/// Ctrl-\ (SIGQUIT) used to dump core and leave the agent running unsupervised.
#[test]
fn sigquit_stops_the_agent_like_sigterm() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("hang");
    let agent = agent_pid(&w);
    signal(&child, Signal::SIGQUIT);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
    assert_dead_soon(agent, "the agent");
    assert_eq!(w.status()[0]["status"], "stopped");
    assert!(!w.project.join("core").exists());
}

/// Ctrl-C while a retry backoff runs: no agent to stop, so swr must not say it stops one.
#[test]
fn a_stop_during_a_backoff_does_not_claim_to_stop_an_agent() {
    let w = World::new(
        1,
        json!({"retry_backoff_seconds": 60, "retry_max_backoff_seconds": 60}),
    );
    let mut child = spawn_plain(&w, "crash,ok", None);
    w.wait_for("the retry", Duration::from_secs(30), |w| {
        w.status()
            .first()
            .is_some_and(|r| r["next_attempt_at"].is_string())
    });
    signal(&child, Signal::SIGINT);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
    let stderr = text(&child.wait_with_output().unwrap().stderr);
    assert!(!stderr.contains("stopping the agent"), "{stderr}");
    assert!(stderr.contains("no agent is running"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------
// One runner per spec

/// `specs/alias -> feat` is the same tasks.md: a second runner through the alias is refused
/// (exit 75) while the first runs.
#[test]
fn a_symlinked_spec_dir_cannot_be_run_twice() {
    let w = World::new(1, json!({}));
    let specs = w.project.join(".spec-workflow/specs");
    std::os::unix::fs::symlink("feat", specs.join("alias")).unwrap();
    let mut first = w.spawn("hang");
    agent_pid(&w);
    let out = output_within(
        w.cmd("ok").args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--spec",
            "alias",
        ]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(75), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("already being run"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(w.tasks_done(), 0);
    signal(&first, Signal::SIGTERM);
    assert_eq!(exit_within(&mut first, Duration::from_secs(30)), Some(130));
}

/// Cleaning `~/.cache` under a live runner (its locks, or the whole cache dir with the store)
/// must not let a second runner start on the same spec.
#[test]
fn deleting_the_cache_dir_under_a_runner_does_not_free_its_spec() {
    let w = World::new(1, json!({}));
    let cache = w.dir.path().join("cache");
    let mut first = w.spawn("hang");
    agent_pid(&w);
    let second = || output_within(w.cmd("ok").args(w.run_args()), Duration::from_secs(30));
    std::fs::remove_dir_all(cache.join("locks")).unwrap();
    let out = second();
    assert_eq!(
        out.status.code(),
        Some(75),
        "locks/ deleted: {}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(&cache).unwrap();
    let out = second();
    assert_eq!(
        out.status.code(),
        Some(75),
        "cache deleted: {}",
        text(&out.stderr)
    );
    assert_eq!(w.tasks_done(), 0, "a second runner worked on the spec");
    signal(&first, Signal::SIGTERM);
    assert_eq!(exit_within(&mut first, Duration::from_secs(30)), Some(130));
    // Once the first is gone the spec is free, and the cache is recreated private.
    let out = second();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    use std::os::unix::fs::PermissionsExt;
    for d in [cache.join("locks"), cache] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700, "{}", d.display());
    }
}

// ---------------------------------------------------------------------------------------------
// Bad files and values

/// A FIFO tasks.md blocked `open` in every command; a tasks.md linked to /dev/zero grew
/// `swr specs` to gigabytes. Each now costs its spec a warning, and the other specs work.
#[test]
fn a_fifo_or_a_device_as_tasks_md_costs_a_warning_not_a_hang() {
    let w = World::new(1, json!({}));
    let specs = w.project.join(".spec-workflow/specs");
    std::fs::create_dir_all(specs.join("pipe")).unwrap();
    nix::unistd::mkfifo(
        &specs.join("pipe/tasks.md"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .unwrap();
    std::fs::create_dir_all(specs.join("zero")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", specs.join("zero/tasks.md")).unwrap();
    std::fs::create_dir_all(specs.join("huge")).unwrap();
    std::fs::File::create(specs.join("huge/tasks.md"))
        .unwrap()
        .set_len(65 * 1024 * 1024)
        .unwrap();
    // Not the agent's business: its `git add -A` must not read them.
    std::fs::write(
        w.project.join(".git/info/exclude"),
        "/.spec-workflow/specs/pipe/\n/.spec-workflow/specs/zero/\n/.spec-workflow/specs/huge/\n",
    )
    .unwrap();
    let project = w.project.display().to_string();
    let limit = Duration::from_secs(60);

    let out = output_within(w.cmd("").args(["specs", "-p", &project]), limit);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(stdout.contains("feat"), "{stdout}");
    assert!(stderr.contains("not a regular file (a FIFO)"), "{stderr}");
    assert!(
        stderr.contains("not a regular file (a character device)"),
        "{stderr}"
    );
    assert!(stderr.contains("larger than 64 MB"), "{stderr}");

    // Doctor, of the project and of repos_root.
    let out = output_within(w.cmd("").args(["doctor", "-p", &project]), limit);
    assert!(
        text(&out.stdout).contains("a FIFO"),
        "{}",
        text(&out.stdout)
    );
    let out = output_within(w.cmd("").args(["doctor"]), limit);
    assert!(
        text(&out.stdout).contains("a FIFO"),
        "{}",
        text(&out.stdout)
    );

    let out = output_within(
        w.cmd("")
            .args(["run", "-p", &project, "--all", "--dry-run"]),
        limit,
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("spec:        feat"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        text(&out.stderr).contains("skipping spec 'pipe'"),
        "{}",
        text(&out.stderr)
    );

    let out = output_within(w.cmd("ok").args(w.run_args()), limit);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(w.tasks_done(), 1);
}

/// Values validation accepted and that then panicked the run (exit 101, runner "crashed"):
/// refused up front now, 78 from the config and 2 from a flag; `stats --since 1e12` means all
/// of history.
#[test]
fn durations_too_large_for_the_clock_are_refused_up_front() {
    for (key, value) in [
        ("activity_timeout_seconds", json!(1e19)),
        ("iteration_timeout_seconds", json!("3000000000000000h")),
        ("stop_grace_seconds", json!(1e19)),
        ("retry_backoff_seconds", json!("100000000h")),
        ("max_runtime", json!("3000000000000000h")),
    ] {
        let mut cfg = serde_json::Map::new();
        cfg.insert(key.to_string(), value);
        let w = World::new(1, Value::Object(cfg));
        let r = w.run("hang");
        assert_eq!(r.code, 78, "{key}: {}", r.stderr);
        assert!(
            r.stderr.contains(&format!("\"{key}\": at most")),
            "{}",
            r.stderr
        );
    }
    let w = World::new(1, json!({}));
    for flag in ["1e19", "3000000000000000h", "366d"] {
        let out = output_within(
            w.cmd("ok").args(w.run_args()).args(["--max-runtime", flag]),
            Duration::from_secs(30),
        );
        assert_eq!(out.status.code(), Some(2), "{flag}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains("at most 365 days"),
            "{}",
            text(&out.stderr)
        );
    }
    let out = output_within(
        w.cmd("").args(["stats", "--since", "1e12"]),
        Duration::from_secs(30),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

/// The largest values validation accepts meet the clock without a panic: the run goes on
/// normally.
#[test]
fn the_largest_accepted_durations_run_to_the_end() {
    let w = World::new(
        2,
        json!({
            "activity_timeout_seconds": "7d",
            "iteration_timeout_seconds": 604800,
            "stop_grace_seconds": 3600,
            "retry_backoff_seconds": 0.2,
            "retry_max_backoff_seconds": 86400,
            "rate_limit_wait_seconds": "7d",
            "rate_limit_jitter_seconds": 86400,
            "max_runtime": "365d",
        }),
    );
    let out = output_within(
        w.cmd("crash,ok,ok")
            .args(w.run_args())
            .args(["--max-runtime", "365d"]),
        Duration::from_secs(90),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(w.tasks_done(), 2);
}

/// The configuration that ran 1,938 attempts in 8 s: every wait and jitter at 0 and an agent
/// that keeps reporting a rate limit. After the first, waits never fall under a second and
/// grow.
#[test]
fn rate_limits_with_every_wait_configured_to_zero_still_back_off() {
    let w = World::new(
        1,
        json!({
            "rate_limit_wait_seconds": 0,
            "rate_limit_jitter_seconds": 0,
            "retry_backoff_seconds": 0,
            "retry_max_backoff_seconds": 0,
        }),
    );
    let plan = vec!["ratelimit:0"; 100].join(",");
    let mut child = w.spawn(&plan);
    w.wait_for("four attempts", Duration::from_secs(60), |w| {
        w.history().len() >= 4
    });
    signal(&child, Signal::SIGTERM);
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
    let h = w.history();
    // The first wait honours the (past) reset; then at least 1 s, 2 s, 4 s...
    for (i, pair) in h.windows(2).enumerate().skip(1) {
        let gap = run_support::ms(&pair[1]["started_at"]).unwrap()
            - run_support::ms(&pair[0]["ended_at"]).unwrap();
        let floor: i64 = 1000 << (i - 1);
        assert!(gap >= floor - 100, "attempts {gap} ms apart: {h:?}");
        let delay = pair[0]["delay_before_next_ms"].as_i64().unwrap();
        assert!(delay >= floor, "{h:?}");
    }
}

/// A bogus reset time held every later run; `swr status` did not say so and only SQLite could
/// clear it. Now status shows it, `--ignore-wait` starts anyway, `swr stop` clears it.
#[test]
fn a_pending_wait_shows_in_status_and_ignore_wait_or_stop_clear_it() {
    let w = World::new(2, json!({}));
    // The simulated agent counts its invocations across runs: every one of them rate limited.
    let limited = vec!["ratelimit:86000"; 20].join(",");
    let leave_a_wait = || {
        let mut child = w.spawn(&limited);
        w.wait_for("the wait", Duration::from_secs(30), |w| {
            w.status().first().is_some_and(|r| r["status"] == "waiting")
        });
        signal(&child, Signal::SIGTERM);
        assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
    };
    leave_a_wait();
    let out = output_within(w.cmd("").args(["status"]), Duration::from_secs(30));
    let shown = text(&out.stdout);
    assert!(shown.contains("rate-limit wait pending"), "{shown}");
    assert!(shown.contains("--ignore-wait"), "{shown}");
    let st = &w.status()[0];
    assert!(st["rate_limit_wait"]["until"].is_string(), "{st}");
    // The provider account's shared clock holds it too, and is cleared the same ways.
    assert!(st["account_rate_limit_wait"]["until"].is_string(), "{st}");

    let out = output_within(
        w.cmd("ok")
            .args(w.run_args())
            .args(["--max-iterations", "1", "--ignore-wait"]),
        Duration::from_secs(60),
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "one iteration, work left: {}",
        text(&out.stderr)
    );
    assert_eq!(w.tasks_done(), 1, "--ignore-wait did not start at once");
    let st = &w.status()[0];
    assert!(st["rate_limit_wait"].is_null(), "{st}");
    assert!(st["account_rate_limit_wait"].is_null(), "{st}");

    leave_a_wait();
    let out = output_within(w.cmd("").args(["stop", &w.spec]), Duration::from_secs(30));
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("cleared the rate-limit wait"),
        "{}",
        text(&out.stdout)
    );
    let st = &w.status()[0];
    assert!(st["rate_limit_wait"].is_null(), "{st}");
    assert!(st["account_rate_limit_wait"].is_null(), "{st}");
    let out = output_within(w.cmd("ok").args(w.run_args()), Duration::from_secs(60));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(w.tasks_done(), 2);
}

// ---------------------------------------------------------------------------------------------
// Output that reaches a terminal

/// An agent's `\e[2J` and `\e]0;title\a`, and a spec directory named with ESC and newline,
/// are shown escaped by the live progress, `status`, `history` and `specs`, never obeyed; a
/// 250-character spec name is cut instead of widening every row.
#[test]
fn agent_text_and_names_never_reach_the_terminal_raw() {
    let w = World::new(1, json!({}));
    let child = spawn_plain(&w, "escapes,ok", None);
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        !stderr.contains('\x1b'),
        "raw ESC in the progress: {stderr:?}"
    );
    assert!(stderr.contains("\\x1b]0;pwned"), "{stderr}");

    let evil = "ev\x1b[2Jil\nname";
    let long = "l".repeat(250);
    for name in [evil, long.as_str()] {
        let dir = w.project.join(".spec-workflow/specs").join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("tasks.md"), "- [ ] 1. Task\n").unwrap();
    }
    git(&w.project, &["add", "-A"]);
    git(&w.project, &["commit", "-q", "-m", "odd specs"]);
    let out = output_within(
        w.cmd("ok").args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--spec",
            evil,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains('\x1b'),
        "{:?}",
        text(&out.stderr)
    );
    let out = output_within(
        w.cmd("ok").args([
            "run",
            "--project",
            &w.project.display().to_string(),
            "--spec",
            &long,
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    for args in [
        vec!["status"],
        vec!["status", "--all"],
        vec!["history"],
        vec!["specs"],
    ] {
        let out = output_within(w.cmd("").args(&args), Duration::from_secs(30));
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        let shown = text(&out.stdout);
        assert!(!shown.contains('\x1b'), "{args:?}: raw ESC in {shown:?}");
        for line in shown.lines() {
            assert!(
                line.chars().count() < 200,
                "{args:?}: a line of {} chars",
                line.chars().count()
            );
            assert!(
                !line.starts_with("name"),
                "{args:?}: a forged line: {shown}"
            );
        }
        assert!(shown.contains("ev\\x1b[2Jil\\nname"), "{args:?}: {shown}");
        assert!(shown.contains('…'), "{args:?}: {shown}");
    }
    let out = output_within(w.cmd("").args(["history"]), Duration::from_secs(30));
    assert!(
        text(&out.stdout).contains("\\x1b[31mred"),
        "{}",
        text(&out.stdout)
    );
}

/// On a real terminal the progress bar shows the agent's last line: escaped there too. Needs
/// util-linux `script` for a pty; skipped (with a notice) without it.
#[test]
fn the_live_progress_bar_escapes_the_agents_last_line() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("skipped: `script` (util-linux) is not installed");
        return;
    }
    let w = World::new(1, json!({}));
    let inner = w.cmd("escapes,sleep:1");
    let mut argv = vec![inner.get_program().to_string_lossy().into_owned()];
    argv.extend(inner.get_args().map(|a| a.to_string_lossy().into_owned()));
    let mut args = w.run_args();
    args.retain(|a| a != "--json");
    argv.extend(args);
    let line = argv
        .iter()
        .map(|a| format!("'{}'", a.replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ");
    let mut c = Command::new("script");
    c.args(["-qfec", &line, "/dev/null"]).env_clear();
    for (k, v) in inner.get_envs() {
        if let Some(v) = v {
            c.env(k, v);
        }
    }
    c.env("TERM", "xterm").current_dir(w.dir.path());
    let out = output_within(&mut c, Duration::from_secs(60));
    let shown = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{shown}");
    assert!(
        !shown.contains("\x1b]0;pwned"),
        "the agent set the window title: {shown:?}"
    );
    assert!(
        !shown.contains("\x1b[2J"),
        "the agent cleared the screen: {shown:?}"
    );
    assert!(shown.contains("\\x1b]0;pwned"), "{shown:?}");
}

// ---------------------------------------------------------------------------------------------
// Smaller ones

/// `stop` and `logs` take `-p NAME` like `run -p NAME` (a project under repos_root).
#[test]
fn stop_and_logs_take_a_project_name_like_run() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("hang");
    agent_pid(&w);
    // From a directory without a `proj/`: the name alone must find it under repos_root.
    let elsewhere = w.dir.path().join("cache");
    let out = output_within(
        w.cmd("")
            .args(["logs", &w.spec, "-p", "proj"])
            .current_dir(&elsewhere),
        Duration::from_secs(30),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("# swr attempt log"),
        "{}",
        text(&out.stdout)
    );
    let out = output_within(
        w.cmd("")
            .args(["stop", &w.spec, "-p", "proj"])
            .current_dir(&elsewhere),
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(exit_within(&mut child, Duration::from_secs(30)), Some(130));
}

/// A prompt over the single-argument limit (128 KiB) failed the spawn with "Argument list too
/// long"; it now reaches the agent on stdin.
#[test]
fn a_prompt_over_the_argv_limit_reaches_the_agent_on_stdin() {
    let w = World::new(1, json!({}));
    let words = 40_000;
    let prompt = vec!["word"; words].join(" ");
    std::fs::write(
        w.project.join(".spec-workflow/specs/feat/tasks.md"),
        format!("- [ ] 1. Big\n  - _Prompt: {prompt}_\n"),
    )
    .unwrap();
    git(&w.project, &["commit", "-qam", "big prompt"]);
    let r = w.run("ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h[0]["outcome"], "success", "{h:?}");
    let log = std::fs::read_to_string(h[0]["log_path"].as_str().unwrap()).unwrap();
    let said: usize = log
        .split("(prompt of ")
        .nth(1)
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap();
    assert!(said > words, "the agent saw {said} words");
}

/// The store refusing writes mid-run (here: held locked past the busy timeout; a full disk
/// fails the same way) ends the run with exit 1. That exit is recorded as a failure naming the
/// store's error, not as "runner process died" with an attempt of unknown outcome.
#[test]
fn a_store_that_refuses_writes_mid_run_is_recorded_as_a_deliberate_exit() {
    let w = World::new(1, json!({}));
    let mut child = w.spawn("sleep:2");
    agent_pid(&w);
    let db = w.dir.path().join("cache/swr.sqlite3");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch("BEGIN EXCLUSIVE").unwrap();
    let code = exit_within(&mut child, Duration::from_secs(90));
    conn.execute_batch("ROLLBACK").unwrap();
    drop(conn);
    assert_eq!(code, Some(1));
    let st = &w.status_reaped()[0];
    assert_eq!(st["status"], "failed", "{st}");
    let reason = st["reason"].as_str().unwrap();
    assert!(reason.contains("database is locked"), "{reason}");
    assert!(!reason.contains("runner process died"), "{reason}");
}

/// `status`, `history`, `logs` and `stats` only look: a read-only cache dir must not stop
/// them ("unable to open database file").
#[test]
fn observers_work_on_a_read_only_cache_dir() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    let w = World::new(1, json!({}));
    assert_eq!(w.run("ok").code, 0);
    let cache = w.dir.path().join("cache");
    let db = cache.join("swr.sqlite3");
    let set_mode = |p: &Path, mode: u32| {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    };
    // Root writes anywhere: it looks as `nobody` instead, for whom the dir is read-only; once
    // with the store file its own (writable, in a directory it cannot write: SQLite cannot
    // create its -shm file), once with it another user's.
    let as_root = nix::unistd::geteuid().is_root();
    let nobody = nix::unistd::Uid::from_raw(65534);
    set_mode(w.dir.path(), 0o755);
    set_mode(&db, 0o644);
    set_mode(&cache, 0o555);
    set_mode(&cache.join("locks"), 0o555);
    let owners: &[bool] = if as_root { &[true, false] } else { &[true] };
    for &owns_the_store in owners {
        if as_root {
            let owner = owns_the_store.then_some(nobody);
            nix::unistd::chown(&db, owner.or(Some(nix::unistd::Uid::from_raw(0))), None).unwrap();
            nix::unistd::chown(&cache, owner.or(Some(nix::unistd::Uid::from_raw(0))), None)
                .unwrap();
        }
        for args in [
            vec!["status", "--json"],
            vec!["history", "--json"],
            vec!["logs", &w.spec],
            vec!["stats"],
        ] {
            let mut c = w.cmd("");
            c.args(&args);
            if as_root {
                c.uid(65534).gid(65534);
            }
            let out = output_within(&mut c, Duration::from_secs(30));
            assert!(
                out.status.success(),
                "{args:?} (owner: {owns_the_store}): {}",
                text(&out.stderr)
            );
            if args[0] == "status" {
                let v: Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(v[0]["status"], "completed");
            }
        }
    }
    set_mode(&cache, 0o700);
    set_mode(&cache.join("locks"), 0o700);
}
