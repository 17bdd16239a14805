//! Atomic edits of tasks.md: swr changes one task's status marker and nothing else. The new
//! content goes to a temp file in the same directory, is fsynced, then renamed over the
//! original, so a reader (or a crash) sees either the old file or the new one.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use super::parse::{StatusSite, parse_with_sites, status_box, status_word};
use super::{SpecError, TaskStatus};

/// Sets the status of the first task with this id. For a checkbox task only the mark
/// character changes; for a heading task the `**Status**:` value is rewritten (only its mark
/// when the value is a checkbox), or a status line inserted after the heading. Line endings, BOM and every other byte are
/// kept. Writing the status a task already has leaves the file untouched.
pub fn set_task_status(path: &Path, id: &str, status: TaskStatus) -> Result<(), SpecError> {
    let bytes = crate::bounded_read::read_regular(path, crate::bounded_read::MAX_FILE_BYTES)
        .map_err(|e| SpecError::io(path, e))?;
    let text = String::from_utf8(bytes).map_err(|_| SpecError::NotUtf8 {
        path: path.to_path_buf(),
    })?;
    let parsed = parse_with_sites(&text);
    let idx = parsed
        .list
        .tasks
        .iter()
        .position(|t| t.id == id)
        .ok_or_else(|| SpecError::TaskNotFound {
            path: path.to_path_buf(),
            id: id.to_string(),
        })?;
    match rewrite(&text, parsed.sites[idx], status) {
        Some(new_text) => write_atomic(path, new_text.as_bytes()),
        None => Ok(()),
    }
}

/// The Python tool's words, as written on a `**Status**:` line.
fn heading_word(status: TaskStatus) -> &'static str {
    match status {
        TaskStatus::Pending => "pending",
        TaskStatus::InProgress => "in progress",
        TaskStatus::Done => "completed",
        TaskStatus::Blocked => "blocked",
    }
}

/// The new text, or `None` when the task already has this status.
fn rewrite(text: &str, site: StatusSite, status: TaskStatus) -> Option<String> {
    let (range, replacement) = match site {
        StatusSite::Checkbox { offset } => {
            let current = text.get(offset..)?.chars().next()?;
            if TaskStatus::from_mark(current) == Some(status) {
                return None;
            }
            (
                offset..offset + current.len_utf8(),
                status.mark().to_string(),
            )
        }
        StatusSite::HeadingValue { start, end } => {
            let value = text.get(start..end)?;
            if status_word(value) == Some(status) {
                return None;
            }
            if status_box(value).is_some() {
                // `**Status:** [ ]` stays a checkbox: only its mark changes.
                (start + 1..start + 2, status.mark().to_string())
            } else {
                (start..end, heading_word(status).to_string())
            }
        }
        StatusSite::HeadingMissing { insert_at } => {
            if status == TaskStatus::Pending {
                return None;
            }
            let eol = line_ending(text);
            let before = &text[..insert_at];
            let lead = if before.ends_with(['\n', '\r']) {
                ""
            } else {
                eol
            };
            (
                insert_at..insert_at,
                format!("{lead}**Status**: {}{eol}", heading_word(status)),
            )
        }
    };
    let mut out = String::with_capacity(text.len() + replacement.len());
    out.push_str(text.get(..range.start)?);
    out.push_str(&replacement);
    out.push_str(text.get(range.end..)?);
    Some(out)
}

/// The file's own line ending (the first one found), so inserted lines match it.
fn line_ending(text: &str) -> &'static str {
    match text.find(['\n', '\r']) {
        Some(i) if text[i..].starts_with("\r\n") => "\r\n",
        Some(i) if text[i..].starts_with('\r') => "\r",
        _ => "\n",
    }
}

/// Replaces tasks.md with `data` atomically (temp file, fsync, rename), keeping its mode and
/// writing through a symlink.
pub fn write_tasks(path: &Path, data: &[u8]) -> Result<(), SpecError> {
    write_atomic(path, data)
}

fn write_atomic(path: &Path, data: &[u8]) -> Result<(), SpecError> {
    // Write through a symlinked tasks.md instead of replacing the link with a file.
    let target: PathBuf = match fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => {
            fs::canonicalize(path).map_err(|e| SpecError::io(path, e))?
        }
        _ => path.to_path_buf(),
    };
    let dir = match target.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".{name}.swr-{}-{:08x}.tmp",
        std::process::id(),
        rand::random::<u32>()
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .map_err(|e| SpecError::io(&tmp, e))?;
        if let Ok(meta) = fs::metadata(&target) {
            // Keep the original mode (e.g. group-writable files stay so).
            let _ = f.set_permissions(meta.permissions());
        }
        f.write_all(data).map_err(|e| SpecError::io(&tmp, e))?;
        f.sync_all().map_err(|e| SpecError::io(&tmp, e))?;
        drop(f);
        fs::rename(&tmp, &target).map_err(|e| SpecError::io(&target, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename itself durable; failure here loses nothing already visible.
    if let Ok(d) = fs::File::open(&dir) {
        let _ = d.sync_all();
    }
    Ok(())
}
