//! File notifications: the store's directory (its `-wal` file changes on every commit of a
//! runner) and the directory of the followed log. Each kind of change raises a flag and sends
//! one wake-up while the flag is up, so a flood of writes costs one message per loop turn,
//! not one per write. It never reads the store or the logs itself.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use notify::{RecommendedWatcher, RecursiveMode, Watcher};
use tokio::sync::mpsc::UnboundedSender;

/// What changed since the flags were last taken.
#[derive(Debug, Default)]
pub struct Flags {
    pub store: AtomicBool,
    pub log: AtomicBool,
}

pub struct Watch {
    watcher: RecommendedWatcher,
    log_dir: Option<PathBuf>,
    log_dir_shared: Arc<std::sync::Mutex<Option<PathBuf>>>,
    pub flags: Arc<Flags>,
}

impl Watch {
    /// Watches `store_dir` (non-recursively) for the store named `store_file`; wakes `tx`.
    pub fn new(
        store_dir: &Path,
        store_file: &str,
        tx: UnboundedSender<()>,
    ) -> notify::Result<Watch> {
        let flags = Arc::new(Flags::default());
        let log_dir_shared: Arc<std::sync::Mutex<Option<PathBuf>>> = Arc::default();
        let (f, ld) = (flags.clone(), log_dir_shared.clone());
        let store_file = store_file.to_string();
        let store_dir_owned = store_dir.to_path_buf();
        let mut watcher =
            notify::recommended_watcher(move |res: notify::Result<notify::Event>| {
                let Ok(ev) = res else { return };
                if matches!(ev.kind, notify::EventKind::Access(_)) {
                    return;
                }
                let log_dir = ld.lock().ok().and_then(|g| g.clone());
                let mut wake = false;
                for p in &ev.paths {
                    let parent = p.parent();
                    let name = p
                        .file_name()
                        .map(|n| n.to_string_lossy())
                        .unwrap_or_default();
                    if parent == Some(store_dir_owned.as_path()) && name.starts_with(&store_file) {
                        wake |= !f.store.swap(true, Ordering::SeqCst);
                    } else if log_dir.as_deref().is_some_and(|d| parent == Some(d)) {
                        wake |= !f.log.swap(true, Ordering::SeqCst);
                    }
                }
                if wake {
                    let _ = tx.send(());
                }
            })?;
        watcher.watch(store_dir, RecursiveMode::NonRecursive)?;
        Ok(Watch {
            watcher,
            log_dir: None,
            log_dir_shared,
            flags,
        })
    }

    /// Follows the directory of `log` (new attempts' logs appear next to it), dropping the
    /// previous one.
    pub fn follow_log(&mut self, log: Option<&Path>) {
        let dir = log.and_then(|l| l.parent()).map(Path::to_path_buf);
        if dir == self.log_dir {
            return;
        }
        if let Some(old) = self.log_dir.take() {
            let _ = self.watcher.unwatch(&old);
        }
        if let Some(d) = &dir
            && self.watcher.watch(d, RecursiveMode::NonRecursive).is_ok()
        {
            self.log_dir = dir.clone();
        }
        if let Ok(mut g) = self.log_dir_shared.lock() {
            *g = self.log_dir.clone();
        }
    }
}
