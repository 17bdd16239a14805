//! The spec lock: at most one live runner per (project, spec), and a liveness signal that
//! observers can trust more than a pid. The kernel releases a `flock` when its holder dies,
//! even by SIGKILL, so "the lock is free" means "nobody is running this spec".
//!
//! Lock files are never deleted: removing one while another process has it open would let two
//! processes hold locks on two different inodes of the same name.
//!
//! Users delete files swr did not expect them to (`rm -rf ~/.cache`), and a spec directory can
//! be reached by two names (`specs/alias -> demo`). [`SpecGuard`] closes both holes: a second
//! lock, keyed on the resolved path of the spec directory and held where no file deletion
//! reaches it.

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
        ensure_private_dir(lock_dir).map_err(|source| LockError::Io {
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
            // std opens with O_CLOEXEC, so agents we spawn never inherit the lock. A symlink
            // planted in place of the lock file is refused, never followed.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
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
        let file = open_existing(&path).ok()?;
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

    /// After runner `runner_id` released the lock of (`project`, `spec`) on its way out of a
    /// failure the store could not record (a full disk, a store that stays locked), leave the
    /// reason in the lock file, where [`SpecLock::exit_note`] finds it: the next observer then
    /// records a deliberate exit, not a crash. The file already exists and holds a line, so a
    /// short note overwrites it in place and needs no new disk block. Does nothing when the
    /// lock is held again or names another runner.
    pub fn record_exit(
        lock_dir: &Path,
        project: &Path,
        spec: &str,
        runner_id: &RunnerId,
        reason: &str,
    ) -> std::io::Result<()> {
        let path = lock_file_path(lock_dir, project, spec);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
            .open(&path)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, errno)| std::io::Error::from(errno))?;
        let holder = read_holder(&lock);
        if holder.runner_id.as_ref() != Some(runner_id) {
            return Ok(());
        }
        let note: String = reason
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .take(EXIT_NOTE_MAX)
            .collect();
        let pid = holder
            .pid
            .map_or_else(|| "-".to_string(), |p| p.to_string());
        let st = holder
            .start_time
            .map_or_else(|| "-".to_string(), |s| s.to_string());
        let mut f: &File = &lock;
        f.seek(SeekFrom::Start(0))?;
        f.write_all(format!("{pid} {st} {runner_id}\nexit {note}\n").as_bytes())?;
        let end = f.stream_position()?;
        f.set_len(end)
    }

    /// The exit note [`SpecLock::record_exit`] left for `runner_id`, if the lock file still
    /// holds one for it.
    pub fn exit_note(
        lock_dir: &Path,
        project: &Path,
        spec: &str,
        runner_id: &RunnerId,
    ) -> Option<String> {
        let file = open_existing(&lock_file_path(lock_dir, project, spec)).ok()?;
        let mut s = String::new();
        (&file).take(8192).read_to_string(&mut s).ok()?;
        let holder = parse_holder(&s);
        if holder.runner_id.as_ref() != Some(runner_id) {
            return None;
        }
        s.lines()
            .find_map(|l| l.strip_prefix("exit "))
            .map(str::to_string)
    }
}

/// Longest exit note, in characters: it fits in the lock file's first disk block.
const EXIT_NOTE_MAX: usize = 1000;

fn open_existing(path: &Path) -> std::io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NOFOLLOW.bits())
        .open(path)
}

/// Creates `dir` (and missing parents) with mode 0700 when it is missing, as after a user
/// cleaned the cache dir while runners worked, then checks that it is a real directory of
/// ours: a symlink there would send every lock file wherever it points, so it is refused,
/// never followed; so is a directory other users can write to.
pub fn ensure_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    let meta = std::fs::symlink_metadata(dir)?;
    let refuse = |why: &str| {
        Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            why.to_string(),
        ))
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symlink; swr keeps its locks in a real directory (remove the link)");
    }
    if !meta.is_dir() {
        return refuse("is not a directory");
    }
    if meta.uid() != nix::unistd::geteuid().as_raw() {
        return refuse("belongs to another user");
    }
    if meta.mode() & 0o022 != 0 {
        return refuse("is writable by other users; `chmod 700` it");
    }
    Ok(())
}

/// The second lock of a run: one per spec directory, resolved (`specs/alias -> demo` and
/// `demo` are one spec), held in the kernel's abstract socket namespace rather than in a file,
/// so that deleting the cache dir (or its `locks/`) while a runner works cannot free it. The
/// kernel releases it when its holder dies, like a `flock`. It complements [`SpecLock`], whose
/// file observers probe and which names the runner.
///
/// Linux only; elsewhere [`SpecGuard::acquire`] always succeeds and the lock file (plus the
/// store's record of live runners) is all there is.
#[derive(Debug)]
pub struct SpecGuard {
    #[cfg(target_os = "linux")]
    _socket: std::os::unix::net::UnixListener,
    key: PathBuf,
}

impl SpecGuard {
    /// Takes the guard of the spec directory `spec_dir`. `Err(LockError::Held)` (with the
    /// holder's pid when the kernel tells it) when another process has it; `path` in the error
    /// is the resolved spec directory.
    pub fn acquire(spec_dir: &Path) -> Result<SpecGuard, LockError> {
        let key = std::fs::canonicalize(spec_dir).map_err(|source| LockError::Io {
            path: spec_dir.to_path_buf(),
            source,
        })?;
        Self::bind(key)
    }

    /// The resolved spec directory this guard is keyed on.
    pub fn key(&self) -> &Path {
        &self.key
    }

    #[cfg(target_os = "linux")]
    fn bind(key: PathBuf) -> Result<SpecGuard, LockError> {
        use std::os::linux::net::SocketAddrExt;
        use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
        let mut h = Fnv::new();
        h.write(std::os::unix::ffi::OsStrExt::as_bytes(key.as_os_str()));
        // The uid keeps users apart; the hash keeps the name under the 107-byte limit.
        let name = format!(
            "swr/spec-guard/{}/{:016x}",
            nix::unistd::geteuid().as_raw(),
            h.0
        );
        let io = |source| LockError::Io {
            path: key.clone(),
            source,
        };
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).map_err(io)?;
        match UnixListener::bind_addr(&addr) {
            Ok(socket) => Ok(SpecGuard {
                _socket: socket,
                key,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                // The holder listens: a connection tells who it is.
                let holder_pid = UnixStream::connect_addr(&addr).ok().and_then(|c| {
                    nix::sys::socket::getsockopt(&c, nix::sys::socket::sockopt::PeerCredentials)
                        .ok()
                        .and_then(|cred| u32::try_from(cred.pid()).ok())
                });
                Err(LockError::Held {
                    holder_pid,
                    runner_id: None,
                    path: key,
                })
            }
            Err(e) => Err(io(e)),
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn bind(key: PathBuf) -> Result<SpecGuard, LockError> {
        Ok(SpecGuard { key })
    }
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
