//! The run queue of `swr serve`: (project, spec, options) entries waiting for a runner, the
//! runner started for each, and the queue's pause switch. The CLI (`swr queue`) and the
//! service meet here, so nothing queued lives only in one process's memory.
//!
//! An entry is `queued` (waiting), `running` (the service started `swr run` for it; `pid`
//! names that process, `runner_id` the record it registered) or `done` (its runner ended;
//! `result` says how). Who decides the transitions is the service; this module only makes each
//! one a single conditional statement, so two processes racing on an entry cannot both win.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlResult, Value, ValueRef};
use rusqlite::{OptionalExtension, Row, params_from_iter};
use serde::Serialize;

use super::sql::{Ms, SqlPath, int, now_ms, opt, path_value, text, ts_value};
use super::types::{RunnerId, ser_opt_ts};
use super::{Store, StoreError, StoreTx, ser_ts};

/// Where a queue entry is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueState {
    /// Waiting for the service to start a runner.
    Queued,
    /// The service started a runner for it that has not ended.
    Running,
    /// Its runner ended (see `result`); kept for the record until removed.
    Done,
}

impl QueueState {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueState::Queued => "queued",
            QueueState::Running => "running",
            QueueState::Done => "done",
        }
    }

    pub fn parse(s: &str) -> Option<QueueState> {
        [QueueState::Queued, QueueState::Running, QueueState::Done]
            .into_iter()
            .find(|x| x.as_str() == s)
    }
}

impl fmt::Display for QueueState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromSql for QueueState {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let s = v.as_str()?;
        QueueState::parse(s).ok_or(rusqlite::types::FromSqlError::InvalidType)
    }
}

/// The id of a queue entry (`swr queue rm 3`, `DELETE /api/queue/3`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct QueueId(pub i64);

impl fmt::Display for QueueId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// Not a queue id: ids are positive whole numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid queue id {0:?}: expected a positive whole number (`swr queue ls` lists them)")]
pub struct QueueIdError(pub String);

impl FromStr for QueueId {
    type Err = QueueIdError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().trim_start_matches('#');
        match t.parse::<i64>() {
            Ok(n) if n > 0 => Ok(QueueId(n)),
            _ => Err(QueueIdError(s.to_string())),
        }
    }
}

/// One queue entry as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct QueueEntry {
    pub id: QueueId,
    pub project: PathBuf,
    pub spec: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    /// Higher first; equal priorities go oldest first.
    pub priority: i64,
    #[serde(serialize_with = "ser_ts")]
    pub added_at: Timestamp,
    pub state: QueueState,
    /// The runner started for it, once that runner registered.
    pub runner_id: Option<RunnerId>,
    /// The `swr run` process started for it.
    pub pid: Option<u32>,
    pub pid_start_time: Option<u64>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub started_at: Option<Timestamp>,
    /// How often it was put back after its runner was interrupted (crash, kill -9, reboot).
    pub restarts: u32,
    /// How its runner ended: a runner status (`completed`, `failed`, `stopped`, `crashed`) or
    /// `error` when `swr run` could not start.
    pub result: Option<String>,
    /// Why it is where it is, in words.
    pub note: Option<String>,
    #[serde(serialize_with = "ser_ts")]
    pub updated_at: Timestamp,
}

/// What `queue_add` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewQueueEntry {
    pub project: PathBuf,
    pub spec: String,
    pub provider: Option<String>,
    pub model: Option<String>,
    pub priority: i64,
}

/// The answer of `queue_add`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueAdd {
    Added(QueueEntry),
    /// The spec is already queued or running: the entry that holds it.
    Duplicate(QueueEntry),
}

/// The answer of `queue_remove`.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueRemove {
    Removed(QueueEntry),
    /// Its runner is still running: stop that first.
    Running(QueueEntry),
    NotFound,
}

const QUEUE_COLS: &str = "id, project, spec, provider, model, priority, added_at, state,
    runner_id, pid, pid_start_time, started_at, restarts, result, note, updated_at";

/// The order in which queued entries start: priority, then age.
const QUEUE_ORDER: &str = "priority DESC, added_at, id";

const PAUSED_KEY: &str = "queue_paused";

fn entry_from_row(r: &Row<'_>) -> rusqlite::Result<QueueEntry> {
    Ok(QueueEntry {
        id: QueueId(r.get("id")?),
        project: r.get::<_, SqlPath>("project")?.0,
        spec: r.get("spec")?,
        provider: r.get("provider")?,
        model: r.get("model")?,
        priority: r.get("priority")?,
        added_at: r.get::<_, Ms>("added_at")?.0,
        state: r.get("state")?,
        runner_id: r.get("runner_id")?,
        pid: r.get("pid")?,
        pid_start_time: r.get("pid_start_time")?,
        started_at: r.get::<_, Option<Ms>>("started_at")?.map(|m| m.0),
        restarts: r.get("restarts")?,
        result: r.get("result")?,
        note: r.get("note")?,
        updated_at: r.get::<_, Ms>("updated_at")?.0,
    })
}

impl StoreTx<'_> {
    pub fn queue_entry(&self, id: QueueId) -> Result<Option<QueueEntry>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {QUEUE_COLS} FROM queue WHERE id = ?1"),
                [id.0],
                entry_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Every entry not done, running ones first, then queued ones in the order they start;
    /// with `with_done`, done entries follow, newest first.
    pub fn queue(&self, with_done: bool) -> Result<Vec<QueueEntry>, StoreError> {
        let mut out = self.query(
            &format!(
                "SELECT {QUEUE_COLS} FROM queue WHERE state = 'running' ORDER BY started_at, id"
            ),
            Vec::new(),
            entry_from_row,
        )?;
        out.extend(self.queued()?);
        if with_done {
            out.extend(self.query(
                &format!(
                    "SELECT {QUEUE_COLS} FROM queue WHERE state = 'done' ORDER BY updated_at DESC, id DESC"
                ),
                Vec::new(),
                entry_from_row,
            )?);
        }
        Ok(out)
    }

    /// Queued entries in the order they start.
    pub fn queued(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.query(
            &format!(
                "SELECT {QUEUE_COLS} FROM queue WHERE state = 'queued' ORDER BY {QUEUE_ORDER}"
            ),
            Vec::new(),
            entry_from_row,
        )
    }

    pub fn queue_running(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.query(
            &format!(
                "SELECT {QUEUE_COLS} FROM queue WHERE state = 'running' ORDER BY started_at, id"
            ),
            Vec::new(),
            entry_from_row,
        )
    }

    /// Adds an entry unless the spec is already queued or running.
    pub fn queue_add(&self, new: &NewQueueEntry) -> Result<QueueAdd, StoreError> {
        let existing = self
            .conn
            .query_row(
                &format!(
                    "SELECT {QUEUE_COLS} FROM queue WHERE project = ?1 AND spec = ?2
                     AND state IN ('queued', 'running') ORDER BY id LIMIT 1"
                ),
                params_from_iter([path_value(&new.project), text(&new.spec)]),
                entry_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))?;
        if let Some(e) = existing {
            return Ok(QueueAdd::Duplicate(e));
        }
        let now = now_ms();
        self.conn
            .execute(
                "INSERT INTO queue (project, spec, provider, model, priority, added_at, state,
                 updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'queued', ?6)",
                params_from_iter([
                    path_value(&new.project),
                    text(&new.spec),
                    opt(new.provider.as_deref(), text),
                    opt(new.model.as_deref(), text),
                    Value::Integer(new.priority),
                    ts_value(now),
                ]),
            )
            .map_err(|e| self.err(e))?;
        let id = QueueId(self.conn.last_insert_rowid());
        self.queue_entry(id)?
            .map(QueueAdd::Added)
            .ok_or_else(|| self.err(rusqlite::Error::QueryReturnedNoRows))
    }

    /// Removes a queued or done entry; a running one is left alone.
    pub fn queue_remove(&self, id: QueueId) -> Result<QueueRemove, StoreError> {
        let Some(e) = self.queue_entry(id)? else {
            return Ok(QueueRemove::NotFound);
        };
        if e.state == QueueState::Running {
            return Ok(QueueRemove::Running(e));
        }
        self.conn
            .execute("DELETE FROM queue WHERE id = ?1", [id.0])
            .map_err(|e| self.err(e))?;
        Ok(QueueRemove::Removed(e))
    }

    /// `queued` → `running`: the service started `pid` for it. False when the entry was not
    /// queued any more (removed meanwhile).
    pub fn queue_mark_running(
        &self,
        id: QueueId,
        pid: u32,
        pid_start_time: Option<u64>,
    ) -> Result<bool, StoreError> {
        let now = now_ms();
        let n = self
            .conn
            .execute(
                "UPDATE queue SET state = 'running', pid = ?2, pid_start_time = ?3,
                 started_at = ?4, runner_id = NULL, result = NULL, note = NULL, updated_at = ?4
                 WHERE id = ?1 AND state = 'queued'",
                params_from_iter([
                    Value::Integer(id.0),
                    int(pid),
                    opt(pid_start_time, int),
                    ts_value(now),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(n == 1)
    }

    /// Links a running entry to the runner record its process registered.
    pub fn queue_set_runner(&self, id: QueueId, runner: &RunnerId) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE queue SET runner_id = ?2, updated_at = ?3 WHERE id = ?1",
                params_from_iter([
                    Value::Integer(id.0),
                    text(runner.as_str()),
                    ts_value(now_ms()),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `running` → `queued`, to be started again. `restart` counts an interruption (a crash);
    /// a graceful stop of the service does not count.
    pub fn queue_requeue(&self, id: QueueId, note: &str, restart: bool) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE queue SET state = 'queued', pid = NULL, pid_start_time = NULL,
                 restarts = restarts + ?3, note = ?2, updated_at = ?4
                 WHERE id = ?1 AND state = 'running'",
                params_from_iter([
                    Value::Integer(id.0),
                    text(note),
                    Value::Integer(i64::from(restart)),
                    ts_value(now_ms()),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `running` → `done` with how its runner ended.
    pub fn queue_finish(&self, id: QueueId, result: &str, note: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE queue SET state = 'done', result = ?2, note = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'running'",
                params_from_iter([
                    Value::Integer(id.0),
                    text(result),
                    text(note),
                    ts_value(now_ms()),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// `queued` → `done` without a runner: it cannot start (its project is gone).
    pub fn queue_finish_queued(
        &self,
        id: QueueId,
        result: &str,
        note: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE queue SET state = 'done', result = ?2, note = ?3, updated_at = ?4
                 WHERE id = ?1 AND state = 'queued'",
                params_from_iter([
                    Value::Integer(id.0),
                    text(result),
                    text(note),
                    ts_value(now_ms()),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// A note on a queued entry (why it has not started yet).
    pub fn queue_note(&self, id: QueueId, note: Option<&str>) -> Result<(), StoreError> {
        self.conn
            .execute(
                "UPDATE queue SET note = ?2 WHERE id = ?1 AND state = 'queued'
                 AND note IS NOT ?2",
                params_from_iter([Value::Integer(id.0), opt(note, text)]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn queue_paused(&self) -> Result<bool, StoreError> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM service_settings WHERE key = ?1",
                [PAUSED_KEY],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        Ok(v.as_deref() == Some("1"))
    }

    pub fn set_queue_paused(&self, paused: bool) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO service_settings (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                params_from_iter([text(PAUSED_KEY), text(if paused { "1" } else { "0" })]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

impl Store {
    pub fn queue(&self, with_done: bool) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|tx| tx.queue(with_done))
    }

    pub fn queue_entry(&self, id: QueueId) -> Result<Option<QueueEntry>, StoreError> {
        self.read(|tx| tx.queue_entry(id))
    }

    pub fn queue_running(&self) -> Result<Vec<QueueEntry>, StoreError> {
        self.read(|tx| tx.queue_running())
    }

    pub fn queue_add(&self, new: &NewQueueEntry) -> Result<QueueAdd, StoreError> {
        self.transaction(|tx| tx.queue_add(new))
    }

    pub fn queue_remove(&self, id: QueueId) -> Result<QueueRemove, StoreError> {
        self.transaction(|tx| tx.queue_remove(id))
    }

    pub fn queue_paused(&self) -> Result<bool, StoreError> {
        self.read(|tx| tx.queue_paused())
    }

    pub fn set_queue_paused(&self, paused: bool) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_queue_paused(paused))
    }
}
