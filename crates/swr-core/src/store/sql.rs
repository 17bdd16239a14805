//! Conversions between store types and SQLite values.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, Value, ValueRef};

use super::types::{RunnerId, RunnerStatus};
use crate::outcome::Outcome;

/// A path as TEXT when it is valid UTF-8 (readable with the sqlite3 shell), else as the raw
/// bytes in a BLOB. The same path always maps to the same value, so equality filters work.
pub(crate) fn path_value(p: &Path) -> Value {
    match p.to_str() {
        Some(s) => Value::Text(s.to_string()),
        None => Value::Blob(p.as_os_str().as_bytes().to_vec()),
    }
}

pub(crate) fn ts_value(t: Timestamp) -> Value {
    Value::Integer(t.as_millisecond())
}

pub(crate) fn int<T: TryInto<i64>>(v: T) -> Value {
    Value::Integer(v.try_into().unwrap_or(i64::MAX))
}

pub(crate) fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

pub(crate) fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> Value) -> Value {
    v.map_or(Value::Null, f)
}

/// The store keeps milliseconds; truncating on the way in makes round trips exact.
pub(crate) fn trunc_ms(t: Timestamp) -> Timestamp {
    Timestamp::from_millisecond(t.as_millisecond()).unwrap_or(t)
}

pub(crate) fn now_ms() -> Timestamp {
    trunc_ms(Timestamp::now())
}

/// A timestamp column (ms since the epoch).
pub(crate) struct Ms(pub Timestamp);

impl FromSql for Ms {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        let ms = i64::column_result(v)?;
        Timestamp::from_millisecond(ms)
            .map(Ms)
            .map_err(|e| FromSqlError::Other(Box::new(e)))
    }
}

pub(crate) struct SqlPath(pub PathBuf);

impl FromSql for SqlPath {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        match v {
            ValueRef::Text(b) | ValueRef::Blob(b) => {
                Ok(SqlPath(PathBuf::from(OsStr::from_bytes(b))))
            }
            _ => Err(FromSqlError::InvalidType),
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("unknown {what} {value:?}")]
struct UnknownName {
    what: &'static str,
    value: String,
}

fn named<T>(
    v: ValueRef<'_>,
    what: &'static str,
    parse: impl Fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let s = v.as_str()?;
    parse(s).ok_or_else(|| {
        FromSqlError::Other(Box::new(UnknownName {
            what,
            value: s.to_string(),
        }))
    })
}

impl FromSql for RunnerStatus {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        named(v, "runner status", RunnerStatus::parse)
    }
}

impl FromSql for Outcome {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        named(v, "outcome", Outcome::parse)
    }
}

impl FromSql for RunnerId {
    fn column_result(v: ValueRef<'_>) -> FromSqlResult<Self> {
        named(v, "runner id", |s| s.parse().ok())
    }
}
