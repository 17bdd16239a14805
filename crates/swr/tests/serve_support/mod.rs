//! A real `swr serve` for tests: started on 127.0.0.1 with port 0 (its first stderr line names
//! the port), an HTTP client that never treats a status as an error, an SSE reader, and raw
//! requests for headers a client library would not let us forge.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::run_support::{World, alive, git};

pub struct Service {
    pub child: Child,
    pub base: String,
    /// Every stderr line so far.
    pub stderr: Arc<Mutex<Vec<String>>>,
}

impl Service {
    /// `swr serve` with `args` (default: `--listen 127.0.0.1:0`), the world's config and env;
    /// `plan` is the simulated agents' SWR_SIM_PLAN.
    pub fn start(w: &World, plan: &str, args: &[&str]) -> Service {
        let mut cmd = w.cmd(plan);
        cmd.arg("serve");
        if !args.contains(&"--listen") {
            cmd.args(["--listen", "127.0.0.1:0"]);
        }
        cmd.args(args);
        // Each project keeps its own simulated-agent state (inside its .git).
        cmd.env_remove("SWR_SIM_STATE");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        let lines = stderr.clone();
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let Ok(line) = line else { break };
                if let Some(i) = line.find("listening on http://") {
                    let rest = &line[i + "listening on http://".len()..];
                    let addr = rest.split('/').next().unwrap_or("").to_string();
                    let _ = tx.send(addr);
                }
                lines.lock().unwrap().push(line);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| {
                panic!(
                    "swr serve did not say where it listens; stderr: {:?}",
                    stderr.lock().unwrap()
                )
            });
        // A wildcard bind is reached through loopback (this machine only).
        let addr = addr.replace("0.0.0.0", "127.0.0.1");
        Service {
            child,
            base: format!("http://{addr}"),
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn port(&self) -> u16 {
        self.base.rsplit(':').next().unwrap().parse().unwrap()
    }

    pub fn stderr_text(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit (bounded); returns the exit code.
    pub fn term(&mut self) -> Option<i32> {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                return st.code();
            }
            assert!(
                Instant::now() < deadline,
                "swr serve did not exit after SIGTERM; stderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        request("GET", &self.url(path), None, &[])
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        request("POST", &self.url(path), Some(body), &[])
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        request("DELETE", &self.url(path), None, &[])
    }

    /// Polls `GET path` until `pred` holds on its JSON; panics with the last answer.
    pub fn wait_json(
        &self,
        path: &str,
        what: &str,
        timeout: Duration,
        pred: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            let (code, v) = self.get(path);
            if code == 200 && pred(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}; last {path}: {code} {v:#}\nstderr:\n{}",
                self.stderr_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Service {
    /// A graceful stop, so the runners it started stop too and no agent outlives the test.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let deadline = Instant::now() + Duration::from_secs(30);
            while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// One request; the status and the JSON body (Null when it is not JSON).
pub fn request(
    method: &str,
    url: &str,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, Value) {
    let a = agent();
    let resp = match (method, body) {
        ("GET", _) => {
            let mut r = a.get(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        ("DELETE", _) => {
            let mut r = a.delete(url);
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.call()
        }
        (_, b) => {
            let mut r = a.post(url).header("Content-Type", "application/json");
            for (k, v) in headers {
                r = r.header(*k, *v);
            }
            r.send(b.unwrap_or(""))
        }
    };
    let mut resp = resp.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
    let code = resp.status().as_u16();
    let text = resp.body_mut().read_to_string().unwrap_or_default();
    (code, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A request written by hand, for headers clients set themselves (Host). Returns the status.
pub fn raw_status(port: u16, head: &str) -> u16 {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(head.as_bytes()).unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).unwrap();
    let line = String::from_utf8_lossy(&buf[..n]).to_string();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {line:?}"))
}

/// A request written by hand; the whole answer (head and body) up to the server's close.
pub fn raw_answer(port: u16, request: &str) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf);
    String::from_utf8_lossy(&buf).into_owned()
}

/// One Server-Sent Event.
#[derive(Debug, Clone)]
pub struct Sse {
    pub event: String,
    pub data: String,
}

/// Opens an SSE stream; events arrive on the channel (a thread reads them).
pub fn sse(url: &str) -> (u16, Receiver<Sse>) {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let resp = a.get(url).call().unwrap();
    let code = resp.status().as_u16();
    let (tx, rx) = mpsc::channel();
    let reader = resp.into_body().into_reader();
    std::thread::spawn(move || {
        let mut event = String::new();
        let mut data = String::new();
        for line in BufReader::new(reader).lines() {
            let Ok(line) = line else { break };
            if line.is_empty() {
                if !data.is_empty() || !event.is_empty() {
                    let ev = Sse {
                        event: std::mem::take(&mut event),
                        data: std::mem::take(&mut data),
                    };
                    if tx.send(ev).is_err() {
                        break;
                    }
                }
            } else if let Some(v) = line.strip_prefix("event:") {
                event = v.trim().to_string();
            } else if let Some(v) = line.strip_prefix("data:") {
                if !data.is_empty() {
                    data.push('\n');
                }
                data.push_str(v.strip_prefix(' ').unwrap_or(v));
            }
        }
    });
    (code, rx)
}

/// Reads events until `pred` holds on one; panics after `timeout` with what was seen.
pub fn sse_until(
    rx: &Receiver<Sse>,
    what: &str,
    timeout: Duration,
    mut pred: impl FnMut(&Sse) -> bool,
) -> Vec<Sse> {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(ev) => {
                let hit = pred(&ev);
                seen.push(ev);
                if hit {
                    return seen;
                }
            }
            Err(_) => panic!("timed out after {timeout:?} waiting for {what}; events: {seen:#?}"),
        }
    }
}

/// Another git project with one spec of `tasks` pending tasks next to the world's, under the
/// same repos_root. Returns its canonical path.
pub fn add_project(w: &World, name: &str, spec: &str, tasks: usize) -> PathBuf {
    let project = w.dir.path().join(name);
    let spec_dir = project.join(".spec-workflow/specs").join(spec);
    std::fs::create_dir_all(&spec_dir).unwrap();
    let mut md = String::from("# Tasks\n\n");
    for i in 1..=tasks {
        md.push_str(&format!("- [ ] {i}. Task number {i}\n"));
    }
    std::fs::write(spec_dir.join("tasks.md"), md).unwrap();
    git(&project, &["init", "-q"]);
    git(&project, &["add", "-A"]);
    git(&project, &["commit", "-q", "-m", "init"]);
    project.canonicalize().unwrap()
}

/// `swr queue add` through the CLI.
pub fn queue_add(w: &World, project: &Path, spec: &str, extra: &[&str]) -> Value {
    let out = w
        .cmd("")
        .args(["queue", "add", "--json", "-p"])
        .arg(project)
        .args(["-s", spec])
        .args(extra)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "swr queue add: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `swr queue ls --all --json`'s entries.
pub fn queue_entries(w: &World) -> Vec<Value> {
    w.json(&["queue", "ls", "--all", "--json"])["entries"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

pub fn entry(w: &World, id: &Value) -> Value {
    queue_entries(w)
        .into_iter()
        .find(|e| &e["id"] == id)
        .unwrap_or(Value::Null)
}

/// Kills a process and waits until it is gone (a zombie counts as gone).
pub fn kill9(pid: u32) {
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid) {
        assert!(Instant::now() < deadline, "pid {pid} survived SIGKILL");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `GET url`'s body when it answers 200, else None (nothing listening yet, an error status).
pub fn try_get(url: &str) -> Option<String> {
    let a: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(5)))
        .build()
        .into();
    let mut r = a.get(url).call().ok()?;
    if r.status().as_u16() != 200 {
        return None;
    }
    r.body_mut().read_to_string().ok()
}

/// `GET url`: the status, the Content-Type and the body as text.
pub fn get_text(url: &str) -> (u16, String, String) {
    let a = agent();
    let mut r = a
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let ctype = r
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        r.status().as_u16(),
        ctype,
        r.body_mut().read_to_string().unwrap_or_default(),
    )
}
