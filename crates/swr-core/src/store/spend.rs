//! Tokens and cost summed from the recorded attempts: per spec (also kept apart in
//! `spec_spend`, which pruning never touches, for `spec_budget_usd`), per task ticked, per
//! runner, per iteration, per day; and the snapshot `swr metrics` exports.
//!
//! Exact semantics:
//! - Only attempts that ended count. An attempt's cost is what its agent reported, or the
//!   estimate from `prices` (`estimated_usd` says how much of a sum is estimated).
//! - **Per task**: an attempt's cost and tokens are split evenly between the tasks it ticked
//!   whose ticks stand (a tick rejected by its verify check is not progress, so its attempt
//!   is attributed to no task). Attempts that ticked nothing are `unattributed`.
//! - **Per day**: by the attempt's start, in UTC.
//! - `since` keeps the attempts started at or after it.

use std::path::Path;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Row, params_from_iter};
use serde::Serialize;

use super::sql::{SqlPath, path_value, text};
use super::types::{RunnerId, RunnerStatus};
use crate::cost::Totals;
use crate::outcome::Outcome;

/// How `swr stats --by` groups spend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SpendGroup {
    Task,
    Spec,
    Day,
    Runner,
    Iteration,
}

/// What one row of a [`SpendReport`] is about; the fields of its group are set.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct SpendKey {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub project: Option<std::path::PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runner_id: Option<RunnerId>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub iteration: Option<u32>,
    /// `YYYY-MM-DD`, UTC.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub day: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendRow {
    #[serde(flatten)]
    pub key: SpendKey,
    #[serde(flatten)]
    pub totals: Totals,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SpendReport {
    pub by: SpendGroup,
    pub rows: Vec<SpendRow>,
    /// Every attempt of the period.
    pub total: Totals,
    /// By task: the attempts that ticked no task that stands.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unattributed: Option<Totals>,
}

/// The columns of a [`Totals`], over attempts `a`, each weighted by `w` (1, or a task's share).
fn totals_sql(w: &str) -> String {
    format!(
        "COUNT(DISTINCT a.id), COUNT(DISTINCT CASE WHEN a.cost_usd IS NOT NULL THEN a.id END),
         COUNT(DISTINCT CASE WHEN COALESCE(a.input_tokens, a.cached_tokens, a.output_tokens)
                             IS NOT NULL THEN a.id END),
         COALESCE(SUM(a.input_tokens * {w}), 0), COALESCE(SUM(a.cached_tokens * {w}), 0),
         COALESCE(SUM(a.output_tokens * {w}), 0), COALESCE(SUM(a.cost_usd * {w}), 0),
         COALESCE(SUM(CASE WHEN a.cost_estimated THEN a.cost_usd * {w} END), 0)"
    )
}

/// Reads the [`Totals`] columns starting at `i`.
fn totals_at(r: &Row<'_>, i: usize) -> rusqlite::Result<Totals> {
    let n = |k: usize| -> rusqlite::Result<u64> {
        let v: f64 = r.get(i + k)?;
        Ok(v.round().max(0.0) as u64)
    };
    Ok(Totals {
        attempts: r.get(i)?,
        priced: r.get(i + 1)?,
        metered: r.get(i + 2)?,
        input_tokens: n(3)?,
        cached_tokens: n(4)?,
        output_tokens: n(5)?,
        cost_usd: r.get(i + 6)?,
        estimated_usd: r.get(i + 7)?,
    })
}

pub(crate) fn spec_spend(
    conn: &Connection,
    project: &Path,
    spec: &str,
) -> rusqlite::Result<Totals> {
    Ok(conn
        .query_row(
            "SELECT attempts, priced, metered, input_tokens, cached_tokens, output_tokens,
             cost_usd, estimated_usd FROM spec_spend WHERE project = ?1 AND spec = ?2",
            params_from_iter([path_value(project), text(spec)]),
            |r| {
                Ok(Totals {
                    attempts: r.get(0)?,
                    priced: r.get(1)?,
                    metered: r.get(2)?,
                    input_tokens: r.get(3)?,
                    cached_tokens: r.get(4)?,
                    output_tokens: r.get(5)?,
                    cost_usd: r.get(6)?,
                    estimated_usd: r.get(7)?,
                })
            },
        )
        .optional()?
        .unwrap_or_default())
}

pub(crate) fn add_spec_spend(
    conn: &Connection,
    project: &Path,
    spec: &str,
    t: &Totals,
    at: Timestamp,
) -> rusqlite::Result<()> {
    let i = |n: u64| rusqlite::types::Value::Integer(i64::try_from(n).unwrap_or(i64::MAX));
    conn.execute(
        "INSERT INTO spec_spend (project, spec, attempts, priced, metered, input_tokens,
         cached_tokens, output_tokens, cost_usd, estimated_usd, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
         ON CONFLICT (project, spec) DO UPDATE SET attempts = attempts + excluded.attempts,
         priced = priced + excluded.priced, metered = metered + excluded.metered,
         input_tokens = input_tokens + excluded.input_tokens,
         cached_tokens = cached_tokens + excluded.cached_tokens,
         output_tokens = output_tokens + excluded.output_tokens,
         cost_usd = cost_usd + excluded.cost_usd,
         estimated_usd = estimated_usd + excluded.estimated_usd,
         updated_at = excluded.updated_at",
        params_from_iter([
            path_value(project),
            text(spec),
            i(t.attempts),
            i(t.priced),
            i(t.metered),
            i(t.input_tokens),
            i(t.cached_tokens),
            i(t.output_tokens),
            rusqlite::types::Value::Real(t.cost_usd),
            rusqlite::types::Value::Real(t.estimated_usd),
            rusqlite::types::Value::Integer(at.as_millisecond()),
        ]),
    )?;
    Ok(())
}

pub(crate) fn spend(
    conn: &Connection,
    since: Option<Timestamp>,
    group: SpendGroup,
) -> rusqlite::Result<SpendReport> {
    let since = since.map(|t| t.as_millisecond());
    let period = "a.ended_at IS NOT NULL AND (?1 IS NULL OR a.started_at >= ?1)";
    let one = totals_sql("1.0");
    let total = conn.query_row(
        &format!("SELECT {one} FROM attempts a WHERE {period}"),
        [since],
        |r| totals_at(r, 0),
    )?;
    let (sql, keys): (String, usize) = match group {
        SpendGroup::Spec => (
            format!(
                "SELECT a.project, a.spec, {one} FROM attempts a WHERE {period}
                 GROUP BY a.project, a.spec ORDER BY MIN(a.started_at)"
            ),
            2,
        ),
        SpendGroup::Day => (
            format!(
                "SELECT date(a.started_at / 1000, 'unixepoch'), {one} FROM attempts a
                 WHERE {period} GROUP BY 1 ORDER BY 1"
            ),
            1,
        ),
        SpendGroup::Runner => (
            format!(
                "SELECT a.runner_id, MAX(a.project), MAX(a.spec), {one} FROM attempts a
                 WHERE {period} GROUP BY a.runner_id ORDER BY MIN(a.started_at)"
            ),
            3,
        ),
        SpendGroup::Iteration => (
            format!(
                "SELECT a.runner_id, a.iteration, MAX(a.project), MAX(a.spec), {one}
                 FROM attempts a WHERE {period} GROUP BY a.runner_id, a.iteration
                 ORDER BY MIN(a.started_at)"
            ),
            4,
        ),
        SpendGroup::Task => (
            format!(
                "WITH n AS (SELECT attempt_id, COUNT(*) AS k FROM ticks WHERE accepted
                            GROUP BY attempt_id)
                 SELECT t.project, t.spec, t.task_id, MAX(t.title), {share}
                 FROM ticks t JOIN n ON n.attempt_id = t.attempt_id
                 JOIN attempts a ON a.id = t.attempt_id
                 WHERE t.accepted AND {period}
                 GROUP BY t.project, t.spec, t.task_id ORDER BY MIN(t.at), MIN(t.id)",
                share = totals_sql("1.0 / n.k")
            ),
            4,
        ),
    };
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([since], |r| {
        let key = match group {
            SpendGroup::Spec => SpendKey {
                project: Some(r.get::<_, SqlPath>(0)?.0),
                spec: Some(r.get(1)?),
                ..SpendKey::default()
            },
            SpendGroup::Day => SpendKey {
                day: Some(r.get(0)?),
                ..SpendKey::default()
            },
            SpendGroup::Runner => SpendKey {
                runner_id: Some(r.get(0)?),
                project: Some(r.get::<_, SqlPath>(1)?.0),
                spec: Some(r.get(2)?),
                ..SpendKey::default()
            },
            SpendGroup::Iteration => SpendKey {
                runner_id: Some(r.get(0)?),
                iteration: Some(r.get(1)?),
                project: Some(r.get::<_, SqlPath>(2)?.0),
                spec: Some(r.get(3)?),
                ..SpendKey::default()
            },
            SpendGroup::Task => SpendKey {
                project: Some(r.get::<_, SqlPath>(0)?.0),
                spec: Some(r.get(1)?),
                task_id: Some(r.get(2)?),
                title: r.get(3)?,
                ..SpendKey::default()
            },
        };
        Ok(SpendRow {
            key,
            totals: totals_at(r, keys)?,
        })
    })?;
    let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
    let unattributed = match group {
        SpendGroup::Task => Some(conn.query_row(
            &format!(
                "SELECT {one} FROM attempts a WHERE {period} AND NOT EXISTS
                 (SELECT 1 FROM ticks t WHERE t.attempt_id = a.id AND t.accepted)"
            ),
            [since],
            |r| totals_at(r, 0),
        )?),
        _ => None,
    };
    Ok(SpendReport {
        by: group,
        rows,
        total,
        unattributed,
    })
}

/// Attempts of one provider with one outcome.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeCount {
    pub provider: String,
    pub outcome: Outcome,
    pub count: u64,
}

/// Everything `swr metrics` exports, read from one snapshot of the store.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MetricsSnapshot {
    /// Every status, zeros included.
    pub runners: Vec<(RunnerStatus, u64)>,
    /// Ended attempts by provider and outcome.
    pub attempts: Vec<OutcomeCount>,
    /// Retries scheduled (a failed attempt followed by a backoff), by provider.
    pub retries: Vec<(String, u64)>,
    /// Rate-limit waits and their scheduled length in seconds, by provider.
    pub rate_limit_waits: Vec<(String, u64, f64)>,
    /// How long each ended attempt ran, in seconds, by provider.
    pub attempt_seconds: Vec<(String, Vec<f64>)>,
    /// How long each verify check ran, in seconds (one per check, not per task).
    pub verify_seconds: Vec<f64>,
    /// Tokens and cost by provider.
    pub spend: Vec<(String, Totals)>,
    /// Ticks whose check passed or that had none, ticks put back by a failed check, and
    /// ticks whose attempt changed nothing but tasks.md.
    pub ticks_accepted: u64,
    pub ticks_rejected: u64,
    pub ticks_empty: u64,
}

pub(crate) fn metrics(conn: &Connection) -> rusqlite::Result<MetricsSnapshot> {
    let mut m = MetricsSnapshot::default();
    let counts: Vec<(RunnerStatus, u64)> = collect(
        conn,
        "SELECT status, COUNT(*) FROM runners GROUP BY status",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    m.runners = RunnerStatus::ALL
        .iter()
        .map(|s| {
            let n = counts.iter().find(|(x, _)| x == s).map_or(0, |(_, n)| *n);
            (*s, n)
        })
        .collect();
    m.attempts = collect(
        conn,
        "SELECT r.provider, a.outcome, COUNT(*) FROM attempts a
         JOIN runners r ON r.runner_id = a.runner_id
         WHERE a.outcome IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
        |r| {
            Ok(OutcomeCount {
                provider: r.get(0)?,
                outcome: r.get(1)?,
                count: r.get(2)?,
            })
        },
    )?;
    m.retries = collect(
        conn,
        "SELECT r.provider, COUNT(*) FROM attempts a JOIN runners r ON r.runner_id = a.runner_id
         WHERE a.delay_before_next_ms IS NOT NULL
         AND a.outcome NOT IN ('success', 'no_progress', 'rate_limited', 'stopped')
         GROUP BY 1 ORDER BY 1",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    m.rate_limit_waits = collect(
        conn,
        "SELECT r.provider, COUNT(*), COALESCE(SUM(a.delay_before_next_ms), 0) / 1000.0
         FROM attempts a JOIN runners r ON r.runner_id = a.runner_id
         WHERE a.outcome = 'rate_limited' GROUP BY 1 ORDER BY 1",
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    let durations: Vec<(String, f64)> = collect(
        conn,
        "SELECT r.provider, (a.ended_at - a.started_at) / 1000.0 FROM attempts a
         JOIN runners r ON r.runner_id = a.runner_id
         WHERE a.ended_at IS NOT NULL ORDER BY 1, a.id",
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (p, secs) in durations {
        match m.attempt_seconds.last_mut() {
            Some((last, v)) if *last == p => v.push(secs),
            _ => m.attempt_seconds.push((p, vec![secs])),
        }
    }
    // Every task a check covered got a copy of it: one duration per (attempt, command).
    m.verify_seconds = collect(
        conn,
        "SELECT MAX(verify_duration_ms) / 1000.0 FROM ticks WHERE verify_command IS NOT NULL
         GROUP BY attempt_id, verify_command ORDER BY MIN(id)",
        |r| r.get(0),
    )?;
    m.spend = collect(
        conn,
        &format!(
            "SELECT r.provider, {} FROM attempts a JOIN runners r ON r.runner_id = a.runner_id
             WHERE a.ended_at IS NOT NULL GROUP BY 1 ORDER BY 1",
            totals_sql("1.0")
        ),
        |r| Ok((r.get(0)?, totals_at(r, 1)?)),
    )?;
    (m.ticks_accepted, m.ticks_rejected, m.ticks_empty) = conn.query_row(
        "SELECT COALESCE(SUM(accepted), 0), COALESCE(SUM(NOT accepted), 0),
         COALESCE(SUM(empty), 0) FROM ticks",
        [],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    Ok(m)
}

fn collect<T>(
    conn: &Connection,
    sql: &str,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
) -> rusqlite::Result<Vec<T>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt.query_map([], map)?;
    rows.collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::super::{Store, schema};

    /// A store written by the previous version: V3 adds the columns and counts the costs it
    /// already holds into each spec's spend.
    #[test]
    fn migrating_a_v2_store_counts_its_recorded_costs() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sqlite3");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            for sql in &schema::MIGRATIONS[..2] {
                conn.execute_batch(sql).unwrap();
            }
            conn.execute_batch(
                "PRAGMA user_version = 2;
                 INSERT INTO runners (runner_id, project, spec, provider, status, pid,
                     started_at, updated_at) VALUES ('r-1', '/p', 's', 'claude', 'completed', 1, 0, 0);
                 INSERT INTO attempts (runner_id, project, spec, iteration, attempt, started_at,
                     ended_at, log_path, cost_usd) VALUES
                     ('r-1', '/p', 's', 1, 1, 0, 10, '/l1', 0.25),
                     ('r-1', '/p', 's', 1, 2, 20, 30, '/l2', NULL),
                     ('r-1', '/p', 's', 2, 1, 40, NULL, '/l3', NULL);",
            )
            .unwrap();
        }
        let store = Store::open(&path).unwrap();
        let t = store.spec_spend(std::path::Path::new("/p"), "s").unwrap();
        assert_eq!((t.attempts, t.priced, t.metered), (2, 1, 0));
        assert!((t.cost_usd - 0.25).abs() < 1e-12);
        let a = store.attempt(1).unwrap().unwrap();
        assert_eq!((a.input_tokens, a.cost_estimated), (None, None));
    }
}
