//! The few git facts the runner judges progress by: the HEAD commit, whether the tree is
//! dirty, what an attempt changed, and keeping swr's own files out of `git status`; and the
//! one commit swr makes itself (tasks put back by a failed verify check). Runs `git` (argv,
//! no shell).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn git(project: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(project)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim_end().to_string())
}

/// Whether `project` is inside a git work tree.
pub fn is_repo(project: &Path) -> bool {
    git(project, &["rev-parse", "--is-inside-work-tree"]).as_deref() == Some("true")
}

/// The commit HEAD points at, or `None` outside a repository or before the first commit.
pub fn head(project: &Path) -> Option<String> {
    git(project, &["rev-parse", "--verify", "--quiet", "HEAD"]).filter(|s| !s.is_empty())
}

/// Reads HEAD from the repository's files instead of running `git rev-parse` after every
/// attempt: the runner's own time between two agents is mostly process spawns. Anything it
/// does not recognise (a reftable store, a symbolic ref it cannot resolve, a malformed file)
/// falls back to `git rev-parse`, so it is never wrong, at worst as slow as before.
#[derive(Debug, Clone)]
pub struct HeadReader {
    project: PathBuf,
    /// `(git dir, common dir)` of a files-backed repository; `None`: always ask git.
    dirs: Option<(PathBuf, PathBuf)>,
}

impl HeadReader {
    pub fn new(project: &Path) -> HeadReader {
        let dirs = git(
            project,
            &["rev-parse", "--absolute-git-dir", "--git-common-dir"],
        )
        .and_then(|out| {
            let mut lines = out.lines();
            let git_dir = PathBuf::from(lines.next()?);
            let common = PathBuf::from(lines.next()?);
            let common = if common.is_absolute() {
                common
            } else {
                project.join(common)
            };
            Some((git_dir, common))
        })
        .filter(|(_, common)| {
            // git 2.45+ can keep refs in a reftable instead of files.
            !common.join("reftable").exists()
        });
        HeadReader {
            project: project.to_path_buf(),
            dirs,
        }
    }

    pub fn head(&self) -> Option<String> {
        self.read_files().or_else(|| head(&self.project))
    }

    fn read_files(&self) -> Option<String> {
        let (git_dir, common) = self.dirs.as_ref()?;
        let text = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
        let text = text.trim();
        let Some(name) = text.strip_prefix("ref: ") else {
            return is_object_id(text).then(|| text.to_string());
        };
        // Per-worktree refs live in the worktree's git dir, the rest in the common one.
        for dir in [git_dir, common] {
            if let Ok(id) = std::fs::read_to_string(dir.join(name)) {
                let id = id.trim();
                return is_object_id(id).then(|| id.to_string());
            }
        }
        let packed = std::fs::read_to_string(common.join("packed-refs")).ok()?;
        packed.lines().find_map(|l| {
            let (id, r) = l.split_once(' ')?;
            (r == name && is_object_id(id)).then(|| id.to_string())
        })
    }
}

fn is_object_id(s: &str) -> bool {
    (s.len() == 40 || s.len() == 64) && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The content of `path` (relative to the repository top) as committed in HEAD.
pub fn head_file(project: &Path, repo_path: &str) -> Option<Vec<u8>> {
    let out = Command::new("git")
        .args(["show", &format!("HEAD:{repo_path}")])
        .current_dir(project)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status.success().then_some(out.stdout)
}

/// git's empty tree: what a first commit is compared with.
pub const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";

/// Paths changed between two commits (relative to the repository top).
pub fn changed_between(project: &Path, from: &str, to: &str) -> Option<Vec<String>> {
    git(
        project,
        &["diff", "--name-only", "--no-renames", from, to, "--"],
    )
    .map(|s| s.lines().map(str::to_string).collect())
}

/// Commits the current content of `paths` alone (whatever else is staged stays staged), with
/// the user's git identity, or swr's when the user has none.
pub fn commit_paths(project: &Path, paths: &[&str], message: &str) -> Result<(), String> {
    let run = |identity: &[&str]| {
        Command::new("git")
            .args(identity)
            .args(["commit", "-q", "--no-verify", "-m", message, "--"])
            .args(paths)
            .current_dir(project)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .output()
    };
    let out = run(&[]).map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(());
    }
    let out = run(&["-c", "user.name=swr", "-c", "user.email=swr@localhost"])
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// Paths with uncommitted changes (`git status --porcelain`), empty when clean.
pub fn dirty_paths(project: &Path) -> Vec<String> {
    git(
        project,
        &["status", "--porcelain", "--untracked-files=normal"],
    )
    .map(|s| {
        s.lines()
            .map(|l| l.get(3..).unwrap_or(l).to_string())
            .collect()
    })
    .unwrap_or_default()
}

/// Makes git ignore `patterns` (paths relative to the repository top, with a trailing `/` for
/// directories) through `.git/info/exclude`, which is never committed: the runner's logs must
/// not make the project look dirty, and must not change its `.gitignore` either.
pub fn ensure_excluded(project: &Path, patterns: &[String]) -> std::io::Result<()> {
    let Some(exclude) = git(project, &["rev-parse", "--git-path", "info/exclude"]) else {
        return Ok(());
    };
    let exclude = {
        let p = PathBuf::from(exclude);
        if p.is_absolute() { p } else { project.join(p) }
    };
    let existing = std::fs::read_to_string(&exclude).unwrap_or_default();
    let missing: Vec<&String> = patterns
        .iter()
        .filter(|p| !existing.lines().any(|l| l.trim() == p.as_str()))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if let Some(dir) = exclude.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&exclude)?;
    let mut text = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        text.push('\n');
    }
    text.push_str("# swr: attempt logs and retry history\n");
    for p in missing {
        text.push_str(p);
        text.push('\n');
    }
    f.write_all(text.as_bytes())
}

/// `path` relative to the repository top, for exclude patterns.
pub fn repo_relative(project: &Path, path: &Path) -> Option<String> {
    let top = PathBuf::from(git(project, &["rev-parse", "--show-toplevel"])?);
    let top = top.canonicalize().unwrap_or(top);
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        project.join(path)
    };
    let abs = abs.canonicalize().unwrap_or(abs);
    abs.strip_prefix(&top)
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod head_tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap()
            .status
            .success();
        assert!(ok, "git {args:?}");
    }

    #[test]
    fn reads_head_like_git_through_loose_packed_detached_and_worktree_refs() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("repo");
        std::fs::create_dir_all(&p).unwrap();
        run(&p, &["init", "-q"]);
        let r = HeadReader::new(&p);
        assert_eq!(r.head(), None, "no commit yet");
        std::fs::write(p.join("a"), "1").unwrap();
        run(&p, &["add", "-A"]);
        run(&p, &["commit", "-qm", "one"]);
        assert!(
            r.read_files().is_some(),
            "a loose ref is read from the files"
        );
        assert_eq!(r.head(), head(&p));
        run(&p, &["pack-refs", "--all"]);
        assert_eq!(r.read_files(), head(&p), "a packed ref");
        std::fs::write(p.join("a"), "2").unwrap();
        run(&p, &["commit", "-qam", "two"]);
        assert_eq!(r.head(), head(&p));
        run(&p, &["checkout", "-q", "--detach"]);
        assert_eq!(r.read_files(), head(&p), "detached");
        run(&p, &["checkout", "-q", "-"]);
        let wt = dir.path().join("wt");
        run(
            &p,
            &["worktree", "add", "-q", "-b", "side", wt.to_str().unwrap()],
        );
        let w = HeadReader::new(&wt);
        std::fs::write(wt.join("b"), "3").unwrap();
        run(&wt, &["add", "-A"]);
        run(&wt, &["commit", "-qm", "side"]);
        assert_eq!(w.read_files(), head(&wt), "a worktree's own HEAD");
        assert_ne!(w.head(), r.head());
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap()
                .status
                .success();
            assert!(ok, "git {args:?}");
        };
        run(&["init", "-q"]);
        run(&["config", "user.email", "t@example.com"]);
        run(&["config", "user.name", "t"]);
        dir
    }

    #[test]
    fn head_dirty_and_exclude() {
        let dir = repo();
        let p = dir.path();
        assert!(is_repo(p));
        assert_eq!(head(p), None, "no commit yet");
        std::fs::create_dir_all(p.join(".spec-workflow/logs/s")).unwrap();
        std::fs::write(p.join(".spec-workflow/logs/s/task_1.log"), "x").unwrap();
        std::fs::write(p.join("a.txt"), "a").unwrap();
        assert_eq!(dirty_paths(p).len(), 2);
        let rel = repo_relative(p, &p.join(".spec-workflow/logs")).unwrap();
        assert_eq!(rel, ".spec-workflow/logs");
        ensure_excluded(p, &[format!("/{rel}/")]).unwrap();
        ensure_excluded(p, &[format!("/{rel}/")]).unwrap();
        assert_eq!(dirty_paths(p), vec!["a.txt".to_string()]);
        let exclude = std::fs::read_to_string(p.join(".git/info/exclude")).unwrap();
        assert_eq!(
            exclude.matches("/.spec-workflow/logs/").count(),
            1,
            "added once"
        );
        Command::new("git")
            .args(["add", "a.txt"])
            .current_dir(p)
            .output()
            .unwrap();
        Command::new("git")
            .args(["commit", "-qm", "a"])
            .current_dir(p)
            .output()
            .unwrap();
        assert!(head(p).is_some_and(|h| h.len() == 40));
        assert!(dirty_paths(p).is_empty());
    }

    #[test]
    fn outside_a_repository_nothing_fails() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!is_repo(dir.path()));
        assert_eq!(head(dir.path()), None);
        ensure_excluded(dir.path(), &["/x/".into()]).unwrap();
    }
}
