//! The spec lock: at most one live runner per (project, spec), and a liveness signal that
//! observers can trust more than a pid. The kernel releases a `flock` when its holder dies,
//! even by SIGKILL, so "the lock is free" means "nobody is running this spec".
//!
//! Lock files are never deleted: removing one while another process has it open would let two
//! processes hold locks on two different inodes of the same name.

use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::types::RunnerId;
use crate::procinfo;

/// Who holds a spec lock, as written in the lock file by its holder. Fields are `None` when
/// the file could not be read or parsed (e.g. read while the holder was writing it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pid: Option<u32>,
    pub start_time: Option<u64>,
    pub runner_id: Option<RunnerId>,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("spec is locked by {} (lock file {path})", describe(.holder_pid, .runner_id))]
    Held {
        holder_pid: Option<u32>,
        runner_id: Option<RunnerId>,
        path: PathBuf,
    },
    #[error("cannot use lock file {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn describe(pid: &Option<u32>, id: &Option<RunnerId>) -> String {
    match (pid, id) {
        (Some(p), Some(id)) => format!("runner {id} (pid {p})"),
        (Some(p), None) => format!("pid {p}"),
        (None, Some(id)) => format!("runner {id}"),
        (None, None) => "another process".to_string(),
    }
}

/// An exclusive lock on one (project, spec), held until dropped or the process dies.
#[derive(Debug)]
pub struct SpecLock {
    path: PathBuf,
    _lock: Flock<File>,
}

/// How long `acquire` keeps trying when the lock is busy but its recorded holder is dead:
/// observers hold it for microseconds (see [`SpecLock::is_held`]), so this is generous.
const BUSY_RETRY_FOR: Duration = Duration::from_millis(500);

impl SpecLock {
    /// Take the lock for (`project`, `spec`) without blocking and write `pid start_time
    /// runner_id` into it. `Err(LockError::Held)` names the holder when another live process
    /// has it. The lock directory is created with mode 0700. The project path is
    /// canonicalized when it exists, so `.` and its absolute path share one lock.
    ///
    /// Deviation from the first sketch of this API: it takes the `runner_id`, so the file
    /// names its holder from the moment the lock is taken.
    pub fn acquire(
        lock_dir: &Path,
        project: &Path,
        spec: &str,
        runner_id: &RunnerId,
    ) -> Result<SpecLock, LockError> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(lock_dir)
            .map_err(|source| LockError::Io {
                path: lock_dir.to_path_buf(),
                source,
            })?;
        let path = lock_file_path(lock_dir, project, spec);
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let deadline = Instant::now() + BUSY_RETRY_FOR;
        loop {
            // std opens with O_CLOEXEC, so agents we spawn never inherit the lock.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)
                .map_err(io)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    let me = std::process::id();
                    let st =
                        procinfo::start_time(me).map_or_else(|| "-".to_string(), |s| s.to_string());
                    let mut f: &File = &lock;
                    f.set_len(0).map_err(io)?;
                    f.seek(SeekFrom::Start(0)).map_err(io)?;
                    f.write_all(format!("{me} {st} {runner_id}\n").as_bytes())
                        .map_err(io)?;
                    return Ok(SpecLock { path, _lock: lock });
                }
                Err((file, Errno::EWOULDBLOCK)) => {
                    let holder = read_holder(&file);
                    // A live recorded holder means a real runner: refuse at once. Otherwise the
                    // lock is most likely held for an instant by an observer's probe, or by a
                    // runner that has not written its line yet: try again shortly.
                    if holder_alive(&holder) || Instant::now() >= deadline {
                        return Err(LockError::Held {
                            holder_pid: holder.pid,
                            runner_id: holder.runner_id,
                            path,
                        });
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((_, errno)) => return Err(io(std::io::Error::from(errno))),
            }
        }
    }

    /// Whether some process holds the lock of (`project`, `spec`), and who, for observers.
    /// Probes with a shared non-blocking lock released at once: observers never block each
    /// other, and a runner's `acquire` retries past a probe. `None` also when the lock file
    /// does not exist or cannot be opened.
    pub fn is_held(lock_dir: &Path, project: &Path, spec: &str) -> Option<Holder> {
        let path = lock_file_path(lock_dir, project, spec);
        let file = File::open(&path).ok()?;
        match Flock::lock(file, FlockArg::LockSharedNonblock) {
            Ok(_probe) => None,
            Err((file, Errno::EWOULDBLOCK)) => Some(read_holder(&file)),
            Err(_) => None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Release the lock (dropping it does the same).
    pub fn release(self) {}
}

fn holder_alive(h: &Holder) -> bool {
    h.pid
        .is_some_and(|pid| procinfo::process_alive(pid, h.start_time))
}

fn read_holder(mut file: &File) -> Holder {
    let mut s = String::new();
    let _ = file.seek(SeekFrom::Start(0));
    let _ = file.take(4096).read_to_string(&mut s);
    parse_holder(&s)
}

fn parse_holder(s: &str) -> Holder {
    let mut it = s.split_whitespace();
    Holder {
        pid: it.next().and_then(|p| p.parse().ok()),
        start_time: it.next().and_then(|p| p.parse().ok()),
        runner_id: it.next().and_then(|p| p.parse().ok()),
    }
}

/// The lock file of (`project`, `spec`): `<lock_dir>/<project tail>__<spec>-<hash>.lock`, with
/// both names reduced to `[A-Za-z0-9._-]` for readability and a 64-bit FNV-1a hash of the
/// exact (canonical) project path and spec for uniqueness. FNV rather than std's hasher
/// because the name must be the same in every build of swr that shares a cache directory.
pub fn lock_file_path(lock_dir: &Path, project: &Path, spec: &str) -> PathBuf {
    let project = std::fs::canonicalize(project).unwrap_or_else(|_| project.to_path_buf());
    let bytes = std::os::unix::ffi::OsStrExt::as_bytes(project.as_os_str());
    let mut h = Fnv::new();
    h.write(bytes);
    h.write(&[0]);
    h.write(spec.as_bytes());
    let name = format!(
        "{}__{}-{:012x}.lock",
        sanitize(&project.to_string_lossy(), 60),
        sanitize(spec, 60),
        h.0 & 0xffff_ffff_ffff
    );
    lock_dir.join(name)
}

/// Keep the last `max` characters of `s` mapped to `[A-Za-z0-9._-]` (runs of anything else
/// become one `-`); the tail of a project path is the part that tells projects apart.
fn sanitize(s: &str, max: usize) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_') {
            out.push(c);
        } else if !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_matches(|c| c == '-' || c == '.');
    let skip = trimmed.len().saturating_sub(max);
    let tail = trimmed[skip..].trim_start_matches(['-', '.']);
    if tail.is_empty() {
        "x".to_string()
    } else {
        tail.to_string()
    }
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 ^= u64::from(*b);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn lock_names_are_readable_stable_and_distinct() {
        let dir = Path::new("/locks");
        let a = lock_file_path(
            dir,
            Path::new("/nonexistent/home/u/repos/my app"),
            "auth flow",
        );
        assert_eq!(a.parent(), Some(dir));
        let name = a.file_name().unwrap().to_str().unwrap();
        assert!(
            name.starts_with("nonexistent-home-u-repos-my-app__auth-flow-"),
            "{name}"
        );
        assert!(name.ends_with(".lock"));
        // Stable across builds: a fixed input gives a fixed name.
        assert_eq!(
            a,
            lock_file_path(
                dir,
                Path::new("/nonexistent/home/u/repos/my app"),
                "auth flow"
            )
        );
        // Names that sanitize alike still differ by hash.
        let b = lock_file_path(
            dir,
            Path::new("/nonexistent/home/u/repos/my-app"),
            "auth-flow",
        );
        assert_ne!(a, b);
        let c = lock_file_path(dir, Path::new("/nonexistent/p"), "s");
        let d = lock_file_path(dir, Path::new("/nonexistent/p/s"), "");
        assert_ne!(c, d);
    }

    #[test]
    fn sanitize_keeps_the_tail_and_never_returns_empty() {
        assert_eq!(sanitize("/a/b/c", 60), "a-b-c");
        assert_eq!(sanitize("../..", 60), "x");
        assert_eq!(sanitize("/very/long/path/to/proj", 8), "to-proj");
        assert_eq!(sanitize("ünï", 60), "n");
    }

    #[test]
    fn holder_lines_parse_and_tolerate_garbage() {
        let h = parse_holder("123 456 r-20260101T000000-abcd\n");
        assert_eq!(h.pid, Some(123));
        assert_eq!(h.start_time, Some(456));
        assert_eq!(h.runner_id.unwrap().as_str(), "r-20260101T000000-abcd");
        let h = parse_holder("77 - r-x");
        assert_eq!((h.pid, h.start_time), (Some(77), None));
        assert_eq!(
            parse_holder(""),
            Holder {
                pid: None,
                start_time: None,
                runner_id: None
            }
        );
    }
}
