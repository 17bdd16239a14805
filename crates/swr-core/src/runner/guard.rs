//! The tasks.md guard: the user's task list survives an agent killed while rewriting it.
//!
//! The runner reads tasks.md through a [`TasksGuard`], which keeps the last healthy content
//! (the copy taken before each attempt). When a later read finds the file missing, empty,
//! unreadable or with fewer task ids than that copy (typically an agent killed mid-write),
//! the guard puts the copy back, keeps the damaged file for the user to look at, re-applies
//! the ticks that HEAD has committed meanwhile, and says what it did. It never decides
//! anything about the run: the caller records the warning and goes on.

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use crate::spec::{self, SpecError, TaskList, TaskStatus};

/// What was wrong with tasks.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Damage {
    Missing,
    Empty,
    Unreadable(String),
    LostTasks { before: usize, after: usize },
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Damage::Missing => f.write_str("missing"),
            Damage::Empty => f.write_str("empty"),
            Damage::Unreadable(e) => write!(f, "unreadable ({e})"),
            Damage::LostTasks { before, after } => {
                write!(f, "missing tasks ({after} task ids left of {before})")
            }
        }
    }
}

/// Distinct task ids: a file that lost some has fewer, however its tasks changed state.
fn id_count(list: &TaskList) -> usize {
    list.tasks
        .iter()
        .map(|t| t.id.as_str())
        .collect::<HashSet<_>>()
        .len()
}

/// Judges one read of tasks.md against the number of task ids the healthy copy had. Pure.
pub fn assess(
    read: std::io::Result<Vec<u8>>,
    healthy_ids: usize,
) -> Result<(Vec<u8>, TaskList), Damage> {
    let bytes = match read {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Damage::Missing),
        Err(e) => return Err(Damage::Unreadable(e.to_string())),
    };
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(Damage::Empty);
    }
    let list = spec::parse_bytes(&bytes);
    let after = id_count(&list);
    if after < healthy_ids {
        return Err(Damage::LostTasks {
            before: healthy_ids,
            after,
        });
    }
    Ok((bytes, list))
}

/// A repaired tasks.md and what was done to it.
#[derive(Debug, Clone)]
pub struct Repair {
    pub damage: Damage,
    /// Where the damaged file was kept (none when it was missing or could not be copied).
    pub kept: Option<PathBuf>,
    /// Ticks taken back from HEAD's tasks.md.
    pub ticks_from_head: usize,
}

impl Repair {
    pub fn describe(&self, path: &Path) -> String {
        let mut s = format!(
            "{} was {}: restored the copy taken before the attempt",
            path.display(),
            self.damage
        );
        if self.ticks_from_head > 0 {
            s.push_str(&format!(
                ", with {} tick(s) committed in HEAD",
                self.ticks_from_head
            ));
        }
        if let Some(k) = &self.kept {
            s.push_str(&format!("; the damaged file is kept at {}", k.display()));
        }
        s
    }
}

/// Reads tasks.md, keeping the last healthy content to restore.
#[derive(Debug)]
pub struct TasksGuard {
    path: PathBuf,
    healthy: Option<(Vec<u8>, usize)>,
}

impl TasksGuard {
    pub fn new(path: &Path) -> TasksGuard {
        TasksGuard {
            path: path.to_path_buf(),
            healthy: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Reads tasks.md; a readable file becomes the copy to restore. Without a healthy copy yet
    /// (the run's first read) a missing or unreadable file is an error for the caller.
    pub fn read(&mut self) -> Result<TaskList, SpecError> {
        let bytes = spec::read_bytes(&self.path)?;
        let list = spec::parse_bytes(&bytes);
        self.healthy = Some((bytes, id_count(&list)));
        Ok(list)
    }

    /// Reads tasks.md after something may have damaged it. A damaged file is restored (see the
    /// module docs): `keep_as` is where the damaged content goes, `head` gives HEAD's tasks.md.
    pub fn check(
        &mut self,
        keep_as: &Path,
        head: impl FnOnce() -> Option<Vec<u8>>,
    ) -> Result<(TaskList, Option<Repair>), SpecError> {
        let Some((good, good_ids)) = self.healthy.take() else {
            return self.read().map(|l| (l, None));
        };
        let read = spec::read_bytes(&self.path).map_err(|e| match e {
            SpecError::NotFound { .. } => std::io::Error::from(std::io::ErrorKind::NotFound),
            other => std::io::Error::other(other.to_string()),
        });
        let damaged_bytes = read.as_ref().ok().cloned();
        match assess(read, good_ids) {
            Ok((bytes, list)) => {
                let ids = id_count(&list);
                self.healthy = Some((bytes, ids));
                Ok((list, None))
            }
            Err(damage) => {
                let kept = damaged_bytes.filter(|b| !b.is_empty()).and_then(|b| {
                    std::fs::write(keep_as, b)
                        .ok()
                        .map(|()| keep_as.to_path_buf())
                });
                spec::write_tasks(&self.path, &good)?;
                let restored = spec::parse_bytes(&good);
                let mut ticks_from_head = 0;
                if let Some(head_list) = head().map(|b| spec::parse_bytes(&b)) {
                    for t in head_list
                        .tasks
                        .iter()
                        .filter(|t| t.status == TaskStatus::Done)
                    {
                        let behind = restored
                            .task(&t.id)
                            .is_some_and(|r| r.status != TaskStatus::Done);
                        if behind
                            && spec::set_task_status(&self.path, &t.id, TaskStatus::Done).is_ok()
                        {
                            ticks_from_head += 1;
                        }
                    }
                }
                let list = self.read()?;
                Ok((
                    list,
                    Some(Repair {
                        damage,
                        kept,
                        ticks_from_head,
                    }),
                ))
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const TASKS: &str = "# Tasks\n\n- [x] 1. One\n- [ ] 2. Two\n- [ ] 3. Three\n";

    #[test]
    fn assess_names_each_kind_of_damage() {
        let nf = std::io::Error::from(std::io::ErrorKind::NotFound);
        assert_eq!(assess(Err(nf), 3).unwrap_err(), Damage::Missing);
        assert_eq!(
            assess(Ok(b"  \n\n".to_vec()), 3).unwrap_err(),
            Damage::Empty
        );
        assert_eq!(assess(Ok(Vec::new()), 3).unwrap_err(), Damage::Empty);
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        assert!(matches!(assess(Err(denied), 3), Err(Damage::Unreadable(_))));
        let cut = b"# Tasks\n\n- [x] 1. One\n- [ ] 2. T".to_vec();
        assert_eq!(
            assess(Ok(cut), 3).unwrap_err(),
            Damage::LostTasks {
                before: 3,
                after: 2
            }
        );
        let (_, list) = assess(Ok(TASKS.as_bytes().to_vec()), 3).unwrap();
        assert_eq!(list.counts().total, 3);
        // More tasks than before is the agent adding work, not damage.
        assert!(assess(Ok(format!("{TASKS}- [ ] 4. Four\n").into_bytes()), 3).is_ok());
    }

    #[test]
    fn a_truncated_file_is_restored_with_the_ticks_head_committed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.md");
        std::fs::write(&path, TASKS).unwrap();
        let mut g = TasksGuard::new(&path);
        assert_eq!(g.read().unwrap().counts().done, 1);
        std::fs::write(&path, "# Tasks\n\n- [x] 1. One\n- [x] 2. T").unwrap();
        let keep = dir.path().join("attempt.log.tasks-damaged.md");
        let head = "# Tasks\n\n- [x] 1. One\n- [x] 2. Two\n- [ ] 3. Three\n";
        let (list, repair) = g.check(&keep, || Some(head.as_bytes().to_vec())).unwrap();
        let repair = repair.unwrap();
        assert_eq!(repair.ticks_from_head, 1);
        assert_eq!(repair.kept.as_deref(), Some(keep.as_path()));
        assert_eq!(list.counts().total, 3);
        assert_eq!(list.counts().done, 2);
        assert!(
            std::fs::read_to_string(&keep)
                .unwrap()
                .ends_with("- [x] 2. T")
        );
        assert!(repair.describe(&path).contains("restored"));
        // The restored file is the new healthy copy: a healthy read repairs nothing.
        assert!(g.check(&keep, || None).unwrap().1.is_none());
    }

    #[test]
    fn a_deleted_file_comes_back_and_an_empty_one_too() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.md");
        std::fs::write(&path, TASKS).unwrap();
        let mut g = TasksGuard::new(&path);
        g.read().unwrap();
        std::fs::remove_file(&path).unwrap();
        let keep = dir.path().join("keep.md");
        let (list, repair) = g.check(&keep, || None).unwrap();
        assert_eq!(repair.unwrap().damage, Damage::Missing);
        assert_eq!(list.counts().total, 3);
        assert!(!keep.exists(), "nothing to keep of a missing file");
        std::fs::write(&path, "").unwrap();
        let (list, repair) = g.check(&keep, || None).unwrap();
        assert_eq!(repair.unwrap().damage, Damage::Empty);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), TASKS);
        assert_eq!(list.counts().pending, 2);
    }

    #[test]
    fn ticks_and_new_tasks_are_not_damage() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tasks.md");
        std::fs::write(&path, TASKS).unwrap();
        let mut g = TasksGuard::new(&path);
        g.read().unwrap();
        let edited = "# Tasks\n\n- [x] 1. One\n- [x] 2. Two\n- [-] 3. Three\n- [ ] 4. New\n";
        std::fs::write(&path, edited).unwrap();
        let (list, repair) = g.check(&dir.path().join("k"), || None).unwrap();
        assert!(repair.is_none());
        assert_eq!(list.counts().total, 4);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), edited);
    }
}
