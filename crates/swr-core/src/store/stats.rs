//! Retry statistics over a period, for `swr stats` and the TUI dashboard.

use std::collections::BTreeMap;

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;

use crate::outcome::Outcome;

/// How retries fared over a period.
///
/// Exact semantics (the SQL in `retry_stats` implements these):
/// - An **iteration** is a `(runner_id, iteration)` pair of the attempts table. It is in the
///   period when its *first* attempt started at or after `since` (all iterations when `since`
///   is `None`), so an iteration is never split across periods; every figure below, including
///   `by_outcome`, counts only attempts of iterations in the period.
/// - An attempt **failed** when its outcome is set and is none of `success`, `no_progress`,
///   `rate_limited` (waited out, not a failure) or `stopped` (the user's choice). An attempt
///   still running (no outcome) has not failed.
/// - Attempts of an iteration are ordered by `(attempt, id)`; the **last** one is the highest.
/// - An iteration **needed a retry** when it has a failed attempt that either has a
///   `delay_before_next_ms` (a retry was scheduled, even if the runner stopped before it ran)
///   or is not the last attempt (a retry ran). This differs from "more than one attempt" in
///   one way, on purpose: an iteration whose only repeat was after a rate-limit wait did not
///   need a retry.
/// - It **retried then succeeded** when it needed a retry and its last attempt is `success` or
///   `no_progress`.
/// - It **ran out of retries** when its last attempt failed with no `delay_before_next_ms`
///   and its runner's status is `failed` (whether retries were exhausted or the class is never
///   retried: either way it was the final failure).
/// - `retry_success_rate` = retried_then_succeeded / iterations_needing_retry, `None` when
///   nothing needed a retry; `final_failure_rate` = out_of_retries / iterations, `None` when
///   there are no iterations.
/// - `average_backoff_ms` is the mean `delay_before_next_ms` of failed attempts (scheduled
///   retries; rate-limit waits are excluded as they would swamp the figure), `None` when none.
/// - `by_outcome` counts attempts per outcome; attempts still running are not counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RetryStats {
    pub iterations: u64,
    pub iterations_needing_retry: u64,
    pub retried_then_succeeded: u64,
    pub iterations_out_of_retries: u64,
    pub retry_success_rate: Option<f64>,
    pub final_failure_rate: Option<f64>,
    pub average_backoff_ms: Option<f64>,
    pub by_outcome: BTreeMap<Outcome, u64>,
}

/// The attempts of the iterations in the period, with `failed` and `is_last` computed.
const PERIOD_ATTEMPTS: &str = "
WITH it AS (
    SELECT runner_id, iteration FROM attempts
    GROUP BY runner_id, iteration
    HAVING ?1 IS NULL OR MIN(started_at) >= ?1
),
a AS (
    SELECT t.runner_id, t.iteration, t.outcome, t.delay_before_next_ms,
        (t.outcome IS NOT NULL
            AND t.outcome NOT IN ('success', 'no_progress', 'rate_limited', 'stopped')) AS failed,
        ROW_NUMBER() OVER (PARTITION BY t.runner_id, t.iteration
                           ORDER BY t.attempt DESC, t.id DESC) = 1 AS is_last
    FROM attempts t JOIN it ON it.runner_id = t.runner_id AND it.iteration = t.iteration
)";

pub(crate) fn retry_stats(
    conn: &Connection,
    since: Option<Timestamp>,
) -> rusqlite::Result<RetryStats> {
    let since = since.map(|t| t.as_millisecond());
    let per_iteration = format!(
        "{PERIOD_ATTEMPTS},
        per AS (
            SELECT runner_id, iteration,
                MAX(failed AND (delay_before_next_ms IS NOT NULL OR NOT is_last)) AS needed,
                MAX(is_last AND outcome IN ('success', 'no_progress')) AS last_ok,
                MAX(is_last AND failed AND delay_before_next_ms IS NULL) AS last_failed_final
            FROM a GROUP BY runner_id, iteration
        )
        SELECT COUNT(*),
            COALESCE(SUM(needed), 0),
            COALESCE(SUM(needed AND last_ok), 0),
            COALESCE(SUM(last_failed_final AND r.status = 'failed'), 0)
        FROM per JOIN runners r ON r.runner_id = per.runner_id"
    );
    let (iterations, needing, succeeded, out_of_retries): (u64, u64, u64, u64) =
        conn.query_row(&per_iteration, [since], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
        })?;

    let average_backoff_ms: Option<f64> = conn
        .query_row(
            &format!(
                "{PERIOD_ATTEMPTS} SELECT AVG(delay_before_next_ms) FROM a
                 WHERE failed AND delay_before_next_ms IS NOT NULL"
            ),
            [since],
            |r| r.get(0),
        )
        .optional()?
        .flatten();

    let mut by_outcome = BTreeMap::new();
    let mut stmt = conn.prepare(&format!(
        "{PERIOD_ATTEMPTS} SELECT outcome, COUNT(*) FROM a WHERE outcome IS NOT NULL GROUP BY outcome"
    ))?;
    let rows = stmt.query_map([since], |r| {
        Ok((r.get::<_, Outcome>(0)?, r.get::<_, u64>(1)?))
    })?;
    for row in rows {
        let (o, n) = row?;
        by_outcome.insert(o, n);
    }

    let ratio = |num: u64, den: u64| (den > 0).then(|| num as f64 / den as f64);
    Ok(RetryStats {
        iterations,
        iterations_needing_retry: needing,
        retried_then_succeeded: succeeded,
        iterations_out_of_retries: out_of_retries,
        retry_success_rate: ratio(succeeded, needing),
        final_failure_rate: ratio(out_of_retries, iterations),
        average_backoff_ms,
        by_outcome,
    })
}
