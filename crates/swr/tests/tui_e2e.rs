//! End to end: the real `swr tui` in tmux drives a detached runner of the simulated agent
//! through a crash, a retry and completion, then quits with "stop all" and leaves no process.
//! Skipped (with a notice) when tmux is not installed.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-L")
            .arg(&self.socket)
            .args(args)
            .output()
            .unwrap()
    }
    fn capture(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "e2e"]).stdout).into_owned()
    }
    fn keys(&self, k: &str) {
        self.cmd(&["send-keys", "-t", "e2e", k]);
    }
    /// Polls the screen until `pred` holds; panics with the last screen after `timeout`.
    fn wait_for(&self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let t = Instant::now();
        loop {
            let s = self.capture();
            if pred(&s) {
                return s;
            }
            if t.elapsed() > timeout {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// A temp world: HOME/XDG dirs, a copy of the binary under the temp dir (every process it
/// spawns names that unique path, so pgrep finds exactly ours) and one git project with a
/// spec `demo`. `None`, with a notice, when tmux is not installed.
const TASKS: &str =
    "# Tasks\n\n- [ ] 1. Write\n- [ ] 2. Test\n- [ ] 3. Document\n- [ ] 4. Release\n";

struct World {
    tmp: tempfile::TempDir,
    root: PathBuf,
    exe: PathBuf,
    project: PathBuf,
}

fn world(prefix: &str, tasks: &str) -> Option<World> {
    if Command::new("tmux").arg("-V").output().is_err() {
        eprintln!("NOTICE: tmux is not installed; skipping the TUI end-to-end test");
        return None;
    }
    let tmp = tempfile::Builder::new().prefix(prefix).tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    for d in ["home", "config", "cache", "repos"] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    let exe = root.join("swr");
    std::fs::copy(env!("CARGO_BIN_EXE_swr"), &exe).unwrap();
    let project = root.join("repos/app0");
    let spec = project.join(".spec-workflow/specs/demo");
    std::fs::create_dir_all(&spec).unwrap();
    std::fs::write(spec.join("tasks.md"), tasks).unwrap();
    git(&project, &["init", "-q"]);
    git(&project, &["add", "-A"]);
    git(&project, &["commit", "-qm", "init"]);
    Some(World {
        tmp,
        root,
        exe,
        project,
    })
}

fn pgrep(pattern: &str) -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-af", pattern])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains("pgrep") && !l.contains("tmux"))
        .map(str::to_string)
        .collect()
}

#[test]
fn tui_starts_a_runner_shows_the_retry_and_stops_it_on_quit() {
    let Some(World {
        tmp: _tmp,
        root,
        exe,
        project,
    }) = world("swr-tui-e2e-", TASKS)
    else {
        return;
    };
    let config = root.join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "repos_root": root.join("repos"),
            "cache_dir": root.join("cache"),
            "provider": "sim",
            "retry_backoff_seconds": 1,
            "retry_jitter": "none",
            "retry_max_retries": 3,
            "stop_grace_seconds": 2,
        })
        .to_string(),
    )
    .unwrap();
    let tmux = Tmux {
        socket: format!("swr-e2e-{}", std::process::id()),
    };
    let r = root.display();
    let shell = format!(
        "env HOME={r}/home XDG_CONFIG_HOME={r}/config XDG_CACHE_HOME={r}/cache NO_COLOR=1 \
         SWR_SIM_PLAN=crash,ok,ok,ok,ok,sleep:120 {} --config {} tui; echo TUI-EXIT $?; sleep 60",
        exe.display(),
        config.display()
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "120",
        "-y",
        "36",
        &shell,
    ]);
    assert!(out.status.success(), "{out:?}");
    let long = Duration::from_secs(30);
    tmux.wait_for("the project tree", long, |s| {
        s.contains("demo") && s.contains("app0")
    });
    // One project: expanded at once. Cursor on the project row; j selects the spec.
    tmux.keys("j");
    tmux.wait_for("the spec selected", long, |s| {
        s.contains("No runner has run demo")
    });
    tmux.keys("s");
    tmux.wait_for("Retry: 1/3 after the crash", long, |s| {
        s.contains("Retry: 1/3")
    });
    let s = tmux.wait_for("completion", long, |s| s.contains("COMPLETED"));
    assert!(s.contains("4/4"), "{s}");

    // A fifth task, and the plan's next step holds the agent: a runner active at quit time.
    let tasks_md = project.join(".spec-workflow/specs/demo/tasks.md");
    std::fs::write(tasks_md, format!("{TASKS}- [ ] 5. Hold\n")).unwrap();
    tmux.keys("s");
    tmux.wait_for("the new runner running", long, |s| s.contains("RUNNING"));
    assert!(
        !pgrep(&root.display().to_string()).is_empty(),
        "runner should be alive"
    );
    tmux.keys("q");
    tmux.wait_for("the quit question", long, |s| {
        s.contains("Stop all and quit? (y/n/c)")
    });
    tmux.keys("y");
    tmux.wait_for("the TUI to exit", long, |s| s.contains("TUI-EXIT 0"));
    let t = Instant::now();
    loop {
        let left = pgrep(&root.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(t.elapsed() < long, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    // The runner recorded a graceful stop.
    let status = Command::new(&exe)
        .args([
            "--config",
            &config.display().to_string(),
            "status",
            "--json",
        ])
        .env("HOME", root.join("home"))
        .env("XDG_CONFIG_HOME", root.join("config"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&status.stdout);
    assert!(text.contains("\"stopped\""), "{text}");
}

/// A runner started elsewhere (`swr run`) and killed with -9 writes nothing: the TUI must
/// still show it crashed at once, not at its next safety tick (set to a minute here).
#[test]
fn tui_shows_a_runner_killed_with_sigkill_at_once() {
    let Some(World {
        tmp: _tmp,
        root,
        exe,
        project,
    }) = world("swr-tui-kill-", "- [ ] 1. Hold\n- [ ] 2. Next\n")
    else {
        return;
    };
    let config = root.join("config.json");
    std::fs::write(
        &config,
        serde_json::json!({
            "repos_root": root.join("repos"),
            "cache_dir": root.join("cache"),
            "provider": "sim",
            "tui_refresh_seconds": 60,
            "stop_grace_seconds": 2,
        })
        .to_string(),
    )
    .unwrap();
    let env = |c: &mut Command| {
        c.env("HOME", root.join("home"))
            .env("XDG_CONFIG_HOME", root.join("config"))
            .env("XDG_CACHE_HOME", root.join("cache"))
            .env("SWR_SIM_PLAN", "hang");
    };
    let mut run = Command::new(&exe);
    run.args(["--config", &config.display().to_string(), "run"])
        .args([
            "--project",
            &project.display().to_string(),
            "--spec",
            "demo",
        ])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    env(&mut run);
    let mut runner = run.spawn().unwrap();
    let tmux = Tmux {
        socket: format!("swr-e2e-kill-{}", std::process::id()),
    };
    let r = root.display();
    let shell = format!(
        "env HOME={r}/home XDG_CONFIG_HOME={r}/config XDG_CACHE_HOME={r}/cache NO_COLOR=1 \
         {} --config {} tui; sleep 60",
        exe.display(),
        config.display()
    );
    let out = tmux.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        "100",
        "-y",
        "30",
        &shell,
    ]);
    assert!(out.status.success(), "{out:?}");
    let long = Duration::from_secs(30);
    tmux.wait_for("the project tree", long, |s| s.contains("demo"));
    tmux.keys("j");
    tmux.wait_for("the runner running", long, |s| s.contains("RUNNING"));
    runner.kill().unwrap(); // SIGKILL
    let _ = runner.wait();
    let t = Instant::now();
    // Well under the 60 s safety tick: only the lock watcher can make it.
    let s = tmux.wait_for("CRASHED on screen", Duration::from_secs(10), |s| {
        s.contains("CRASHED")
    });
    assert!(s.contains("runner process died"), "{s}");
    eprintln!("runner SIGKILL -> CRASHED on screen: {:?}", t.elapsed());
    tmux.keys("q");
    let t = Instant::now();
    loop {
        let left = pgrep(&root.display().to_string());
        if left.is_empty() {
            break;
        }
        assert!(t.elapsed() < long, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
