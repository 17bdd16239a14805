//! The live streams of `swr serve`, as Server-Sent Events:
//! - `GET /api/events`: a `state` event (runners, queue, webhook problems) at connection and
//!   after every store change, at most about five a second; nothing while the store is idle.
//! - `GET /api/runners/{id}/log`: the runner's current attempt log (its last lines, then what
//!   is appended), rendered like the TUI's log panel, moving to the next attempt's log when the
//!   runner starts one, and an `end` event once the runner has ended and its log is read.
//!
//! Each stream is fed by a task (or, for a log, a thread: file reads block) that stops when
//! the client goes away.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use swr_core::provider::OutputFormat;
use tokio::sync::mpsc;

use super::api::{ApiError, AppState, blocking};
use crate::cmd::runners::RunnerQuery;
use crate::tui::logview::{LineKind, LogLine, LogTail};

/// Lines of the current log sent when a client connects or the runner moves to a new attempt.
const TAIL_LINES: usize = 500;
/// How often a followed log is read for appended bytes.
const LOG_POLL: Duration = Duration::from_millis(200);
/// How often the followed runner's record is re-read (a new attempt, its end).
const RUNNER_POLL: Duration = Duration::from_millis(500);
/// Gap between two state events: a burst of commits becomes one event.
const STATE_COALESCE: Duration = Duration::from_millis(200);

fn stream(rx: mpsc::Receiver<Event>) -> Response {
    let s = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|ev| (Ok::<Event, Infallible>(ev), rx))
    });
    Sse::new(s).keep_alive(KeepAlive::default()).into_response()
}

/// What the dashboard draws, in one consistent read.
pub fn snapshot(st: &super::api::Shared) -> Result<Value, ApiError> {
    let runners = crate::cmd::runners::runner_views(&st.config, &st.store, &RunnerQuery::default())
        .map_err(ApiError::internal)?;
    let mut queue = crate::cmd::queue::view(&st.store, true).map_err(ApiError::internal)?;
    // Ended entries are history: the most recent few are enough on a screen.
    let mut done = 0;
    queue.entries.retain(|e| {
        if e.state == swr_core::store::QueueState::Done {
            done += 1;
            done <= 20
        } else {
            true
        }
    });
    let problems = st.store.delivery_problems(20).map_err(ApiError::internal)?;
    Ok(json!({
        "now": swr_core::store::format_ts(jiff::Timestamp::now()),
        "runners": runners,
        "queue": queue,
        "webhook_problems": problems,
    }))
}

pub async fn events(State(st): State<AppState>) -> Response {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        let mut changes = st.changes.clone();
        loop {
            changes.borrow_and_update();
            let st2 = st.clone();
            let data = match blocking(move || snapshot(&st2)).await {
                Ok(v) => Event::default().event("state").data(v.to_string()),
                Err(e) => Event::default()
                    .event("problem")
                    .data(json!({"error": format!("{e:?}")}).to_string()),
            };
            if tx.send(data).await.is_err() {
                return;
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                // A runner killed -9 changes nothing in the store until the scheduler's
                // safety-net pass reconciles it; this refresh shows that too.
                _ = tokio::time::sleep(Duration::from_secs(30)) => {}
                _ = tx.closed() => return,
            }
            tokio::time::sleep(STATE_COALESCE).await;
        }
    });
    stream(rx)
}

fn kind_name(k: LineKind) -> &'static str {
    match k {
        LineKind::Meta => "meta",
        LineKind::Text => "text",
        LineKind::Tool => "tool",
        LineKind::ToolResult => "tool_result",
        LineKind::Error => "error",
        LineKind::Stderr => "stderr",
        LineKind::Notice => "notice",
        LineKind::Result => "result",
        LineKind::Raw => "raw",
    }
}

fn lines_event(lines: &[LogLine]) -> Event {
    let arr: Vec<Value> = lines
        .iter()
        .map(|l| {
            json!({
                "raw": l.raw,
                "pretty": l.pretty.iter().map(|(k, t)| json!({"kind": kind_name(*k), "text": t})).collect::<Vec<_>>(),
            })
        })
        .collect();
    Event::default()
        .event("lines")
        .data(Value::Array(arr).to_string())
}

pub async fn log(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id = id
        .map(|Path(s)| s)
        .map_err(|e| ApiError::field("id", e.body_text()))?
        .parse::<swr_core::store::RunnerId>()
        .map_err(|e| ApiError::field("id", e.to_string()))?;
    let st2 = st.clone();
    let id2 = id.clone();
    let runner = blocking(move || st2.store.runner(&id2).map_err(ApiError::internal))
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no runner {id}")))?;
    let format = st
        .config
        .provider_registry(std::env::current_exe().unwrap_or_default())
        .ok()
        .and_then(|r| r.get(&runner.provider).ok().map(|d| d.output))
        .unwrap_or(OutputFormat::Text);
    let (tx, rx) = mpsc::channel(64);
    std::thread::Builder::new()
        .name("swr-serve-log".into())
        .spawn(move || follow(&st, runner, format, &tx))
        .map_err(ApiError::internal)?;
    Ok(stream(rx))
}

/// Follows a runner's logs until it ends or the client leaves.
fn follow(
    st: &super::api::Shared,
    mut r: swr_core::store::RunnerRecord,
    format: OutputFormat,
    tx: &mpsc::Sender<Event>,
) {
    let send = |ev: Event| tx.blocking_send(ev).is_ok();
    let mut tail: Option<LogTail> = None;
    let mut path = None;
    let mut checked = Instant::now();
    loop {
        if checked.elapsed() >= RUNNER_POLL {
            checked = Instant::now();
            match st.store.runner(&r.runner_id) {
                Ok(Some(now)) => r = now,
                Ok(None) => return,
                Err(_) => {}
            }
        }
        if r.log_path != path {
            if let Some(t) = &mut tail {
                let rest = t.poll();
                if !rest.is_empty() && !send(lines_event(&rest)) {
                    return;
                }
            }
            path = r.log_path.clone();
            if let Some(p) = &path {
                let (t, lines) = LogTail::open(p, format, TAIL_LINES);
                let head = json!({"runner_id": r.runner_id, "path": p.display().to_string(),
                                  "iteration": r.iteration, "retry_count": r.retry_count});
                if !send(Event::default().event("attempt").data(head.to_string())) {
                    return;
                }
                if !lines.is_empty() && !send(lines_event(&lines)) {
                    return;
                }
                tail = Some(t);
            }
        } else if let Some(t) = &mut tail {
            let lines = t.poll();
            if !lines.is_empty() && !send(lines_event(&lines)) {
                return;
            }
        }
        if !r.status.is_active() {
            // The record is final, so its last log is complete: read to its end, then say so.
            if let Some(t) = &mut tail {
                let rest = t.poll();
                if !rest.is_empty() && !send(lines_event(&rest)) {
                    return;
                }
            }
            let end = json!({"status": r.status, "reason": r.reason});
            let _ = send(Event::default().event("end").data(end.to_string()));
            return;
        }
        if tx.is_closed() {
            return;
        }
        std::thread::sleep(LOG_POLL);
    }
}
