//! Frames (TestBackend + insta snapshots at 80x24 and 160x48) and state updates of the TUI,
//! all from hand-made records: fixed clock, UTC, fake paths, no file and no process.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use jiff::Timestamp;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use swr_core::outcome::Outcome;
use swr_core::provider::OutputFormat;
use swr_core::spec::{Layout, Project, SpecRef, TaskCounts, TaskList};
use swr_core::store::{AttemptRecord, RetryStats, RunnerRecord, RunnerStatus};

use super::app::{App, Cmd, Msg, Overlay, Row, Settings};
use super::logview::{LogLine, line_parser_for_tests, render_line};
use super::runner_ctl::{Exited, StartRequest, Started};
use super::view;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

const NOW: &str = "2026-03-01T12:00:00Z";

fn settings() -> Settings {
    Settings {
        default_provider: "claude".into(),
        default_model: Some("sonnet".into()),
        min_cols: 80,
        min_rows: 24,
        log_cap: 200,
        color: false,
        tz: jiff::tz::TimeZone::UTC,
        layout: Layout::default(),
        repos_root: PathBuf::from("/repos"),
        config_rows: vec![
            ("provider".into(), "claude".into(), "default".into()),
            (
                "retry_max_retries".into(),
                "3".into(),
                "--config /c.json".into(),
            ),
            ("repos_root".into(), "/repos".into(), "default".into()),
        ],
    }
}

fn project(name: &str, specs: &[&str]) -> Project {
    let path = PathBuf::from(format!("/repos/{name}"));
    Project {
        name: name.into(),
        specs: specs
            .iter()
            .map(|s| {
                let dir = path.join(".spec-workflow/specs").join(s);
                SpecRef {
                    project: name.into(),
                    name: s.to_string(),
                    tasks_path: dir.join("tasks.md"),
                    dir,
                }
            })
            .collect(),
        path,
    }
}

fn counts(done: usize, total: usize) -> Option<TaskCounts> {
    Some(TaskCounts {
        total,
        done,
        in_progress: 0,
        pending: total - done,
        blocked: 0,
    })
}

fn runner(project: &str, spec: &str, status: RunnerStatus) -> RunnerRecord {
    RunnerRecord {
        runner_id: "r-20260301T114500-4f2a".parse().unwrap(),
        project: PathBuf::from(format!("/repos/{project}")),
        spec: spec.into(),
        provider: "claude".into(),
        model: Some("sonnet".into()),
        status,
        reason: None,
        pid: 4242,
        pid_start_time: Some(1),
        boot_id: None,
        iteration: 3,
        retry_count: 2,
        max_retries: 3,
        next_attempt_at: Some(ts("2026-03-01T12:00:17Z")),
        tasks: TaskCounts {
            total: 5,
            done: 2,
            in_progress: 1,
            pending: 2,
            blocked: 0,
        },
        started_at: ts("2026-03-01T11:45:00Z"),
        updated_at: ts("2026-03-01T11:59:50Z"),
        ended_at: None,
        agent: None,
        last_outcome: Some(Outcome::Crash),
        last_commit: Some("8cbf3261aa00".into()),
        cost_usd: Some(1.25),
        cost_estimated_usd: Some(0.0),
        input_tokens: Some(412_000),
        cached_tokens: Some(380_000),
        output_tokens: Some(9_800),
        log_path: Some(PathBuf::from(
            "/repos/app/.spec-workflow/logs/auth/task_7.log",
        )),
        worktree: None,
    }
}

fn attempt(it: u32, n: u32, outcome: Option<Outcome>, delay: Option<u64>) -> AttemptRecord {
    let start =
        ts("2026-03-01T11:50:00Z") + jiff::SignedDuration::from_secs((it * 60 + n * 10) as i64);
    AttemptRecord {
        id: (it * 10 + n) as i64,
        runner_id: "r-20260301T114500-4f2a".parse().unwrap(),
        project: PathBuf::from("/repos/app"),
        spec: "auth".into(),
        iteration: it,
        attempt: n,
        started_at: start,
        ended_at: outcome.map(|_| start + jiff::SignedDuration::from_millis(4200)),
        exit_code: match outcome {
            Some(Outcome::Crash) => Some(1),
            Some(Outcome::Success) => Some(0),
            _ => None,
        },
        signal: (outcome == Some(Outcome::Signal)).then(|| "SIGSEGV".to_string()),
        outcome,
        error: (outcome == Some(Outcome::Crash)).then(|| "exit 1: simulated crash".to_string()),
        delay_before_next_ms: delay,
        log_path: PathBuf::from(format!("/repos/app/.spec-workflow/logs/auth/task_{n}.log")),
        session_id: None,
        cost_usd: None,
        cost_estimated: None,
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
}

fn log_lines() -> Vec<LogLine> {
    let mut p = line_parser_for_tests(OutputFormat::ClaudeStreamJson);
    [
        "# swr attempt log: runner r-20260301T114500-4f2a, spec auth, iteration 3, attempt 3",
        "# | the prompt is hidden in readable mode",
        r#"{"type":"system","subtype":"init","session_id":"s-1","model":"sonnet"}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"I will add the login handler."}]}}"#,
        r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"t1","name":"Bash","input":{"command":"cargo test"}}]}}"#,
        r#"{"type":"user","message":{"content":[{"type":"tool_result","tool_use_id":"t1","content":"test result: ok. 12 passed"}]}}"#,
        "[stderr] warning: unused variable",
        r#"{"type":"result","subtype":"success","is_error":false,"num_turns":4,"total_cost_usd":0.42,"result":"task 3 done"}"#,
    ]
    .iter()
    .map(|raw| LogLine {
        raw: raw.to_string(),
        pretty: render_line(p.as_mut(), raw),
    })
    .collect()
}

/// An app with three projects, the first expanded, its `auth` spec selected with a runner
/// waiting for its third retry.
fn busy_app() -> App {
    let mut app = App::new(settings(), ts(NOW));
    app.update(Msg::Projects(Ok(vec![
        (
            project("app", &["auth", "billing", "search"]),
            vec![counts(2, 5), counts(4, 4), None],
        ),
        (project("blog", &["posts"]), vec![counts(0, 3)]),
        (
            project("tools", &["cli", "docs"]),
            vec![counts(1, 2), counts(2, 2)],
        ),
    ])));
    app.update(Msg::Key(key(KeyCode::Enter))); // expand app
    app.update(Msg::Key(key(KeyCode::Down))); // auth
    let mut done = runner("app", "billing", RunnerStatus::Completed);
    done.runner_id = "r-20260301T100000-0001".parse().unwrap();
    done.ended_at = Some(ts("2026-03-01T10:30:00Z"));
    app.update(Msg::Runners(vec![
        runner("app", "auth", RunnerStatus::Running),
        done,
    ]));
    app.update(Msg::Attempts(vec![
        attempt(1, 1, Some(Outcome::Success), None),
        attempt(2, 1, Some(Outcome::Success), None),
        attempt(3, 1, Some(Outcome::Crash), Some(5000)),
        attempt(3, 2, Some(Outcome::Signal), Some(10000)),
    ]));
    app.update(Msg::LogReset(
        Some(PathBuf::from(
            "/repos/app/.spec-workflow/logs/auth/task_7.log",
        )),
        log_lines(),
    ));
    app.message = None;
    app
}

fn key(c: KeyCode) -> KeyEvent {
    KeyEvent::new(c, KeyModifiers::NONE)
}

fn frame(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| view::draw(app, f)).unwrap();
    let buf = t.backend().buffer();
    let mut out = String::new();
    for y in 0..h {
        let mut line = String::new();
        for x in 0..w {
            line.push_str(buf[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn snap(name: &str, app: &App) {
    insta::assert_snapshot!(format!("{name}_80x24"), frame(app, 80, 24));
    insta::assert_snapshot!(format!("{name}_160x48"), frame(app, 160, 48));
}

#[test]
fn main_view_with_a_runner_retrying() {
    let app = busy_app();
    let f = frame(&app, 80, 24);
    assert!(f.contains("Retry: 2/3"), "{f}");
    assert!(f.contains("next attempt in 17s"), "{f}");
    snap("main_retrying", &app);
}

#[test]
fn main_view_waiting_for_a_rate_limit() {
    let mut app = busy_app();
    let mut r = runner("app", "auth", RunnerStatus::Waiting);
    r.next_attempt_at = Some(ts("2026-03-01T13:02:03Z"));
    r.retry_count = 0;
    app.update(Msg::Runners(vec![r]));
    let f = frame(&app, 80, 24);
    assert!(f.contains("rate limit ends in 1h02m"), "{f}");
    snap("main_rate_limited", &app);
}

#[test]
fn main_view_of_a_queued_runner_in_a_worktree_and_of_a_shared_wait() {
    let mut app = busy_app();
    let mut r = runner("app", "auth", RunnerStatus::Queued);
    r.reason = Some("waiting for an agent slot (3 ahead; max_concurrent_agents 2)".into());
    r.worktree = Some(PathBuf::from("/cache/worktrees/app-1a2b3c4d/auth"));
    r.next_attempt_at = None;
    app.update(Msg::Runners(vec![r]));
    let f = frame(&app, 120, 30);
    assert!(f.contains("QUEUE"), "{f}");
    assert!(f.contains("waiting for an agent slot (3 ahead"), "{f}");
    assert!(f.contains("/cache/worktrees/app-1a2b3c4d/auth"), "{f}");
    let mut r = runner("app", "auth", RunnerStatus::Waiting);
    r.reason = Some("shared rate limit (claude, until 13:02): usage limit reached".into());
    r.next_attempt_at = Some(ts("2026-03-01T13:02:03Z"));
    app.update(Msg::Runners(vec![r]));
    let f = frame(&app, 120, 30);
    assert!(f.contains("shared rate limit (claude, until 13:02)"), "{f}");
    assert!(f.contains("rate limit ends in 1h02m"), "{f}");
}

#[test]
fn main_view_without_runner_and_without_logs() {
    let mut app = busy_app();
    app.update(Msg::Key(key(KeyCode::Down))); // billing: completed
    app.update(Msg::Key(key(KeyCode::Down))); // search: no runner
    app.update(Msg::Key(KeyCode::Char('l').into()));
    snap("main_no_runner", &app);
}

#[test]
fn every_overlay() {
    for (name, k) in [
        ("help", '?'),
        ("config", 'c'),
        ("tasks", 't'),
        ("dashboard", 'd'),
        ("start_prompt", 'S'),
    ] {
        let mut app = busy_app();
        app.update(Msg::Key(KeyCode::Char(k).into()));
        assert!(app.overlay.is_some(), "{name}");
        if name == "tasks" {
            let list = swr_core::spec::parse(
                "- [x] 1. Add the user model\n- [-] 2. Login handler\n- [ ] 3. Logout\n- [~] 4. SSO\n",
            );
            app.update(Msg::Tasks(Ok(list)));
        }
        if name == "dashboard" {
            let stats = RetryStats {
                iterations: 3,
                iterations_needing_retry: 1,
                retried_then_succeeded: 0,
                iterations_out_of_retries: 0,
                retry_success_rate: Some(0.0),
                final_failure_rate: Some(0.0),
                average_backoff_ms: Some(7500.0),
                by_outcome: Default::default(),
            };
            app.update(Msg::Dashboard(
                vec![
                    attempt(1, 1, Some(Outcome::Success), None),
                    attempt(2, 1, Some(Outcome::Success), None),
                    attempt(3, 1, Some(Outcome::Crash), Some(5000)),
                    attempt(3, 2, Some(Outcome::Signal), Some(10000)),
                    attempt(3, 3, None, None),
                ],
                stats,
            ));
        }
        snap(&format!("overlay_{name}"), &app);
    }
    let mut app = busy_app();
    app.update(Msg::Started(
        StartRequest {
            project: "/repos/app".into(),
            spec: "auth".into(),
            provider: None,
            model: None,
        },
        Ok(Started {
            pid: 4242,
            start_time: Some(1),
            output: "/x".into(),
        }),
    ));
    app.update(Msg::Key(KeyCode::Char('q').into()));
    assert_eq!(app.overlay, Some(Overlay::QuitConfirm(1)));
    snap("overlay_quit", &app);
}

#[test]
fn too_small_terminal_shows_a_notice() {
    let app = busy_app();
    let f = frame(&app, 60, 20);
    assert!(f.contains("Terminal too small"), "{f}");
    insta::assert_snapshot!("too_small_60x20", f);
    // q with runners started here: the question shows even on a small terminal.
    let mut app = busy_app();
    app.update(Msg::OwnedAlive(vec![4242, 4343]));
    app.update(Msg::Key(KeyCode::Char('q').into()));
    let f = frame(&app, 60, 20);
    assert!(
        f.contains("2 runners active. Stop all and quit? (y/n/c)"),
        "{f}"
    );
    app.update(Msg::Key(KeyCode::Char('n').into()));
    assert!(app.should_exit);
}

#[test]
fn filter_and_first_frame_before_discovery() {
    let app = App::new(settings(), ts(NOW));
    let f = frame(&app, 80, 24);
    assert!(f.contains("Looking for projects"), "{f}");
    insta::assert_snapshot!("discovering_80x24", f);
    let mut app = busy_app();
    app.update(Msg::Key(KeyCode::Char('/').into()));
    for c in "doc".chars() {
        app.update(Msg::Key(KeyCode::Char(c).into()));
    }
    assert_eq!(app.rows, vec![Row::Project(2), Row::Spec(2, 1)]);
    snap("filter_editing", &app);
}

// ------------------------------------------------------------------------------------------
// State updates

#[test]
fn navigation_expand_and_select() {
    let mut app = busy_app();
    assert_eq!(app.rows.len(), 3 + 3);
    assert_eq!(app.current.as_ref().unwrap().1, "auth");
    app.update(Msg::Key(KeyCode::Char('G').into()));
    assert_eq!(app.cursor, app.rows.len() - 1);
    app.update(Msg::Key(KeyCode::Enter.into())); // expand tools
    assert_eq!(app.rows.len(), 3 + 3 + 2);
    app.update(Msg::Key(KeyCode::Char('j').into()));
    assert_eq!(app.current.as_ref().unwrap().1, "cli");
    app.update(Msg::Key(KeyCode::Char('g').into()));
    assert_eq!(app.cursor, 0);
    app.update(Msg::Key(KeyCode::Enter.into())); // collapse app
    assert_eq!(app.rows.len(), 3 + 2);
    // the selection survives moving onto a project row
    assert_eq!(app.current.as_ref().unwrap().1, "cli");
}

#[test]
fn unfinished_and_active_filters() {
    let mut app = busy_app();
    app.update(Msg::Key(KeyCode::Char('u').into()));
    let names: Vec<String> = app
        .rows
        .iter()
        .filter_map(|r| match r {
            Row::Spec(p, s) => Some(app.projects[*p].specs[*s].spec.name.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(names, ["auth", "search", "posts", "cli"]);
    app.update(Msg::Key(KeyCode::Char('u').into()));
    app.update(Msg::Key(KeyCode::Char('a').into()));
    assert_eq!(app.rows, vec![Row::Project(0), Row::Spec(0, 0)]);
}

#[test]
fn start_stop_restart_commands() {
    let mut app = busy_app();
    // auth is active: s refuses, x stops it
    assert!(app.update(Msg::Key(KeyCode::Char('s').into())).is_empty());
    assert!(app.message.as_ref().unwrap().0.contains("already"));
    let cmds = app.update(Msg::Key(KeyCode::Char('x').into()));
    assert!(matches!(&cmds[..], [Cmd::Stop(r)] if r.spec == "auth"));
    // r on an active runner stops it, then starts it again once the store shows it ended
    let cmds = app.update(Msg::Key(KeyCode::Char('r').into()));
    assert!(matches!(&cmds[..], [Cmd::Stop(_)]));
    let mut r = runner("app", "auth", RunnerStatus::Running);
    assert!(app.update(Msg::Runners(vec![r.clone()])).is_empty());
    r.status = RunnerStatus::Stopped;
    let cmds = app.update(Msg::Runners(vec![r]));
    assert!(
        matches!(&cmds[..], [Cmd::Start(req)] if req.spec == "auth" && req.provider.as_deref() == Some("claude")),
        "{cmds:?}"
    );
    // s on a spec without a runner: the default provider
    app.update(Msg::Key(KeyCode::Char('j').into()));
    app.update(Msg::Key(KeyCode::Char('j').into()));
    let cmds = app.update(Msg::Key(KeyCode::Char('s').into()));
    assert_eq!(
        cmds,
        vec![Cmd::Start(StartRequest {
            project: "/repos/app".into(),
            spec: "search".into(),
            provider: None,
            model: None
        })]
    );
    // S asks: prefilled with the defaults, edited, Enter starts
    app.update(Msg::Key(KeyCode::Char('S').into()));
    for _ in 0.."claude".len() {
        app.update(Msg::Key(KeyCode::Backspace.into()));
    }
    for c in "codex".chars() {
        app.update(Msg::Key(KeyCode::Char(c).into()));
    }
    app.update(Msg::Key(KeyCode::Tab.into()));
    app.update(Msg::Key(KeyCode::Char('4').into()));
    let cmds = app.update(Msg::Key(KeyCode::Enter.into()));
    assert!(
        matches!(&cmds[..], [Cmd::Start(r)] if r.provider.as_deref() == Some("codex") && r.model.as_deref() == Some("sonnet4")),
        "{cmds:?}"
    );
    assert!(app.overlay.is_none());
}

#[test]
fn a_second_start_before_the_store_shows_the_first_is_refused() {
    let mut app = busy_app();
    app.update(Msg::Key(KeyCode::Char('j').into()));
    app.update(Msg::Key(KeyCode::Char('j').into()));
    let req = StartRequest {
        project: "/repos/app".into(),
        spec: "search".into(),
        provider: None,
        model: None,
    };
    let cmds = app.update(Msg::Key(KeyCode::Char('s').into()));
    assert_eq!(cmds, vec![Cmd::Start(req.clone())]);
    let started = Started {
        pid: 777,
        start_time: Some(1),
        output: "/x".into(),
    };
    app.update(Msg::Started(req.clone(), Ok(started)));
    // `s s` typed fast: the runner has not registered yet. Starting it again would only fail
    // on the spec lock, out of sight, after "started a runner".
    assert!(app.update(Msg::Key(KeyCode::Char('s').into())).is_empty());
    assert!(app.message.as_ref().unwrap().0.contains("starting already"));
    // S + Enter goes through the same check.
    app.update(Msg::Key(KeyCode::Char('S').into()));
    assert!(app.update(Msg::Key(KeyCode::Enter.into())).is_empty());
    // Once the store shows it, the usual "already active" applies; once it ended, s works.
    let mut r = runner("app", "search", RunnerStatus::Running);
    r.pid = 777;
    app.update(Msg::Runners(vec![r.clone()]));
    assert!(app.starting.is_empty());
    r.status = RunnerStatus::Completed;
    app.update(Msg::Runners(vec![r]));
    assert_eq!(
        app.update(Msg::Key(KeyCode::Char('s').into())),
        vec![Cmd::Start(req.clone())]
    );
    // A runner that dies before registering (unknown provider, lock held) is reported with
    // its own last words, and no longer blocks a start.
    app.update(Msg::Started(
        req.clone(),
        Ok(Started {
            pid: 778,
            start_time: Some(1),
            output: "/y".into(),
        }),
    ));
    app.update(Msg::RunnerExited(Exited {
        pid: 778,
        project: "/repos/app".into(),
        spec: "search".into(),
        success: false,
        status: "exit code 2".into(),
        last_line: Some("swr: error: unknown provider 'bogus'".into()),
    }));
    let (m, err) = app.message.clone().unwrap();
    assert!(
        err && m.contains("unknown provider 'bogus'") && m.contains("exit code 2"),
        "{m}"
    );
    assert!(app.starting.is_empty());
    // A registered runner's normal end is the store's to tell: no extra message.
    app.message = None;
    app.update(Msg::RunnerExited(Exited {
        pid: 777,
        project: "/repos/app".into(),
        spec: "search".into(),
        success: false,
        status: "exit code 1".into(),
        last_line: Some("failed: out of retries".into()),
    }));
    assert!(app.message.is_none());
}

#[test]
fn quit_asks_only_for_runners_started_here() {
    let mut app = busy_app();
    // an active runner started elsewhere: q quits at once
    app.update(Msg::Key(KeyCode::Char('q').into()));
    assert!(app.should_exit);

    let mut app = busy_app();
    app.update(Msg::OwnedAlive(vec![4242]));
    app.update(Msg::Key(KeyCode::Char('q').into()));
    assert_eq!(app.overlay, Some(Overlay::QuitConfirm(1)));
    app.update(Msg::Key(KeyCode::Char('c').into()));
    assert!(app.overlay.is_none() && !app.should_exit);
    app.update(Msg::Key(KeyCode::Char('q').into()));
    app.update(Msg::Key(KeyCode::Char('n').into()));
    assert!(app.should_exit, "n leaves them running and quits");

    let mut app = busy_app();
    app.update(Msg::OwnedAlive(vec![4242]));
    app.update(Msg::Key(KeyCode::Char('q').into()));
    let cmds = app.update(Msg::Key(KeyCode::Char('y').into()));
    assert_eq!(cmds, vec![Cmd::StopOwned]);
    assert!(app.quitting && !app.should_exit, "waits for them to stop");
    app.update(Msg::OwnedAlive(vec![]));
    assert!(app.should_exit);

    let mut app = busy_app();
    assert_eq!(app.update(Msg::Terminate), vec![Cmd::StopOwned]);
    assert!(app.should_exit);
}

#[test]
fn transitions_are_announced() {
    let mut app = busy_app();
    let mut r = runner("app", "auth", RunnerStatus::Crashed);
    app.update(Msg::Runners(vec![r.clone()]));
    assert_eq!(app.message.as_ref().unwrap().0, "auth: RUNNING → CRASHED");
    r.runner_id = "r-20260301T120000-beef".parse().unwrap();
    r.status = RunnerStatus::Running;
    r.retry_count = 0;
    app.update(Msg::Runners(vec![r.clone()]));
    assert_eq!(app.message.as_ref().unwrap().0, "auth: CRASHED → RUNNING");
    r.retry_count = 1;
    app.update(Msg::Runners(vec![r]));
    assert_eq!(app.message.as_ref().unwrap().0, "auth: retry 1/3");
}

#[test]
fn log_scrolls_and_follows() {
    let mut app = busy_app();
    app.log.page = 4;
    let n = app.log.lines.len();
    app.update(Msg::Key(KeyCode::PageUp.into()));
    assert_eq!(app.log.scroll, 4);
    assert!(!app.log.follow);
    // new lines while reading back keep the view still
    app.update(Msg::LogAppend(log_lines()[..2].to_vec()));
    assert_eq!(app.log.scroll, 6);
    assert_eq!(app.log.lines.len(), n + 2);
    app.update(Msg::Key(KeyCode::Char('L').into()));
    assert!(app.log.follow && app.log.scroll == 0);
    // the ring is bounded
    for _ in 0..100 {
        app.update(Msg::LogAppend(log_lines()));
    }
    assert_eq!(app.log.lines.len(), app.settings.log_cap);
}

#[test]
fn external_runner_projects_get_a_row() {
    let mut app = busy_app();
    let mut r = runner("elsewhere", "x", RunnerStatus::Running);
    r.project = "/srv/elsewhere".into();
    app.update(Msg::Runners(vec![r]));
    let p = app.projects.last().unwrap();
    assert!(p.external && p.name == "elsewhere" && p.specs[0].spec.name == "x");
}

#[test]
fn tasks_overlay_gets_its_list() {
    let mut app = busy_app();
    let cmds = app.update(Msg::Key(KeyCode::Char('t').into()));
    assert_eq!(
        cmds,
        vec![Cmd::LoadTasks(
            "/repos/app/.spec-workflow/specs/auth/tasks.md".into()
        )]
    );
    app.update(Msg::Tasks(Ok(TaskList::default())));
    assert!(matches!(
        app.overlay,
        Some(Overlay::Tasks {
            list: Some(Ok(_)),
            ..
        })
    ));
    app.update(Msg::Key(KeyCode::Esc.into()));
    assert!(app.overlay.is_none());
}

#[test]
fn tasks_overlay_marks_optional_tasks_and_lists_checklists_apart() {
    let mut app = busy_app();
    app.update(Msg::Key(KeyCode::Char('t').into()));
    let list = swr_core::spec::parse(
        "- [x] 1. Build\n- [ ]* 2. Property tests\n- [ ] 3. Ship\n\n\
         ## Verification Checklist\n- [x] Tested by hand\n- [ ] Reviewed \x1b[2J\n",
    );
    app.update(Msg::Tasks(Ok(list)));
    let f = frame(&app, 100, 30);
    assert!(f.contains("Reviewed \\x1b[2J"), "escaped, not sent: {f}");
    assert!(
        f.contains("1/2 done · 0 in progress · 1 pending · 0 blocked · optional 0/1 done"),
        "{f}"
    );
    assert!(f.contains("[ ]*2     Property tests"), "{f}");
    assert!(f.contains("[ ] 3     Ship"), "{f}");
    assert!(
        f.contains("Verification Checklist · 1/2 · checklist, not tasks"),
        "{f}"
    );
    assert!(f.contains("[x]  Tested by hand"), "{f}");
    assert!(f.contains("[ ]  Reviewed"), "{f}");
}

#[test]
fn help_shows_every_key_at_80x24() {
    let mut app = busy_app();
    app.update(Msg::Key(key(KeyCode::Char('?'))));
    for (w, h) in [(80, 24), (100, 30), (160, 48)] {
        let f = frame(&app, w, h);
        for (k, help) in super::keys::help_lines() {
            assert!(
                f.lines()
                    .any(|l| l.contains(&format!("{k} {help}"))
                        || l.contains(&format!("{k}  {help}"))),
                "{k} ({help}) missing at {w}x{h}:\n{f}"
            );
        }
    }
}

#[test]
fn footer_messages_expire_after_five_seconds() {
    let mut app = busy_app();
    assert_eq!(app.message_expiry(), None);
    app.update(Msg::Error("select a spec first".into()));
    assert_eq!(app.message_expiry(), Some(ts("2026-03-01T12:00:05Z")));
    app.update(Msg::Tick(ts("2026-03-01T12:00:04.999Z")));
    assert!(frame(&app, 80, 24).contains("select a spec first"));
    // A newer message starts its own five seconds.
    app.update(Msg::Info("asked the runner to stop".into()));
    assert_eq!(app.message_expiry(), Some(ts("2026-03-01T12:00:09.999Z")));
    app.update(Msg::Tick(ts("2026-03-01T12:00:09.999Z")));
    let f = frame(&app, 80, 24);
    assert!(!f.contains("asked the runner"), "{f}");
    assert!(f.contains("active runner(s)"), "{f}");
    // Nothing left to expire: the loop schedules no further wake-up.
    assert_eq!(app.message_expiry(), None);
    app.update(Msg::Info("again".into()));
    app.update(Msg::Key(key(KeyCode::Esc)));
    assert_eq!(app.message_expiry(), None);
}
