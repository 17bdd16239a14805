//! Specs and tasks.md: discovery of projects and specs under `repos_root`, the tasks.md parser
//! and atomic checkbox edits. Pure data and file reading; it never runs an agent and never
//! caches: discovery is fast enough to run on every call.
//!
//! - [`parse`] turns tasks.md text into a [`TaskList`] (tasks, checklists that are not tasks,
//!   warnings with line numbers). It never fails and never panics: odd input gives warnings,
//!   not errors. [`summarize`] reads the same way but only counts, for listings.
//! - [`discover_projects`] / [`project_at`] find projects (directories holding
//!   `<spec_workflow_dir_name>/<specs_subdir>/`) and their specs.
//! - [`set_task_status`] rewrites one task's status marker in place, atomically.

mod discover;
mod edit;
mod parse;

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub use discover::{Layout, Project, SpecRef, discover_projects, project_at};
pub use edit::{set_task_status, write_tasks};
pub use parse::{parse, summarize};

/// How many tasks of a spec are in each state. Acceptance criteria, checklists and (from
/// [`TaskList::counts`]) optional tasks are not counted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct TaskCounts {
    pub total: usize,
    pub done: usize,
    pub in_progress: usize,
    pub pending: usize,
    pub blocked: usize,
}

impl TaskCounts {
    /// Tasks not done yet (pending, in progress or blocked).
    pub fn remaining(&self) -> usize {
        self.total.saturating_sub(self.done)
    }

    /// Every task is done. A spec with no task at all is not complete: it has nothing to run.
    pub fn is_complete(&self) -> bool {
        self.total > 0 && self.done == self.total
    }
}

/// State of one task, as written in tasks.md.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskStatus {
    /// `[ ]`
    Pending,
    /// `[-]`
    InProgress,
    /// `[x]` or `[X]`
    Done,
    /// `[~]`
    Blocked,
}

impl TaskStatus {
    /// The checkbox mark swr writes for this status (`x` for done, never `X`).
    pub fn mark(self) -> char {
        match self {
            TaskStatus::Pending => ' ',
            TaskStatus::InProgress => '-',
            TaskStatus::Done => 'x',
            TaskStatus::Blocked => '~',
        }
    }

    /// The status a checkbox mark stands for; `None` for marks the MCP server does not know.
    pub fn from_mark(mark: char) -> Option<TaskStatus> {
        match mark {
            ' ' => Some(TaskStatus::Pending),
            '-' => Some(TaskStatus::InProgress),
            'x' | 'X' => Some(TaskStatus::Done),
            '~' => Some(TaskStatus::Blocked),
            _ => None,
        }
    }

    /// snake_case name, as serialized.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskStatus::Pending => "pending",
            TaskStatus::InProgress => "in_progress",
            TaskStatus::Done => "done",
            TaskStatus::Blocked => "blocked",
        }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unnumbered checkbox that belongs to a task (nested under its checkbox, or beneath its
/// heading): part of that task, not a task of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Criterion {
    pub text: String,
    pub done: bool,
    /// 1-based line number in tasks.md.
    pub line: usize,
}

/// One task of a spec.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Task {
    /// The author's id as written (`1`, `1.2`, `3.13a`, `A1`, or the id of the sub-heading
    /// above); a positional id for unnumbered top-level checkboxes.
    pub id: String,
    pub title: String,
    pub status: TaskStatus,
    /// 1-based line number of the checkbox (or of the task's heading).
    pub line: usize,
    /// Kiro's `- [ ]* 2.3 …`: optional work. Not counted by [`TaskList::counts`], never
    /// blocking completion, and not sent to the agent unless `include_optional_tasks` is set.
    #[serde(default, skip_serializing_if = "is_false")]
    pub optional: bool,
    pub prompt: Option<String>,
    pub requirements: Option<String>,
    pub leverage: Option<String>,
    pub blocked_reason: Option<String>,
    pub files: Vec<String>,
    pub criteria: Vec<Criterion>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Unnumbered checkboxes in a section of their own ("Verification Checklist", "Phase 2
/// (Future)", …) of a file that has numbered tasks: listed, never counted as tasks and never
/// sent to the agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checklist {
    /// The heading of the section.
    pub title: String,
    /// 1-based line number of that heading.
    pub line: usize,
    pub items: Vec<ChecklistItem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistItem {
    pub text: String,
    pub status: TaskStatus,
    /// 1-based line number in tasks.md.
    pub line: usize,
}

impl Checklist {
    pub fn summary(&self) -> ChecklistSummary {
        ChecklistSummary {
            title: self.title.clone(),
            line: self.line,
            total: self.items.len(),
            done: self
                .items
                .iter()
                .filter(|i| i.status == TaskStatus::Done)
                .count(),
        }
    }
}

/// A checklist's own counts, as `swr specs --json` prints them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChecklistSummary {
    pub title: String,
    pub line: usize,
    pub total: usize,
    pub done: usize,
}

/// What listing a spec needs from its tasks.md, without the tasks themselves: see
/// [`summarize`]. Always equal to [`TaskList::summary`] of the same text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskSummary {
    /// Required tasks (as [`TaskList::counts`]).
    pub counts: TaskCounts,
    /// Optional tasks alone (as [`TaskList::optional_counts`]).
    pub optional: TaskCounts,
    pub checklists: Vec<ChecklistSummary>,
    pub warnings: Vec<ParseWarning>,
}

/// Something odd in tasks.md that the parser read past.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParseWarning {
    /// 1-based line number.
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ParseWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The parsed content of one tasks.md.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskList {
    pub tasks: Vec<Task>,
    pub warnings: Vec<ParseWarning>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checklists: Vec<Checklist>,
}

/// Most unfinished tasks listed by [`TaskList::progress_summary`]; the prompt stays short.
const SUMMARY_MAX_TASKS: usize = 30;

impl TaskSummary {
    /// [`TaskList::counts_with`] of the same text: the optional tasks folded into the
    /// counts when `include_optional` is set.
    pub fn counts_with(&self, include_optional: bool) -> TaskCounts {
        let (c, o) = (self.counts, self.optional);
        if !include_optional {
            return c;
        }
        TaskCounts {
            total: c.total + o.total,
            done: c.done + o.done,
            in_progress: c.in_progress + o.in_progress,
            pending: c.pending + o.pending,
            blocked: c.blocked + o.blocked,
        }
    }
}

impl TaskCounts {
    fn add(&mut self, status: TaskStatus) {
        self.total += 1;
        match status {
            TaskStatus::Pending => self.pending += 1,
            TaskStatus::InProgress => self.in_progress += 1,
            TaskStatus::Done => self.done += 1,
            TaskStatus::Blocked => self.blocked += 1,
        }
    }
}

impl TaskList {
    /// Counts of the required tasks: optional tasks are left out, so they never hold back
    /// [`TaskCounts::is_complete`]. Same as `counts_with(false)`.
    pub fn counts(&self) -> TaskCounts {
        self.counts_with(false)
    }

    /// Counts of the tasks the runner works through: the required ones, plus the optional
    /// ones when `include_optional` (the `include_optional_tasks` config key) is set.
    pub fn counts_with(&self, include_optional: bool) -> TaskCounts {
        let mut c = TaskCounts::default();
        for t in self
            .tasks
            .iter()
            .filter(|t| include_optional || !t.optional)
        {
            c.add(t.status);
        }
        c
    }

    /// Counts of the optional tasks alone.
    pub fn optional_counts(&self) -> TaskCounts {
        let mut c = TaskCounts::default();
        for t in self.tasks.iter().filter(|t| t.optional) {
            c.add(t.status);
        }
        c
    }

    /// The task an agent should work on: the first in progress, else the first pending.
    /// Blocked and optional tasks are never picked. Same as `next_task_with(false)`.
    pub fn next_task(&self) -> Option<&Task> {
        self.next_task_with(false)
    }

    /// [`TaskList::next_task`], with optional tasks taken like the others (in file order)
    /// when `include_optional` is set.
    pub fn next_task_with(&self, include_optional: bool) -> Option<&Task> {
        let eligible = |t: &&Task| include_optional || !t.optional;
        let first = |status: TaskStatus, under: Option<&str>| {
            self.tasks.iter().filter(eligible).find(|t| {
                t.status == status
                    && under.is_none_or(|p| {
                        t.id.len() > p.len() + 1
                            && t.id.starts_with(p)
                            && t.id.as_bytes()[p.len()] == b'.'
                    })
            })
        };
        let mut pick =
            first(TaskStatus::InProgress, None).or_else(|| first(TaskStatus::Pending, None))?;
        // A parent whose subtasks are not all done (Kiro's `2. Implement the models` above
        // `2.1`, `2.2`): the agent is sent to the first unfinished subtask, not the parent.
        while let Some(child) = first(TaskStatus::InProgress, Some(&pick.id))
            .or_else(|| first(TaskStatus::Pending, Some(&pick.id)))
        {
            pick = child;
        }
        Some(pick)
    }

    /// Looks a task up by id (the first one, if the file repeats an id).
    pub fn task(&self, id: &str) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }

    /// The counts, optional counts, checklists and warnings: what [`summarize`] gives for the
    /// same text.
    pub fn summary(&self) -> TaskSummary {
        TaskSummary {
            counts: self.counts(),
            optional: self.optional_counts(),
            checklists: self.checklists.iter().map(Checklist::summary).collect(),
            warnings: self.warnings.clone(),
        }
    }

    /// Human summary for the agent prompt: a counts line, then one line per unfinished task
    /// (at most 30, then "… and N more"). Optional tasks are left out. Same as
    /// `progress_summary_with(false)`.
    pub fn progress_summary(&self) -> String {
        self.progress_summary_with(false)
    }

    /// [`TaskList::progress_summary`], with optional tasks counted and listed like the
    /// others when `include_optional` is set.
    pub fn progress_summary_with(&self, include_optional: bool) -> String {
        let c = self.counts_with(include_optional);
        let mut out = format!(
            "{}/{} tasks done, {} in progress, {} pending, {} blocked",
            c.done, c.total, c.in_progress, c.pending, c.blocked
        );
        let mut unfinished = self
            .tasks
            .iter()
            .filter(|t| t.status != TaskStatus::Done && (include_optional || !t.optional));
        for t in unfinished.by_ref().take(SUMMARY_MAX_TASKS) {
            out.push_str(&format!("\n- [{}] {} {}", t.status.mark(), t.id, t.title));
            if let Some(reason) = &t.blocked_reason {
                out.push_str(&format!(" (blocked: {reason})"));
            }
        }
        let rest = unfinished.count();
        if rest > 0 {
            out.push_str(&format!("\n… and {rest} more"));
        }
        out
    }
}

/// Errors reading or editing specs. Every variant names the path involved.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("{path}: not found", path = path.display())]
    NotFound { path: PathBuf },
    #[error("{path}: {source}", path = path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a directory", path = path.display())]
    NotADirectory { path: PathBuf },
    #[error("{project}: no specs directory (expected {expected})", project = project.display(), expected = expected.display())]
    NoSpecsDir { project: PathBuf, expected: PathBuf },
    #[error("{path}: no task with id `{id}`", path = path.display())]
    TaskNotFound { path: PathBuf, id: String },
    #[error("{path}: not valid UTF-8, refusing to rewrite it", path = path.display())]
    NotUtf8 { path: PathBuf },
}

impl SpecError {
    /// Maps an IO error to `NotFound` when the file is missing, `Io` otherwise.
    pub(crate) fn io(path: &Path, source: std::io::Error) -> SpecError {
        if source.kind() == std::io::ErrorKind::NotFound {
            SpecError::NotFound {
                path: path.to_path_buf(),
            }
        } else {
            SpecError::Io {
                path: path.to_path_buf(),
                source,
            }
        }
    }
}

/// Reads and parses a tasks.md. A missing file is `Err(SpecError::NotFound)`: callers decide
/// whether that means "0 tasks". Invalid UTF-8 is read lossily, with a warning. Anything but a
/// regular file of at most [`crate::bounded_read::MAX_FILE_BYTES`] is an error at once (a FIFO
/// never blocks the caller).
pub fn read_tasks(path: &Path) -> Result<TaskList, SpecError> {
    Ok(parse_bytes(&read_bytes(path)?))
}

/// Reads a tasks.md as [`read_tasks`] does, but only counts: what listing specs needs, without
/// allocating anything per task (`swr specs`, the TUI's tree).
pub fn read_summary(path: &Path) -> Result<TaskSummary, SpecError> {
    Ok(summarize_bytes(&read_bytes(path)?))
}

/// The raw content of a tasks.md.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>, SpecError> {
    crate::bounded_read::read_regular(path, crate::bounded_read::MAX_FILE_BYTES)
        .map_err(|e| SpecError::io(path, e))
}

/// Parses tasks.md bytes; invalid UTF-8 is read lossily, with a warning.
pub fn parse_bytes(bytes: &[u8]) -> TaskList {
    read_lossy(bytes, parse, |l| &mut l.warnings)
}

/// [`summarize`] of tasks.md bytes; invalid UTF-8 is read lossily, with a warning.
pub fn summarize_bytes(bytes: &[u8]) -> TaskSummary {
    read_lossy(bytes, summarize, |s| &mut s.warnings)
}

fn read_lossy<T>(
    bytes: &[u8],
    read: fn(&str) -> T,
    warnings: fn(&mut T) -> &mut Vec<ParseWarning>,
) -> T {
    match std::str::from_utf8(bytes) {
        Ok(text) => read(text),
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let mut out = read(&text);
            warnings(&mut out).insert(
                0,
                ParseWarning {
                    line: 1,
                    message: "file is not valid UTF-8; invalid bytes were replaced".to_string(),
                },
            );
            out
        }
    }
}
