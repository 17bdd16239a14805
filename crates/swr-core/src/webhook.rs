//! Webhooks (`notify_webhooks`): the events `notify_command` gets, POSTed to URLs as JSON or as
//! a Slack, Discord or ntfy message. This module owns the targets (parsed from the config), the
//! request each format sends (pure), one try of a delivery (10 s at most), the retry schedule,
//! and the [`Deliverer`] thread that works through the store's outbox.
//!
//! Why an outbox: a runner is a short-lived process that must exit promptly, and a webhook
//! receiver may be slow or down for hours. So the runner only writes one row per (event, URL)
//! in the store, in one short transaction, and pokes its own deliverer thread; it never waits
//! on the network in its loop. At its end it waits for the first tries at most
//! `notify_timeout_seconds`, like the notifiers. What is still pending after that (a receiver
//! that is down) stays in the store: `swr serve`'s deliverer picks it up and keeps retrying
//! with backoff, and `swr status` shows what failed. A lease on each claimed row keeps two
//! deliverers from sending the same row at once; a deliverer that dies mid-try leaves a lease
//! that expires, so delivery is at least once.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde::Serialize;
use serde_json::{Value, json};

use crate::store::{Delivery, DeliveryScope, NewDelivery, Store};

/// How long one POST may take, connection included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed delivery is held before another deliverer may take it: longer than one
/// try can last.
const LEASE: Duration = Duration::from_secs(30);
/// The delays before the second, third... try. A delivery that failed every try is given up.
const BACKOFF: [Duration; 5] = [
    Duration::from_secs(2),
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(300),
    Duration::from_secs(1800),
];

/// How a webhook's request body is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The event as a JSON object (event, project, spec, runner_id, reason, at, text).
    Json,
    /// A Slack incoming webhook: `{"text": ...}`.
    Slack,
    /// A Discord webhook: `{"content": ...}`.
    Discord,
    /// An ntfy topic URL: the text as the body, title, tags and priority as headers.
    Ntfy,
}

impl WebhookFormat {
    pub const ALL: [WebhookFormat; 4] = [
        WebhookFormat::Json,
        WebhookFormat::Slack,
        WebhookFormat::Discord,
        WebhookFormat::Ntfy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            WebhookFormat::Json => "json",
            WebhookFormat::Slack => "slack",
            WebhookFormat::Discord => "discord",
            WebhookFormat::Ntfy => "ntfy",
        }
    }

    pub fn parse(s: &str) -> Option<WebhookFormat> {
        WebhookFormat::ALL.into_iter().find(|f| f.as_str() == s)
    }

    /// The format a bare URL gets: the service's own when the host says which, else JSON.
    pub fn infer(url: &str) -> WebhookFormat {
        let host = url
            .split("://")
            .nth(1)
            .and_then(|rest| rest.split(['/', '?', '#']).next())
            .map(|h| h.rsplit('@').next().unwrap_or(h).to_ascii_lowercase())
            .unwrap_or_default();
        let host = host.split(':').next().unwrap_or_default();
        if host == "hooks.slack.com" {
            WebhookFormat::Slack
        } else if (host == "discord.com" || host == "discordapp.com") && url.contains("/webhooks/")
        {
            WebhookFormat::Discord
        } else if host == "ntfy.sh" {
            WebhookFormat::Ntfy
        } else {
            WebhookFormat::Json
        }
    }
}

/// One configured webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WebhookTarget {
    pub url: String,
    pub format: WebhookFormat,
}

impl WebhookTarget {
    /// One entry of `notify_webhooks`: a URL string (format inferred from its host), or
    /// `{"url": ..., "format": "json"|"slack"|"discord"|"ntfy"}`. The error says what is wrong
    /// in words; the config layer adds the file and key.
    pub fn from_value(v: &Value) -> Result<WebhookTarget, String> {
        let (url, format) = match v {
            Value::String(s) => (s.trim().to_string(), None),
            Value::Object(m) => {
                if let Some(k) = m.keys().find(|k| *k != "url" && *k != "format") {
                    return Err(format!(
                        "unknown field {k:?} in a webhook; allowed: \"url\", \"format\""
                    ));
                }
                let url = match m.get("url") {
                    Some(Value::String(s)) => s.trim().to_string(),
                    Some(other) => return Err(format!("\"url\" must be a string, got {other}")),
                    None => return Err("a webhook object needs a \"url\"".into()),
                };
                let format = match m.get("format") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(f)) => Some(WebhookFormat::parse(f).ok_or_else(|| {
                        format!("unknown format {f:?}; allowed: json, slack, discord, ntfy")
                    })?),
                    Some(other) => {
                        return Err(format!("\"format\" must be a string, got {other}"));
                    }
                };
                (url, format)
            }
            other => {
                return Err(format!(
                    "each webhook is a URL or {{\"url\": ..., \"format\": ...}}, got {other}"
                ));
            }
        };
        let lower = url.to_ascii_lowercase();
        let rest = lower
            .strip_prefix("https://")
            .or_else(|| lower.strip_prefix("http://"));
        if rest.is_none_or(|r| r.is_empty() || r.starts_with('/')) {
            return Err(format!(
                "{url:?} is not an http:// or https:// URL with a host"
            ));
        }
        let format = format.unwrap_or_else(|| WebhookFormat::infer(&url));
        Ok(WebhookTarget { url, format })
    }

    /// The normal form kept in the config: always an object.
    pub fn to_value(&self) -> Value {
        json!({"url": self.url, "format": self.format.as_str()})
    }
}

/// The outbox rows of one event: one per target.
pub fn deliveries_for(
    targets: &[WebhookTarget],
    event: &str,
    project: &std::path::Path,
    spec: &str,
    runner_id: Option<&crate::store::RunnerId>,
    reason: &str,
) -> Vec<NewDelivery> {
    targets
        .iter()
        .map(|t| NewDelivery {
            url: t.url.clone(),
            format: t.format.as_str().to_string(),
            event: event.to_string(),
            project: project.to_path_buf(),
            spec: spec.to_string(),
            runner_id: runner_id.cloned(),
            reason: reason.to_string(),
        })
        .collect()
}

/// What one delivery sends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRequest {
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
}

/// The event in words, for the chat formats.
fn event_words(event: &str) -> &str {
    match event {
        "completed" => "completed",
        "failed" => "failed",
        "circuit_open" => "stopped: circuit breaker open",
        "waiting" => "waiting for a rate limit",
        "budget" => "stopped: budget reached",
        other => other,
    }
}

/// One line a person reads: `swr: spec auth of app completed: every task done`.
pub fn message(d: &Delivery) -> String {
    let project = d
        .project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| d.project.display().to_string());
    let mut s = format!(
        "swr: spec {} of {project} {}",
        d.spec,
        event_words(&d.event)
    );
    let reason = d.reason.lines().next().unwrap_or("").trim();
    if !reason.is_empty() {
        s.push_str(": ");
        s.push_str(reason);
    }
    s
}

/// The request of a delivery in its format. Pure: the same row always sends the same bytes.
pub fn request(d: &Delivery) -> WebhookRequest {
    let text = message(d);
    let format = WebhookFormat::parse(&d.format).unwrap_or(WebhookFormat::Json);
    match format {
        WebhookFormat::Json => WebhookRequest {
            content_type: "application/json",
            headers: Vec::new(),
            body: json!({
                "event": d.event,
                "project": d.project.display().to_string(),
                "spec": d.spec,
                "runner_id": d.runner_id.as_ref().map(|r| r.as_str()),
                "reason": d.reason,
                "at": crate::store::format_ts(d.created_at),
                "text": text,
            })
            .to_string(),
        },
        WebhookFormat::Slack => WebhookRequest {
            content_type: "application/json",
            headers: Vec::new(),
            body: json!({ "text": text }).to_string(),
        },
        WebhookFormat::Discord => WebhookRequest {
            content_type: "application/json",
            headers: Vec::new(),
            // Discord refuses content over 2000 characters.
            body: json!({ "content": text.chars().take(2000).collect::<String>() }).to_string(),
        },
        WebhookFormat::Ntfy => {
            let (tags, priority) = match d.event.as_str() {
                "completed" => ("white_check_mark", "default"),
                "waiting" => ("hourglass", "low"),
                _ => ("warning", "high"),
            };
            WebhookRequest {
                content_type: "text/plain; charset=utf-8",
                headers: vec![
                    // Header values must be visible ASCII: spec names are, the rest is fixed.
                    ("Title", ascii(&format!("swr: {} {}", d.spec, d.event))),
                    ("Tags", tags.to_string()),
                    ("Priority", priority.to_string()),
                ],
                body: text,
            }
        }
    }
}

fn ascii(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect()
}

/// The delay before the next try after `tries` failed ones; `None`: give up.
pub fn retry_after(tries: u32) -> Option<Duration> {
    let i = usize::try_from(tries).ok()?.checked_sub(1)?;
    BACKOFF.get(i).copied()
}

/// An HTTP client with the per-call timeout, for [`send`].
pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(CALL_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(concat!("swr/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// One try. Any 2xx is delivered; anything else is an error in words.
pub fn send(agent: &ureq::Agent, d: &Delivery) -> Result<(), String> {
    let req = request(d);
    let mut call = agent
        .post(d.url.as_str())
        .header("Content-Type", req.content_type);
    for (k, v) in &req.headers {
        call = call.header(*k, v.as_str());
    }
    match call.send(req.body.as_str()) {
        Ok(resp) if resp.status().is_success() => Ok(()),
        Ok(resp) => Err(format!("HTTP {}", resp.status())),
        Err(e) => Err(e.to_string()),
    }
}

/// Claims and sends what is due in `scope`, recording each try. Returns how many it tried.
///
/// The deliveries of a batch are sent at once, each on a thread of its own, and each try is
/// recorded as it ends: a receiver that hangs for the whole call timeout never delays the
/// others (a runner waits only `notify_timeout_seconds` for its first tries).
pub fn deliver_due(store: &Store, agent: &ureq::Agent, scope: &DeliveryScope) -> usize {
    let mut tried = 0;
    loop {
        let batch = match store.claim_deliveries(scope, Timestamp::now(), LEASE, 16) {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!("webhooks: cannot read the outbox: {e}");
                return tried;
            }
        };
        if batch.is_empty() {
            return tried;
        }
        tried += batch.len();
        std::thread::scope(|scope| {
            let (tx, rx) = mpsc::channel();
            for d in &batch {
                let tx = tx.clone();
                let spawned = std::thread::Builder::new()
                    .name("swr-webhook-send".into())
                    .spawn_scoped(scope, move || {
                        let _ = tx.send((d, send(agent, d)));
                    });
                if let Err(e) = spawned {
                    // No thread to spare: send it from here.
                    tracing::debug!("webhooks: cannot start a sender thread: {e}");
                    record_try(store, d, send(agent, d));
                }
            }
            drop(tx);
            for (d, result) in rx {
                record_try(store, d, result);
            }
        });
    }
}

/// Records one try of `d` (and logs a failure): delivered, retried later, or given up.
fn record_try(store: &Store, d: &Delivery, result: Result<(), String>) {
    let retry_at = match &result {
        Ok(()) => None,
        Err(_) => retry_after(d.tries + 1).and_then(|delay| {
            let span = jiff::SignedDuration::try_from(delay).ok()?;
            Timestamp::now().checked_add(span).ok()
        }),
    };
    if let Err(e) = &result {
        match retry_at {
            Some(_) => tracing::warn!(
                "webhook {} ({}) failed, try {}: {e}; retried later",
                d.url,
                d.event,
                d.tries + 1
            ),
            None => tracing::warn!(
                "webhook {} ({}) failed, try {}: {e}; given up",
                d.url,
                d.event,
                d.tries + 1
            ),
        }
    }
    if let Err(e) = store.record_delivery_try(
        d.id,
        result.as_ref().map(|_| ()).map_err(String::as_str),
        retry_at,
    ) {
        tracing::warn!("webhooks: cannot record a try: {e}");
    }
}

/// A runner's side of the webhooks: writes the rows of each event to the store and pokes its
/// own [`Deliverer`] (started at the first event, so a run without events starts no thread).
#[derive(Debug)]
pub struct Outbox {
    targets: Vec<WebhookTarget>,
    store_path: std::path::PathBuf,
    runner_id: crate::store::RunnerId,
    store: Option<Store>,
    deliverer: Option<Deliverer>,
}

impl Outbox {
    pub fn new(
        targets: Vec<WebhookTarget>,
        store_path: std::path::PathBuf,
        runner_id: crate::store::RunnerId,
    ) -> Outbox {
        Outbox {
            targets,
            store_path,
            runner_id,
            store: None,
            deliverer: None,
        }
    }

    /// Queues the event for every target; returns at once (one short store transaction).
    pub fn notify(&mut self, event: &str, project: &std::path::Path, spec: &str, reason: &str) {
        if self.targets.is_empty() {
            return;
        }
        if self.store.is_none() {
            match Store::open(&self.store_path) {
                Ok(s) => self.store = Some(s),
                Err(e) => {
                    tracing::warn!("webhooks: cannot open the store, {event} not sent: {e}");
                    return;
                }
            }
        }
        let rows = deliveries_for(
            &self.targets,
            event,
            project,
            spec,
            Some(&self.runner_id),
            reason,
        );
        if let Some(store) = &self.store
            && let Err(e) = store.add_deliveries(&rows)
        {
            tracing::warn!("webhooks: cannot queue {event}: {e}");
            return;
        }
        if self.deliverer.is_none() {
            match Deliverer::spawn(
                self.store_path.clone(),
                DeliveryScope::Runner(self.runner_id.clone()),
            ) {
                Ok(d) => self.deliverer = Some(d),
                Err(e) => tracing::warn!("webhooks: cannot start the delivery thread: {e}"),
            }
        }
        if let Some(d) = &self.deliverer {
            d.poke();
        }
    }

    /// At the end of the run: waits at most `bound` for what is due (see [`Deliverer::finish`]).
    pub fn finish(&mut self, bound: Duration) {
        if let Some(d) = self.deliverer.take() {
            d.finish(bound);
        }
    }
}

enum Msg {
    /// Something new may be due.
    Poke,
    /// The owner is ending: send what comes due before this instant, then stop.
    Finish(Instant),
}

/// Wakes a [`Deliverer`]: something new may be due.
#[derive(Clone)]
pub struct Poker(Sender<Msg>);

impl Poker {
    pub fn poke(&self) {
        let _ = self.0.send(Msg::Poke);
    }
}

/// A thread that delivers the outbox rows of its scope as they come due. Poke it after adding
/// rows; [`Deliverer::finish`] waits a bounded time for the last ones.
pub struct Deliverer {
    tx: Sender<Msg>,
    done: Receiver<()>,
    handle: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

impl Deliverer {
    /// Starts the thread; it opens its own connection to the store at `store_path`.
    pub fn spawn(store_path: std::path::PathBuf, scope: DeliveryScope) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel();
        let (done_tx, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name("swr-webhooks".into())
            .spawn(move || {
                work(&store_path, &scope, &rx);
                let _ = done_tx.send(());
            })?;
        Ok(Deliverer {
            tx,
            done,
            handle: Some(handle),
        })
    }

    pub fn poke(&self) {
        let _ = self.tx.send(Msg::Poke);
    }

    /// A handle that pokes this deliverer from any thread.
    pub fn poker(&self) -> Poker {
        Poker(self.tx.clone())
    }

    /// Delivers what comes due within `bound` (first tries and early retries), then stops the
    /// thread. Returns within `bound` plus a moment: a try still in flight then is abandoned
    /// (its lease expires and `swr serve` tries it again).
    pub fn finish(mut self, bound: Duration) {
        let deadline = Instant::now() + bound;
        let _ = self.tx.send(Msg::Finish(deadline));
        let grace = Duration::from_millis(200);
        let wait = deadline.saturating_duration_since(Instant::now()) + grace;
        if self.done.recv_timeout(wait).is_ok()
            && let Some(h) = self.handle.take()
        {
            let _ = h.join();
        }
    }
}

fn work(store_path: &std::path::Path, scope: &DeliveryScope, rx: &Receiver<Msg>) {
    let store = match Store::open(store_path) {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("webhooks: cannot open the store: {e}");
            return;
        }
    };
    let agent = agent();
    let mut finish_by: Option<Instant> = None;
    loop {
        deliver_due(&store, &agent, scope);
        let next_due = store.next_delivery_due(scope).ok().flatten();
        let until_due = next_due.map(|t| {
            let ms = t.as_millisecond() - Timestamp::now().as_millisecond();
            Duration::from_millis(u64::try_from(ms.max(0)).unwrap_or(0))
        });
        if let Some(deadline) = finish_by {
            let left = deadline.saturating_duration_since(Instant::now());
            match until_due {
                Some(d) if d < left => std::thread::sleep(d),
                _ => return,
            }
            continue;
        }
        // With nothing due, sleep until poked; a row someone else holds comes due when its
        // lease ends, which next_delivery_due accounts for.
        let wait = until_due.unwrap_or(Duration::from_secs(3600));
        match rx.recv_timeout(wait.max(Duration::from_millis(10))) {
            Ok(Msg::Poke) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Msg::Finish(d)) => finish_by = Some(d),
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::store::DeliveryState;
    use std::path::PathBuf;

    fn delivery(format: &str, event: &str) -> Delivery {
        Delivery {
            id: 1,
            url: "http://127.0.0.1:9/hook".into(),
            format: format.into(),
            event: event.into(),
            project: PathBuf::from("/r/app"),
            spec: "auth".into(),
            runner_id: Some("r-20261128T132855-4f2a".parse().unwrap()),
            reason: "every task done\nsecond line".into(),
            created_at: Timestamp::from_second(1_800_000_000).unwrap(),
            state: DeliveryState::Pending,
            tries: 0,
            next_try_at: Timestamp::UNIX_EPOCH,
            last_error: None,
            delivered_at: None,
        }
    }

    #[test]
    fn targets_from_strings_and_objects() {
        let t = WebhookTarget::from_value(&json!("https://hooks.slack.com/services/T/B/x"));
        assert_eq!(t.map(|t| t.format), Ok(WebhookFormat::Slack));
        let t = WebhookTarget::from_value(&json!("https://discord.com/api/webhooks/1/abc"));
        assert_eq!(t.map(|t| t.format), Ok(WebhookFormat::Discord));
        let t = WebhookTarget::from_value(&json!("https://ntfy.sh/my-topic"));
        assert_eq!(t.map(|t| t.format), Ok(WebhookFormat::Ntfy));
        let t = WebhookTarget::from_value(&json!("http://127.0.0.1:8080/hook"));
        assert_eq!(t.map(|t| t.format), Ok(WebhookFormat::Json));
        let t = WebhookTarget::from_value(&json!({"url": "https://x.example/h", "format": "ntfy"}));
        assert_eq!(t.map(|t| t.format), Ok(WebhookFormat::Ntfy));
    }

    #[test]
    fn bad_targets_say_what_is_wrong() {
        let e = |v: Value| WebhookTarget::from_value(&v).err().unwrap_or_default();
        assert!(e(json!("ftp://x")).contains("http:// or https://"));
        assert!(e(json!("https://")).contains("with a host"));
        assert!(e(json!({"url": "https://x", "format": "teams"})).contains("unknown format"));
        assert!(e(json!({"url": "https://x", "fmt": "json"})).contains("unknown field \"fmt\""));
        assert!(e(json!({"format": "json"})).contains("needs a \"url\""));
        assert!(e(json!(3)).contains("each webhook"));
    }

    #[test]
    fn each_format_shapes_its_request() {
        let j = request(&delivery("json", "completed"));
        let v: Value = serde_json::from_str(&j.body).unwrap();
        assert_eq!(v["event"], "completed");
        assert_eq!(v["spec"], "auth");
        assert_eq!(v["runner_id"], "r-20261128T132855-4f2a");
        assert_eq!(v["reason"], "every task done\nsecond line");
        assert_eq!(
            v["text"],
            "swr: spec auth of app completed: every task done"
        );
        let s = request(&delivery("slack", "circuit_open"));
        assert_eq!(
            s.body,
            r#"{"text":"swr: spec auth of app stopped: circuit breaker open: every task done"}"#
        );
        let d = request(&delivery("discord", "failed"));
        assert!(
            d.body
                .starts_with(r#"{"content":"swr: spec auth of app failed"#)
        );
        let n = request(&delivery("ntfy", "waiting"));
        assert_eq!(n.content_type, "text/plain; charset=utf-8");
        assert_eq!(
            n.body,
            "swr: spec auth of app waiting for a rate limit: every task done"
        );
        assert!(
            n.headers
                .contains(&("Title", "swr: auth waiting".to_string()))
        );
        assert!(n.headers.contains(&("Priority", "low".to_string())));
    }

    #[test]
    fn retries_back_off_then_give_up() {
        assert_eq!(retry_after(0), None);
        assert_eq!(retry_after(1), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(2), Some(Duration::from_secs(10)));
        assert_eq!(retry_after(5), Some(Duration::from_secs(1800)));
        assert_eq!(retry_after(6), None);
    }
}
