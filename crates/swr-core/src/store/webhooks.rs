//! The webhook outbox: one row per (event, URL). A runner writes the rows of its events in one
//! short transaction and goes on; deliverers (a thread of that runner while it lives, and
//! `swr serve`) claim due rows with a lease, so two processes never send the same row at the
//! same time, and record each try. What failed stays here for `swr status` to show.

use std::path::PathBuf;
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params_from_iter};
use serde::Serialize;

use super::sql::{Ms, SqlPath, now_ms, opt, path_value, text, trunc_ms, ts_value};
use super::types::{RunnerId, ser_opt_ts};
use super::{Store, StoreError, StoreTx, ser_ts};

/// Where a delivery is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryState {
    /// Not delivered yet; tried again at `next_try_at`.
    Pending,
    Delivered,
    /// Every try failed; given up.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(s: &str) -> Option<DeliveryState> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// One event to one URL.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Delivery {
    pub id: i64,
    pub url: String,
    /// `json`, `slack`, `discord` or `ntfy`.
    pub format: String,
    /// The notify event: `completed`, `failed`, `circuit_open`, `waiting`...
    pub event: String,
    pub project: PathBuf,
    pub spec: String,
    pub runner_id: Option<RunnerId>,
    pub reason: String,
    #[serde(serialize_with = "ser_ts")]
    pub created_at: Timestamp,
    pub state: DeliveryState,
    pub tries: u32,
    #[serde(serialize_with = "ser_ts")]
    pub next_try_at: Timestamp,
    pub last_error: Option<String>,
    #[serde(serialize_with = "ser_opt_ts")]
    pub delivered_at: Option<Timestamp>,
}

/// What `add_deliveries` needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    pub url: String,
    pub format: String,
    pub event: String,
    pub project: PathBuf,
    pub spec: String,
    pub runner_id: Option<RunnerId>,
    pub reason: String,
}

/// Whose deliveries a deliverer takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryScope {
    /// Only the events of this runner (the runner's own thread).
    Runner(RunnerId),
    /// Everyone's (the service).
    All,
}

const DELIVERY_COLS: &str = "id, url, format, event, project, spec, runner_id, reason,
    created_at, state, tries, next_try_at, last_error, delivered_at";

fn delivery_from_row(r: &Row<'_>) -> rusqlite::Result<Delivery> {
    let state: String = r.get("state")?;
    Ok(Delivery {
        id: r.get("id")?,
        url: r.get("url")?,
        format: r.get("format")?,
        event: r.get("event")?,
        project: r.get::<_, SqlPath>("project")?.0,
        spec: r.get("spec")?,
        runner_id: r.get("runner_id")?,
        reason: r.get("reason")?,
        created_at: r.get::<_, Ms>("created_at")?.0,
        state: DeliveryState::parse(&state).unwrap_or(DeliveryState::Failed),
        tries: r.get("tries")?,
        next_try_at: r.get::<_, Ms>("next_try_at")?.0,
        last_error: r.get("last_error")?,
        delivered_at: r.get::<_, Option<Ms>>("delivered_at")?.map(|m| m.0),
    })
}

fn scope_sql(scope: &DeliveryScope, values: &mut Vec<Value>) -> String {
    match scope {
        DeliveryScope::All => String::new(),
        DeliveryScope::Runner(id) => {
            values.push(text(id.as_str()));
            format!(" AND runner_id = ?{}", values.len())
        }
    }
}

impl StoreTx<'_> {
    pub fn add_deliveries(&self, new: &[NewDelivery]) -> Result<(), StoreError> {
        let now = now_ms();
        for d in new {
            self.conn
                .execute(
                    "INSERT INTO webhook_deliveries (url, format, event, project, spec, runner_id,
                     reason, created_at, state, next_try_at)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 'pending', ?8)",
                    params_from_iter([
                        text(&d.url),
                        text(&d.format),
                        text(&d.event),
                        path_value(&d.project),
                        text(&d.spec),
                        opt(d.runner_id.as_ref().map(RunnerId::as_str), text),
                        text(&d.reason),
                        ts_value(now),
                    ]),
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Takes the pending deliveries due at `now` that nobody holds, holding each for `lease`
    /// (longer than one try may take), oldest first.
    pub fn claim_deliveries(
        &self,
        scope: &DeliveryScope,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        let now = trunc_ms(now);
        let mut values = vec![ts_value(now)];
        let mut sql = format!(
            "SELECT {DELIVERY_COLS} FROM webhook_deliveries WHERE state = 'pending'
             AND next_try_at <= ?1 AND (lease_until IS NULL OR lease_until < ?1)"
        );
        sql.push_str(&scope_sql(scope, &mut values));
        sql.push_str(&format!(" ORDER BY next_try_at, id LIMIT {limit}"));
        let due = self.query(&sql, values, delivery_from_row)?;
        let until = now.as_millisecond() + i64::try_from(lease.as_millis()).unwrap_or(i64::MAX);
        for d in &due {
            self.conn
                .execute(
                    "UPDATE webhook_deliveries SET lease_until = ?2 WHERE id = ?1",
                    params_from_iter([Value::Integer(d.id), Value::Integer(until)]),
                )
                .map_err(|e| self.err(e))?;
        }
        Ok(due)
    }

    /// Records a try. `Ok` delivers; an error with `retry_at` keeps it pending until then;
    /// an error without gives up on it.
    pub fn record_delivery_try(
        &self,
        id: i64,
        result: Result<(), &str>,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let now = now_ms();
        let (state, error, next) = match result {
            Ok(()) => (DeliveryState::Delivered, None, None),
            Err(e) => match retry_at {
                Some(t) => (DeliveryState::Pending, Some(e), Some(trunc_ms(t))),
                None => (DeliveryState::Failed, Some(e), None),
            },
        };
        self.conn
            .execute(
                "UPDATE webhook_deliveries SET state = ?2, tries = tries + 1, lease_until = NULL,
                 last_error = COALESCE(?3, last_error), next_try_at = COALESCE(?4, next_try_at),
                 delivered_at = CASE WHEN ?2 = 'delivered' THEN ?5 ELSE delivered_at END
                 WHERE id = ?1",
                params_from_iter([
                    Value::Integer(id),
                    text(state.as_str()),
                    opt(error, text),
                    opt(next, ts_value),
                    ts_value(now),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// When the next pending delivery of `scope` is due (it may be now or past).
    pub fn next_delivery_due(
        &self,
        scope: &DeliveryScope,
    ) -> Result<Option<Timestamp>, StoreError> {
        let mut values = Vec::new();
        let mut sql = String::from(
            "SELECT MIN(MAX(next_try_at, COALESCE(lease_until, 0))) FROM webhook_deliveries
             WHERE state = 'pending'",
        );
        sql.push_str(&scope_sql(scope, &mut values));
        self.conn
            .query_row(&sql, params_from_iter(values), |r| {
                r.get::<_, Option<Ms>>(0)
            })
            .optional()
            .map(|o| o.flatten().map(|m| m.0))
            .map_err(|e| self.err(e))
    }

    /// Deliveries that have not gone through: failed, or pending after a failed try. Newest
    /// first, at most `limit`.
    pub fn delivery_problems(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.query(
            &format!(
                "SELECT {DELIVERY_COLS} FROM webhook_deliveries
                 WHERE state = 'failed' OR (state = 'pending' AND tries > 0)
                 ORDER BY created_at DESC, id DESC LIMIT {limit}"
            ),
            Vec::new(),
            delivery_from_row,
        )
    }

    /// Every delivery, newest first, at most `limit` (tests and diagnostics).
    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.query(
            &format!(
                "SELECT {DELIVERY_COLS} FROM webhook_deliveries
                 ORDER BY created_at DESC, id DESC LIMIT {limit}"
            ),
            Vec::new(),
            delivery_from_row,
        )
    }
}

impl Store {
    pub fn add_deliveries(&self, new: &[NewDelivery]) -> Result<(), StoreError> {
        self.transaction(|tx| tx.add_deliveries(new))
    }

    pub fn claim_deliveries(
        &self,
        scope: &DeliveryScope,
        now: Timestamp,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Delivery>, StoreError> {
        self.transaction(|tx| tx.claim_deliveries(scope, now, lease, limit))
    }

    pub fn record_delivery_try(
        &self,
        id: i64,
        result: Result<(), &str>,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.record_delivery_try(id, result, retry_at))
    }

    pub fn next_delivery_due(
        &self,
        scope: &DeliveryScope,
    ) -> Result<Option<Timestamp>, StoreError> {
        self.read(|tx| tx.next_delivery_due(scope))
    }

    pub fn delivery_problems(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.read(|tx| tx.delivery_problems(limit))
    }

    pub fn deliveries(&self, limit: usize) -> Result<Vec<Delivery>, StoreError> {
        self.read(|tx| tx.deliveries(limit))
    }
}
