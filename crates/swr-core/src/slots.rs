//! Agent slots: at most `max_concurrent_agents` agent processes at once across every swr
//! runner that shares the state directory, granted in the order they were asked for.
//!
//! A slot is an exclusive `flock` on one of `slots/slot-<n>.lock`; a waiter is a ticket file in
//! `slots/queue/`, named by the time it asked and locked by its owner while it waits. The
//! kernel drops both locks when their holder dies (kill -9 included), so a dead runner frees
//! its slot and its place in the line at once: nothing here expires by a timeout.
//!
//! Only the waiter at the head of the line takes a free slot; a dead ticket ahead of it is
//! found by its lock being free and removed. This module knows nothing of runners or agents:
//! the runner holds a [`Slot`] while its agent runs.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

/// The slot pool of one state directory, as one runner sees it (`cap` from its config).
#[derive(Debug, Clone)]
pub struct SlotPool {
    dir: PathBuf,
    cap: u32,
}

/// A held slot; released when dropped or when the process dies.
#[derive(Debug)]
pub struct Slot {
    pub index: u32,
    /// `None` when there is no cap.
    _lock: Option<Flock<File>>,
}

/// A place in the line; leaves it when dropped.
#[derive(Debug)]
pub struct Ticket {
    path: PathBuf,
    name: String,
    _lock: Flock<File>,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Where a ticket stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Place {
    /// Live tickets ahead of it.
    pub ahead: usize,
}

impl SlotPool {
    /// `cap` 0 means no cap: [`SlotPool::try_acquire`] then always succeeds without a lock.
    pub fn new(state_dir: &Path, cap: u32) -> SlotPool {
        SlotPool {
            dir: state_dir.join("slots"),
            cap,
        }
    }

    pub fn cap(&self) -> u32 {
        self.cap
    }

    fn queue_dir(&self) -> PathBuf {
        self.dir.join("queue")
    }

    fn ensure_dirs(&self) -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(self.queue_dir())
    }

    /// A free slot now, if there is one. With no cap, a slot that locks nothing.
    pub fn try_acquire(&self) -> std::io::Result<Option<Slot>> {
        if self.cap == 0 {
            return Ok(Some(Slot {
                index: 0,
                _lock: None,
            }));
        }
        self.ensure_dirs()?;
        for index in 0..self.cap {
            let path = self.dir.join(format!("slot-{index}.lock"));
            // O_CLOEXEC by std: the agent never inherits the slot.
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(&path)?;
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => {
                    return Ok(Some(Slot {
                        index,
                        _lock: Some(lock),
                    }));
                }
                Err((_, Errno::EWOULDBLOCK)) => continue,
                Err((_, e)) => return Err(e.into()),
            }
        }
        Ok(None)
    }

    /// How many slots are held now (by any runner).
    pub fn busy(&self) -> usize {
        (0..self.cap)
            .filter(|i| {
                let path = self.dir.join(format!("slot-{i}.lock"));
                File::open(path).is_ok_and(|f| {
                    matches!(
                        Flock::lock(f, FlockArg::LockSharedNonblock),
                        Err((_, Errno::EWOULDBLOCK))
                    )
                })
            })
            .count()
    }

    /// Joins the line. The ticket is locked before it appears in the queue directory, so no
    /// other waiter can ever take it for a dead one.
    pub fn enqueue(&self, owner: &str) -> std::io::Result<Ticket> {
        self.ensure_dirs()?;
        let nanos = jiff::Timestamp::now().as_nanosecond();
        let name = format!(
            "{:020}-{:010}-{}",
            nanos.max(0),
            std::process::id(),
            sanitize(owner)
        );
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let lock = Flock::lock(file, FlockArg::LockExclusiveNonblock)
            .map_err(|(_, e)| std::io::Error::from(e))?;
        let path = self.queue_dir().join(&name);
        std::fs::rename(&tmp, &path)?;
        Ok(Ticket {
            path,
            name,
            _lock: lock,
        })
    }

    /// Live tickets ahead of `ticket`. Tickets whose owner died are removed on the way; only
    /// the ones ahead are probed, and only until `probe` of them were found alive (the caller
    /// needs to know whether it is at the head, not the exact count far down the line).
    pub fn place(&self, ticket: &Ticket, probe: usize) -> std::io::Result<Place> {
        let mut names: Vec<String> = std::fs::read_dir(self.queue_dir())?
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .filter(|n| n.as_str() < ticket.name.as_str())
            .collect();
        names.sort();
        let mut ahead = 0;
        for (i, n) in names.iter().enumerate() {
            if ahead >= probe {
                ahead += names.len() - i;
                break;
            }
            let path = self.queue_dir().join(n);
            let Ok(f) = File::open(&path) else { continue };
            match Flock::lock(f, FlockArg::LockExclusiveNonblock) {
                // Its owner is gone: the kernel released its lock.
                Ok(_dead) => {
                    let _ = std::fs::remove_file(&path);
                }
                Err(_) => ahead += 1,
            }
        }
        Ok(Place { ahead })
    }

    /// Whether anyone is waiting in line (a fast path must not jump the queue).
    pub fn anyone_waiting(&self) -> bool {
        std::fs::read_dir(self.queue_dir())
            .map(|mut d| d.any(|e| e.is_ok()))
            .unwrap_or(false)
    }

    /// Takes a slot in line order, polling; `on_wait(ahead)` is told where the caller stands
    /// whenever that changes (first call: it has to wait). `cancel` ends the wait with `None`.
    pub async fn acquire<F: FnMut(usize)>(
        &self,
        owner: &str,
        mut on_wait: F,
        cancel: impl std::future::Future<Output = ()>,
    ) -> std::io::Result<Option<Slot>> {
        // No cap: nothing to wait for, whoever else waits for a slot of theirs.
        if self.cap == 0 {
            return self.try_acquire();
        }
        if !self.anyone_waiting()
            && let Some(slot) = self.try_acquire()?
        {
            return Ok(Some(slot));
        }
        let ticket = self.enqueue(owner)?;
        tokio::pin!(cancel);
        let mut last = None;
        loop {
            let place = self.place(&ticket, self.cap.max(1) as usize)?;
            if place.ahead == 0
                && let Some(slot) = self.try_acquire()?
            {
                drop(ticket);
                return Ok(Some(slot));
            }
            if last != Some(place.ahead) {
                last = Some(place.ahead);
                on_wait(place.ahead);
            }
            // Near the head, look often: a slot must not stay free for long. Far down the line,
            // rarely: hundreds of waiters must not cost a core between them.
            let pause = if place.ahead < self.cap.max(1) as usize {
                Duration::from_millis(50)
            } else {
                Duration::from_millis(500)
            };
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = &mut cancel => return Ok(None),
            }
        }
    }
}

fn sanitize(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(64)
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_pool_of_two_grants_two_slots_then_none_and_frees_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SlotPool::new(dir.path(), 2);
        let a = pool.try_acquire().unwrap().unwrap();
        let b = pool.try_acquire().unwrap().unwrap();
        assert_ne!(a.index, b.index);
        assert!(pool.try_acquire().unwrap().is_none());
        assert_eq!(pool.busy(), 2);
        drop(a);
        assert_eq!(pool.busy(), 1);
        assert!(pool.try_acquire().unwrap().is_some());
    }

    #[test]
    fn no_cap_always_grants() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SlotPool::new(dir.path(), 0);
        let held: Vec<Slot> = (0..50)
            .map(|_| pool.try_acquire().unwrap().unwrap())
            .collect();
        assert_eq!(held.len(), 50);
    }

    #[test]
    fn tickets_keep_their_order_and_leave_the_queue_when_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SlotPool::new(dir.path(), 1);
        let first = pool.enqueue("r-1").unwrap();
        std::thread::sleep(Duration::from_millis(2));
        let second = pool.enqueue("r-2").unwrap();
        assert_eq!(pool.place(&first, 10).unwrap().ahead, 0);
        assert_eq!(pool.place(&second, 10).unwrap().ahead, 1);
        drop(first);
        assert_eq!(pool.place(&second, 10).unwrap().ahead, 0);
        drop(second);
        assert!(!pool.anyone_waiting());
    }

    #[tokio::test]
    async fn with_no_cap_a_runner_never_waits_behind_capped_ones() {
        let dir = tempfile::tempdir().unwrap();
        let capped = SlotPool::new(dir.path(), 1);
        let _held = capped.try_acquire().unwrap().unwrap();
        let _waiting = capped.enqueue("capped").unwrap();
        let uncapped = SlotPool::new(dir.path(), 0);
        let got = tokio::time::timeout(
            Duration::from_secs(10),
            uncapped.acquire("free", |_| {}, std::future::pending()),
        )
        .await
        .expect("a runner with no cap waited in line")
        .unwrap();
        assert!(got.is_some());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_when_it_is_freed_and_can_be_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let pool = SlotPool::new(dir.path(), 1);
        let held = pool.try_acquire().unwrap().unwrap();
        let p2 = pool.clone();
        let waiter = tokio::spawn(async move {
            let mut told = Vec::new();
            let slot = p2
                .acquire("w", |ahead| told.push(ahead), std::future::pending())
                .await
                .unwrap();
            (slot.is_some(), told)
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        drop(held);
        let (got, told) = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .unwrap()
            .unwrap();
        assert!(got);
        assert_eq!(told, vec![0], "told once that it waits, at the head");
        let _busy = pool.try_acquire().unwrap().unwrap();
        let cancelled = pool
            .acquire("c", |_| {}, tokio::time::sleep(Duration::from_millis(100)))
            .await
            .unwrap();
        assert!(cancelled.is_none());
        assert!(!pool.anyone_waiting(), "a cancelled waiter leaves the line");
    }
}
