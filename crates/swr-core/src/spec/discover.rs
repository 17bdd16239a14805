//! Discovery of projects and specs. A parallel directory walk over `repos_root` that reads
//! each directory once (on Linux with `openat` relative to the parent and raw `getdents64`),
//! never stats regular files, never follows symlinked directories and
//! never descends into hidden or ignored directories. Unreadable directories are skipped.

#[cfg(target_os = "linux")]
use std::ffi::CString;
use std::fs;
#[cfg(target_os = "linux")]
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
#[cfg(target_os = "linux")]
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{SpecError, TaskList, TaskSummary, read_summary, read_tasks};

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

    /// Reads only the counts, checklists and warnings of this spec's tasks file.
    pub fn read_summary(&self) -> Result<TaskSummary, SpecError> {
        read_summary(&self.tasks_path)
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
        waiting: AtomicUsize::new(0),
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

/// Directories waiting to be read by any worker.
struct Queue {
    dirs: Vec<PathBuf>,
    /// Workers holding directories of their own: until they finish, more may come.
    active: usize,
    done: bool,
}

/// A directory to read. On Linux a child is opened relative to its parent's open fd, which
/// saves the kernel a full path lookup per directory.
struct Item {
    path: PathBuf,
    #[cfg(target_os = "linux")]
    at: Option<(Arc<OwnedFd>, CString)>,
}

impl Item {
    fn shared(path: PathBuf) -> Item {
        Item {
            path,
            #[cfg(target_os = "linux")]
            at: None,
        }
    }
}

struct Walk<'a> {
    layout: &'a Layout,
    swd_name: &'a [u8],
    ignore: Vec<&'a [u8]>,
    queue: Mutex<Queue>,
    wake: Condvar,
    /// Workers waiting for work: a busy worker shares part of its own stack when non-zero.
    waiting: AtomicUsize,
}

/// Buffer for one `getdents64` call; 32 KiB holds ~1000 entries.
#[cfg(target_os = "linux")]
const DIRENT_BUF: usize = 32 * 1024;

impl Walk<'_> {
    fn worker(&self) -> Vec<Project> {
        let mut found = Vec::new();
        // Depth-first on a private stack; no lock is taken while a worker has work.
        let mut local: Vec<Item> = Vec::new();
        let mut was_active = false;
        #[cfg(target_os = "linux")]
        let mut buf = vec![std::mem::MaybeUninit::<u8>::uninit(); DIRENT_BUF];
        loop {
            let item = match local.pop() {
                Some(item) => item,
                None => match self.take(&mut was_active) {
                    Some(path) => Item::shared(path),
                    None => return found,
                },
            };
            #[cfg(target_os = "linux")]
            let has_swd = self.scan_linux(&item, &mut local, &mut buf);
            #[cfg(not(target_os = "linux"))]
            let has_swd = self.scan_std(&item, &mut local);
            if has_swd {
                let specs_dir = self.layout.specs_dir(&item.path);
                if specs_dir.is_dir() {
                    match load_project(&item.path, &specs_dir, self.layout) {
                        Ok(p) => found.push(p),
                        Err(e) => {
                            tracing::debug!(path = %specs_dir.display(), error = %e, "skipping unreadable specs dir")
                        }
                    }
                }
            }
            if local.len() > 1 && self.waiting.load(Ordering::Relaxed) > 0 {
                // Give away the oldest half: the shallowest dirs, likely the biggest subtrees.
                let n = local.len() / 2;
                let shared: Vec<PathBuf> = local.drain(..n).map(|i| i.path).collect();
                self.lock().dirs.extend(shared);
                self.wake.notify_all();
            }
        }
    }

    /// Whether a directory entry is to be walked into.
    fn enter(&self, name: &[u8]) -> bool {
        !(name.starts_with(b".") || name == self.swd_name || self.ignore.contains(&name))
    }

    /// Reads one directory with `openat` + `getdents64` (no `fstat`, no per-entry stat
    /// unless the file system gives no `d_type`). Queues subdirectories on `local`; returns
    /// whether the directory holds an entry named like the spec-workflow dir.
    #[cfg(target_os = "linux")]
    fn scan_linux(
        &self,
        item: &Item,
        local: &mut Vec<Item>,
        buf: &mut [std::mem::MaybeUninit<u8>],
    ) -> bool {
        use rustix::fs::{AtFlags, FileType, Mode, OFlags, RawDir, openat, statat};
        use std::os::unix::ffi::OsStrExt;

        let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
        let opened = match &item.at {
            // readdir said "directory", so NOFOLLOW only guards against a swap since then.
            Some((parent, name)) => openat(
                parent,
                name.as_c_str(),
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            ),
            // By path: the root may itself be a symlink (`~/repos -> /data/repos`).
            None => openat(rustix::fs::CWD, item.path.as_path(), flags, Mode::empty()),
        };
        let fd = match opened {
            Ok(fd) => Arc::new(fd),
            Err(e) => {
                tracing::debug!(path = %item.path.display(), error = %e, "skipping unreadable dir");
                return false;
            }
        };
        let mut has_swd = false;
        let mut dir = RawDir::new(&*fd, buf);
        while let Some(entry) = dir.next() {
            let entry = match entry {
                Ok(e) => e,
                Err(e) => {
                    tracing::debug!(path = %item.path.display(), error = %e, "error reading dir");
                    break;
                }
            };
            let name = entry.file_name();
            let bytes = name.to_bytes();
            if bytes == self.swd_name {
                has_swd = true;
            }
            if !self.enter(bytes) {
                continue;
            }
            let is_dir = match entry.file_type() {
                FileType::Directory => true,
                FileType::Unknown => statat(&*fd, name, AtFlags::SYMLINK_NOFOLLOW)
                    .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Directory),
                _ => false,
            };
            if is_dir {
                local.push(Item {
                    path: item.path.join(std::ffi::OsStr::from_bytes(bytes)),
                    at: Some((Arc::clone(&fd), name.to_owned())),
                });
            }
        }
        has_swd
    }

    #[cfg(not(target_os = "linux"))]
    fn scan_std(&self, item: &Item, local: &mut Vec<Item>) -> bool {
        let entries = match fs::read_dir(&item.path) {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!(path = %item.path.display(), error = %e, "skipping unreadable dir");
                return false;
            }
        };
        let mut has_swd = false;
        for entry in entries {
            let Ok(entry) = entry else { continue };
            let name = entry.file_name();
            let bytes = name.as_encoded_bytes();
            if bytes == self.swd_name {
                has_swd = true;
            }
            // d_type from readdir where available; symlinks are not dirs here.
            if self.enter(bytes) && entry.file_type().is_ok_and(|t| t.is_dir()) {
                local.push(Item::shared(entry.path()));
            }
        }
        has_swd
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Next shared directory; `None` once every worker is out of work.
    fn take(&self, was_active: &mut bool) -> Option<PathBuf> {
        let mut q = self.lock();
        if std::mem::take(was_active) {
            q.active -= 1;
        }
        loop {
            if let Some(d) = q.dirs.pop() {
                q.active += 1;
                *was_active = true;
                return Some(d);
            }
            if q.done || q.active == 0 {
                q.done = true;
                self.wake.notify_all();
                return None;
            }
            self.waiting.fetch_add(1, Ordering::Relaxed);
            q = self.wake.wait(q).unwrap_or_else(PoisonError::into_inner);
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
