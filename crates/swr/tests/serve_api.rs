//! The HTTP API against a real `swr serve` on 127.0.0.1: queue, start, SSE log, stop, input
//! errors, the guard (token, Host, Origin), SIGTERM, and restarts after kill -9.

#![allow(clippy::unwrap_used)]

mod run_support;
mod serve_support;

use std::time::Duration;

use run_support::{World, alive};
use serde_json::{Value, json};
use serve_support::{
    Service, add_project, entry, kill9, queue_add, raw_answer, raw_status, request, sse, sse_until,
};

const T: Duration = Duration::from_secs(60);

fn runner_of<'a>(runners: &'a Value, spec: &str) -> Option<&'a Value> {
    runners.as_array()?.iter().find(|r| r["spec"] == spec)
}

#[test]
fn queue_start_log_stop_and_bad_input_over_http() {
    let w = World::new(3, json!({"max_concurrent_agents": 4}));
    // The agent crashes once, then hangs: the runner stays alive with Retry: 1/3.
    let svc = Service::start(&w, "crash,hang", &[]);
    let (code, health) = svc.get("/healthz");
    assert_eq!(code, 200, "{health}");
    assert_eq!(health["ok"], true);

    // Projects: the world's spec with its progress.
    let (code, projects) = svc.get("/api/projects");
    assert_eq!(code, 200);
    let p = &projects["projects"][0];
    assert_eq!(p["path"], w.project.display().to_string());
    assert_eq!(p["specs"][0]["spec"], "feat");
    assert_eq!(p["specs"][0]["total"], 3);

    // Malformed bodies: 400 naming the field, never a 500.
    for (body, field) in [
        ("{not json", "body"),
        ("[]", "body"),
        (r#"{"spec": "feat"}"#, "project"),
        (r#"{"project": 7, "spec": "feat"}"#, "project"),
        (r#"{"project": "proj"}"#, "spec"),
        (r#"{"project": "proj", "spec": "nope"}"#, "spec"),
        (r#"{"project": "/no/such/dir", "spec": "feat"}"#, "project"),
        (
            r#"{"project": "proj", "spec": "feat", "priority": "high"}"#,
            "priority",
        ),
        (
            r#"{"project": "proj", "spec": "feat", "provider": "nosuch"}"#,
            "provider",
        ),
        (
            r#"{"project": "proj", "spec": "feat", "colour": "red"}"#,
            "colour",
        ),
    ] {
        let (code, v) = svc.post("/api/queue", body);
        assert_eq!(code, 400, "{body} -> {v}");
        assert_eq!(v["field"], field, "{body} -> {v}");
        assert!(v["error"].as_str().is_some_and(|e| !e.is_empty()), "{v}");
    }
    for (path, field) in [
        ("/api/attempts?limit=0", "limit"),
        ("/api/attempts?since=yesterdayish", "since"),
        ("/api/attempts?runner=../etc", "runner"),
        ("/api/runners?all=maybe", "all"),
        ("/api/runners?colour=red", "colour"),
    ] {
        let (code, v) = svc.get(path);
        assert_eq!(code, 400, "{path} -> {v}");
        assert_eq!(v["field"], field, "{path} -> {v}");
    }
    let (code, v) = svc.delete("/api/queue/abc");
    assert_eq!((code, v["field"].as_str()), (400, Some("id")), "{v}");
    let (code, _) = svc.post("/api/runners/r-nope/stop", "");
    assert_eq!(code, 404);
    let (code, _) = svc.get("/api/nothing-here");
    assert_eq!(code, 404);

    // Queue it (by project name): the service starts a runner.
    let (code, added) = svc.post(
        "/api/queue",
        r#"{"project": "proj", "spec": "feat", "priority": 3}"#,
    );
    assert_eq!(code, 201, "{added}");
    assert_eq!(added["state"], "queued");
    assert_eq!(added["priority"], 3);
    let (code, dup) = svc.post("/api/queue", r#"{"project": "proj", "spec": "feat"}"#);
    assert_eq!(code, 409, "{dup}");
    assert_eq!(dup["entry"]["id"], added["id"]);
    let runners = svc.wait_json(
        "/api/runners",
        "the runner to retry after the crash",
        T,
        |v| runner_of(v, "feat").is_some_and(|r| r["status"] == "running" && r["retry_count"] == 1),
    );
    let r = runner_of(&runners, "feat").unwrap().clone();
    let id = r["runner_id"].as_str().unwrap().to_string();
    // CLI and service agree: the CLI sees the entry running with that runner.
    svc.wait_json("/api/queue", "the entry linked to its runner", T, |v| {
        v["entries"][0]["state"] == "running" && v["entries"][0]["runner_id"] == id.as_str()
    });
    let e = entry(&w, &added["id"]);
    assert_eq!(e["state"], "running", "{e}");

    // The log over SSE: the current attempt (the retry) and its header.
    let (code, log) = sse(&svc.url(&format!("/api/runners/{id}/log")));
    assert_eq!(code, 200);
    let seen = sse_until(&log, "the retry's log header", T, |ev| {
        ev.event == "lines" && ev.data.contains("attempt 2")
    });
    assert!(seen.iter().any(|e| e.event == "attempt"), "{seen:?}");

    // Attempts, filtered: the crash and the running retry.
    let (code, attempts) = svc.get(&format!("/api/attempts?runner={id}"));
    assert_eq!(code, 200);
    let outcomes: Vec<&Value> = attempts
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["outcome"])
        .collect();
    assert_eq!(outcomes.first(), Some(&&json!("crash")), "{attempts}");

    // /metrics: the OpenMetrics text of `swr metrics`, with this runner in it.
    let (code, ctype, text) = serve_support::get_text(&svc.url("/metrics"));
    assert_eq!(code, 200, "{text}");
    assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
    openmetrics_parser::openmetrics::parse_openmetrics(&text)
        .unwrap_or_else(|e| panic!("{e:?}\n{text}"));
    assert!(text.contains("swr_runners{status=\"running\"} 1"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"), "{text}");

    // A cross-site POST is refused; a same-origin one is fine.
    let (code, v) = request(
        "POST",
        &svc.url(&format!("/api/runners/{id}/stop")),
        Some(""),
        &[("Origin", "http://evil.example")],
    );
    assert_eq!((code, v["field"].as_str()), (403, Some("Origin")), "{v}");
    assert!(
        alive(r["pid"].as_u64().unwrap() as u32),
        "a refused stop stops nothing"
    );
    let origin = svc.base.clone();
    let (code, v) = request(
        "POST",
        &svc.url(&format!("/api/runners/{id}/stop")),
        Some(""),
        &[("Origin", origin.as_str())],
    );
    assert_eq!(code, 202, "{v}");

    // The log stream follows to the end; the entry is done (stopped by the user) and stays so.
    sse_until(&log, "the end of the log", T, |ev| {
        ev.event == "end" && ev.data.contains("stopped")
    });
    let q = svc.wait_json("/api/queue?all=true", "the entry to be done", T, |v| {
        v["entries"][0]["state"] == "done"
    });
    assert_eq!(q["entries"][0]["result"], "stopped", "{q}");
    let (code, v) = svc.post(&format!("/api/runners/{id}/stop"), "");
    assert_eq!(code, 409, "stopping a stopped runner: {v}");

    // Remove it; a second time it is gone.
    let (code, v) = svc.delete(&format!("/api/queue/{}", added["id"]));
    assert_eq!(code, 200, "{v}");
    let (code, _) = svc.delete(&format!("/api/queue/{}", added["id"]));
    assert_eq!(code, 404);
}

#[test]
fn guard_checks_host_and_origin_on_loopback() {
    let w = World::new(1, json!({}));
    let svc = Service::start(&w, "hang", &[]);
    let port = svc.port();
    // DNS rebinding: a page on another name that resolves to 127.0.0.1 gets nothing.
    let code = raw_status(
        port,
        "GET /api/runners HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(code, 403);
    let code = raw_status(
        port,
        &format!(
            "GET /api/runners HTTP/1.1\r\nHost: localhost:{port}\r\nConnection: close\r\n\r\n"
        ),
    );
    assert_eq!(code, 200);
    // A browser's cross-site POST carries Sec-Fetch-Site.
    let (code, _) = request(
        "POST",
        &svc.url("/api/queue/pause"),
        Some(""),
        &[("Sec-Fetch-Site", "cross-site")],
    );
    assert_eq!(code, 403);
    // A body over the limit (axum's 2 MiB) is refused with a JSON error too, not plain text.
    // One byte over: the server has read it all when it answers, so it closes the connection
    // cleanly (with megabytes unread it may reset it, and the client sees no answer).
    let over = (2 << 20) + 1;
    let answer = raw_answer(
        port,
        &format!(
            "POST /api/queue HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\nContent-Length: {over}\r\nConnection: close\r\n\r\n{}",
            "a".repeat(over)
        ),
    );
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("");
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    assert_eq!(v["field"], "body", "{answer}");
    // No token on loopback: plain requests pass.
    let (code, v) = svc.post("/api/queue/pause", "");
    assert_eq!((code, v["paused"].as_bool()), (200, Some(true)));
    let out = w.cmd("").args(["queue", "ls", "--json"]).output().unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["paused"], true, "the CLI sees the pause the API set");
}

#[test]
fn a_non_loopback_bind_needs_the_token() {
    let w = World::new(1, json!({}));
    // A wildcard bind; the test only ever connects through 127.0.0.1.
    let svc = Service::start(&w, "hang", &["--listen", "0.0.0.0:0"]);
    let token = svc
        .stderr_text()
        .lines()
        .find_map(|l| {
            l.split("): ")
                .nth(1)
                .filter(|_| l.contains("token"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| panic!("no token printed: {}", svc.stderr_text()));
    assert_eq!(token.len(), 64, "{token}");
    for path in ["/healthz", "/api/runners", "/", "/api/queue"] {
        let (code, v) = svc.get(path);
        assert_eq!(code, 401, "{path} without a token: {v}");
    }
    let (code, _) = svc.post("/api/queue", r#"{"project": "proj", "spec": "feat"}"#);
    assert_eq!(code, 401);
    let (code, _) = request(
        "GET",
        &svc.url("/api/runners"),
        None,
        &[("Authorization", "Bearer wrong-token-wrong-token")],
    );
    assert_eq!(code, 401);
    let bearer = format!("Bearer {token}");
    let (code, v) = request(
        "GET",
        &svc.url("/api/runners"),
        None,
        &[("Authorization", bearer.as_str())],
    );
    assert_eq!(code, 200, "{v}");
    // The dashboard's way in: ?token= once sets a cookie.
    let (code, _) = request(
        "GET",
        &svc.url("/api/queue"),
        None,
        &[("Cookie", &format!("swr_token={token}"))],
    );
    assert_eq!(code, 200);
    let code = raw_status(
        svc.port(),
        &format!("GET /?token={token} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"),
    );
    assert_eq!(code, 303);
    drop(svc);

    // --token-file: that token, never printed.
    let file = w.dir.path().join("token");
    std::fs::write(&file, "0123456789abcdef0123\n").unwrap();
    let svc = Service::start(
        &w,
        "hang",
        &[
            "--listen",
            "0.0.0.0:0",
            "--token-file",
            file.to_str().unwrap(),
        ],
    );
    assert!(!svc.stderr_text().contains("0123456789abcdef0123"));
    let (code, _) = svc.get("/healthz");
    assert_eq!(code, 401);
    let (code, _) = request(
        "GET",
        &svc.url("/healthz"),
        None,
        &[("Authorization", "Bearer 0123456789abcdef0123")],
    );
    assert_eq!(code, 200);
}

#[test]
fn sigterm_stops_runners_and_keeps_their_entries_queued() {
    let w = World::new(2, json!({}));
    let e = queue_add(&w, &w.project, "feat", &[]);
    let mut svc = Service::start(&w, "hang,hang", &[]);
    let runners = svc.wait_json("/api/runners", "the runner", T, |v| {
        runner_of(v, "feat").is_some_and(|r| r["status"] == "running" && !r["log_path"].is_null())
    });
    let first = runner_of(&runners, "feat").unwrap()["runner_id"].clone();
    assert_eq!(svc.term(), Some(0), "stderr:\n{}", svc.stderr_text());
    let status = w.status();
    let r = status.iter().find(|r| r["runner_id"] == first).unwrap();
    assert_eq!(r["status"], "stopped", "{r}");
    let q = entry(&w, &e["id"]);
    assert_eq!(q["state"], "queued", "{q}");
    assert_eq!(q["restarts"], 0, "a graceful stop is no interruption: {q}");

    // Started again, the service resumes it with a new runner.
    let svc = Service::start(&w, "hang,hang", &[]);
    // (Each runner's agent hangs: the sim plan has a step per start.)
    svc.wait_json("/api/runners", "a new runner for the entry", T, |v| {
        runner_of(v, "feat").is_some_and(|r| r["status"] == "running" && r["runner_id"] != first)
    });
    drop(svc);
}

#[test]
fn restart_after_kill_9_resumes_interrupted_runs_not_a_stopped_one() {
    let w = World::new(2, json!({"max_concurrent_agents": 0}));
    let b = add_project(&w, "beta", "feat", 2);
    let c = add_project(&w, "gamma", "feat", 2);
    let ea = queue_add(&w, &w.project, "feat", &[]);
    let eb = queue_add(&w, &b, "feat", &[]);
    let ec = queue_add(&w, &c, "feat", &["--priority", "-1"]);
    let mut svc = Service::start(&w, "hang,hang", &[]);
    let running = |v: &Value| {
        v["entries"].as_array().is_some_and(|es| {
            es.iter()
                .filter(|e| e["state"] == "running" && !e["runner_id"].is_null())
                .count()
                == 3
        })
    };
    let q = svc.wait_json("/api/queue", "three running entries", T, running);
    let runner_ids: Vec<Value> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["runner_id"].clone())
        .collect();

    // kill -9 of the service alone: its runners go on, and the next service adopts them.
    svc.kill9();
    let svc = Service::start(&w, "hang,hang", &[]);
    let q = svc.wait_json("/api/queue", "the same three entries running", T, running);
    let again: Vec<Value> = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["runner_id"].clone())
        .collect();
    assert_eq!(again, runner_ids, "adopted, not restarted");

    // The user stops gamma's runner: its entry is done and stays done.
    let gamma = entry(&w, &ec["id"]);
    let out = w
        .cmd("")
        .args(["stop", gamma["runner_id"].as_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    svc.wait_json("/api/queue?all=true", "gamma's entry done", T, |v| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == ec["id"] && e["result"] == "stopped")
    });

    // A reboot, as far as swr can tell: the service and the two runners die at once.
    let mut svc = svc;
    svc.kill9();
    let status = w.status();
    let mut killed = Vec::new();
    for e in [&ea, &eb] {
        let rid = entry(&w, &e["id"])["runner_id"].clone();
        let r = status.iter().find(|r| r["runner_id"] == rid).unwrap();
        let pid = r["pid"].as_u64().unwrap() as u32;
        kill9(pid);
        killed.push(rid);
    }

    let svc = Service::start(&w, "hang,hang", &[]);
    let q = svc.wait_json(
        "/api/queue?all=true",
        "the two interrupted entries running again",
        T,
        |v| {
            let es = v["entries"].as_array().unwrap();
            [&ea, &eb].iter().all(|e| {
                es.iter().any(|x| {
                    x["id"] == e["id"]
                        && x["state"] == "running"
                        && !x["runner_id"].is_null()
                        && !killed.contains(&x["runner_id"])
                })
            })
        },
    );
    for e in [&ea, &eb] {
        let x = q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["id"] == e["id"])
            .unwrap();
        assert_eq!(x["restarts"], 1, "{x}");
    }
    let g = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["id"] == ec["id"])
        .unwrap();
    assert_eq!(
        (g["state"].as_str(), g["result"].as_str()),
        (Some("done"), Some("stopped")),
        "{g}"
    );
    // The killed runners are recorded as crashed; gamma has no new runner.
    let status = w.status();
    for rid in &killed {
        let r = status.iter().find(|r| &r["runner_id"] == rid).unwrap();
        assert_eq!(r["status"], "crashed", "{r}");
    }
    let gammas = status
        .iter()
        .filter(|r| r["project"] == c.display().to_string())
        .count();
    assert_eq!(gammas, 1, "no new runner for the stopped spec: {status:#?}");
    drop(svc);
}

#[test]
fn the_queue_waits_while_paused_and_within_the_cap() {
    let w = World::new(1, json!({"max_concurrent_agents": 1}));
    let b = add_project(&w, "beta", "feat", 1);
    let out = w.cmd("").args(["queue", "pause"]).output().unwrap();
    assert!(out.status.success());
    let low = queue_add(&w, &w.project, "feat", &[]);
    let high = queue_add(&w, &b, "feat", &["--priority", "5"]);
    let svc = Service::start(&w, "hang", &[]);
    let (code, q) = svc.get("/api/queue");
    assert_eq!(code, 200);
    assert_eq!(q["paused"], true);
    // Paused: the scheduler's first pass (before the listener answered) started nothing.
    assert!(
        q["entries"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["state"] == "queued"),
        "{q}"
    );
    let (code, _) = svc.post("/api/queue/resume", "");
    assert_eq!(code, 200);
    // The cap is 1: the higher priority starts, the other waits.
    let q = svc.wait_json("/api/queue", "the high-priority entry running", T, |v| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == high["id"] && e["state"] == "running")
    });
    let l = q["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == low["id"])
        .unwrap();
    assert_eq!(l["state"], "queued", "{q}");
    drop(svc);
}

#[test]
fn an_entry_whose_project_is_gone_ends_in_error() {
    let w = World::new(1, json!({}));
    let gone = add_project(&w, "gone", "feat", 1);
    let out = w.cmd("").args(["queue", "pause"]).output().unwrap();
    assert!(out.status.success());
    let entry = queue_add(&w, &gone, "feat", &[]);
    std::fs::remove_dir_all(&gone).unwrap();
    let svc = Service::start(&w, "ok", &[]);
    let (code, _) = svc.post("/api/queue/resume", "");
    assert_eq!(code, 200);
    // Not left queued forever with a note blaming swr's own executable.
    let q = svc.wait_json("/api/queue?all=true", "the entry to end", T, |v| {
        v["entries"][0]["state"] == "done"
    });
    let e = &q["entries"][0];
    assert_eq!(e["id"], entry["id"], "{q}");
    assert_eq!(e["result"], "error", "{q}");
    let note = e["note"].as_str().unwrap_or("");
    assert!(
        note.contains(&gone.display().to_string()) && note.contains("no longer exists"),
        "{q}"
    );
}

#[test]
fn one_service_per_store() {
    let w = World::new(1, json!({}));
    let _svc = Service::start(&w, "hang", &[]);
    let out = w
        .cmd("hang")
        .args(["serve", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(75));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("another swr serve (pid "), "{err}");
}

#[test]
fn service_install_writes_a_systemd_unit_and_uninstall_removes_it() {
    let w = World::new(1, json!({}));
    let unit = w.dir.path().join("xdg-config/systemd/user/swr.service");
    let out = w
        .cmd("")
        .args([
            "service",
            "install",
            "--listen",
            "0.0.0.0:9000",
            "--token-file",
            "tok",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("systemctl --user enable --now swr.service"),
        "{said}"
    );
    let text = std::fs::read_to_string(&unit).unwrap();
    assert!(text.contains("\nRestart=on-failure\n"), "{text}");
    let exec = text.lines().find(|l| l.starts_with("ExecStart=")).unwrap();
    // Absolute paths: the unit does not run in this directory.
    assert!(
        exec.contains(&format!("\"--config\" \"{}\"", w.config.display())),
        "{exec}"
    );
    assert!(
        exec.contains(&format!(
            "\"--token-file\" \"{}\"",
            w.dir.path().join("tok").display()
        )),
        "{exec}"
    );
    assert!(
        exec.contains("\"serve\" \"--listen\" \"0.0.0.0:9000\""),
        "{exec}"
    );
    // `systemctl enable` links it; uninstall removes the link and the unit.
    let wants = unit.parent().unwrap().join("default.target.wants");
    std::fs::create_dir_all(&wants).unwrap();
    std::os::unix::fs::symlink(&unit, wants.join("swr.service")).unwrap();
    let out = w.cmd("").args(["service", "uninstall"]).output().unwrap();
    assert!(out.status.success());
    assert!(!unit.exists());
    assert!(std::fs::symlink_metadata(wants.join("swr.service")).is_err());
    let bad = w
        .cmd("")
        .args(["service", "install", "--listen", "nonsense"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
}
