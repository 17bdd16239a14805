//! `swr sim-agent` (hidden): the simulated agent behind the `sim` provider. It speaks claude's
//! stream-json so the real parser and classifier are exercised, and follows a plan of steps
//! so tests and `swr demo` can script crashes, hangs, floods, grandchildren and rate limits.
//!
//! The plan is `SWR_SIM_PLAN` (comma-separated steps); each invocation takes the next step,
//! counted in a state file (`SWR_SIM_STATE`, default inside the project's `.git` so it never
//! dirties the tree). When the plan runs out every invocation is `ok`.
//!
//! Every result reports tokens and a cost the way claude does (`usage`, `modelUsage`,
//! `total_cost_usd`): `SWR_SIM_COST` USD per result (default 0.01), tokens from the prompt's
//! length, so budgets and the cost reports can be shown and tested.
//!
//! Sessions work like claude's: every invocation reports a session id, remembered in
//! `<state>.sessions`; `--resume ID` continues a known session (and says so), while an unknown
//! one is refused with claude's own error, exit 1, without taking a step of the plan.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use swr_core::spec::{self, TaskStatus};

pub const STEPS: &str = "\
ok              tick the next task, commit, exit 0 with a success result
tick-crash      tick the next task and commit, then exit 1 (a crash on the way out)
empty           tick the next task and commit only tasks.md: a tick with no work behind it
linger          like ok, then stay alive after the result (a stuck shutdown)
shared          like ok, and also write shared.txt naming the spec (specs run in
                parallel then conflict when merged)
clobber         cut tasks.md short (as if killed mid-write), then die of SIGKILL
nocommit        a success result, nothing changed
commit          commit a file without ticking a task
crash           print a little, then exit 1 with an error on stderr
crash-lost      like crash, and its session is lost: resuming it is refused
signal          die of SIGSEGV
hang            print the init line, then nothing, forever
hang-term       like hang, and ignore SIGTERM
noisy-hang      print a line every 100 ms, forever
flood:MB        print MB megabytes of output, then behave like ok
grandchild      leave `sleep` holding the output pipe, then behave like ok
detached        leave a setsid'ed `sleep` behind, then behave like ok
A+B+step        grandchild and/or detached first, then any step (e.g. grandchild+hang)
sleep:SECS      wait SECS seconds, then behave like ok
ratelimit:SECS  a rejected rate limit that resets in SECS seconds, exit 1
auth            claude's \"Not logged in\" failure, exit 1
overloaded      an API 529 Overloaded failure, exit 1
escapes         terminal escapes (clear screen, window title) in its text and its crash error, exit 1";

/// The most of a piped prompt the simulated agent reads.
const MAX_STDIN_PROMPT: u64 = 64 * 1024 * 1024;

pub fn run(prompt: &[String], resume: Option<&str>) -> anyhow::Result<u8> {
    let plan = std::env::var("SWR_SIM_PLAN").unwrap_or_default();
    let steps: Vec<String> = plan
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    let cwd = std::env::current_dir()?;
    let state = state_path(&cwd);
    let sessions = PathBuf::from(format!("{}.sessions", state.display()));
    let mut out = std::io::stdout().lock();
    if let Some(id) = resume
        && !known_session(&sessions, id)
    {
        // claude 2.1's answer to an unknown id (recorded in claude_resume_missing.*).
        eprintln!("No conversation found with session ID: {id}");
        emit(
            &mut out,
            json!({"type": "result", "subtype": "error_during_execution", "is_error": true,
                   "num_turns": 0, "duration_ms": 0, "total_cost_usd": 0, "session_id": id,
                   "errors": [format!("No conversation found with session ID: {id}")]}),
        );
        return Ok(1);
    }
    let n = read_counter(&state);
    write_counter(&state, n + 1)?;
    let full = steps.get(n).cloned().unwrap_or_else(|| "ok".to_string());
    // `grandchild+detached+hang`: leave processes behind, then do the last step.
    let mut parts: Vec<&str> = full.split('+').collect();
    let step = parts.pop().unwrap_or("ok").to_string();
    let (name, arg) = match step.split_once(':') {
        Some((a, b)) => (a.to_string(), b.parse::<f64>().ok()),
        None => (step.clone(), None),
    };
    let session = match resume {
        Some(id) => id.to_string(),
        None => format!("sim-{:08x}", rand_u32()),
    };
    if name != "crash-lost" {
        remember_session(&sessions, &session)?;
    }
    emit(
        &mut out,
        json!({"type": "system", "subtype": "init", "session_id": session, "model": "sim",
               "cwd": cwd.display().to_string(), "tools": ["Edit", "Bash"]}),
    );
    // Like claude -p: no prompt argument means the prompt comes on stdin (a large one does).
    let mut piped = String::new();
    if prompt.is_empty() {
        use std::io::Read;
        let _ = std::io::stdin()
            .lock()
            .take(MAX_STDIN_PROMPT)
            .read_to_string(&mut piped);
    }
    let words = prompt.join(" ").split_whitespace().count() + piped.split_whitespace().count();
    let usage = SimUsage::new(words);
    text(
        &mut out,
        &session,
        &format!(
            "step {} of the plan: {full} (prompt of {words} words){}",
            n + 1,
            match resume {
                Some(id) => format!(", resuming session {id}"),
                None => String::new(),
            }
        ),
    );
    for extra in parts {
        match extra {
            "grandchild" => leave_grandchild(&mut out, &session)?,
            "detached" => leave_detached(&mut out, &session)?,
            other => {
                eprintln!(
                    "swr sim-agent: {other:?} cannot come before '+'; only grandchild and detached can"
                );
                return Ok(2);
            }
        }
    }
    match name.as_str() {
        "ok" => ok(&mut out, &session, &usage, &cwd),
        "nocommit" => {
            result_ok(&mut out, &session, &usage, "nothing to do this time");
            Ok(0)
        }
        "commit" => {
            let file = cwd.join(format!("sim-note-{n}.txt"));
            std::fs::write(&file, "a change that finishes no task\n")?;
            git_commit(&cwd, "sim: a commit without a ticked task");
            result_ok(&mut out, &session, &usage, "committed, no task finished");
            Ok(0)
        }
        "empty" => {
            let done = tick_only(&mut out, &session, &cwd)?;
            result_ok(&mut out, &session, &usage, &done);
            Ok(0)
        }
        "tick-crash" => {
            tick(&mut out, &session, &cwd)?;
            eprintln!("Error: simulated crash after the work was committed");
            Ok(1)
        }
        "shared" => {
            let spec = std::env::var("SWR_SPEC").unwrap_or_default();
            std::fs::write(cwd.join("shared.txt"), format!("written for {spec}\n"))?;
            ok(&mut out, &session, &usage, &cwd)
        }
        "linger" => {
            ok(&mut out, &session, &usage, &cwd)?;
            // The result is out; the process does not exit (a lingering MCP server).
            hang(false, false)
        }
        "clobber" => {
            if let Some(p) = std::env::var_os("SWR_TASKS_PATH") {
                let bytes = std::fs::read(&p)?;
                std::fs::write(&p, &bytes[..bytes.len() / 3])?;
            }
            let _ = out.flush();
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGKILL);
            Ok(1)
        }
        "crash" | "crash-lost" => {
            text(&mut out, &session, "about to crash");
            eprintln!("Error: simulated crash (step {} of the plan)", n + 1);
            Ok(1)
        }
        "signal" => {
            let _ = out.flush();
            // No core file: it would land in the project and dirty the tree.
            let _ = nix::sys::resource::setrlimit(nix::sys::resource::Resource::RLIMIT_CORE, 0, 0);
            // Rust's runtime handles SIGSEGV to report stack overflows: the first one only
            // restores the default action, the second kills.
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
            let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSEGV);
            std::thread::sleep(Duration::from_secs(5));
            Ok(1)
        }
        "hang" => hang(false, false),
        "hang-term" => hang(true, false),
        "noisy-hang" => hang(false, true),
        "flood" => {
            let mb = arg.unwrap_or(10.0).max(0.0);
            let line = format!("{}\n", "x".repeat(1023));
            let total = (mb * 1024.0) as u64;
            for _ in 0..total {
                if out.write_all(line.as_bytes()).is_err() {
                    break;
                }
            }
            ok(&mut out, &session, &usage, &cwd)
        }
        "grandchild" => {
            leave_grandchild(&mut out, &session)?;
            ok(&mut out, &session, &usage, &cwd)
        }
        "detached" => {
            leave_detached(&mut out, &session)?;
            ok(&mut out, &session, &usage, &cwd)
        }
        "sleep" => {
            let _ = out.flush();
            std::thread::sleep(Duration::from_secs_f64(arg.unwrap_or(5.0).max(0.0)));
            ok(&mut out, &session, &usage, &cwd)
        }
        "ratelimit" => {
            let secs = arg.unwrap_or(5.0).max(0.0);
            let resets = jiff::Timestamp::now().as_second() + secs.ceil() as i64;
            emit(
                &mut out,
                json!({"type": "rate_limit_event", "session_id": session,
                       "rate_limit_info": {"status": "rejected", "resetsAt": resets,
                                            "rateLimitType": "five_hour"}}),
            );
            let msg = format!("Claude AI usage limit reached|{resets}");
            failure(&mut out, &session, "rate_limit", &msg);
            Ok(1)
        }
        "escapes" => {
            // What a hostile or broken agent can print: swr must never pass it to a terminal raw.
            text(&mut out, &session, "\x1b[2J\x1b]0;pwned\x07screen cleared");
            eprintln!("Error: \x1b[31mred\x1b[0m \x1b]0;pwned\x07 crash");
            Ok(1)
        }
        "auth" => {
            failure(
                &mut out,
                &session,
                "authentication_failed",
                "Not logged in · Please run /login",
            );
            Ok(1)
        }
        "overloaded" => {
            failure(
                &mut out,
                &session,
                "overloaded",
                "API Error: Repeated 529 Overloaded errors",
            );
            Ok(1)
        }
        other => {
            eprintln!("swr sim-agent: unknown step {other:?} in SWR_SIM_PLAN; steps:\n{STEPS}");
            Ok(2)
        }
    }
}

/// A `sleep` that inherits stdout: it holds the output pipe open after the agent exits.
fn leave_grandchild(out: &mut impl Write, session: &str) -> anyhow::Result<()> {
    let child = Command::new("sleep")
        .arg("1000")
        .stdin(Stdio::null())
        .spawn()?;
    text(out, session, &format!("grandchild pid {}", child.id()));
    // Deliberately neither waited for nor killed: it is the process swr must clean up.
    std::mem::forget(child);
    Ok(())
}

/// A `sleep` in a new session, out of the agent's process group.
fn leave_detached(out: &mut impl Write, session: &str) -> anyhow::Result<()> {
    let child = Command::new("setsid")
        .args(["sleep", "1000"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    text(out, session, &format!("detached pid {}", child.id()));
    std::mem::forget(child);
    Ok(())
}

fn emit(out: &mut impl Write, v: serde_json::Value) {
    let _ = writeln!(out, "{v}");
    let _ = out.flush();
}

fn text(out: &mut impl Write, session: &str, t: &str) {
    emit(
        out,
        json!({"type": "assistant", "session_id": session,
               "message": {"role": "assistant", "model": "sim",
                           "content": [{"type": "text", "text": t}]}}),
    );
}

/// What one simulated run costs, in claude's words.
struct SimUsage {
    input: u64,
    cache_read: u64,
    output: u64,
    cost: f64,
}

impl SimUsage {
    fn new(prompt_words: usize) -> SimUsage {
        let cost = std::env::var("SWR_SIM_COST")
            .ok()
            .and_then(|c| c.trim().parse::<f64>().ok())
            .filter(|c| c.is_finite() && *c >= 0.0)
            .unwrap_or(0.01);
        SimUsage {
            input: 4 * prompt_words as u64,
            cache_read: 1500,
            output: 250,
            cost,
        }
    }
}

fn result_ok(out: &mut impl Write, session: &str, u: &SimUsage, t: &str) {
    emit(
        out,
        json!({"type": "result", "subtype": "success", "is_error": false, "num_turns": 1,
               "duration_ms": 10, "total_cost_usd": u.cost, "session_id": session,
               "terminal_reason": "completed", "result": t,
               "usage": {"input_tokens": u.input, "cache_read_input_tokens": u.cache_read,
                         "cache_creation_input_tokens": 0, "output_tokens": u.output},
               "modelUsage": {"sim": {"inputTokens": u.input, "outputTokens": u.output,
                                      "cacheReadInputTokens": u.cache_read,
                                      "cacheCreationInputTokens": 0, "webSearchRequests": 0,
                                      "costUSD": u.cost}}}),
    );
}

fn failure(out: &mut impl Write, session: &str, error: &str, msg: &str) {
    emit(
        out,
        json!({"type": "assistant", "session_id": session, "error": error,
               "is_api_error_message": true,
               "message": {"role": "assistant", "model": "<synthetic>",
                           "content": [{"type": "text", "text": msg}]}}),
    );
    emit(
        out,
        json!({"type": "result", "subtype": "success", "is_error": true, "num_turns": 1,
               "duration_ms": 10, "total_cost_usd": 0, "session_id": session,
               "terminal_reason": "api_error", "result": msg}),
    );
}

fn ok(out: &mut impl Write, session: &str, u: &SimUsage, cwd: &Path) -> anyhow::Result<u8> {
    let done = tick(out, session, cwd)?;
    result_ok(out, session, u, &done);
    Ok(0)
}

/// Ticks the next task and commits tasks.md alone: the agent claims work it did not do.
fn tick_only(out: &mut impl Write, session: &str, cwd: &Path) -> anyhow::Result<String> {
    let Some(tasks_path) = std::env::var_os("SWR_TASKS_PATH").map(PathBuf::from) else {
        return Ok("no SWR_TASKS_PATH: nothing ticked".into());
    };
    let list = spec::read_tasks(&tasks_path)?;
    // Required tasks first, then optional ones: the runner only sends the agent to those
    // when include_optional_tasks is on.
    let Some(task) = list.next_task().or_else(|| list.next_task_with(true)) else {
        return Ok("every task is already done".into());
    };
    let (id, title) = (task.id.clone(), task.title.clone());
    text(out, session, &format!("ticking task {id} without doing it"));
    spec::set_task_status(&tasks_path, &id, TaskStatus::Done)?;
    git_commit(cwd, &format!("feat(sim): task {id} {title}"));
    Ok(format!("task {id} done"))
}

/// Ticks the next task and commits it; says what it did.
fn tick(out: &mut impl Write, session: &str, cwd: &Path) -> anyhow::Result<String> {
    let Some(tasks_path) = std::env::var_os("SWR_TASKS_PATH").map(PathBuf::from) else {
        return Ok("no SWR_TASKS_PATH: nothing ticked".into());
    };
    let list = spec::read_tasks(&tasks_path)?;
    // Required tasks first, then optional ones: the runner only sends the agent to those
    // when include_optional_tasks is on.
    let Some(task) = list.next_task().or_else(|| list.next_task_with(true)) else {
        return Ok("every task is already done".into());
    };
    let (id, title) = (task.id.clone(), task.title.clone());
    emit(
        out,
        json!({"type": "assistant", "session_id": session,
               "message": {"role": "assistant", "model": "sim",
                           "content": [{"type": "tool_use", "name": "Edit",
                                        "input": {"file_path": tasks_path.display().to_string()}}]}}),
    );
    spec::set_task_status(&tasks_path, &id, TaskStatus::Done)?;
    // One file per spec: specs run in parallel worktrees merge back without conflicts.
    let spec = std::env::var("SWR_SPEC").unwrap_or_else(|_| "spec".into());
    let note = cwd.join(format!("sim-work-{spec}.txt"));
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&note)?;
    writeln!(f, "task {id}: {title}")?;
    git_commit(cwd, &format!("feat(sim): task {id} {title}"));
    Ok(format!("task {id} done"))
}

fn known_session(file: &Path, id: &str) -> bool {
    std::fs::read_to_string(file).is_ok_and(|s| s.lines().any(|l| l == id))
}

fn remember_session(file: &Path, id: &str) -> std::io::Result<()> {
    if known_session(file, id) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(file)?;
    writeln!(f, "{id}")
}

fn git_commit(cwd: &Path, message: &str) {
    let git = |args: &[&str]| {
        Command::new("git")
            .args([
                "-c",
                "user.name=swr-sim",
                "-c",
                "user.email=sim@swr.invalid",
            ])
            .args(args)
            .current_dir(cwd)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
    };
    let _ = git(&["add", "-A"]);
    let _ = git(&["commit", "-q", "-m", message]);
}

fn hang(ignore_term: bool, noisy: bool) -> anyhow::Result<u8> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        // Registering a handler replaces SIGTERM's default action: the process survives it.
        let _term = if ignore_term {
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
        } else {
            None
        };
        let mut i = 0u64;
        loop {
            if noisy {
                i += 1;
                println!(
                    "{}",
                    json!({"type": "system", "subtype": "api_retry", "attempt": i})
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            } else {
                tokio::time::sleep(Duration::from_secs(3600)).await;
            }
        }
    })
}

/// `SWR_SIM_STATE`, else `<git dir>/swr-sim-state-<spec>`, else the temp dir.
fn state_path(cwd: &Path) -> PathBuf {
    if let Some(p) = std::env::var_os("SWR_SIM_STATE") {
        return PathBuf::from(p);
    }
    let spec = std::env::var("SWR_SPEC").unwrap_or_else(|_| "default".into());
    let git_dir = Command::new("git")
        .args(["rev-parse", "--absolute-git-dir"])
        .current_dir(cwd)
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    match git_dir {
        Some(d) => d.join(format!("swr-sim-state-{spec}")),
        None => std::env::temp_dir().join(format!("swr-sim-state-{spec}")),
    }
}

fn read_counter(p: &Path) -> usize {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(0)
}

fn write_counter(p: &Path, n: usize) -> std::io::Result<()> {
    std::fs::write(p, n.to_string())
}

fn rand_u32() -> u32 {
    (jiff::Timestamp::now().as_nanosecond() as u64 ^ std::process::id() as u64) as u32
}
