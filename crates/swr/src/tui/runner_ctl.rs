//! Starting and stopping runners from the TUI and `swr serve`. A runner is a detached `swr run`
//! process in its own session, with stdin closed and its output in a file (under
//! `<cache_dir>/tui/`, or `<cache_dir>/serve/`), so it survives whoever started it; stopping goes the way of `swr stop`: SIGTERM to the runner pid after
//! checking that pid and start time still name the same process. Nothing here touches the
//! store: the TUI observes the runner through it like any other.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context;
use swr_core::store::RunnerRecord;

/// What to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartRequest {
    pub project: PathBuf,
    pub spec: String,
    pub provider: Option<String>,
    pub model: Option<String>,
}

/// A runner this TUI started: its pid and start time (to tell it from a recycled pid).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    pub pid: u32,
    pub start_time: Option<u64>,
    pub output: PathBuf,
}

/// How a runner this TUI started ended, seen by the thread that reaps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exited {
    pub pid: u32,
    pub project: PathBuf,
    pub spec: String,
    pub success: bool,
    /// `exit code 2`, `killed by SIGKILL`.
    pub status: String,
    /// The last line of its output (usually `swr: error: ...` when it could not start).
    pub last_line: Option<String>,
}

/// The argv (after the executable) of the detached runner.
pub fn run_args(config_file: Option<&Path>, req: &StartRequest) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(c) = config_file {
        args.push("--config".to_string());
        args.push(c.display().to_string());
    }
    args.extend([
        "run".to_string(),
        "--project".to_string(),
        req.project.display().to_string(),
        "--spec".to_string(),
        req.spec.clone(),
    ]);
    if let Some(p) = &req.provider {
        args.extend(["--provider".to_string(), p.clone()]);
    }
    if let Some(m) = &req.model {
        args.extend(["--model".to_string(), m.clone()]);
    }
    args
}

/// Starts a detached runner. Its stdout and stderr go to `<out_dir>/<spec>-<time>.out`.
/// `on_exit` is called from the reaping thread when it ends: a runner that fails before it
/// registers (unknown provider, spec locked...) leaves no trace in the store, only there.
pub fn start(
    exe: &Path,
    config_file: Option<&Path>,
    out_dir: &Path,
    req: &StartRequest,
    on_exit: impl FnOnce(Exited) + Send + 'static,
) -> anyhow::Result<Started> {
    std::fs::create_dir_all(out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let safe: String = req
        .spec
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let output = out_dir.join(format!(
        "{safe}-{}.out",
        jiff::Timestamp::now().strftime("%Y%m%dT%H%M%S%.3f")
    ));
    let file = std::fs::File::create(&output)
        .with_context(|| format!("cannot create {}", output.display()))?;
    let err = file.try_clone()?;
    let args = run_args(config_file, req);
    let setsid = swr_core::provider::which("setsid", &std::env::var_os("PATH").unwrap_or_default());
    let mut cmd = match &setsid {
        // setsid(1) execs in place (we are not a group leader's fork): the pid stays the runner's.
        Some(s) => {
            let mut c = Command::new(s);
            c.arg(exe).args(&args);
            c
        }
        None => {
            let mut c = Command::new(exe);
            c.args(&args);
            std::os::unix::process::CommandExt::process_group(&mut c, 0);
            c
        }
    };
    cmd.stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .env("SWR_NO_PROGRESS_BAR", "1")
        .current_dir(&req.project);
    let mut child = cmd.spawn().with_context(|| {
        if req.project.is_dir() {
            format!("cannot start {}", exe.display())
        } else {
            format!(
                "cannot start {} in {}: no such directory",
                exe.display(),
                req.project.display()
            )
        }
    })?;
    let pid = child.id();
    let start_time = swr_core::procinfo::start_time(pid);
    // Reap it when it ends, so it never lingers as a zombie while the TUI runs.
    let (project, spec, out) = (req.project.clone(), req.spec.clone(), output.clone());
    let _ = std::thread::Builder::new()
        .name("swr-tui-reap".into())
        .spawn(move || {
            let Ok(st) = child.wait() else { return };
            let status = match (
                st.code(),
                std::os::unix::process::ExitStatusExt::signal(&st),
            ) {
                (Some(c), _) => format!("exit code {c}"),
                (None, Some(s)) => nix::sys::signal::Signal::try_from(s)
                    .map(|s| format!("killed by {s}"))
                    .unwrap_or_else(|_| format!("killed by signal {s}")),
                (None, None) => "ended".to_string(),
            };
            let last_line = super::logview::read_tail(&out, 20)
                .ok()
                .and_then(|(lines, _)| last_words(&lines));
            on_exit(Exited {
                pid,
                project,
                spec,
                success: st.success(),
                status,
                last_line,
            });
        });
    Ok(Started {
        pid,
        start_time,
        output,
    })
}

/// The line of a runner's output worth showing: its error if it printed one, else its last.
fn last_words(lines: &[String]) -> Option<String> {
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("swr: error:"))
        .or_else(|| lines.iter().rev().find(|l| !l.trim().is_empty()))
        .map(|l| l.trim().to_string())
}

/// Sends SIGTERM to a runner if it is still the process that registered. `Ok(false)` when it
/// was no longer alive.
pub fn stop(lock_dir: &Path, r: &RunnerRecord) -> anyhow::Result<bool> {
    if !swr_core::store::runner_alive(r, lock_dir) {
        return Ok(false);
    }
    terminate(r.pid)?;
    Ok(true)
}

/// SIGTERM to `pid`.
pub fn terminate(pid: u32) -> anyhow::Result<()> {
    let pid = nix::unistd::Pid::from_raw(pid as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM)?;
    Ok(())
}

/// Calls `gone` once the runner of `r` has died, by any death, SIGKILL included: a thread
/// blocks on a shared `flock` of the spec lock, which the kernel grants when the runner's
/// exclusive lock dies with it. No polling, and the lock is released at once (a new runner's
/// `acquire` retries past it).
pub fn watch_runner(lock_dir: &Path, r: &RunnerRecord, gone: impl FnOnce() + Send + 'static) {
    let path = swr_core::store::lock_file_path(lock_dir, &r.project, &r.spec);
    let (pid, start_time) = (r.pid, r.pid_start_time);
    let _ = std::thread::Builder::new()
        .name("swr-tui-lockwatch".into())
        .spawn(move || {
            use nix::fcntl::{Flock, FlockArg};
            let alive = || swr_core::procinfo::process_alive(pid, start_time);
            loop {
                let Ok(file) = std::fs::File::open(&path) else {
                    break;
                };
                let granted = Flock::lock(file, FlockArg::LockShared).is_ok();
                // Granted while the runner lives: it has not locked yet, or is ending after
                // unlocking. Either way, look again shortly.
                if !alive() {
                    break;
                }
                if !granted {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            gone();
        });
}

/// Whether a runner we started is still alive.
pub fn alive(s: &Started) -> bool {
    swr_core::procinfo::process_alive(s.pid, s.start_time)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argv_carries_config_provider_and_model() {
        let req = StartRequest {
            project: PathBuf::from("/r/app"),
            spec: "auth".into(),
            provider: Some("codex".into()),
            model: Some("o4".into()),
        };
        assert_eq!(
            run_args(Some(Path::new("/c.json")), &req),
            [
                "--config",
                "/c.json",
                "run",
                "--project",
                "/r/app",
                "--spec",
                "auth",
                "--provider",
                "codex",
                "--model",
                "o4"
            ]
        );
        let plain = StartRequest {
            provider: None,
            model: None,
            ..req
        };
        assert_eq!(run_args(None, &plain).len(), 5);
    }
}
