//! Many runners on one machine: the global agent cap, the shared rate-limit clock of an
//! account, the retry budget. Real `swr run` processes sharing one state directory.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use run_support::{alive, git, swr_bin};
use serde_json::{Value, json};

/// Projects sharing one config and state directory.
struct Fleet {
    dir: tempfile::TempDir,
    config: PathBuf,
}

impl Fleet {
    fn new(extra: Value) -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = json!({
            "repos_root": dir.path().display().to_string(),
            "cache_dir": dir.path().join("cache").display().to_string(),
            "provider": "sim",
            "activity_timeout_seconds": 30,
            "iteration_timeout_seconds": 60,
            "stop_grace_seconds": 1,
            "retry_backoff_seconds": 0.2,
            "retry_max_backoff_seconds": 10,
            "retry_jitter": "none",
            "rate_limit_jitter_seconds": 0,
        });
        if let (Value::Object(base), Value::Object(more)) = (&mut cfg, extra) {
            base.extend(more);
        }
        let config = dir.path().join("config.json");
        std::fs::write(&config, cfg.to_string()).unwrap();
        Fleet { dir, config }
    }

    fn project(&self, name: &str, tasks: usize) -> PathBuf {
        let project = self.dir.path().join(name);
        let spec = project.join(".spec-workflow/specs/feat");
        std::fs::create_dir_all(&spec).unwrap();
        let mut md = String::from("# Tasks\n\n");
        for i in 1..=tasks {
            md.push_str(&format!("- [ ] {i}. Task {i}\n"));
        }
        std::fs::write(spec.join("tasks.md"), md).unwrap();
        git(&project, &["init", "-q"]);
        git(&project, &["add", "-A"]);
        git(&project, &["commit", "-q", "-m", "init"]);
        project.canonicalize().unwrap()
    }

    fn cmd(&self, project: &Path, plan: &str, extra_env: &[(&str, &str)]) -> Command {
        let mut c = Command::new(swr_bin());
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg-config"))
            .env("XDG_CACHE_HOME", self.dir.path().join("xdg-cache"))
            .env("SWR_SIM_PLAN", plan)
            .env("SWR_SIM_STATE", project.join(".git/sim-state"))
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
            .envs(extra_env.iter().copied())
            .arg("--config")
            .arg(&self.config)
            .current_dir(self.dir.path());
        c
    }

    fn spawn(&self, project: &Path, plan: &str, extra_env: &[(&str, &str)]) -> Child {
        self.cmd(project, plan, extra_env)
            .args(["run", "--project"])
            .arg(project)
            .args(["--spec", "feat", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    /// `swr run --json` with its events on a pipe.
    fn spawn_json(&self, project: &Path, plan: &str) -> Child {
        self.cmd(project, plan, &[])
            .args(["run", "--project"])
            .arg(project)
            .args(["--spec", "feat", "--json"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    }

    fn json(&self, args: &[&str]) -> Value {
        let out = self
            .cmd(self.dir.path(), "", &[])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    fn runners(&self) -> Vec<Value> {
        self.json(&["status", "--json", "--all"])
            .as_array()
            .unwrap()
            .clone()
    }

    fn runner_of(&self, project: &Path) -> Option<Value> {
        self.runners()
            .into_iter()
            .find(|r| r["project"] == project.display().to_string())
    }

    fn attempts_of(&self, project: &Path) -> Vec<Value> {
        self.json(&["history", "--json"])
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["project"] == project.display().to_string())
            .cloned()
            .collect()
    }

    fn wait_for(&self, what: &str, timeout: Duration, mut pred: impl FnMut() -> bool) {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if pred() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("timed out after {timeout:?} waiting for {what}");
    }
}

fn ms(v: &Value) -> i64 {
    run_support::ms(v).unwrap()
}

fn wait_ok(mut c: Child) {
    let status = c.wait().unwrap();
    let mut err = String::new();
    use std::io::Read;
    let _ = c.stderr.take().unwrap().read_to_string(&mut err);
    assert!(status.success(), "{status:?}: {err}");
}

#[test]
fn six_runners_under_a_cap_of_two_never_run_more_than_two_agents() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 2}));
    let projects: Vec<PathBuf> = (0..6).map(|i| fleet.project(&format!("p{i}"), 2)).collect();
    // Attempts long enough that all six runners are up while the first two hold the slots.
    let children: Vec<Child> = projects
        .iter()
        .map(|p| fleet.spawn_json(p, "sleep:2,sleep:0.2"))
        .collect();
    let mut queued = 0;
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        queued += String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter(|l| l.contains("\"event\":\"queued\""))
            .count();
    }
    assert!(
        queued >= 4,
        "only {queued} queued events for 6 runners and 2 slots"
    );
    assert!(fleet.runners().iter().all(|r| r["status"] == "completed"));
    // Every attempt's [start, end] lies inside the time its runner held a slot.
    let attempts = fleet.json(&["history", "--json"]);
    let mut edges: Vec<(i64, i32)> = Vec::new();
    for a in attempts.as_array().unwrap() {
        edges.push((ms(&a["started_at"]), 1));
        edges.push((ms(&a["ended_at"]), -1));
    }
    assert_eq!(edges.len(), 24, "12 attempts");
    // An end and a start in the same millisecond: the end first.
    edges.sort();
    let (mut now, mut peak) = (0, 0);
    for (_, d) in edges {
        now += d;
        peak = peak.max(now);
    }
    assert!(peak <= 2, "{peak} agents at once under a cap of 2");
    assert_eq!(peak, 2, "the cap is used, not serialised to one");
}

#[test]
fn a_slot_held_by_a_runner_killed_9_is_freed() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 1}));
    let a = fleet.project("a", 1);
    let b = fleet.project("b", 1);
    let mut holder = fleet.spawn(&a, "hang", &[]);
    fleet.wait_for("a's agent", Duration::from_secs(30), || {
        fleet
            .runner_of(&a)
            .is_some_and(|r| r["agent"]["pid"].as_u64().unwrap_or(0) > 0)
    });
    let agent = fleet.runner_of(&a).unwrap()["agent"]["pid"]
        .as_u64()
        .unwrap() as u32;
    let waiter = fleet.spawn(&b, "ok", &[]);
    fleet.wait_for("b queued", Duration::from_secs(30), || {
        fleet.runner_of(&b).is_some_and(|r| r["status"] == "queued")
    });
    let queued = fleet.runner_of(&b).unwrap();
    assert!(
        queued["reason"].as_str().unwrap().contains("agent slot"),
        "{queued}"
    );
    holder.kill().unwrap();
    holder.wait().unwrap();
    wait_ok(waiter);
    assert_eq!(fleet.runner_of(&b).unwrap()["status"], "completed");
    // Clean up the agent the killed runner left.
    fleet.json(&["status", "--json", "--reap"]);
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(agent) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_rate_limit_is_shared_by_the_account_and_not_by_another() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 0}));
    let a = fleet.project("a", 1);
    let b = fleet.project("b", 1);
    let c = fleet.project("c", 1);
    let first = fleet.spawn(&a, "ratelimit:6,ok", &[]);
    fleet.wait_for("a's rate limit", Duration::from_secs(30), || {
        fleet
            .attempts_of(&a)
            .first()
            .is_some_and(|x| x["outcome"] == "rate_limited")
    });
    let reset = ms(&fleet.runner_of(&a).unwrap()["next_attempt_at"]);
    let same = fleet.spawn(&b, "ok", &[]);
    let other = fleet.spawn(&c, "ok", &[("SWR_ACCOUNT", "work")]);
    fleet.wait_for(
        "b waiting on the shared clock",
        Duration::from_secs(30),
        || {
            fleet.runner_of(&b).is_some_and(|r| {
                r["status"] == "waiting"
                    && r["reason"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("shared rate limit (sim, until ")
            })
        },
    );
    wait_ok(other);
    let c_done = ms(&fleet.runner_of(&c).unwrap()["ended_at"]);
    assert!(c_done < reset, "another account is not held up");
    wait_ok(same);
    wait_ok(first);
    let b_attempts = fleet.attempts_of(&b);
    assert_eq!(
        b_attempts.len(),
        1,
        "b never discovered the limit itself: {b_attempts:#?}"
    );
    assert!(
        ms(&b_attempts[0]["started_at"]) >= reset - 5,
        "b started before the reset"
    );
}

#[test]
fn a_retry_budget_of_two_lets_two_of_four_crashing_runners_retry() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 0, "retry_budget_per_hour": 2}));
    let projects: Vec<PathBuf> = (0..4).map(|i| fleet.project(&format!("p{i}"), 1)).collect();
    let mut children: Vec<Child> = projects
        .iter()
        .map(|p| fleet.spawn(p, "crash,ok", &[]))
        .collect();
    fleet.wait_for(
        "2 done and 2 waiting on the budget",
        Duration::from_secs(60),
        || {
            let rs = fleet.runners();
            let done = rs.iter().filter(|r| r["status"] == "completed").count();
            let waiting = rs
                .iter()
                .filter(|r| {
                    r["status"] == "waiting"
                        && r["reason"]
                            .as_str()
                            .unwrap_or("")
                            .starts_with("retry budget")
                })
                .count();
            done == 2 && waiting == 2
        },
    );
    let stats = fleet.json(&["stats", "--json"]);
    assert_eq!(stats["retry_budget"]["used"], 2, "{stats}");
    assert_eq!(stats["retry_budget"]["per_hour"], 2, "{stats}");
    for c in &mut children {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    for mut c in children {
        c.wait().unwrap();
    }
    // The wait was neither a retry nor a failure.
    for p in &projects {
        let r = fleet.runner_of(p).unwrap();
        assert!(
            r["status"] == "completed" || r["status"] == "stopped",
            "{r}"
        );
        assert!(r["retry_count"].as_u64().unwrap() <= 1, "{r}");
    }
}

#[test]
fn a_runner_queued_for_a_slot_honours_a_rate_limit_hit_while_it_waited() {
    // A holds the only slot; B queues behind it; meanwhile C (no cap, same account) hits a
    // rate limit. When B gets the slot it must wait for the shared clock, not start an attempt
    // that would only discover the same limit.
    let fleet = Fleet::new(json!({"max_concurrent_agents": 1}));
    let a = fleet.project("a", 1);
    let b = fleet.project("b", 1);
    let c = fleet.project("c", 1);
    let first = fleet.spawn(&a, "sleep:4", &[]);
    fleet.wait_for("a running", Duration::from_secs(30), || {
        !fleet.attempts_of(&a).is_empty()
    });
    let mut queued = fleet.spawn(&b, "ok", &[]);
    fleet.wait_for("b queued", Duration::from_secs(30), || {
        fleet.runner_of(&b).is_some_and(|r| r["status"] == "queued")
    });
    let mut limited = fleet.spawn(&c, "ratelimit:120", &[("SWR_MAX_CONCURRENT_AGENTS", "0")]);
    fleet.wait_for("c's rate limit", Duration::from_secs(30), || {
        fleet
            .attempts_of(&c)
            .first()
            .is_some_and(|x| x["outcome"] == "rate_limited")
    });
    wait_ok(first);
    fleet.wait_for(
        "b waiting on the shared clock after its slot",
        Duration::from_secs(30),
        || {
            fleet.runner_of(&b).is_some_and(|r| {
                r["status"] == "waiting"
                    && r["reason"]
                        .as_str()
                        .unwrap_or("")
                        .starts_with("shared rate limit (sim, until ")
            }) || !fleet.attempts_of(&b).is_empty()
        },
    );
    assert!(
        fleet.attempts_of(&b).is_empty(),
        "b started an attempt inside the account's rate-limit window: {:#?}",
        fleet.attempts_of(&b)
    );
    // b waits without the slot: a runner of another account gets it meanwhile.
    let d = fleet.project("d", 1);
    wait_ok(fleet.spawn(&d, "ok", &[("SWR_ACCOUNT", "other")]));
    for p in [&b, &c] {
        let out = fleet
            .cmd(p, "", &[])
            .args(["stop", "feat", "--project"])
            .arg(p)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    for child in [&mut queued, &mut limited] {
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "a runner did not stop");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert!(fleet.attempts_of(&b).is_empty());
}

#[test]
fn a_runner_whose_agent_got_a_slot_after_queueing_shows_as_running() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 1}));
    let a = fleet.project("a", 1);
    let b = fleet.project("b", 1);
    let first = fleet.spawn(&a, "sleep:3", &[]);
    fleet.wait_for("a running", Duration::from_secs(30), || {
        !fleet.attempts_of(&a).is_empty()
    });
    let second = fleet.spawn(&b, "sleep:6", &[]);
    fleet.wait_for("b queued", Duration::from_secs(30), || {
        fleet.runner_of(&b).is_some_and(|r| r["status"] == "queued")
    });
    fleet.wait_for("b's agent started", Duration::from_secs(30), || {
        !fleet.attempts_of(&b).is_empty()
    });
    // Its agent runs: `swr status` must say running, not "waiting for an agent slot".
    let r = fleet.runner_of(&b).unwrap();
    assert_eq!(r["status"], "running", "{r:#}");
    assert!(
        !r["reason"].as_str().unwrap_or("").contains("agent slot"),
        "{r:#}"
    );
    wait_ok(first);
    wait_ok(second);
}

/// A runner that stood in line for a slot decides again from tasks.md as it is then: a spec
/// finished by hand meanwhile starts no attempt.
#[test]
fn a_spec_finished_while_its_runner_was_queued_starts_no_attempt() {
    let fleet = Fleet::new(json!({"max_concurrent_agents": 1}));
    let a = fleet.project("a", 1);
    let b = fleet.project("b", 1);
    let holder = fleet.spawn(&a, "sleep:4", &[]);
    fleet.wait_for("a's agent", Duration::from_secs(30), || {
        fleet
            .runner_of(&a)
            .is_some_and(|r| r["agent"]["pid"].as_u64().unwrap_or(0) > 0)
    });
    let waiter = fleet.spawn(&b, "ok", &[]);
    fleet.wait_for("b queued", Duration::from_secs(30), || {
        fleet.runner_of(&b).is_some_and(|r| r["status"] == "queued")
    });
    let tasks = b.join(".spec-workflow/specs/feat/tasks.md");
    let text = std::fs::read_to_string(&tasks).unwrap();
    std::fs::write(&tasks, text.replace("- [ ] 1.", "- [x] 1.")).unwrap();
    wait_ok(holder);
    wait_ok(waiter);
    assert_eq!(fleet.runner_of(&b).unwrap()["status"], "completed");
    assert!(
        fleet.attempts_of(&b).is_empty(),
        "{:?}",
        fleet.attempts_of(&b)
    );
}
