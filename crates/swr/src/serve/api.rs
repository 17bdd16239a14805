//! The HTTP layer of `swr serve`: routes, the guard every request passes, and handlers that
//! validate input into typed requests at the edge and then call the same functions as the CLI
//! commands (`cmd::queue`, `cmd::runners`, `cmd::specs`). Bad input is a 4xx with a JSON body
//! `{"error": ..., "field": ...}` naming what is wrong; store work runs on blocking threads.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use serde_json::{Map, Value, json};
use swr_core::config::Config;
use swr_core::store::{AttemptFilter, QueueId, RunnerId, Store};

use super::scheduler::SchedMsg;
use crate::cmd::queue::{AddError, AddRequest, RemoveError};
use crate::cmd::runners::{RunnerQuery, StopSent};

/// What every handler shares.
pub struct Shared {
    pub config: Config,
    pub store: Arc<Store>,
    /// Required from clients when set.
    pub token: Option<String>,
    /// Listening on a loopback address: then only loopback Host names are answered.
    pub loopback: bool,
    /// Bumped on every store commit (see `watch_store`).
    pub changes: tokio::sync::watch::Receiver<u64>,
    pub sched: std::sync::mpsc::Sender<SchedMsg>,
}

pub type AppState = Arc<Shared>;

const INDEX_HTML: &str = include_str!("assets/index.html");
const APP_JS: &str = include_str!("assets/app.js");
const STYLE_CSS: &str = include_str!("assets/style.css");

/// The cookie the dashboard keeps the token in (HttpOnly: scripts never see it).
const TOKEN_COOKIE: &str = "swr_token";

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/assets/app.js", get(app_js))
        .route("/assets/style.css", get(style_css))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/projects", get(projects))
        .route("/api/runners", get(runners))
        .route("/api/runners/{id}/stop", post(stop_runner))
        .route("/api/runners/{id}/log", get(super::sse::log))
        .route("/api/attempts", get(attempts))
        .route("/api/stats", get(stats))
        .route("/api/queue", get(queue_list).post(queue_add))
        .route("/api/queue/pause", post(queue_pause))
        .route("/api/queue/resume", post(queue_resume))
        .route("/api/queue/{id}", delete(queue_remove))
        .route("/api/events", get(super::sse::events))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(middleware::from_fn_with_state(state.clone(), guard))
        .with_state(state)
}

/// A 4xx or 5xx answer with a JSON body.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    error: String,
    field: Option<String>,
    extra: Option<(&'static str, Value)>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>) -> ApiError {
        ApiError {
            status,
            error: error.into(),
            field: None,
            extra: None,
        }
    }

    /// 400 naming the field that is wrong.
    pub fn field(field: impl Into<String>, error: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, error)
        }
    }

    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
    }

    fn with(mut self, key: &'static str, v: Value) -> ApiError {
        self.extra = Some((key, v));
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = Map::new();
        body.insert("error".into(), Value::String(self.error));
        if let Some(f) = self.field {
            body.insert("field".into(), Value::String(f));
        }
        if let Some((k, v)) = self.extra {
            body.insert(k.into(), v);
        }
        (self.status, axum::Json(Value::Object(body))).into_response()
    }
}

/// Runs store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(ApiError::internal)?
}

fn json_ok(status: StatusCode, v: impl serde::Serialize) -> Response {
    (status, axum::Json(v)).into_response()
}

fn wake(st: &Shared) {
    let _ = st.sched.send(SchedMsg::Wake);
}

// ---- the guard ----

/// Every request passes here: a Host check on loopback (a web page cannot reach the service
/// through DNS rebinding), the token when one is set (every request, 401 without it), and an
/// Origin check on mutating methods (no cross-site requests from a browser).
async fn guard(State(st): State<AppState>, req: Request, next: Next) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("")
        .to_string();
    if st.loopback && !host.is_empty() && !host_is_loopback(&host) {
        return ApiError::new(
            StatusCode::FORBIDDEN,
            format!(
                "Host {host:?} is not a loopback name: swr serve listens on loopback only and answers only to localhost, 127.0.0.1 or [::1]"
            ),
        )
        .into_response();
    }
    if let Some(token) = &st.token {
        let sent = bearer(headers).or_else(|| cookie(headers, TOKEN_COOKIE));
        if !sent.is_some_and(|s| same_secret(&s, token)) {
            // The dashboard's way in: /?token=T once, then a cookie.
            if req.method() == Method::GET
                && req.uri().path() == "/"
                && let Some(q) = req.uri().query()
                && let Some(t) = query_value(q, "token")
                && same_secret(&t, token)
            {
                let cookie = format!("{TOKEN_COOKIE}={t}; HttpOnly; SameSite=Strict; Path=/");
                let mut resp = StatusCode::SEE_OTHER.into_response();
                resp.headers_mut()
                    .insert(header::LOCATION, HeaderValue::from_static("/"));
                if let Ok(v) = HeaderValue::from_str(&cookie) {
                    resp.headers_mut().insert(header::SET_COOKIE, v);
                }
                return resp;
            }
            let mut resp = ApiError::new(
                StatusCode::UNAUTHORIZED,
                "a token is required: send `Authorization: Bearer TOKEN` (browsers: open /?token=TOKEN once)",
            )
            .into_response();
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return resp;
        }
    }
    let mutating = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if mutating {
        if headers
            .get("sec-fetch-site")
            .is_some_and(|v| v.as_bytes() == b"cross-site")
        {
            return ApiError::field("Origin", "cross-site request refused").into_forbidden();
        }
        if let Some(origin) = headers.get(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("");
            let same = !host.is_empty()
                && (origin == format!("http://{host}") || origin == format!("https://{host}"));
            if !same {
                return ApiError::field(
                    "Origin",
                    format!(
                        "cross-site request refused: Origin {origin:?} is not this service ({host})"
                    ),
                )
                .into_forbidden();
            }
        }
    }
    next.run(req).await
}

impl ApiError {
    fn into_forbidden(mut self) -> Response {
        self.status = StatusCode::FORBIDDEN;
        self.into_response()
    }
}

fn host_is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn bearer(h: &HeaderMap) -> Option<String> {
    let v = h.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, t) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| t.trim().to_string())
}

fn cookie(h: &HeaderMap, name: &str) -> Option<String> {
    h.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn query_value(q: &str, name: &str) -> Option<String> {
    q.split('&')
        .filter_map(|kv| kv.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Compares without leaking where the first difference is.
fn same_secret(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---- static ----

async fn index() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        INDEX_HTML,
    )
        .into_response()
}

async fn app_js() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        APP_JS,
    )
        .into_response()
}

async fn style_css() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        STYLE_CSS,
    )
        .into_response()
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!("no such endpoint: {} {}", req.method(), req.uri().path()),
    )
}

async fn method_not_allowed(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} is not allowed on {}", req.method(), req.uri().path()),
    )
}

// ---- query parsing ----

/// Query parameters, each known by name; anything else is an error naming it.
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(
        q: Result<Query<Vec<(String, String)>>, QueryRejection>,
        known: &[&str],
    ) -> Result<Params, ApiError> {
        let Query(pairs) = q.map_err(|e| ApiError::field("query", e.body_text()))?;
        if let Some((k, _)) = pairs.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ApiError::field(
                k.clone(),
                format!("unknown query parameter {k:?}; known: {}", known.join(", ")),
            ));
        }
        Ok(Params(pairs))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn flag(&self, name: &str) -> Result<bool, ApiError> {
        match self.get(name) {
            None => Ok(false),
            Some("" | "1" | "true" | "yes") => Ok(true),
            Some("0" | "false" | "no") => Ok(false),
            Some(v) => Err(ApiError::field(
                name,
                format!("{name}={v:?}: expected true or false"),
            )),
        }
    }

    fn text(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }
}

fn path_param(p: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    p.map(|Path(s)| s)
        .map_err(|e| ApiError::field("id", e.body_text()))
}

fn runner_id(p: Result<Path<String>, PathRejection>) -> Result<RunnerId, ApiError> {
    let s = path_param(p)?;
    s.parse::<RunnerId>()
        .map_err(|e| ApiError::field("id", e.to_string()))
}

/// `24h`, `90m` (back from now) or an RFC 3339 time.
fn since(v: &str) -> Result<jiff::Timestamp, ApiError> {
    if let Ok(t) = v.parse::<jiff::Timestamp>() {
        return Ok(t);
    }
    let d = swr_core::config::parse_duration(v).map_err(|m| {
        ApiError::field(
            "since",
            format!("since={v:?}: expected a duration such as 24h or a time such as 2026-11-28T13:00:00Z ({m})"),
        )
    })?;
    let span =
        jiff::SignedDuration::try_from(d).map_err(|e| ApiError::field("since", e.to_string()))?;
    Ok(jiff::Timestamp::now()
        .checked_sub(span)
        .unwrap_or(jiff::Timestamp::MIN))
}

// ---- handlers ----

async fn healthz(State(st): State<AppState>) -> Result<Response, ApiError> {
    let store = st.store.clone();
    let (paused, running) = blocking(move || {
        Ok((
            store.queue_paused().map_err(ApiError::internal)?,
            store.queue_running().map_err(ApiError::internal)?.len(),
        ))
    })
    .await?;
    Ok(json_ok(
        StatusCode::OK,
        json!({"ok": true, "version": env!("CARGO_PKG_VERSION"), "queue_paused": paused, "queue_running": running}),
    ))
}

/// The OpenMetrics text of `swr metrics`, from the same snapshot and encoder.
async fn metrics(State(st): State<AppState>) -> Result<Response, ApiError> {
    let text = blocking(move || {
        let snapshot = st.store.metrics().map_err(ApiError::internal)?;
        crate::cmd::metrics::render(&snapshot).map_err(ApiError::internal)
    })
    .await?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

/// Every project under repos_root with its specs and their progress: `swr specs --json`'s
/// rows, grouped by project.
async fn projects(State(st): State<AppState>) -> Result<Response, ApiError> {
    let v = blocking(move || {
        let c = &st.config;
        if !c.repos_root.is_dir() {
            return Ok(json!({
                "repos_root": c.repos_root.display().to_string(),
                "projects": [],
                "warning": format!("repos_root {} does not exist", c.repos_root.display()),
            }));
        }
        let projects =
            swr_core::spec::discover_projects(&c.repos_root, &c.layout(), &c.ignore_dirs)
                .map_err(ApiError::internal)?;
        let rows = crate::cmd::specs::rows(&projects, c.include_optional_tasks);
        let list: Vec<Value> = projects
            .iter()
            .map(|p| {
                let path = p.path.display().to_string();
                let specs: Vec<&crate::cmd::specs::SpecRow> =
                    rows.iter().filter(|r| r.project_path == path).collect();
                json!({"name": p.name, "path": path, "specs": specs})
            })
            .collect();
        Ok(json!({"repos_root": c.repos_root.display().to_string(), "projects": list}))
    })
    .await?;
    Ok(json_ok(StatusCode::OK, v))
}

async fn runners(
    State(st): State<AppState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["all", "active", "spec"])?;
    let query = RunnerQuery {
        all: p.flag("all")?,
        active: p.flag("active")?,
        spec: p.text("spec"),
    };
    let views = blocking(move || {
        crate::cmd::runners::runner_views(&st.config, &st.store, &query).map_err(ApiError::internal)
    })
    .await?;
    Ok(json_ok(StatusCode::OK, views))
}

async fn stop_runner(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let id = runner_id(id)?;
    let kill = Params::parse(q, &["kill"])?.flag("kill")?;
    blocking(move || {
        let r = st
            .store
            .runner(&id)
            .map_err(ApiError::internal)?
            .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no runner {id}")))?;
        let sent = crate::cmd::runners::stop_runner_no_wait(&st.config, &st.store, &r, kill)
            .map_err(ApiError::internal)?;
        Ok(match sent {
            StopSent::Signalled => json_ok(
                StatusCode::ACCEPTED,
                json!({"runner_id": id, "stopping": true}),
            ),
            StopSent::WasDead => json_ok(
                StatusCode::OK,
                json!({"runner_id": id, "stopping": false, "status": "crashed",
                       "note": "its process was gone: marked crashed"}),
            ),
            StopSent::NotActive(s) => {
                return Err(ApiError::new(
                    StatusCode::CONFLICT,
                    format!("runner {id} is not running: {s}"),
                )
                .with("status", json!(s)));
            }
        })
    })
    .await
}

async fn attempts(
    State(st): State<AppState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["runner", "project", "spec", "since", "limit"])?;
    let runner = p
        .text("runner")
        .map(|r| {
            r.parse::<RunnerId>()
                .map_err(|e| ApiError::field("runner", e.to_string()))
        })
        .transpose()?;
    let project = p.text("project").map(|s| {
        let path = crate::cmd::expand_tilde(&s);
        path.canonicalize().unwrap_or(path)
    });
    let since = p.text("since").map(|s| since(&s)).transpose()?;
    let limit = match p.text("limit") {
        None => 500,
        Some(v) => match v.parse::<usize>() {
            Ok(n) if (1..=100_000).contains(&n) => n,
            _ => {
                return Err(ApiError::field(
                    "limit",
                    format!("limit={v:?}: expected a whole number from 1 to 100000"),
                ));
            }
        },
    };
    let filter = AttemptFilter {
        runner,
        project,
        spec: p.text("spec"),
        since,
    };
    let mut list = blocking(move || st.store.attempts(&filter).map_err(ApiError::internal)).await?;
    if list.len() > limit {
        list.drain(..list.len() - limit);
    }
    Ok(json_ok(StatusCode::OK, list))
}

async fn stats(
    State(st): State<AppState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let p = Params::parse(q, &["since"])?;
    let since = p.text("since").map(|s| since(&s)).transpose()?;
    let s = blocking(move || st.store.retry_stats(since).map_err(ApiError::internal)).await?;
    Ok(json_ok(StatusCode::OK, s))
}

async fn queue_list(
    State(st): State<AppState>,
    q: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, ApiError> {
    let all = Params::parse(q, &["all"])?.flag("all")?;
    let v = blocking(move || crate::cmd::queue::view(&st.store, all).map_err(ApiError::internal))
        .await?;
    Ok(json_ok(StatusCode::OK, v))
}

/// The body of `POST /api/queue`: `{"project", "spec", "provider"?, "model"?, "priority"?}`.
pub fn parse_add(body: &[u8]) -> Result<AddRequest, ApiError> {
    let v: Value = serde_json::from_slice(body).map_err(|e| {
        ApiError::field(
            "body",
            format!("the body is not valid JSON ({e}); send {{\"project\": ..., \"spec\": ...}}"),
        )
    })?;
    let Value::Object(m) = v else {
        return Err(ApiError::field(
            "body",
            "the body must be a JSON object such as {\"project\": \"app\", \"spec\": \"auth\"}",
        ));
    };
    const KNOWN: [&str; 5] = ["project", "spec", "provider", "model", "priority"];
    if let Some(k) = m.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(ApiError::field(
            k.clone(),
            format!("unknown field {k:?}; known: {}", KNOWN.join(", ")),
        ));
    }
    let required = |name: &str| match m.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(ApiError::field(
            name,
            format!("{name} must be a string, got {other}"),
        )),
        None => Err(ApiError::field(name, format!("{name} is required"))),
    };
    let optional = |name: &str| match m.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::field(
            name,
            format!("{name} must be a string or null, got {other}"),
        )),
    };
    let priority = match m.get("priority") {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ApiError::field(
                "priority",
                format!("priority must be a whole number, got {n}"),
            )
        })?,
        Some(other) => {
            return Err(ApiError::field(
                "priority",
                format!("priority must be a whole number, got {other}"),
            ));
        }
    };
    Ok(AddRequest {
        project: required("project")?,
        spec: required("spec")?,
        provider: optional("provider")?,
        model: optional("model")?,
        priority,
    })
}

async fn queue_add(
    State(st): State<AppState>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    // A body over the limit (or cut off) is a JSON error like any other, with its own status.
    let body = body.map_err(|e| ApiError {
        status: e.status(),
        ..ApiError::field("body", e.body_text())
    })?;
    let req = parse_add(&body)?;
    let st2 = st.clone();
    let entry = blocking(move || {
        crate::cmd::queue::add_entry(&st2.config, &st2.store, &req).map_err(|e| match e {
            AddError::Field { field, message } => ApiError::field(field, message),
            AddError::Duplicate(existing) => {
                let msg = AddError::Duplicate(existing.clone()).to_string();
                ApiError::new(StatusCode::CONFLICT, msg).with(
                    "entry",
                    serde_json::to_value(&*existing).unwrap_or(Value::Null),
                )
            }
            AddError::Store(e) => ApiError::internal(e),
        })
    })
    .await?;
    wake(&st);
    Ok(json_ok(StatusCode::CREATED, entry))
}

async fn queue_remove(
    State(st): State<AppState>,
    id: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let id: QueueId = path_param(id)?
        .parse()
        .map_err(|e: swr_core::store::QueueIdError| ApiError::field("id", e.to_string()))?;
    let st2 = st.clone();
    let removed = blocking(move || {
        crate::cmd::queue::remove_entry(&st2.store, id).map_err(|e| match e {
            RemoveError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            RemoveError::Running(_) => ApiError::new(StatusCode::CONFLICT, e.to_string()),
            RemoveError::Store(e) => ApiError::internal(e),
        })
    })
    .await?;
    wake(&st);
    Ok(json_ok(StatusCode::OK, json!({"removed": removed})))
}

async fn set_paused(st: AppState, paused: bool) -> Result<Response, ApiError> {
    let st2 = st.clone();
    blocking(move || crate::cmd::queue::set_paused(&st2.store, paused).map_err(ApiError::internal))
        .await?;
    wake(&st);
    Ok(json_ok(StatusCode::OK, json!({"paused": paused})))
}

async fn queue_pause(State(st): State<AppState>) -> Result<Response, ApiError> {
    set_paused(st, true).await
}

async fn queue_resume(State(st): State<AppState>) -> Result<Response, ApiError> {
    set_paused(st, false).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_bodies_are_checked_field_by_field() {
        let field = |b: &str| parse_add(b.as_bytes()).err().and_then(|e| e.field);
        assert_eq!(field("{"), Some("body".into()));
        assert_eq!(field("[1]"), Some("body".into()));
        assert_eq!(field(r#"{"spec": "a"}"#), Some("project".into()));
        assert_eq!(
            field(r#"{"project": 1, "spec": "a"}"#),
            Some("project".into())
        );
        assert_eq!(field(r#"{"project": "p"}"#), Some("spec".into()));
        assert_eq!(
            field(r#"{"project": "p", "spec": "a", "priority": "high"}"#),
            Some("priority".into())
        );
        assert_eq!(
            field(r#"{"project": "p", "spec": "a", "priority": 1.5}"#),
            Some("priority".into())
        );
        assert_eq!(
            field(r#"{"project": "p", "spec": "a", "provider": 3}"#),
            Some("provider".into())
        );
        assert_eq!(
            field(r#"{"project": "p", "spec": "a", "prio": 3}"#),
            Some("prio".into())
        );
        let ok = parse_add(br#"{"project": "p", "spec": "a", "priority": -2, "provider": null}"#);
        assert!(matches!(
            ok,
            Ok(AddRequest {
                priority: -2,
                provider: None,
                ..
            })
        ));
    }

    #[test]
    fn only_loopback_host_names_pass_on_loopback() {
        for h in [
            "localhost:8787",
            "127.0.0.1:8787",
            "[::1]:8787",
            "127.0.0.2",
            "LOCALHOST",
        ] {
            assert!(host_is_loopback(h), "{h}");
        }
        for h in [
            "evil.example:8787",
            "192.168.1.2:8787",
            "localhost.evil.example",
        ] {
            assert!(!host_is_loopback(h), "{h}");
        }
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abcdef", "abcdef"));
        assert!(!same_secret("abcdef", "abcdeg"));
        assert!(!same_secret("abc", "abcdef"));
    }
}
