//! Schema migrations, keyed by `PRAGMA user_version`. Migration N (1-based) takes a store at
//! version N-1 to N. Never edit a shipped migration: append a new one.
//!
//! Times are INTEGER milliseconds since the Unix epoch (UTC), so `since` filters and ordering
//! are plain integer comparisons. Paths are TEXT when valid UTF-8, BLOB otherwise (see
//! `sql::path_value`).

pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

const V1: &str = r#"
CREATE TABLE runners (
    runner_id         TEXT PRIMARY KEY NOT NULL,
    project           TEXT NOT NULL,
    spec              TEXT NOT NULL,
    provider          TEXT NOT NULL,
    model             TEXT,
    status            TEXT NOT NULL,
    reason            TEXT,
    pid               INTEGER NOT NULL,
    pid_start_time    INTEGER,
    boot_id           TEXT,
    iteration         INTEGER NOT NULL DEFAULT 0,
    retry_count       INTEGER NOT NULL DEFAULT 0,
    max_retries       INTEGER NOT NULL DEFAULT 0,
    next_attempt_at   INTEGER,
    tasks_total       INTEGER NOT NULL DEFAULT 0,
    tasks_done        INTEGER NOT NULL DEFAULT 0,
    tasks_in_progress INTEGER NOT NULL DEFAULT 0,
    tasks_pending     INTEGER NOT NULL DEFAULT 0,
    tasks_blocked     INTEGER NOT NULL DEFAULT 0,
    started_at        INTEGER NOT NULL,
    updated_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    agent_pid         INTEGER,
    agent_pgid        INTEGER,
    agent_start_time  INTEGER,
    agent_marker      TEXT,
    last_outcome      TEXT,
    last_commit       TEXT,
    cost_usd          REAL,
    log_path          TEXT
);
CREATE INDEX runners_by_spec ON runners (project, spec, started_at);
CREATE INDEX runners_by_status ON runners (status);

CREATE TABLE attempts (
    id                   INTEGER PRIMARY KEY,
    runner_id            TEXT NOT NULL REFERENCES runners (runner_id) ON DELETE CASCADE,
    project              TEXT NOT NULL,
    spec                 TEXT NOT NULL,
    iteration            INTEGER NOT NULL,
    attempt              INTEGER NOT NULL,
    started_at           INTEGER NOT NULL,
    ended_at             INTEGER,
    exit_code            INTEGER,
    signal               TEXT,
    outcome              TEXT,
    error                TEXT,
    delay_before_next_ms INTEGER,
    log_path             TEXT NOT NULL,
    session_id           TEXT,
    cost_usd             REAL
);
CREATE INDEX attempts_by_runner ON attempts (runner_id, iteration, attempt);
CREATE INDEX attempts_by_spec ON attempts (project, spec, started_at);
CREATE INDEX attempts_by_start ON attempts (started_at);

CREATE TABLE waits (
    project TEXT NOT NULL,
    spec    TEXT NOT NULL,
    until   INTEGER NOT NULL,
    reason  TEXT NOT NULL,
    set_at  INTEGER NOT NULL,
    PRIMARY KEY (project, spec)
);
"#;

/// What an attempt achieved however it ended (tasks ticked, a commit), the session it resumed,
/// and what swr did about it (a note such as "ended after its result", a tasks.md restored).
const V2: &str = r#"
ALTER TABLE attempts ADD COLUMN ticked INTEGER;
ALTER TABLE attempts ADD COLUMN committed INTEGER;
ALTER TABLE attempts ADD COLUMN resumed_session TEXT;
ALTER TABLE attempts ADD COLUMN note TEXT;
ALTER TABLE attempts ADD COLUMN warning TEXT;
"#;

/// What runners share across processes: one rate-limit clock per provider account, and the
/// retries granted in the last hour (the retry budget).
const V3: &str = r#"
CREATE TABLE account_waits (
    provider TEXT NOT NULL,
    account  TEXT NOT NULL,
    reset_at INTEGER NOT NULL,
    until    INTEGER NOT NULL,
    reason   TEXT NOT NULL,
    set_at   INTEGER NOT NULL,
    PRIMARY KEY (provider, account)
);
CREATE TABLE retry_grants (
    at        INTEGER NOT NULL,
    runner_id TEXT NOT NULL
);
CREATE INDEX retry_grants_by_time ON retry_grants (at);
"#;

/// The git worktree a runner works in (`swr run --worktree`, `--parallel`).
const V4: &str = r#"
ALTER TABLE runners ADD COLUMN worktree TEXT;
"#;

/// Tokens and cost per attempt and per runner; the spend of each spec across its runs, kept
/// when old runners are pruned (`spec_budget_usd` counts it); and the evidence of every tick:
/// which attempt ticked which task, against which HEAD, whether its commit changed anything
/// but tasks.md, and the verify check that accepted or rejected it.
const V5: &str = r#"
ALTER TABLE attempts ADD COLUMN input_tokens INTEGER;
ALTER TABLE attempts ADD COLUMN cached_tokens INTEGER;
ALTER TABLE attempts ADD COLUMN output_tokens INTEGER;
ALTER TABLE attempts ADD COLUMN cost_estimated INTEGER;
ALTER TABLE attempts ADD COLUMN model TEXT;

ALTER TABLE runners ADD COLUMN input_tokens INTEGER;
ALTER TABLE runners ADD COLUMN cached_tokens INTEGER;
ALTER TABLE runners ADD COLUMN output_tokens INTEGER;
ALTER TABLE runners ADD COLUMN cost_estimated_usd REAL;

CREATE TABLE spec_spend (
    project       TEXT NOT NULL,
    spec          TEXT NOT NULL,
    attempts      INTEGER NOT NULL DEFAULT 0,
    priced        INTEGER NOT NULL DEFAULT 0,
    metered       INTEGER NOT NULL DEFAULT 0,
    input_tokens  INTEGER NOT NULL DEFAULT 0,
    cached_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd      REAL NOT NULL DEFAULT 0,
    estimated_usd REAL NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL,
    PRIMARY KEY (project, spec)
);
INSERT INTO spec_spend (project, spec, attempts, priced, cost_usd, updated_at)
    SELECT project, spec, COUNT(*), COUNT(cost_usd), COALESCE(SUM(cost_usd), 0), MAX(started_at)
    FROM attempts WHERE ended_at IS NOT NULL GROUP BY project, spec;

CREATE TABLE ticks (
    id                 INTEGER PRIMARY KEY,
    attempt_id         INTEGER NOT NULL REFERENCES attempts (id) ON DELETE CASCADE,
    project            TEXT NOT NULL,
    spec               TEXT NOT NULL,
    task_id            TEXT NOT NULL,
    title              TEXT,
    at                 INTEGER NOT NULL,
    head               TEXT,
    empty              INTEGER,
    accepted           INTEGER NOT NULL,
    verify_command     TEXT,
    verify_source      TEXT,
    verify_exit_code   INTEGER,
    verify_signal      TEXT,
    verify_timed_out   INTEGER,
    verify_duration_ms INTEGER,
    verify_output      TEXT,
    verify_log         TEXT
);
CREATE INDEX ticks_by_spec ON ticks (project, spec, task_id, at);
CREATE INDEX ticks_by_attempt ON ticks (attempt_id);
"#;

/// `swr serve`: the queue of (project, spec, options) entries the service starts runners for,
/// the service's settings (the queue's pause switch), and the webhook outbox: one row per
/// (event, URL) so that whoever is alive (the runner that raised the event, or the service)
/// delivers it, retries it with backoff, and `swr status` can show what failed.
const V6: &str = r#"
CREATE TABLE queue (
    id             INTEGER PRIMARY KEY,
    project        TEXT NOT NULL,
    spec           TEXT NOT NULL,
    provider       TEXT,
    model          TEXT,
    priority       INTEGER NOT NULL DEFAULT 0,
    added_at       INTEGER NOT NULL,
    state          TEXT NOT NULL,
    runner_id      TEXT,
    pid            INTEGER,
    pid_start_time INTEGER,
    started_at     INTEGER,
    restarts       INTEGER NOT NULL DEFAULT 0,
    result         TEXT,
    note           TEXT,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX queue_by_state ON queue (state, priority, added_at);

CREATE TABLE service_settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
);

CREATE TABLE webhook_deliveries (
    id           INTEGER PRIMARY KEY,
    url          TEXT NOT NULL,
    format       TEXT NOT NULL,
    event        TEXT NOT NULL,
    project      TEXT NOT NULL,
    spec         TEXT NOT NULL,
    runner_id    TEXT,
    reason       TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    state        TEXT NOT NULL,
    tries        INTEGER NOT NULL DEFAULT 0,
    next_try_at  INTEGER NOT NULL,
    lease_until  INTEGER,
    last_error   TEXT,
    delivered_at INTEGER
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_try_at);
CREATE INDEX webhook_deliveries_by_runner ON webhook_deliveries (runner_id);
"#;
