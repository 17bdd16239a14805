//! Discovery of projects and specs. A parallel directory walk over `repos_root` that reads
//! each directory once, never stats regular files, never follows symlinked directories and
//! never descends into hidden or ignored directories. Unreadable directories are skipped.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{SpecError, TaskList, read_tasks};

/// Where specs live inside a project. Defaults are the Python tool's.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Layout {
    /// `.spec-workflow`
    pub spec_workflow_dir_name: String,
    /// `specs`
    pub specs_subdir: String,
    /// `tasks.md`
    pub tasks_filename: String,
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            spec_workflow_dir_name: ".spec-workflow".to_string(),
            specs_subdir: "specs".to_string(),
            tasks_filename: "tasks.md".to_string(),
        }
    }
}

impl Layout {
    /// `<project>/<spec_workflow_dir_name>/<specs_subdir>`
    pub fn specs_dir(&self, project: &Path) -> PathBuf {
        project
            .join(&self.spec_workflow_dir_name)
            .join(&self.specs_subdir)
    }
}

/// One spec: a subdirectory of a project's specs dir. Its tasks file may not exist.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecRef {
    /// Name of the project directory.
    pub project: String,
    /// Name of the spec directory.
    pub name: String,
    pub dir: PathBuf,
    pub tasks_path: PathBuf,
}

impl SpecRef {
    /// Reads this spec's tasks file; a missing file is `Err(SpecError::NotFound)`.
    pub fn read_tasks(&self) -> Result<TaskList, SpecError> {
        read_tasks(&self.tasks_path)
    }
}

/// A directory holding `<spec_workflow_dir_name>/<specs_subdir>/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    /// Directory name.
    pub name: String,
    pub path: PathBuf,
    /// Sorted by name.
    pub specs: Vec<SpecRef>,
}

fn dir_name(path: &Path) -> String {
    match path.file_name() {
        Some(n) => n.to_string_lossy().into_owned(),
        None => path.display().to_string(),
    }
}

/// Lists the specs of one project directory. Errors when it has no specs dir, naming the
/// path that was expected.
pub fn project_at(dir: &Path, layout: &Layout) -> Result<Project, SpecError> {
    let specs_dir = layout.specs_dir(dir);
    if !specs_dir.is_dir() {
        return Err(SpecError::NoSpecsDir {
            project: dir.to_path_buf(),
            expected: specs_dir,
        });
    }
    load_project(dir, &specs_dir, layout).map_err(|e| SpecError::io(&specs_dir, e))
}

fn load_project(dir: &Path, specs_dir: &Path, layout: &Layout) -> std::io::Result<Project> {
    let project = dir_name(dir);
    let mut specs = Vec::new();
    for entry in fs::read_dir(specs_dir)? {
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        if name.as_encoded_bytes().starts_with(b".") {
            continue;
        }
        // A symlinked spec dir is followed: it cannot loop, we never walk inside it.
        let is_dir = match entry.file_type() {
            Ok(t) if t.is_dir() => true,
            Ok(t) if t.is_symlink() => entry.path().is_dir(),
            _ => false,
        };
        if !is_dir {
            continue;
        }
        let dir = entry.path();
        specs.push(SpecRef {
            project: project.clone(),
            name: name.to_string_lossy().into_owned(),
            tasks_path: dir.join(&layout.tasks_filename),
            dir,
        });
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Project {
        name: project,
        path: dir.to_path_buf(),
        specs,
    })
}

/// Finds every project under `root` (root included), sorted by path. Hidden directories,
/// directories named in `ignore_dirs` and symlinked directories are not entered; projects
/// are entered (nested projects exist) but not their spec-workflow dir.
pub fn discover_projects(
    root: &Path,
    layout: &Layout,
    ignore_dirs: &[String],
) -> Result<Vec<Project>, SpecError> {
    let meta = fs::metadata(root).map_err(|e| SpecError::io(root, e))?;
    if !meta.is_dir() {
        return Err(SpecError::NotADirectory {
            path: root.to_path_buf(),
        });
    }
    let walk = Walk {
        layout,
        swd_name: layout.spec_workflow_dir_name.as_bytes(),
        ignore: ignore_dirs.iter().map(|s| s.as_bytes()).collect(),
        queue: Mutex::new(Queue {
            dirs: vec![root.to_path_buf()],
            active: 0,
            done: false,
        }),
        wake: Condvar::new(),
    };
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(2, 16);
    let mut projects: Vec<Project> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads).map(|_| s.spawn(|| walk.worker())).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    projects.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(projects)
}

struct Queue {
    dirs: Vec<PathBuf>,
    /// Directories being read right now: their children are not queued yet.
    active: usize,
    done: bool,
}

struct Walk<'a> {
    layout: &'a Layout,
    swd_name: &'a [u8],
    ignore: Vec<&'a [u8]>,
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Walk<'_> {
    fn worker(&self) -> Vec<Project> {
        let mut found = Vec::new();
        let mut children = Vec::new();
        // A worker keeps one child for itself (depth first, no lock) and shares the rest.
        let mut next: Option<PathBuf> = None;
        loop {
            let dir = match next.take() {
                Some(d) => d,
                None => match self.take() {
                    Some(d) => d,
                    None => return found,
                },
            };
            if self.scan(&dir, &mut children) {
                let specs_dir = self.layout.specs_dir(&dir);
                if specs_dir.is_dir() {
                    match load_project(&dir, &specs_dir, self.layout) {
                        Ok(p) => found.push(p),
                        Err(e) => {
                            tracing::debug!(path = %specs_dir.display(), error = %e, "skipping unreadable specs dir")
                        }
                    }
                }
            }
            next = children.pop();
            if next.is_none() {
                self.finish_one();
            } else if !children.is_empty() {
                self.share(&mut children);
            }
        }
    }

    /// Reads one directory: queues its subdirectories into `children`, returns whether it
    /// holds an entry named like the spec-workflow dir.
    fn scan(&self, dir: &Path, children: &mut Vec<PathBuf>) -> bool {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(path = %dir.display(), error = %e, "skipping unreadable dir");
                return false;
            }
        };
        let mut has_swd = false;
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let name = name.as_encoded_bytes();
            if name == self.swd_name {
                has_swd = true;
                continue;
            }
            if name.starts_with(b".") || self.ignore.contains(&name) {
                continue;
            }
            // d_type from readdir: no stat per entry; symlinks are not dirs here.
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                children.push(entry.path());
            }
        }
        has_swd
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn take(&self) -> Option<PathBuf> {
        let mut q = self.lock();
        loop {
            if let Some(d) = q.dirs.pop() {
                q.active += 1;
                return Some(d);
            }
            if q.done || q.active == 0 {
                q.done = true;
                self.wake.notify_all();
                return None;
            }
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn share(&self, children: &mut Vec<PathBuf>) {
        let n = children.len();
        self.lock().dirs.append(children);
        if n == 1 {
            self.wake.notify_one();
        } else {
            self.wake.notify_all();
        }
    }

    fn finish_one(&self) {
        let mut q = self.lock();
        q.active -= 1;
        if q.active == 0 && q.dirs.is_empty() {
            q.done = true;
            self.wake.notify_all();
        }
    }
}
