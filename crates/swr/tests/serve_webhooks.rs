//! Webhooks against a local HTTP receiver run by the test: a runner POSTs the notify events
//! (JSON and Slack formats), retries a failing receiver, never waits long for a slow one,
//! leaves what it could not deliver in the store for `swr status` to show, and `swr serve`
//! delivers it later.

#![allow(clippy::unwrap_used)]

mod run_support;
mod serve_support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use run_support::World;
use serde_json::{Value, json};
use serve_support::Service;

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Got {
    path: String,
    content_type: String,
    body: String,
    answered: u16,
}

/// A tiny HTTP server: answers requests with the scripted statuses in turn (then 200), or
/// never answers when `hang` is set.
struct Receiver {
    port: u16,
    got: Arc<Mutex<Vec<Got>>>,
}

impl Receiver {
    fn start(script: Vec<u16>, hang: bool) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            let mut script = script.into_iter();
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { break };
                conn.set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let mut reader = BufReader::new(conn.try_clone().unwrap());
                let mut first = String::new();
                if reader.read_line(&mut first).is_err() {
                    continue;
                }
                let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
                let (mut len, mut ctype) = (0usize, String::new());
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                    let lower = line.to_ascii_lowercase();
                    if let Some(v) = lower.strip_prefix("content-length:") {
                        len = v.trim().parse().unwrap_or(0);
                    }
                    if lower.starts_with("content-type:") {
                        ctype = line["content-type:".len()..].trim().to_string();
                    }
                }
                let mut body = vec![0u8; len];
                let _ = reader.read_exact(&mut body);
                if hang {
                    g.lock().unwrap().push(Got {
                        path,
                        content_type: ctype,
                        body: String::from_utf8_lossy(&body).into(),
                        answered: 0,
                    });
                    // Keep the connection open and silent; the client must give up on its own.
                    std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_secs(30));
                        drop(conn);
                    });
                    continue;
                }
                let status = script.next().unwrap_or(200);
                g.lock().unwrap().push(Got {
                    path,
                    content_type: ctype,
                    body: String::from_utf8_lossy(&body).into(),
                    answered: status,
                });
                let _ = write!(
                    conn,
                    "HTTP/1.1 {status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
            }
        });
        Receiver { port, got }
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn got(&self) -> Vec<Got> {
        self.got.lock().unwrap().clone()
    }

    fn wait(&self, what: &str, timeout: Duration, pred: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + timeout;
        loop {
            let g = self.got();
            if pred(&g) {
                return g;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {g:#?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[test]
fn a_runner_posts_its_events_and_retries_a_failing_receiver() {
    // The first request fails: it is retried (2 s later) before the runner exits.
    let rx = Receiver::start(vec![500], false);
    let w = World::new(
        1,
        json!({
            "notify_webhooks": [{"url": rx.url("/json"), "format": "json"}, rx.url("/slack-like")],
            "notify_timeout_seconds": 10,
        }),
    );
    // A rate limit first: the "waiting" event, then the run completes.
    let res = w.run("ratelimit:1,ok");
    assert_eq!(res.code, 0, "{}", res.stderr);
    let runner_id = res.of("started")[0]["runner_id"].clone();
    assert!(runner_id.is_string(), "{:?}", res.events);
    let got = rx.wait(
        "both events at both URLs, delivered",
        Duration::from_secs(30),
        |g| g.iter().filter(|x| x.answered == 200).count() >= 4,
    );
    assert_eq!(got[0].answered, 500);
    let ok: Vec<&Got> = got.iter().filter(|x| x.answered == 200).collect();
    let json_bodies: Vec<Value> = ok
        .iter()
        .filter(|x| x.path == "/json")
        .map(|x| serde_json::from_str(&x.body).unwrap())
        .collect();
    let events: Vec<&str> = json_bodies
        .iter()
        .map(|b| b["event"].as_str().unwrap())
        .collect();
    assert!(
        events.contains(&"waiting") && events.contains(&"completed"),
        "{json_bodies:#?}"
    );
    let done = json_bodies
        .iter()
        .find(|b| b["event"] == "completed")
        .unwrap();
    assert_eq!(done["spec"], "feat");
    assert_eq!(done["project"], w.project.display().to_string());
    assert!(
        done["text"].as_str().unwrap().contains("completed"),
        "{done}"
    );
    assert_eq!(done["runner_id"], runner_id);
    assert!(
        ok.iter()
            .all(|x| x.content_type.starts_with("application/json"))
    );
    let plain = ok.iter().find(|x| x.path == "/slack-like").unwrap();
    let v: Value = serde_json::from_str(&plain.body).unwrap();
    assert!(
        v["event"].is_string(),
        "a bare URL on no known host gets the JSON format: {v}"
    );
    let status = w.status();
    assert!(status[0].get("webhook_failures").is_none(), "{status:#?}");
}

#[test]
fn a_silent_receiver_never_holds_the_runner() {
    let rx = Receiver::start(Vec::new(), true);
    let w = World::new(
        1,
        json!({"notify_webhooks": [rx.url("/hook")], "notify_timeout_seconds": 1}),
    );
    let t = Instant::now();
    let res = w.run("ok");
    let took = t.elapsed();
    assert_eq!(res.code, 0, "{}", res.stderr);
    rx.wait("the request", Duration::from_secs(10), |g| !g.is_empty());
    // The POST's own timeout is 10 s; the runner waits notify_timeout_seconds (1 s) at most.
    assert!(took < Duration::from_secs(8), "the run took {took:?}");
}

#[test]
fn a_silent_receiver_never_holds_back_the_other_webhooks() {
    // The silent one is configured first: its try must not use up the run's wait for the
    // others (they were sent one after another, so the second got nothing).
    let silent = Receiver::start(Vec::new(), true);
    let ok = Receiver::start(Vec::new(), false);
    let w = World::new(
        1,
        json!({"notify_webhooks": [silent.url("/hook"), ok.url("/hook")],
               "notify_timeout_seconds": 4}),
    );
    let res = w.run("ok");
    assert_eq!(res.code, 0, "{}", res.stderr);
    silent.wait(
        "the silent receiver's request",
        Duration::from_secs(10),
        |g| !g.is_empty(),
    );
    // No service runs: what the runner did not send before it ended is never sent.
    ok.wait(
        "the other receiver's request",
        Duration::from_secs(5),
        |g| g.iter().any(|g| g.body.contains("\"completed\"")),
    );
}

#[test]
fn undelivered_events_show_in_status_and_the_service_delivers_them() {
    // Down for the runner's only try (the retry comes after the runner has gone).
    let rx = Receiver::start(vec![503], false);
    let w = World::new(
        1,
        json!({"notify_webhooks": [{"url": rx.url("/ntfy"), "format": "ntfy"}], "notify_timeout_seconds": 1}),
    );
    let res = w.run("ok");
    assert_eq!(res.code, 0, "{}", res.stderr);
    rx.wait("the first try", Duration::from_secs(10), |g| g.len() == 1);
    let status = w.status();
    let fails = status[0]["webhook_failures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(fails.len(), 1, "{status:#?}");
    assert_eq!(fails[0]["state"], "pending");
    assert_eq!(fails[0]["error"], "HTTP 503 Service Unavailable");
    let text = w.cmd("").args(["status"]).output().unwrap();
    let text = String::from_utf8_lossy(&text.stdout).into_owned();
    assert!(
        text.contains(&format!(
            "webhook {} (completed) failed 1 time(s)",
            rx.url("/ntfy")
        )),
        "{text}"
    );

    // The service's deliverer retries it when it comes due.
    let svc = Service::start(&w, "", &[]);
    let got = rx.wait("the retry from swr serve", Duration::from_secs(30), |g| {
        g.iter().any(|x| x.answered == 200)
    });
    let last = got.last().unwrap();
    assert!(last.content_type.starts_with("text/plain"), "{last:?}");
    assert!(
        last.body.contains("spec feat of proj completed"),
        "{last:?}"
    );
    svc.wait_json(
        "/api/runners",
        "no webhook problem left",
        Duration::from_secs(30),
        |v| v[0].get("webhook_failures").is_none(),
    );
}
