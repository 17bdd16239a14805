//! The runner judges the work, not the process: end-to-end with the simulated agent and with
//! fake claude/codex CLIs that replay their recorded answers.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use run_support::World;
use serde_json::{Value, json};

fn progress(a: &Value) -> (u64, bool) {
    (
        a["ticked"].as_u64().unwrap_or(0),
        a["committed"].as_bool().unwrap_or(false),
    )
}

fn log_of(a: &Value) -> String {
    std::fs::read_to_string(a["log_path"].as_str().unwrap()).unwrap()
}

/// Six tasks, an agent that does one per call and exits 1 every time: each call is progress.
#[test]
fn a_crash_after_committed_work_is_progress_not_a_failure() {
    let w = World::new(6, json!({"retry_max_retries": 1}));
    let plan = ["tick-crash"; 6].join(",");
    let r = w.run(&plan);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "completed");
    assert_eq!(w.tasks_done(), 6);
    let h = w.history();
    assert_eq!(h.len(), 6, "one attempt per task, no retry");
    for a in &h {
        assert_eq!(a["outcome"], "crash");
        assert_eq!(progress(a), (1, true), "{a}");
        assert_eq!(a["attempt"], 1);
        assert!(a["delay_before_next_ms"].is_null(), "no backoff: {a}");
    }
    // `swr history` says it the way a user reads it.
    let out = w.cmd("").args(["history"]).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("crash") && text.contains("· 1 task ticked · committed"),
        "{text}"
    );
    assert!(text.contains("made progress"), "{text}");
}

/// A spec completed by an attempt that then failed ends `completed`, exit 0.
#[test]
fn a_complete_spec_completes_whatever_the_last_exit() {
    let w = World::new(2, json!({}));
    let r = w.run("ok,tick-crash");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.status()[0]["status"], "completed");
    assert_eq!(w.history().len(), 2);
}

/// The retry's prompt is rendered from tasks.md as it is then, not as it was when the
/// iteration began: here the user ticks task 1 by hand during the backoff.
#[test]
fn every_prompt_is_rendered_fresh() {
    let w = World::new(
        3,
        json!({"retry_backoff_seconds": 2, "resume_on_retry": false}),
    );
    let mut child = w.spawn("crash,ok,ok");
    let tasks = w.project.join(".spec-workflow/specs/feat/tasks.md");
    w.wait_for("the first crash", Duration::from_secs(20), |w| {
        w.history().first().is_some_and(|a| a["outcome"] == "crash")
    });
    let text = std::fs::read_to_string(&tasks).unwrap();
    std::fs::write(&tasks, text.replacen("- [ ] 1.", "- [x] 1.", 1)).unwrap();
    assert!(child.wait().unwrap().success());
    let h = w.history();
    assert!(log_of(&h[0]).contains("# | Task 1: Task number 1"));
    let second = log_of(&h[1]);
    assert!(second.contains("# | Task 2: Task number 2"), "{second}");
    assert!(second.contains("1/3 tasks done"), "{second}");
}

/// An agent that prints its final result and then stays alive is ended after
/// `result_grace_seconds` and judged by its result: not an idle timeout, not a retry.
#[test]
fn an_agent_lingering_after_its_result_is_done_not_idle() {
    let w = World::new(
        2,
        json!({"result_grace_seconds": 0.5, "activity_timeout_seconds": 60}),
    );
    let started = Instant::now();
    let r = w.run("linger,linger");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(40),
        "ended by the result grace, not the 60 s idle timeout: {:?}",
        started.elapsed()
    );
    let h = w.history();
    assert_eq!(h.len(), 2);
    for a in &h {
        assert_eq!(a["outcome"], "success", "{a}");
        assert!(
            a["error"]
                .as_str()
                .unwrap()
                .contains("after its final result"),
            "{a}"
        );
        assert_eq!(progress(a), (1, true));
    }
    let out = w.cmd("").args(["history"]).output().unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("swr ended the agent after its final result")
    );
}

/// A crash is retried by resuming the crashed session; the history says which.
#[test]
fn a_retry_resumes_the_crashed_session() {
    let w = World::new(1, json!({}));
    let r = w.run("crash,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h.len(), 2);
    let session = h[0]["session_id"].as_str().unwrap();
    assert_eq!(h[1]["resumed_session"], session);
    assert!(log_of(&h[1]).contains(&format!("--resume {session}")));
    assert!(log_of(&h[1]).contains("was interrupted"), "resume prompt");
    let retry = r.of("retry_scheduled");
    assert_eq!(retry[0]["resume"], session);
    // resume_on_retry = false: a fresh session.
    let w = World::new(1, json!({"resume_on_retry": false}));
    assert_eq!(w.run("crash,ok").code, 0);
    assert!(w.history()[1]["resumed_session"].is_null());
}

/// The CLI refuses to resume (the session is gone): a fresh session at once, no backoff, no
/// retry used up.
#[test]
fn a_rejected_resume_falls_back_to_a_fresh_session_at_once() {
    let w = World::new(
        1,
        json!({"retry_backoff_seconds": 5, "retry_max_retries": 1}),
    );
    let started = Instant::now();
    let r = w.run("crash-lost,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h.len(), 3, "{h:#?}");
    assert!(h[1]["resumed_session"].is_string());
    assert!(h[1]["note"].as_str().unwrap().contains("could not resume"));
    assert!(
        h[1]["delay_before_next_ms"].is_null(),
        "no backoff after the rejected resume"
    );
    assert!(h[2]["resumed_session"].is_null());
    assert_eq!(h[2]["outcome"], "success");
    // One backoff of 5 s for the crash, none for the rejection.
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
}

/// An agent killed while rewriting tasks.md: the list is restored, the damaged copy kept, and
/// the run goes on to the end.
#[test]
fn a_truncated_tasks_md_is_restored_and_the_run_goes_on() {
    let w = World::new(3, json!({}));
    let tasks = w.project.join(".spec-workflow/specs/feat/tasks.md");
    let r = w.run("clobber,ok,ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(w.tasks_done(), 3);
    assert_eq!(
        std::fs::read_to_string(&tasks)
            .unwrap()
            .matches("- [x]")
            .count(),
        3
    );
    let h = w.history();
    let warning = h[0]["warning"].as_str().unwrap();
    assert!(
        warning.contains("missing tasks") && warning.contains("restored"),
        "{warning}"
    );
    let kept = format!("{}.tasks-damaged.md", h[0]["log_path"].as_str().unwrap());
    assert!(Path::new(&kept).is_file(), "{warning}");
    assert!(
        r.of("warning")
            .iter()
            .any(|e| e["message"].as_str().unwrap().contains("restored"))
    );
}

/// A fake agent CLI: a shell script that records its argv, one file per call, and answers
/// with `answer`.
fn fake_cli(w: &World, name: &str, answer: &str) -> std::path::PathBuf {
    let path = w.dir.path().join(name);
    let calls = w.dir.path().join(format!("{name}-calls"));
    std::fs::create_dir_all(&calls).unwrap();
    let script = format!(
        "#!/bin/sh\nn=$(ls {calls} | wc -l)\nprintf '%s\\n' \"$@\" > {calls}/$n\n{answer}\n",
        calls = calls.display()
    );
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn calls(w: &World, name: &str) -> Vec<Vec<String>> {
    let dir = w.dir.path().join(format!("{name}-calls"));
    let mut out = Vec::new();
    for i in 0.. {
        match std::fs::read_to_string(dir.join(i.to_string())) {
            Ok(s) => out.push(s.lines().map(str::to_string).collect()),
            Err(_) => break,
        }
    }
    out
}

fn fixture(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../swr-core/tests/fixtures/agents")
        .join(name)
        .display()
        .to_string()
}

/// claude: a crash with a session id, then `--resume <id>` refused as recorded from claude
/// 2.1 ("No conversation found"), then a fresh session.
#[test]
fn claude_resume_argv_and_its_rejection() {
    let w = World::new(1, json!({"provider": "claude", "retry_max_retries": 2}));
    let answer = format!(
        r#"case "$n" in
0) echo '{{"type":"system","subtype":"init","session_id":"11111111-2222-3333-4444-555555555555"}}'; echo 'Error: boom' >&2; exit 1;;
1) cat {out}; cat {err} >&2; exit 1;;
*) exit 0;;
esac"#,
        out = fixture("claude_resume_missing.out"),
        err = fixture("claude_resume_missing.err"),
    );
    let claude = fake_cli(&w, "claude", &answer);
    std::fs::write(
        &w.config,
        std::fs::read_to_string(&w.config).unwrap().replacen(
            "{",
            &format!(
                "{{\"claude_command\": [\"{}\"], \"no_commit_limit\": 1,",
                claude.display()
            ),
            1,
        ),
    )
    .unwrap();
    let r = w.run("");
    let c = calls(&w, "claude");
    assert_eq!(c.len(), 3, "{c:?}\n{}", r.stderr);
    let resume = c[1].iter().position(|a| a == "--resume").expect("--resume");
    assert_eq!(c[1][resume + 1], "11111111-2222-3333-4444-555555555555");
    assert!(
        c[1].contains(&"-p".to_string()),
        "a prompt goes with --resume"
    );
    assert!(
        !c[2].contains(&"--resume".to_string()),
        "fresh after the rejection"
    );
    let h = w.history();
    assert!(h[1]["note"].as_str().unwrap().contains("could not resume"));
    assert!(h[1]["delay_before_next_ms"].is_null());
}

/// codex: `exec resume <id>` after a crash, refused as recorded from codex 0.171 ("no rollout
/// found"), then a fresh `exec`.
#[test]
fn codex_resume_argv_and_its_rejection() {
    let w = World::new(1, json!({"provider": "codex", "retry_max_retries": 2}));
    let answer = format!(
        r#"case "$n" in
0) echo '{{"type":"thread.started","thread_id":"0199a213-81c0-7800-8aa1-bbab2a035a53"}}'; echo 'Error: stream disconnected' >&2; exit 1;;
1) cat {err} >&2; exit 1;;
*) exit 0;;
esac"#,
        err = fixture("codex_resume_missing.err"),
    );
    let codex = fake_cli(&w, "codex", &answer);
    std::fs::write(
        &w.config,
        std::fs::read_to_string(&w.config).unwrap().replacen(
            "{",
            &format!(
                "{{\"codex_command\": [\"{}\", \"exec\"], \"no_commit_limit\": 1,",
                codex.display()
            ),
            1,
        ),
    )
    .unwrap();
    let r = w.run("");
    let c = calls(&w, "codex");
    assert_eq!(c.len(), 3, "{c:?}\n{}", r.stderr);
    let resume = c[1]
        .iter()
        .position(|a| a == "resume")
        .expect("resume subcommand");
    assert_eq!(c[1][resume + 1], "0199a213-81c0-7800-8aa1-bbab2a035a53");
    assert!(!c[2].contains(&"resume".to_string()));
    let h = w.history();
    assert!(
        h[1]["note"].as_str().unwrap().contains("could not resume"),
        "{h:#?}"
    );
}

/// `swr demo` (the README's first command) tells the story: a crash after committed work counted
/// as progress, and a retry that resumes the crashed session.
#[test]
fn the_demo_shows_a_productive_crash_and_a_resumed_retry() {
    let w = World::new(1, json!({}));
    let out = w.cmd("").args(["demo", "--json"]).output().unwrap();
    let r = run_support::RunResult::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(r.finished()["end"]["kind"], "completed");
    assert!(
        r.of("attempt_finished")
            .iter()
            .any(|e| e["outcome"] == "crash" && e["ticked"] == 1 && e["committed"] == true),
        "{:?}",
        r.events
    );
    assert!(
        r.of("attempt_started")
            .iter()
            .any(|e| e["resume"].is_string()),
        "{:?}",
        r.events
    );
    assert!(!r.of("retry_scheduled").is_empty());
}

/// Kiro's optional tasks (`- [ ]* …`) never hold a spec up nor reach the agent, unless
/// `include_optional_tasks` says so.
#[test]
fn optional_tasks_are_left_alone_unless_included() {
    let w = World::new(1, json!({}));
    let tasks = w.project.join(".spec-workflow/specs/feat/tasks.md");
    std::fs::write(
        &tasks,
        "# Tasks\n\n- [ ] 1. Required work\n- [ ]* 2. Write property tests\n",
    )
    .unwrap();
    let r = w.run("ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(
        w.history().len(),
        1,
        "one attempt, for the required task only"
    );
    let text = std::fs::read_to_string(&tasks).unwrap();
    assert!(
        text.contains("- [x] 1.") && text.contains("- [ ]* 2."),
        "{text}"
    );
    assert!(
        !log_of(&w.history()[0]).contains("Write property tests"),
        "never in the prompt"
    );

    let w = World::new(1, json!({"include_optional_tasks": true}));
    let tasks = w.project.join(".spec-workflow/specs/feat/tasks.md");
    std::fs::write(
        &tasks,
        "# Tasks\n\n- [x] 1. Required work\n- [ ]* 2. Write property tests\n",
    )
    .unwrap();
    let r = w.run("ok,ok");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let h = w.history();
    assert_eq!(h.len(), 1);
    assert!(
        log_of(&h[0]).contains("Task 2: Write property tests"),
        "{}",
        log_of(&h[0])
    );
    assert!(
        std::fs::read_to_string(&tasks)
            .unwrap()
            .contains("- [x]* 2.")
    );
}
