//! What the line pass records per possible task, for a full parse or for counting.

use std::borrow::Cow;

use super::lines::split_files;
use crate::spec::{Task, TaskStatus};

/// Metadata keys whose repeated lines are joined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Joined {
    Requirements,
    Leverage,
    Blocked,
}

/// What the line pass records for each checkbox or heading that may be a task: the [`Task`]
/// itself for [`parse`], so that the usual file needs no second copy; a few borrowed fields
/// for [`summarize`], so that counting allocates nothing per task. Metadata setters are
/// no-ops for the latter.
pub(super) trait Record<'a>: Sized {
    /// Whether the record keeps metadata: lets the line pass skip reading values that
    /// [`summarize`] would throw away.
    const FULL: bool;
    fn new(id: &'a str, title: &'a str, status: TaskStatus, line: usize, optional: bool) -> Self;
    fn id(&self) -> &str;
    fn status(&self) -> TaskStatus;
    fn set_status(&mut self, status: TaskStatus);
    fn line(&self) -> usize;
    fn set_prompt(&mut self, prompt: Cow<'a, str>);
    fn join(&mut self, key: Joined, value: &'a str);
    fn add_files(&mut self, value: &'a str);
}

impl<'a> Record<'a> for Task {
    const FULL: bool = true;
    #[inline(always)]
    fn new(id: &'a str, title: &'a str, status: TaskStatus, line: usize, optional: bool) -> Task {
        Task {
            id: id.to_string(),
            title: title.to_string(),
            status,
            line,
            optional,
            prompt: None,
            requirements: None,
            leverage: None,
            blocked_reason: None,
            files: Vec::new(),
            criteria: Vec::new(),
        }
    }

    fn id(&self) -> &str {
        &self.id
    }

    fn status(&self) -> TaskStatus {
        self.status
    }

    fn set_status(&mut self, status: TaskStatus) {
        self.status = status;
    }

    fn line(&self) -> usize {
        self.line
    }

    fn set_prompt(&mut self, prompt: Cow<'a, str>) {
        self.prompt = Some(prompt.into_owned());
    }

    /// Repeated `_Requirements:` (etc.) lines accumulate, comma separated.
    #[inline(always)]
    fn join(&mut self, key: Joined, value: &'a str) {
        let field = match key {
            Joined::Requirements => &mut self.requirements,
            Joined::Leverage => &mut self.leverage,
            Joined::Blocked => &mut self.blocked_reason,
        };
        match field {
            Some(existing) => {
                existing.push_str(", ");
                existing.push_str(value);
            }
            None => *field = Some(value.to_string()),
        }
    }

    fn add_files(&mut self, value: &'a str) {
        split_files(value, &mut self.files);
    }
}

/// The part of a task [`summarize`] needs.
pub(super) struct Counted<'a> {
    pub(super) id: &'a str,
    pub(super) line: usize,
    pub(super) status: TaskStatus,
    pub(super) optional: bool,
}

impl<'a> Record<'a> for Counted<'a> {
    const FULL: bool = false;
    fn new(id: &'a str, _: &'a str, status: TaskStatus, line: usize, optional: bool) -> Self {
        Counted {
            id,
            line,
            status,
            optional,
        }
    }

    fn id(&self) -> &str {
        self.id
    }

    fn status(&self) -> TaskStatus {
        self.status
    }

    fn set_status(&mut self, status: TaskStatus) {
        self.status = status;
    }

    fn line(&self) -> usize {
        self.line
    }

    fn set_prompt(&mut self, _: Cow<'a, str>) {}

    fn join(&mut self, _: Joined, _: &'a str) {}

    fn add_files(&mut self, _: &'a str) {}
}
