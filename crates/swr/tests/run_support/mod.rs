//! A throw-away world for running the real `swr` binary: a git project with a spec, a config
//! with short timers, private HOME/XDG dirs and state store, and the simulated agent.

#![allow(dead_code, clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub struct World {
    pub dir: tempfile::TempDir,
    pub project: PathBuf,
    pub config: PathBuf,
    pub spec: String,
}

pub fn swr_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_swr"))
}

impl World {
    /// A project with `tasks` pending tasks and a config with `extra` merged over short timers.
    pub fn new(tasks: usize, extra: Value) -> World {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("proj");
        let spec = "feat".to_string();
        let spec_dir = project.join(".spec-workflow/specs").join(&spec);
        std::fs::create_dir_all(&spec_dir).unwrap();
        let mut md = String::from("# Tasks\n\n");
        for i in 1..=tasks {
            md.push_str(&format!("- [ ] {i}. Task number {i}\n"));
        }
        std::fs::write(spec_dir.join("tasks.md"), md).unwrap();
        git(&project, &["init", "-q"]);
        git(&project, &["add", "-A"]);
        git(&project, &["commit", "-q", "-m", "init"]);
        let mut cfg = serde_json::json!({
            "repos_root": dir.path().display().to_string(),
            "cache_dir": dir.path().join("cache").display().to_string(),
            "provider": "sim",
            "activity_timeout_seconds": 5,
            "iteration_timeout_seconds": 20,
            "stop_grace_seconds": 1,
            "retry_backoff_seconds": 0.2,
            "retry_backoff_multiplier": 2.0,
            "retry_max_backoff_seconds": 10,
            "retry_jitter": "none",
            "rate_limit_jitter_seconds": 0,
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut cfg, extra) {
            base.extend(more);
        }
        let config = dir.path().join("config.json");
        std::fs::write(&config, serde_json::to_string_pretty(&cfg).unwrap()).unwrap();
        let project = project.canonicalize().unwrap();
        World {
            dir,
            project,
            config,
            spec,
        }
    }

    pub fn cmd(&self, plan: &str) -> Command {
        let mut c = Command::new(swr_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env("SWR_SIM_PLAN", plan)
            .env("SWR_SIM_STATE", self.dir.path().join("sim-state"))
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        c
    }

    pub fn run_args(&self) -> Vec<String> {
        vec![
            "run".into(),
            "--project".into(),
            self.project.display().to_string(),
            "--spec".into(),
            self.spec.clone(),
            "--json".into(),
        ]
    }

    /// `swr run --json` to its end.
    pub fn run(&self, plan: &str) -> RunResult {
        let out = self
            .cmd(plan)
            .args(self.run_args())
            .stdin(Stdio::null())
            .output()
            .unwrap();
        RunResult::from(out)
    }

    /// `swr run --json` in the background.
    pub fn spawn(&self, plan: &str) -> Child {
        self.cmd(plan)
            .args(self.run_args())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    pub fn json(&self, args: &[&str]) -> Value {
        let out = self.cmd("").args(args).output().unwrap();
        assert!(
            out.status.success(),
            "swr {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    pub fn history(&self) -> Vec<Value> {
        match self.json(&["history", "--json"]) {
            Value::Array(a) => a,
            other => panic!("history is not an array: {other}"),
        }
    }

    pub fn status(&self) -> Vec<Value> {
        match self.json(&["status", "--json", "--all"]) {
            Value::Array(a) => a,
            other => panic!("status is not an array: {other}"),
        }
    }

    /// `swr status --reap`: dead runners marked crashed, what they left killed.
    pub fn status_reaped(&self) -> Vec<Value> {
        match self.json(&["status", "--json", "--all", "--reap"]) {
            Value::Array(a) => a,
            other => panic!("status is not an array: {other}"),
        }
    }

    /// Waits until `swr status` shows an attempt with an agent pid... via the store's log_path
    /// and the history: returns once `pred` holds, or panics after `timeout`.
    pub fn wait_for(&self, what: &str, timeout: Duration, mut pred: impl FnMut(&World) -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred(self) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("timed out after {timeout:?} waiting for {what}");
    }

    pub fn tasks_done(&self) -> usize {
        let text = std::fs::read_to_string(
            self.project
                .join(".spec-workflow/specs")
                .join(&self.spec)
                .join("tasks.md"),
        )
        .unwrap();
        text.matches("- [x]").count()
    }

    pub fn git_status(&self) -> String {
        let out = Command::new("git")
            .args(["status", "--porcelain"])
            .current_dir(&self.project)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Pids named in the attempt logs by the sim agent (`grandchild pid N`, `detached pid N`).
    pub fn left_behind_pids(&self) -> Vec<u32> {
        let mut pids = Vec::new();
        let logs = self.project.join(".spec-workflow/logs").join(&self.spec);
        let Ok(entries) = std::fs::read_dir(logs) else {
            return pids;
        };
        for e in entries.flatten() {
            let text = std::fs::read_to_string(e.path()).unwrap_or_default();
            for word in ["grandchild pid ", "detached pid "] {
                for part in text.split(word).skip(1) {
                    let n: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
                    if let Ok(p) = n.parse() {
                        pids.push(p);
                    }
                }
            }
        }
        pids
    }
}

pub struct RunResult {
    pub code: i32,
    pub events: Vec<Value>,
    pub stderr: String,
}

impl From<Output> for RunResult {
    fn from(out: Output) -> RunResult {
        let events = String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        RunResult {
            code: out.status.code().unwrap_or(-1),
            events,
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl RunResult {
    pub fn finished(&self) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == "finished")
            .unwrap_or_else(|| panic!("no finished event; stderr:\n{}", self.stderr))
    }

    pub fn of(&self, kind: &str) -> Vec<&Value> {
        self.events.iter().filter(|e| e["event"] == kind).collect()
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    std::fs::create_dir_all(dir).unwrap();
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
        .status
        .success();
    assert!(ok, "git {args:?}");
}

/// Alive and not a zombie.
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            let state = stat
                .rfind(')')
                .and_then(|i| stat[i + 1..].split_whitespace().next().map(str::to_string));
            state.as_deref() != Some("Z")
        }
        Err(_) => false,
    }
}

pub fn ms(v: &Value) -> Option<i64> {
    let s = v.as_str()?;
    let t: jiff::Timestamp = s.parse().ok()?;
    Some(t.as_millisecond())
}
