//! The retry log of the Python tool (`<retry_log_dir>/<runner_id>.json`), kept so existing
//! scripts and dashboards that read it keep working. The store is the source of truth; this
//! file is a view of one runner, rewritten whole and atomically after each attempt.

use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::Serialize;

use super::types::{AttemptRecord, RunnerRecord, format_ts};

/// The file's top-level object, field names as the Python tool wrote them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryLog {
    pub runner_id: String,
    pub spec_name: String,
    pub project: String,
    pub max_retries: u32,
    pub retry_count: u32,
    pub attempts: Vec<RetryLogAttempt>,
    /// The runner's status (`running`, `failed`, ...).
    pub final_status: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RetryLogAttempt {
    /// The attempt's number within its iteration (1 = first try).
    pub attempt_number: u32,
    pub iteration: u32,
    /// When the attempt started, RFC 3339.
    pub timestamp: String,
    pub exit_code: Option<i32>,
    pub signal: Option<String>,
    pub outcome: Option<String>,
    pub error_message: Option<String>,
    /// The delay scheduled after this attempt, in seconds.
    pub backoff_seconds: Option<f64>,
    pub log_path: String,
}

impl RetryLog {
    pub fn new(runner: &RunnerRecord, attempts: &[AttemptRecord]) -> RetryLog {
        RetryLog {
            runner_id: runner.runner_id.to_string(),
            spec_name: runner.spec.clone(),
            project: runner.project.to_string_lossy().into_owned(),
            max_retries: runner.max_retries,
            retry_count: runner.retry_count,
            attempts: attempts
                .iter()
                .map(|a| RetryLogAttempt {
                    attempt_number: a.attempt,
                    iteration: a.iteration,
                    timestamp: format_ts(a.started_at),
                    exit_code: a.exit_code,
                    signal: a.signal.clone(),
                    outcome: a.outcome.map(|o| o.as_str().to_string()),
                    error_message: a.error.clone(),
                    backoff_seconds: a.delay_before_next_ms.map(|ms| ms as f64 / 1000.0),
                    log_path: a.log_path.to_string_lossy().into_owned(),
                })
                .collect(),
            final_status: runner.status.as_str().to_string(),
        }
    }
}

/// Write `<dir>/<runner_id>.json` atomically: a temp file in `dir`, fsync, rename over the
/// target, fsync the directory. A reader sees the old file or the new one, never half of one.
/// `dir` is created (mode 0700) if missing. Returns the path written.
pub fn write_retry_log(
    dir: &Path,
    runner: &RunnerRecord,
    attempts: &[AttemptRecord],
) -> std::io::Result<PathBuf> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let target = dir.join(format!("{}.json", runner.runner_id));
    let tmp = dir.join(format!(
        ".{}.json.tmp-{}",
        runner.runner_id,
        std::process::id()
    ));
    let json = serde_json::to_vec_pretty(&RetryLog::new(runner, attempts))
        .map_err(std::io::Error::other)?;
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&json)?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        std::fs::rename(&tmp, &target)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.map(|()| target)
}
