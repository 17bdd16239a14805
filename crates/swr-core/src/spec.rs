//! Specs and tasks.md: discovery of projects and specs under `repos_root`, the tasks.md parser
//! and atomic checkbox edits. Pure data and file reading; it never runs an agent.

use serde::Serialize;

/// How many tasks of a spec are in each state. Acceptance criteria are not counted.
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
