//! The state store: one SQLite database (WAL) shared by every `swr run` process (writers) and
//! by the TUI, `swr status`, `swr stats`, `swr metrics` and `swr serve`. It owns the schema,
//! the runner and attempt records (with their tokens and cost), the evidence of ticks, each
//! spec's spend across runs, persisted rate-limit waits, retry statistics and spend sums, the
//! per-spec liveness lock ([`SpecLock`]), crash reconciliation, the Python-compatible retry log
//! files, the run queue of `swr serve` (`queue`) and the webhook outbox (`webhooks`).
//!
//! It must not spawn or signal processes, and it decides nothing about retries, budgets or
//! ticks: it records what the runner decided. Every transition is one transaction ([`Store::transaction`] groups
//! several), so a `kill -9` at any moment leaves a consistent, readable store.

mod lock;
mod queue;
mod retry_log;
mod schema;
mod shared;
mod spend;
mod sql;
mod stats;
mod types;
mod webhooks;

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use jiff::Timestamp;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params_from_iter};

pub use lock::{Holder, LockError, SpecGuard, SpecLock, ensure_private_dir, lock_file_path};
pub use queue::{
    NewQueueEntry, QueueAdd, QueueEntry, QueueId, QueueIdError, QueueRemove, QueueState,
};
pub use retry_log::{RetryLog, RetryLogAttempt, write_retry_log};
pub use shared::{AccountWait, BudgetSpent};
pub use spend::{MetricsSnapshot, OutcomeCount, SpendGroup, SpendKey, SpendReport, SpendRow};
pub use stats::RetryStats;
pub(crate) use types::ser_ts;
pub use types::{
    AgentProcess, AttemptEnd, AttemptFilter, AttemptRecord, Check, NewAttempt, NewRunner, NewTick,
    RunnerFilter, RunnerId, RunnerIdError, RunnerRecord, RunnerStatus, RunnerUpdate, TickFilter,
    TickRecord, format_ts,
};
pub use webhooks::{Delivery, DeliveryScope, DeliveryState, NewDelivery};

use crate::procinfo;
use crate::spec::TaskCounts;
use sql::{Ms, SqlPath, int, now_ms, opt, path_value, text, trunc_ms, ts_value};

/// How long a connection waits for another process's write lock before failing. Writes are
/// single small transactions, so 5 s means something is badly wrong.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = schema::MIGRATIONS.len() as i64;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the state store directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state store {path}: {source}")]
    Sqlite {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error(
        "state store {path} has schema version {found}, newer than this swr understands ({supported}); upgrade swr"
    )]
    TooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("state store {path}: no runner {runner_id}")]
    RunnerNotFound { path: PathBuf, runner_id: RunnerId },
    #[error("state store {path}: no attempt {id}")]
    AttemptNotFound { path: PathBuf, id: i64 },
}

/// A handle on the store. Cheap to share between threads (one connection behind a mutex;
/// every call is short). Open one per process.
pub struct Store {
    path: PathBuf,
    conn: Mutex<Connection>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open (creating if needed) the store at `path`: parent directories are created with mode
    /// 0700, then WAL mode, a 5 s busy timeout, `synchronous=NORMAL` (durable at checkpoints,
    /// never corrupt: WAL keeps the last committed state readable after a crash) and foreign
    /// keys, and pending migrations run in one immediate transaction so concurrent openers
    /// migrate exactly once.
    pub fn open(path: &Path) -> Result<Store, StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(parent)
                .map_err(|source| StoreError::CreateDir {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let mut conn = Connection::open(path).map_err(err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(err)?;
        set_wal(&conn).map_err(err)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(err)?;
        conn.pragma_update(None, "foreign_keys", "ON")
            .map_err(err)?;
        migrate(&mut conn, path)?;
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    /// Open an existing store for reading only, for observers that must work when the cache
    /// dir is read-only (a mounted backup, a cleaned-up permission): nothing is created,
    /// migrated or written. A WAL database in a directory where SQLite cannot create its
    /// `-shm` file is opened `immutable` (no locking: a writer, if any, cannot be on that
    /// directory anyway). An older schema is read as it is; a newer one is refused.
    pub fn open_read_only(path: &Path) -> Result<Store, StoreError> {
        use rusqlite::OpenFlags;
        let err = |source| StoreError::Sqlite {
            path: path.to_path_buf(),
            source,
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let try_open = |uri: &str| -> rusqlite::Result<(Connection, i64)> {
            let conn = Connection::open_with_flags(uri, flags)?;
            conn.busy_timeout(BUSY_TIMEOUT)?;
            // The first read is what needs the -shm file.
            let v = conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))?;
            Ok((conn, v))
        };
        let uri = format!("file:{}", uri_path(path));
        let (conn, version) = match try_open(&uri) {
            Ok(ok) => ok,
            Err(first) => {
                if !path.is_file() {
                    return Err(err(first));
                }
                try_open(&format!("{uri}?immutable=1")).map_err(|_| err(first))?
            }
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::TooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(Store {
            path: path.to_path_buf(),
            conn: Mutex::new(conn),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the guard cannot leave a half-done transaction behind: the
        // Transaction's drop rolls it back. The connection itself stays usable.
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Run `f` in one write transaction (`BEGIN IMMEDIATE`, so it never fails half-way on a
    /// lock upgrade). Committed when `f` returns `Ok`, rolled back otherwise.
    pub fn transaction<T>(
        &self,
        f: impl FnOnce(&StoreTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(TransactionBehavior::Immediate, f)
    }

    /// Run `f` on one consistent snapshot (a deferred read transaction).
    pub(crate) fn read<T>(
        &self,
        f: impl FnOnce(&StoreTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        self.with(TransactionBehavior::Deferred, f)
    }

    fn with<T>(
        &self,
        behavior: TransactionBehavior,
        f: impl FnOnce(&StoreTx<'_>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let mut conn = self.conn();
        let tx = conn
            .transaction_with_behavior(behavior)
            .map_err(|e| self.sqlite(e))?;
        let out = f(&StoreTx {
            conn: &tx,
            path: &self.path,
        })?;
        tx.commit().map_err(|e| self.sqlite(e))?;
        Ok(out)
    }

    fn sqlite(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.clone(),
            source,
        }
    }

    pub fn create_runner(&self, new: &NewRunner) -> Result<RunnerRecord, StoreError> {
        self.transaction(|tx| tx.create_runner(new))
    }

    pub fn update_runner(
        &self,
        id: &RunnerId,
        update: &RunnerUpdate,
    ) -> Result<RunnerRecord, StoreError> {
        self.transaction(|tx| tx.update_runner(id, update))
    }

    pub fn runner(&self, id: &RunnerId) -> Result<Option<RunnerRecord>, StoreError> {
        self.read(|tx| tx.runner(id))
    }

    pub fn runners(&self, filter: &RunnerFilter) -> Result<Vec<RunnerRecord>, StoreError> {
        self.read(|tx| tx.runners(filter))
    }

    pub fn latest_runner_for_spec(
        &self,
        project: &Path,
        spec: &str,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        self.read(|tx| tx.latest_runner_for_spec(project, spec))
    }

    pub fn start_attempt(&self, new: &NewAttempt) -> Result<i64, StoreError> {
        self.transaction(|tx| tx.start_attempt(new))
    }

    pub fn finish_attempt(&self, id: i64, end: &AttemptEnd) -> Result<(), StoreError> {
        self.transaction(|tx| tx.finish_attempt(id, end))
    }

    pub fn set_attempt_delay(&self, id: i64, ms: u64) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_attempt_delay(id, ms))
    }

    pub fn attempt(&self, id: i64) -> Result<Option<AttemptRecord>, StoreError> {
        self.read(|tx| tx.attempt(id))
    }

    pub fn attempts(&self, filter: &AttemptFilter) -> Result<Vec<AttemptRecord>, StoreError> {
        self.read(|tx| tx.attempts(filter))
    }

    pub fn set_wait(
        &self,
        project: &Path,
        spec: &str,
        until: Timestamp,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.transaction(|tx| tx.set_wait(project, spec, until, reason))
    }

    pub fn wait_for(
        &self,
        project: &Path,
        spec: &str,
    ) -> Result<Option<(Timestamp, String)>, StoreError> {
        self.read(|tx| tx.wait_for(project, spec))
    }

    pub fn clear_wait(&self, project: &Path, spec: &str) -> Result<(), StoreError> {
        self.transaction(|tx| tx.clear_wait(project, spec))
    }

    /// The spend of every run of a spec together, as `spec_budget_usd` counts it: kept when old
    /// runners are pruned.
    pub fn spec_spend(
        &self,
        project: &Path,
        spec: &str,
    ) -> Result<crate::cost::Totals, StoreError> {
        self.read(|tx| spend::spec_spend(tx.conn, project, spec).map_err(|e| tx.err(e)))
    }

    /// Tokens and cost of attempts started since `since`, grouped; see [`SpendGroup`].
    pub fn spend(
        &self,
        since: Option<Timestamp>,
        group: SpendGroup,
    ) -> Result<SpendReport, StoreError> {
        self.read(|tx| spend::spend(tx.conn, since, group).map_err(|e| tx.err(e)))
    }

    /// Everything `swr metrics` exports, from one snapshot.
    pub fn metrics(&self) -> Result<MetricsSnapshot, StoreError> {
        self.read(|tx| spend::metrics(tx.conn).map_err(|e| tx.err(e)))
    }

    pub fn ticks(&self, filter: &TickFilter) -> Result<Vec<TickRecord>, StoreError> {
        self.read(|tx| tx.ticks(filter))
    }

    /// See [`RetryStats`] for the exact semantics.
    pub fn retry_stats(&self, since: Option<Timestamp>) -> Result<RetryStats, StoreError> {
        self.read(|tx| stats::retry_stats(tx.conn, since).map_err(|e| tx.err(e)))
    }

    /// Delete finished runners (and their attempts) that ended before `older_than`, waits
    /// that expired before it, and done queue entries and settled webhook deliveries older than it. Active runners are never pruned. Returns the runners deleted.
    pub fn prune(&self, older_than: Timestamp) -> Result<usize, StoreError> {
        self.transaction(|tx| {
            let cutoff = older_than.as_millisecond();
            let n = tx
                .conn
                .execute(
                    "DELETE FROM runners WHERE status NOT IN ('queued', 'running', 'waiting')
                     AND COALESCE(ended_at, updated_at) < ?1",
                    [cutoff],
                )
                .map_err(|e| tx.err(e))?;
            tx.conn
                .execute("DELETE FROM waits WHERE until < ?1", [cutoff])
                .map_err(|e| tx.err(e))?;
            tx.conn
                .execute(
                    "DELETE FROM webhook_deliveries WHERE state != 'pending' AND created_at < ?1",
                    [cutoff],
                )
                .map_err(|e| tx.err(e))?;
            tx.conn
                .execute(
                    "DELETE FROM queue WHERE state = 'done' AND updated_at < ?1",
                    [cutoff],
                )
                .map_err(|e| tx.err(e))?;
            Ok(n)
        })
    }

    /// After a crash of `swr`: mark as `Crashed` every `Running`/`Waiting` runner whose owner
    /// is gone, and return those records (status already updated, `agent` kept) so the caller
    /// can kill their recorded agent process groups after checking the agent's start time.
    ///
    /// A runner is alive, and left alone, when its spec lock is held by it (same runner id or
    /// pid) or when its pid is still the process that started it (same start time, same boot).
    /// Without a recorded start time, an existing pid counts as alive: never mark a live
    /// runner crashed. The status change is conditional on the record still being active, so a
    /// runner that finished meanwhile keeps its own final status.
    ///
    /// A runner that left an exit note in its lock file ([`SpecLock::record_exit`]: it failed
    /// because the store itself could not be written) is marked `Failed` with that reason
    /// instead: it ended on purpose, it did not die.
    pub fn reconcile(&self, lock_dir: &Path) -> Result<Vec<RunnerRecord>, StoreError> {
        let dead = self.dead_runners(lock_dir)?;
        if dead.is_empty() {
            return Ok(dead);
        }
        self.transaction(|tx| {
            let now = now_ms();
            let mut marked = Vec::new();
            for r in dead {
                let note = SpecLock::exit_note(lock_dir, &r.project, &r.spec, &r.runner_id);
                let (status, reason, attempt_error) = match &note {
                    Some(note) => (
                        RunnerStatus::Failed,
                        format!("swr error: {note}"),
                        format!("swr exited during this attempt: {note}"),
                    ),
                    None => (
                        RunnerStatus::Crashed,
                        format!("runner process died (pid {})", r.pid),
                        "swr died during this attempt; its outcome is unknown".to_string(),
                    ),
                };
                let n = tx
                    .conn
                    .execute(
                        "UPDATE runners SET status = ?4, reason = ?2, updated_at = ?3,
                         ended_at = COALESCE(ended_at, ?3)
                         WHERE runner_id = ?1 AND status IN ('queued', 'running', 'waiting')",
                        rusqlite::params![
                            r.runner_id.as_str(),
                            reason,
                            now.as_millisecond(),
                            status.as_str()
                        ],
                    )
                    .map_err(|e| tx.err(e))?;
                // The attempt it was supervising ends with it (its agent is killed right after
                // this): left open, it would show as "running" in the history forever.
                tx.conn
                    .execute(
                        "UPDATE attempts SET ended_at = ?2, error = COALESCE(error, ?3)
                         WHERE runner_id = ?1 AND ended_at IS NULL",
                        rusqlite::params![
                            r.runner_id.as_str(),
                            now.as_millisecond(),
                            attempt_error
                        ],
                    )
                    .map_err(|e| tx.err(e))?;
                if n == 1
                    && let Some(rec) = tx.runner(&r.runner_id)?
                {
                    marked.push(rec);
                }
            }
            Ok(marked)
        })
    }
}

impl Store {
    /// The `Running`/`Waiting` runners whose process is gone, as [`Store::reconcile`] judges
    /// them, without changing anything: read-only observers show them as crashed.
    pub fn dead_runners(&self, lock_dir: &Path) -> Result<Vec<RunnerRecord>, StoreError> {
        let candidates = self.runners(&RunnerFilter {
            active_only: true,
            ..RunnerFilter::default()
        })?;
        Ok(candidates
            .into_iter()
            .filter(|r| !runner_alive(r, lock_dir))
            .collect())
    }

    /// A live runner of (`project`, `spec`) other than this process: an active record whose
    /// pid is still the very process that registered it (same start time, same boot). Asked
    /// before a run starts, so that a runner whose lock file was deleted under it still
    /// counts.
    pub fn live_runner(
        &self,
        lock_dir: &Path,
        project: &Path,
        spec: &str,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        let me = std::process::id();
        Ok(self
            .runners(&RunnerFilter {
                active_only: true,
                project: Some(project.to_path_buf()),
                spec: Some(spec.to_string()),
            })?
            .into_iter()
            .find(|r| r.pid != me && runner_alive(r, lock_dir)))
    }
}

/// `path` for an SQLite `file:` URI: every byte but unreserved ones and `/` percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()) {
        if b.is_ascii_alphanumeric() || matches!(b, b'/' | b'.' | b'_' | b'~' | b'-') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The one answer to "is this runner's `swr run` process alive?", for reconciliation, `swr
/// stop`, `swr status` and the TUI alike. Alive when its spec lock is held by it (same runner id
/// or pid); otherwise when its pid is still the process that registered, on this boot (see
/// [`procinfo::process_alive`]). Only meaningful for active records.
pub fn runner_alive(r: &RunnerRecord, lock_dir: &Path) -> bool {
    if let Some(h) = SpecLock::is_held(lock_dir, &r.project, &r.spec)
        && (h.runner_id.as_ref() == Some(&r.runner_id) || h.pid == Some(r.pid))
    {
        return true;
    }
    if let (Some(recorded), Some(current)) = (r.boot_id.as_deref(), procinfo::boot_id())
        && recorded != current
    {
        return false;
    }
    procinfo::process_alive(r.pid, r.pid_start_time)
}

fn set_wal(conn: &Connection) -> rusqlite::Result<()> {
    // Switching to WAL needs a moment of exclusive access; when several processes open a
    // fresh store together one of them may see SQLITE_BUSY despite the busy timeout. Once the
    // file is in WAL mode the setting persists and this is a no-op.
    let mut tries = 0;
    loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get::<_, String>(0)) {
            Ok(_) => return Ok(()),
            Err(e) if tries < 50 && is_busy(&e) => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(e),
        }
    }
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let err = |source| StoreError::Sqlite {
        path: path.to_path_buf(),
        source,
    };
    let version = |c: &Connection| c.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0));
    let too_new = |found| StoreError::TooNew {
        path: path.to_path_buf(),
        found,
        supported: SCHEMA_VERSION,
    };
    let v = version(conn).map_err(err)?;
    if v == SCHEMA_VERSION {
        return Ok(());
    }
    if v > SCHEMA_VERSION {
        return Err(too_new(v));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(err)?;
    // Re-read under the write lock: another process may have migrated meanwhile.
    let v = version(&tx).map_err(err)?;
    if v > SCHEMA_VERSION {
        return Err(too_new(v));
    }
    let start = usize::try_from(v).unwrap_or(0);
    for sql in schema::MIGRATIONS.iter().skip(start) {
        tx.execute_batch(sql).map_err(err)?;
    }
    tx.pragma_update(None, "user_version", SCHEMA_VERSION)
        .map_err(err)?;
    tx.commit().map_err(err)
}

/// The operations of the store inside one transaction (see [`Store::transaction`]).
pub struct StoreTx<'a> {
    conn: &'a Connection,
    path: &'a Path,
}

const RUNNER_COLS: &str = "runner_id, project, spec, provider, model, status, reason, pid,
    pid_start_time, boot_id, iteration, retry_count, max_retries, next_attempt_at, tasks_total,
    tasks_done, tasks_in_progress, tasks_pending, tasks_blocked, started_at, updated_at, ended_at,
    agent_pid, agent_pgid, agent_start_time, agent_marker, last_outcome, last_commit, cost_usd,
    log_path, worktree, cost_estimated_usd, input_tokens, cached_tokens, output_tokens";

const ATTEMPT_COLS: &str = "id, runner_id, project, spec, iteration, attempt, started_at,
    ended_at, exit_code, signal, outcome, error, delay_before_next_ms, log_path, session_id,
    cost_usd, ticked, committed, resumed_session, note, warning, cost_estimated, input_tokens,
    cached_tokens, output_tokens, model";

impl StoreTx<'_> {
    fn err(&self, source: rusqlite::Error) -> StoreError {
        StoreError::Sqlite {
            path: self.path.to_path_buf(),
            source,
        }
    }

    pub fn create_runner(&self, new: &NewRunner) -> Result<RunnerRecord, StoreError> {
        let now = now_ms();
        let t = &new.tasks;
        let values = [
            text(new.runner_id.as_str()),
            path_value(&new.project),
            text(&new.spec),
            text(&new.provider),
            opt(new.model.as_deref(), text),
            text(types::RunnerStatus::Running.as_str()),
            int(new.pid),
            opt(new.pid_start_time, int),
            opt(new.boot_id.as_deref(), text),
            int(new.max_retries),
            int(t.total),
            int(t.done),
            int(t.in_progress),
            int(t.pending),
            int(t.blocked),
            ts_value(now),
            opt(new.worktree.as_deref(), path_value),
        ];
        self.conn
            .execute(
                "INSERT INTO runners (runner_id, project, spec, provider, model, status, pid,
                 pid_start_time, boot_id, max_retries, tasks_total, tasks_done,
                 tasks_in_progress, tasks_pending, tasks_blocked, started_at, updated_at, worktree)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?16,
                 ?17)",
                params_from_iter(values),
            )
            .map_err(|e| self.err(e))?;
        self.runner(&new.runner_id)?
            .ok_or_else(|| self.not_found(&new.runner_id))
    }

    fn not_found(&self, id: &RunnerId) -> StoreError {
        StoreError::RunnerNotFound {
            path: self.path.to_path_buf(),
            runner_id: id.clone(),
        }
    }

    /// Apply a patch; see [`RunnerUpdate`]. Returns the record as it is now.
    pub fn update_runner(
        &self,
        id: &RunnerId,
        u: &RunnerUpdate,
    ) -> Result<RunnerRecord, StoreError> {
        let now = now_ms();
        let mut sets: Vec<(&str, Value)> = Vec::new();
        let mut set = |col, v| sets.push((col, v));
        if let Some(s) = u.status {
            set("status", text(s.as_str()));
        }
        if let Some(v) = &u.reason {
            set("reason", opt(v.as_deref(), text));
        }
        if let Some(v) = &u.model {
            set("model", opt(v.as_deref(), text));
        }
        if let Some(v) = u.pid {
            set("pid", int(v));
        }
        if let Some(v) = u.pid_start_time {
            set("pid_start_time", opt(v, int));
        }
        if let Some(v) = &u.boot_id {
            set("boot_id", opt(v.as_deref(), text));
        }
        if let Some(v) = u.iteration {
            set("iteration", int(v));
        }
        if let Some(v) = u.retry_count {
            set("retry_count", int(v));
        }
        if let Some(v) = u.max_retries {
            set("max_retries", int(v));
        }
        if let Some(v) = u.next_attempt_at {
            set("next_attempt_at", opt(v.map(trunc_ms), ts_value));
        }
        if let Some(t) = &u.tasks {
            set("tasks_total", int(t.total));
            set("tasks_done", int(t.done));
            set("tasks_in_progress", int(t.in_progress));
            set("tasks_pending", int(t.pending));
            set("tasks_blocked", int(t.blocked));
        }
        match u.ended_at {
            Some(v) => set("ended_at", opt(v.map(trunc_ms), ts_value)),
            None if u.status.is_some_and(|s| !s.is_active()) => {
                // COALESCE below keeps an existing end time.
                set("ended_at", ts_value(now));
            }
            None => {}
        }
        if let Some(a) = &u.agent {
            let a = a.as_ref();
            set("agent_pid", opt(a.map(|a| a.pid), int));
            set("agent_pgid", opt(a.map(|a| a.pgid), int));
            set("agent_start_time", opt(a.and_then(|a| a.start_time), int));
            set(
                "agent_marker",
                opt(a.and_then(|a| a.marker.as_deref()), text),
            );
        }
        if let Some(v) = u.last_outcome {
            set("last_outcome", opt(v, |o| text(o.as_str())));
        }
        if let Some(v) = &u.last_commit {
            set("last_commit", opt(v.as_deref(), text));
        }
        if let Some(v) = u.cost_usd {
            set("cost_usd", opt(v, Value::Real));
        }
        if let Some(t) = &u.spend {
            let priced = t.priced > 0;
            let metered = t.metered > 0;
            set("cost_usd", opt(priced.then_some(t.cost_usd), Value::Real));
            set(
                "cost_estimated_usd",
                opt(priced.then_some(t.estimated_usd), Value::Real),
            );
            set("input_tokens", opt(metered.then_some(t.input_tokens), int));
            set(
                "cached_tokens",
                opt(metered.then_some(t.cached_tokens), int),
            );
            set(
                "output_tokens",
                opt(metered.then_some(t.output_tokens), int),
            );
        }
        if let Some(v) = &u.log_path {
            set("log_path", opt(v.as_deref(), path_value));
        }
        set("updated_at", ts_value(now));

        let implicit_end = u.ended_at.is_none();
        let mut sql = String::from("UPDATE runners SET ");
        let mut values = Vec::with_capacity(sets.len() + 1);
        for (i, (col, v)) in sets.into_iter().enumerate() {
            if i > 0 {
                sql.push_str(", ");
            }
            let n = i + 1;
            if col == "ended_at" && implicit_end {
                sql.push_str(&format!("ended_at = COALESCE(ended_at, ?{n})"));
            } else {
                sql.push_str(&format!("{col} = ?{n}"));
            }
            values.push(v);
        }
        sql.push_str(&format!(" WHERE runner_id = ?{}", values.len() + 1));
        values.push(text(id.as_str()));
        let n = self
            .conn
            .execute(&sql, params_from_iter(values))
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(self.not_found(id));
        }
        self.runner(id)?.ok_or_else(|| self.not_found(id))
    }

    pub fn runner(&self, id: &RunnerId) -> Result<Option<RunnerRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {RUNNER_COLS} FROM runners WHERE runner_id = ?1"),
                [id.as_str()],
                runner_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Newest first (by start time, then id).
    pub fn runners(&self, f: &RunnerFilter) -> Result<Vec<RunnerRecord>, StoreError> {
        let mut sql = format!("SELECT {RUNNER_COLS} FROM runners WHERE 1 = 1");
        let mut values = Vec::new();
        if f.active_only {
            sql.push_str(" AND status IN ('queued', 'running', 'waiting')");
        }
        if let Some(p) = &f.project {
            values.push(path_value(p));
            sql.push_str(&format!(" AND project = ?{}", values.len()));
        }
        if let Some(s) = &f.spec {
            values.push(text(s));
            sql.push_str(&format!(" AND spec = ?{}", values.len()));
        }
        sql.push_str(" ORDER BY started_at DESC, runner_id DESC");
        self.query(&sql, values, runner_from_row)
    }

    pub fn latest_runner_for_spec(
        &self,
        project: &Path,
        spec: &str,
    ) -> Result<Option<RunnerRecord>, StoreError> {
        Ok(self
            .runners(&RunnerFilter {
                active_only: false,
                project: Some(project.to_path_buf()),
                spec: Some(spec.to_string()),
            })?
            .into_iter()
            .next())
    }

    fn query<T>(
        &self,
        sql: &str,
        values: Vec<Value>,
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> Result<Vec<T>, StoreError> {
        let mut stmt = self.conn.prepare(sql).map_err(|e| self.err(e))?;
        let rows = stmt
            .query_map(params_from_iter(values), map)
            .map_err(|e| self.err(e))?;
        rows.collect::<Result<Vec<_>, _>>().map_err(|e| self.err(e))
    }

    /// Record the start of an attempt; project and spec come from the runner. Returns its id.
    pub fn start_attempt(&self, new: &NewAttempt) -> Result<i64, StoreError> {
        let n = self
            .conn
            .execute(
                "INSERT INTO attempts (runner_id, project, spec, iteration, attempt, started_at,
                 log_path, resumed_session)
                 SELECT runner_id, project, spec, ?2, ?3, ?4, ?5, ?6 FROM runners
                 WHERE runner_id = ?1",
                params_from_iter([
                    text(new.runner_id.as_str()),
                    int(new.iteration),
                    int(new.attempt),
                    ts_value(trunc_ms(new.started_at)),
                    path_value(&new.log_path),
                    opt(new.resumed_session.as_deref(), text),
                ]),
            )
            .map_err(|e| self.err(e))?;
        if n == 0 {
            return Err(self.not_found(&new.runner_id));
        }
        Ok(self.conn.last_insert_rowid())
    }

    /// Writes the attempt's end; the first time, its tokens and cost also go to its spec's
    /// running total (see [`Store::spec_spend`]).
    pub fn finish_attempt(&self, id: i64, end: &AttemptEnd) -> Result<(), StoreError> {
        let first: Option<(bool, SqlPath, String)> = self
            .conn
            .query_row(
                "SELECT ended_at IS NULL, project, spec FROM attempts WHERE id = ?1",
                [id],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .optional()
            .map_err(|e| self.err(e))?;
        let tokens = end.tokens;
        let tok = |f: fn(&crate::provider::TokenUsage) -> Option<u64>| {
            opt(tokens.as_ref().and_then(f), int)
        };
        let n = self
            .conn
            .execute(
                "UPDATE attempts SET ended_at = ?2, exit_code = ?3, signal = ?4, outcome = ?5,
                 error = ?6, session_id = COALESCE(?7, session_id), cost_usd = ?8, ticked = ?9,
                 committed = ?10, delay_before_next_ms = COALESCE(?11, delay_before_next_ms),
                 note = ?12, warning = ?13, cost_estimated = ?14, input_tokens = ?15,
                 cached_tokens = ?16, output_tokens = ?17, model = ?18 WHERE id = ?1",
                params_from_iter([
                    Value::Integer(id),
                    ts_value(trunc_ms(end.ended_at)),
                    opt(end.exit_code, int),
                    opt(end.signal.as_deref(), text),
                    text(end.outcome.as_str()),
                    opt(end.error.as_deref(), text),
                    opt(end.session_id.as_deref(), text),
                    opt(end.cost_usd, Value::Real),
                    opt(end.ticked, int),
                    opt(end.committed, |b| Value::Integer(i64::from(b))),
                    opt(end.delay_before_next_ms, int),
                    opt(end.note.as_deref(), text),
                    opt(end.warning.as_deref(), text),
                    opt(end.cost_usd.map(|_| end.cost_estimated), |b| {
                        Value::Integer(i64::from(b))
                    }),
                    tok(|t| t.input),
                    tok(|t| t.cached_input),
                    tok(|t| t.output),
                    opt(end.model.as_deref(), text),
                ]),
            )
            .map_err(|e| self.err(e))?;
        self.expect_attempt(n, id)?;
        if let Some((true, project, spec)) = first {
            let mut t = crate::cost::Totals::default();
            t.add(&crate::cost::Usage {
                tokens,
                cost_usd: end.cost_usd,
                estimated: end.cost_estimated,
                model: None,
            });
            spend::add_spec_spend(self.conn, &project.0, &spec, &t, end.ended_at)
                .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records the tasks attempt `id` ticked, with their evidence.
    pub fn add_ticks(&self, id: i64, ticks: &[NewTick]) -> Result<(), StoreError> {
        let at = now_ms();
        for t in ticks {
            let c = t.check.as_ref();
            let n = self
                .conn
                .execute(
                    "INSERT INTO ticks (attempt_id, project, spec, task_id, title, at, head, empty,
                     accepted, verify_command, verify_source, verify_exit_code, verify_signal,
                     verify_timed_out, verify_duration_ms, verify_output, verify_log)
                     SELECT id, project, spec, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,
                     ?14, ?15 FROM attempts WHERE id = ?1",
                    params_from_iter([
                        Value::Integer(id),
                        text(&t.task_id),
                        opt(t.title.as_deref(), text),
                        ts_value(at),
                        opt(t.head.as_deref(), text),
                        opt(t.empty, |b| Value::Integer(i64::from(b))),
                        Value::Integer(i64::from(t.accepted)),
                        opt(c, |c| {
                            text(&serde_json::to_string(&c.command).unwrap_or_default())
                        }),
                        opt(c, |c| text(&c.source)),
                        opt(c.and_then(|c| c.exit_code), int),
                        opt(c.and_then(|c| c.signal.as_deref()), text),
                        opt(c, |c| Value::Integer(i64::from(c.timed_out))),
                        opt(c, |c| int(c.duration_ms)),
                        opt(c, |c| text(&c.output_tail)),
                        opt(c.and_then(|c| c.log_path.as_deref()), path_value),
                    ]),
                )
                .map_err(|e| self.err(e))?;
            self.expect_attempt(n, id)?;
        }
        Ok(())
    }

    /// Oldest first.
    pub fn ticks(&self, f: &TickFilter) -> Result<Vec<TickRecord>, StoreError> {
        let mut sql = String::from(
            "SELECT t.*, a.runner_id, a.iteration, a.attempt FROM ticks t
             JOIN attempts a ON a.id = t.attempt_id WHERE 1 = 1",
        );
        let mut values = Vec::new();
        if let Some(p) = &f.project {
            values.push(path_value(p));
            sql.push_str(&format!(" AND t.project = ?{}", values.len()));
        }
        if let Some(s) = &f.spec {
            values.push(text(s));
            sql.push_str(&format!(" AND t.spec = ?{}", values.len()));
        }
        if let Some(r) = &f.runner {
            values.push(text(r.as_str()));
            sql.push_str(&format!(" AND a.runner_id = ?{}", values.len()));
        }
        sql.push_str(" ORDER BY t.at, t.id");
        self.query(&sql, values, tick_from_row)
    }

    /// Record the delay scheduled after attempt `id` (a retry backoff or a rate-limit wait).
    pub fn set_attempt_delay(&self, id: i64, ms: u64) -> Result<(), StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE attempts SET delay_before_next_ms = ?2 WHERE id = ?1",
                params_from_iter([Value::Integer(id), int(ms)]),
            )
            .map_err(|e| self.err(e))?;
        self.expect_attempt(n, id)
    }

    fn expect_attempt(&self, changed: usize, id: i64) -> Result<(), StoreError> {
        if changed == 0 {
            return Err(StoreError::AttemptNotFound {
                path: self.path.to_path_buf(),
                id,
            });
        }
        Ok(())
    }

    pub fn attempt(&self, id: i64) -> Result<Option<AttemptRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE id = ?1"),
                [id],
                attempt_from_row,
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    /// Oldest first (by start time, then id).
    pub fn attempts(&self, f: &AttemptFilter) -> Result<Vec<AttemptRecord>, StoreError> {
        let mut sql = format!("SELECT {ATTEMPT_COLS} FROM attempts WHERE 1 = 1");
        let mut values = Vec::new();
        if let Some(r) = &f.runner {
            values.push(text(r.as_str()));
            sql.push_str(&format!(" AND runner_id = ?{}", values.len()));
        }
        if let Some(p) = &f.project {
            values.push(path_value(p));
            sql.push_str(&format!(" AND project = ?{}", values.len()));
        }
        if let Some(s) = &f.spec {
            values.push(text(s));
            sql.push_str(&format!(" AND spec = ?{}", values.len()));
        }
        if let Some(t) = f.since {
            values.push(ts_value(t));
            sql.push_str(&format!(" AND started_at >= ?{}", values.len()));
        }
        sql.push_str(" ORDER BY started_at, id");
        self.query(&sql, values, attempt_from_row)
    }

    /// Persist a rate-limit wait for a spec (replacing any earlier one), so that a stopped
    /// runner's successor waits too.
    pub fn set_wait(
        &self,
        project: &Path,
        spec: &str,
        until: Timestamp,
        reason: &str,
    ) -> Result<(), StoreError> {
        self.conn
            .execute(
                "INSERT INTO waits (project, spec, until, reason, set_at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (project, spec) DO UPDATE SET until = excluded.until,
                 reason = excluded.reason, set_at = excluded.set_at",
                params_from_iter([
                    path_value(project),
                    text(spec),
                    ts_value(trunc_ms(until)),
                    text(reason),
                    ts_value(now_ms()),
                ]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The persisted wait of a spec, even if it has passed (the caller compares with now).
    pub fn wait_for(
        &self,
        project: &Path,
        spec: &str,
    ) -> Result<Option<(Timestamp, String)>, StoreError> {
        self.conn
            .query_row(
                "SELECT until, reason FROM waits WHERE project = ?1 AND spec = ?2",
                params_from_iter([path_value(project), text(spec)]),
                |r| Ok((r.get::<_, Ms>(0)?.0, r.get::<_, String>(1)?)),
            )
            .optional()
            .map_err(|e| self.err(e))
    }

    pub fn clear_wait(&self, project: &Path, spec: &str) -> Result<(), StoreError> {
        self.conn
            .execute(
                "DELETE FROM waits WHERE project = ?1 AND spec = ?2",
                params_from_iter([path_value(project), text(spec)]),
            )
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}

fn runner_from_row(r: &Row<'_>) -> rusqlite::Result<RunnerRecord> {
    let agent = match r.get::<_, Option<u32>>("agent_pid")? {
        Some(pid) => Some(AgentProcess {
            pid,
            pgid: r.get::<_, Option<u32>>("agent_pgid")?.unwrap_or(pid),
            start_time: r.get("agent_start_time")?,
            marker: r.get("agent_marker")?,
        }),
        None => None,
    };
    Ok(RunnerRecord {
        runner_id: r.get("runner_id")?,
        project: r.get::<_, SqlPath>("project")?.0,
        spec: r.get("spec")?,
        provider: r.get("provider")?,
        model: r.get("model")?,
        status: r.get("status")?,
        reason: r.get("reason")?,
        pid: r.get("pid")?,
        pid_start_time: r.get("pid_start_time")?,
        boot_id: r.get("boot_id")?,
        iteration: r.get("iteration")?,
        retry_count: r.get("retry_count")?,
        max_retries: r.get("max_retries")?,
        next_attempt_at: r.get::<_, Option<Ms>>("next_attempt_at")?.map(|m| m.0),
        tasks: TaskCounts {
            total: r.get("tasks_total")?,
            done: r.get("tasks_done")?,
            in_progress: r.get("tasks_in_progress")?,
            pending: r.get("tasks_pending")?,
            blocked: r.get("tasks_blocked")?,
        },
        started_at: r.get::<_, Ms>("started_at")?.0,
        updated_at: r.get::<_, Ms>("updated_at")?.0,
        ended_at: r.get::<_, Option<Ms>>("ended_at")?.map(|m| m.0),
        agent,
        last_outcome: r.get("last_outcome")?,
        last_commit: r.get("last_commit")?,
        cost_usd: r.get("cost_usd")?,
        cost_estimated_usd: r.get("cost_estimated_usd")?,
        input_tokens: r.get("input_tokens")?,
        cached_tokens: r.get("cached_tokens")?,
        output_tokens: r.get("output_tokens")?,
        log_path: r.get::<_, Option<SqlPath>>("log_path")?.map(|p| p.0),
        worktree: r.get::<_, Option<SqlPath>>("worktree")?.map(|p| p.0),
    })
}

fn attempt_from_row(r: &Row<'_>) -> rusqlite::Result<AttemptRecord> {
    Ok(AttemptRecord {
        id: r.get("id")?,
        runner_id: r.get("runner_id")?,
        project: r.get::<_, SqlPath>("project")?.0,
        spec: r.get("spec")?,
        iteration: r.get("iteration")?,
        attempt: r.get("attempt")?,
        started_at: r.get::<_, Ms>("started_at")?.0,
        ended_at: r.get::<_, Option<Ms>>("ended_at")?.map(|m| m.0),
        exit_code: r.get("exit_code")?,
        signal: r.get("signal")?,
        outcome: r.get("outcome")?,
        error: r.get("error")?,
        delay_before_next_ms: r.get("delay_before_next_ms")?,
        log_path: r.get::<_, SqlPath>("log_path")?.0,
        session_id: r.get("session_id")?,
        cost_usd: r.get("cost_usd")?,
        cost_estimated: r.get("cost_estimated")?,
        input_tokens: r.get("input_tokens")?,
        cached_tokens: r.get("cached_tokens")?,
        output_tokens: r.get("output_tokens")?,
        model: r.get("model")?,
        ticked: r.get("ticked")?,
        committed: r.get("committed")?,
        resumed_session: r.get("resumed_session")?,
        note: r.get("note")?,
        warning: r.get("warning")?,
    })
}

fn tick_from_row(r: &Row<'_>) -> rusqlite::Result<TickRecord> {
    let command: Option<String> = r.get("verify_command")?;
    let check = match command {
        Some(c) => Some(Check {
            command: serde_json::from_str(&c).unwrap_or_else(|_| vec![c.clone()]),
            source: r
                .get::<_, Option<String>>("verify_source")?
                .unwrap_or_default(),
            exit_code: r.get("verify_exit_code")?,
            signal: r.get("verify_signal")?,
            timed_out: r
                .get::<_, Option<bool>>("verify_timed_out")?
                .unwrap_or(false),
            duration_ms: r.get::<_, Option<u64>>("verify_duration_ms")?.unwrap_or(0),
            output_tail: r
                .get::<_, Option<String>>("verify_output")?
                .unwrap_or_default(),
            log_path: r.get::<_, Option<SqlPath>>("verify_log")?.map(|p| p.0),
        }),
        None => None,
    };
    Ok(TickRecord {
        id: r.get("id")?,
        attempt_id: r.get("attempt_id")?,
        runner_id: r.get("runner_id")?,
        project: r.get::<_, SqlPath>("project")?.0,
        spec: r.get("spec")?,
        iteration: r.get("iteration")?,
        attempt: r.get("attempt")?,
        at: r.get::<_, Ms>("at")?.0,
        tick: NewTick {
            task_id: r.get("task_id")?,
            title: r.get("title")?,
            head: r.get("head")?,
            empty: r.get("empty")?,
            accepted: r.get("accepted")?,
            check,
        },
    })
}
