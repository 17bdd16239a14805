//! What runners share through the store: the rate-limit clock of a provider account, and the
//! retry budget (retries granted across all runners in a rolling hour). Both are rows every
//! runner consults before an attempt, so CLI, TUI and service runners agree, and both survive
//! restarts.

use jiff::{SignedDuration, Timestamp};
use rusqlite::OptionalExtension;
use rusqlite::params_from_iter;

use super::sql::{Ms, text, trunc_ms, ts_value};
use super::{RunnerId, Store, StoreError, StoreTx};

/// A rate limit one runner hit, which every runner of the same provider and account waits out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountWait {
    pub provider: String,
    pub account: String,
    /// When the provider said the limit lifts.
    pub reset_at: Timestamp,
    /// When runners start again (the reset plus the jitter of the runner that hit it).
    pub until: Timestamp,
    pub reason: String,
}

/// The retry budget said no: the next retry may start at this time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetSpent {
    pub free_at: Timestamp,
    pub used: u32,
}

const HOUR: SignedDuration = SignedDuration::from_secs(3600);

impl StoreTx<'_> {
    /// Records a limit for the account; a later `until` than the one recorded wins, an earlier
    /// one is ignored (two runners hitting one limit agree on the later reset).
    pub fn set_account_wait(&self, w: &AccountWait) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO account_waits (provider, account, reset_at, until, reason, set_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT (provider, account) DO UPDATE SET reset_at = excluded.reset_at,
                 until = excluded.until, reason = excluded.reason, set_at = excluded.set_at
                 WHERE excluded.until > account_waits.until",
                params_from_iter([
                    text(&w.provider),
                    text(&w.account),
                    ts_value(trunc_ms(w.reset_at)),
                    ts_value(trunc_ms(w.until)),
                    text(&w.reason),
                    ts_value(trunc_ms(Timestamp::now())),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub fn account_wait(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<Option<AccountWait>, StoreError> {
        self.conn
            .query_row(
                "SELECT reset_at, until, reason FROM account_waits
                 WHERE provider = ?1 AND account = ?2",
                params_from_iter([text(provider), text(account)]),
                |r| {
                    Ok(AccountWait {
                        provider: provider.to_string(),
                        account: account.to_string(),
                        reset_at: r.get::<_, Ms>(0)?.0,
                        until: r.get::<_, Ms>(1)?.0,
                        reason: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// An attempt of the account succeeded at `now`: a limit whose reset has passed is over,
    /// even if the jittered `until` has not come yet.
    pub fn clear_account_wait(
        &self,
        provider: &str,
        account: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM account_waits WHERE provider = ?1 AND account = ?2 AND reset_at <= ?3",
                params_from_iter([text(provider), text(account), ts_value(now)]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Forgets the account's limit whatever its reset, and says whether there was one: the
    /// user's way out of a bogus reset (claude's "…|99999999999" is capped at 7 days, which
    /// would hold every runner of the account): `swr run --ignore-wait` and `swr stop`.
    pub fn forget_account_wait(&self, provider: &str, account: &str) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "DELETE FROM account_waits WHERE provider = ?1 AND account = ?2",
                params_from_iter([text(provider), text(account)]),
            )
            .map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Every account wait, for `swr status` and the TUI.
    pub fn account_waits(&self) -> Result<Vec<AccountWait>, StoreError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT provider, account, reset_at, until, reason FROM account_waits
                 ORDER BY provider, account",
            )
            .map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map([], |r| {
                Ok(AccountWait {
                    provider: r.get(0)?,
                    account: r.get(1)?,
                    reset_at: r.get::<_, Ms>(2)?.0,
                    until: r.get::<_, Ms>(3)?.0,
                    reason: r.get(4)?,
                })
            })
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Takes one retry from the budget of `per_hour` retries in any rolling hour, or says when
    /// the next one frees up. Atomic: run it in a write transaction.
    pub fn take_retry(
        &self,
        per_hour: u32,
        runner: &RunnerId,
        now: Timestamp,
    ) -> Result<Result<(), BudgetSpent>, StoreError> {
        let hour_ago = now.checked_sub(HOUR).unwrap_or(Timestamp::MIN);
        self.conn
            .execute(
                "DELETE FROM retry_grants WHERE at <= ?1",
                params_from_iter([ts_value(hour_ago)]),
            )
            .map_err(|e| self.err(e))?;
        let (used, oldest): (u32, Option<Ms>) = self
            .conn
            .query_row("SELECT COUNT(*), MIN(at) FROM retry_grants", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .map_err(|e| self.err(e))?;
        if used >= per_hour {
            let oldest = oldest.map_or(now, |m| m.0);
            let free_at = oldest.checked_add(HOUR).unwrap_or(Timestamp::MAX);
            return Ok(Err(BudgetSpent { free_at, used }));
        }
        self.conn
            .execute(
                "INSERT INTO retry_grants (at, runner_id) VALUES (?1, ?2)",
                params_from_iter([ts_value(trunc_ms(now)), text(runner.as_str())]),
            )
            .map_err(|e| self.err(e))?;
        Ok(Ok(()))
    }

    /// Retries granted in the hour before `now`.
    pub fn retries_granted(&self, now: Timestamp) -> Result<u32, StoreError> {
        let hour_ago = now.checked_sub(HOUR).unwrap_or(Timestamp::MIN);
        self.conn
            .query_row(
                "SELECT COUNT(*) FROM retry_grants WHERE at > ?1",
                params_from_iter([ts_value(hour_ago)]),
                |r| r.get(0),
            )
            .map_err(|e| self.err(e))
    }
}

impl Store {
    pub fn set_account_wait(&self, w: &AccountWait) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_account_wait(w))
    }

    pub fn account_wait(
        &self,
        provider: &str,
        account: &str,
    ) -> Result<Option<AccountWait>, StoreError> {
        self.read(|tx| tx.account_wait(provider, account))
    }

    pub fn account_waits(&self) -> Result<Vec<AccountWait>, StoreError> {
        self.read(|tx| tx.account_waits())
    }

    pub fn forget_account_wait(&self, provider: &str, account: &str) -> Result<bool, StoreError> {
        self.transaction(|tx| tx.forget_account_wait(provider, account))
    }

    pub fn take_retry(
        &self,
        per_hour: u32,
        runner: &RunnerId,
        now: Timestamp,
    ) -> Result<Result<(), BudgetSpent>, StoreError> {
        self.transaction(|tx| tx.take_retry(per_hour, runner, now))
    }

    pub fn retries_granted(&self, now: Timestamp) -> Result<u32, StoreError> {
        self.read(|tx| tx.retries_granted(now))
    }
}
