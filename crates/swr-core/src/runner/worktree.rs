//! Specs run in git worktrees, so that several specs of one repository can run at once.
//!
//! A spec's worktree lives under swr's state directory (`<cache_dir>/worktrees/`), never in
//! the project, on a branch `swr/<spec>` made from the project's HEAD. It is kept while the
//! spec is unfinished (the next run of the spec continues there) and, once the spec is
//! complete, merged back with `git merge --no-ff` into the branch the run started from, then
//! removed — but only when the project's own worktree is clean, still on that branch, and the
//! merge has no conflict. Otherwise the branch and worktree stay and the caller is told how to
//! merge. A branch that is not merged is never deleted (`git branch -d` refuses anyway).
//!
//! Git plumbing only (argv, no shell); no decisions about the run.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use nix::fcntl::{Flock, FlockArg};

use serde::{Deserialize, Serialize};

/// One spec's worktree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    /// The project's own (main) worktree.
    pub project: PathBuf,
    pub spec: String,
    pub path: PathBuf,
    pub branch: String,
    /// The branch the first run started from, where the spec is merged back.
    pub base: String,
    /// Spec files the project does not track that swr copied into the worktree: their path
    /// relative to the project and the git blob id of what was copied. Unchanged, they are
    /// set aside for the merge, which brings their successors (see [`merge_back`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub copied_untracked: Vec<(PathBuf, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("{project}: not a git repository; --worktree and --parallel need git", project = .0.display())]
    NotARepo(PathBuf),
    #[error("{project}: HEAD is detached or has no commit; check out a branch to run specs in worktrees", project = .0.display())]
    NoBranch(PathBuf),
    #[error("git {args}: {message}")]
    Git { args: String, message: String },
    #[error("{path}: {source}", path = .path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// How a completed spec's branch came back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum MergeResult {
    /// Merged into `into`; the worktree and the branch are gone.
    Merged { branch: String, into: String },
    /// Kept: `why` it was not merged and `how` to do it.
    Kept {
        branch: String,
        worktree: PathBuf,
        why: String,
        how: String,
    },
}

impl MergeResult {
    pub fn describe(&self) -> String {
        match self {
            MergeResult::Merged { branch, into } => {
                format!("merged {branch} into {into} (--no-ff); its worktree and branch removed")
            }
            MergeResult::Kept {
                branch, why, how, ..
            } => format!("{branch} not merged: {why}; to merge it: {how}"),
        }
    }
}

fn git(dir: &Path, args: &[&str]) -> Result<String, WorktreeError> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| WorktreeError::Io {
            path: dir.to_path_buf(),
            source,
        })?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_string())
    } else {
        Err(WorktreeError::Git {
            args: args.join(" "),
            message: one_line(&String::from_utf8_lossy(&out.stderr)),
        })
    }
}

/// git's multi-line stderr as one line: it goes into a runner's reason and the run's summary.
fn one_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

/// `swr/<spec>` with what git refuses in a branch name replaced. Letters of any script are
/// kept. When something had to be replaced, a hash of the spec's name is added, so that
/// specs whose names differ only there ("a b" and "a-b") never share a branch, a worktree
/// or a record.
pub fn branch_name(spec: &str) -> String {
    let clean = clean_branch_leaf(spec, char::is_alphanumeric);
    if clean == spec {
        format!("swr/{clean}")
    } else {
        format!("swr/{clean}-{:08x}", fnv1a(spec.as_bytes()) as u32)
    }
}

/// The branch name swr used before [`branch_name`] told such specs apart: kept to find
/// their worktrees.
fn legacy_branch_name(spec: &str) -> String {
    format!(
        "swr/{}",
        clean_branch_leaf(spec, |c| c.is_ascii_alphanumeric())
    )
}

fn clean_branch_leaf(spec: &str, keep: impl Fn(char) -> bool) -> String {
    let mut s: String = spec
        .chars()
        .map(|c| if keep(c) || "-_.".contains(c) { c } else { '-' })
        .collect();
    while s.contains("..") {
        s = s.replace("..", ".");
    }
    let s = s.trim_matches(|c| c == '.' || c == '-');
    let s = s.strip_suffix(".lock").unwrap_or(s);
    if s.is_empty() {
        "spec".to_string()
    } else {
        s.to_string()
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// Where the worktrees of `project` live: one directory per project under the state dir,
/// named after it and a hash of its path (two projects of one name never share it).
fn project_dir(state_dir: &Path, project: &Path) -> PathBuf {
    let name = project
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "project".into());
    let h = fnv1a(project.as_os_str().as_encoded_bytes());
    let clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .take(40)
        .collect();
    state_dir
        .join("worktrees")
        .join(format!("{clean}-{:08x}", h as u32))
}

/// Serializes the git operations of one project's worktrees (add, prune, merge, remove):
/// `git worktree prune` run while another runner's `worktree add` is half done deletes its
/// bookkeeping, and two merges into one worktree at once trip over its index lock. Blocking,
/// held for the length of one operation; the kernel drops it with a dead holder.
fn project_lock(state_dir: &Path, project: &Path) -> Result<Flock<File>, WorktreeError> {
    let dir = project_dir(state_dir, project);
    let io = |source| WorktreeError::Io {
        path: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.join(".lock"))
        .map_err(io)?;
    Flock::lock(file, FlockArg::LockExclusive).map_err(|(_, e)| io(e.into()))
}

fn record_path(state_dir: &Path, project: &Path, spec: &str) -> PathBuf {
    record_path_of(state_dir, project, &branch_name(spec))
}

fn record_path_of(state_dir: &Path, project: &Path, branch: &str) -> PathBuf {
    let leaf = branch.trim_start_matches("swr/");
    project_dir(state_dir, project).join(format!("{leaf}.json"))
}

/// The spec's record: where [`branch_name`] puts it, else where swr put it before (a worktree
/// made then is continued on its old branch). A record there must name this very spec.
fn find_record(state_dir: &Path, project: &Path, spec: &str) -> Option<(PathBuf, Worktree)> {
    [branch_name(spec), legacy_branch_name(spec)]
        .into_iter()
        .map(|b| record_path_of(state_dir, project, &b))
        .find_map(|path| {
            let text = std::fs::read_to_string(&path).ok()?;
            let w: Worktree = serde_json::from_str(&text).ok()?;
            (w.spec == spec).then_some((path, w))
        })
}

/// The worktree a spec already has, if any (its directory still exists).
pub fn existing(state_dir: &Path, project: &Path, spec: &str) -> Option<Worktree> {
    let (_, w) = find_record(state_dir, project, spec)?;
    w.path.is_dir().then_some(w)
}

/// Every spec worktree recorded under the state directory whose directory still exists.
pub fn all(state_dir: &Path) -> Vec<Worktree> {
    let Ok(projects) = std::fs::read_dir(state_dir.join("worktrees")) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for p in projects.flatten() {
        let Ok(files) = std::fs::read_dir(p.path()) else {
            continue;
        };
        for f in files.flatten() {
            let path = f.path();
            if path.extension().is_some_and(|e| e == "json")
                && let Ok(text) = std::fs::read_to_string(&path)
                && let Ok(w) = serde_json::from_str::<Worktree>(&text)
                && w.path.is_dir()
            {
                out.push(w);
            }
        }
    }
    out
}

/// Points each spec that works in a worktree at the worktree's tasks.md, so that progress is
/// read where the agent ticks it (`swr specs`, the TUI, `--all`'s choice of unfinished specs).
pub fn redirect_tasks(
    state_dir: &Path,
    projects: &mut [crate::spec::Project],
    layout: &crate::spec::Layout,
) {
    let trees = all(state_dir);
    if trees.is_empty() {
        return;
    }
    for p in projects.iter_mut() {
        for s in p.specs.iter_mut() {
            if let Some(w) = trees
                .iter()
                .find(|w| w.project == p.path && w.spec == s.name)
            {
                s.tasks_path = layout
                    .specs_dir(&w.path)
                    .join(&s.name)
                    .join(&layout.tasks_filename);
            }
        }
    }
}

/// The spec's worktree: the existing one, or a new one on `swr/<spec>` from HEAD. `spec_rel`
/// is the spec's directory relative to the project; when the project's copy differs from the
/// commit (an uncommitted spec, unsaved edits) it is copied into the new worktree, so the agent
/// works on the spec the user sees. Returns the worktree and whether that copy happened.
pub fn prepare(
    state_dir: &Path,
    project: &Path,
    spec: &str,
    spec_rel: &Path,
) -> Result<(Worktree, bool), WorktreeError> {
    if let Some(w) = existing(state_dir, project, spec) {
        return Ok((w, false));
    }
    if !git(project, &["rev-parse", "--is-inside-work-tree"]).is_ok_and(|s| s == "true") {
        return Err(WorktreeError::NotARepo(project.to_path_buf()));
    }
    let base = git(project, &["symbolic-ref", "--quiet", "--short", "HEAD"])
        .map_err(|_| WorktreeError::NoBranch(project.to_path_buf()))?;
    git(project, &["rev-parse", "--verify", "--quiet", "HEAD"])
        .map_err(|_| WorktreeError::NoBranch(project.to_path_buf()))?;
    let branch = branch_name(spec);
    let dir = project_dir(state_dir, project);
    let _serial = project_lock(state_dir, project)?;
    let path = dir.join(branch.trim_start_matches("swr/"));
    // A worktree directory deleted by hand leaves git's record of it behind.
    let _ = git(project, &["worktree", "prune"]);
    let path_s = path.to_string_lossy().into_owned();
    let exists = git(
        project,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )
    .is_ok();
    if exists {
        git(project, &["worktree", "add", &path_s, &branch])?;
    } else {
        git(
            project,
            &["worktree", "add", "-b", &branch, &path_s, "HEAD"],
        )?;
    }
    let copied = copy_spec_if_changed(project, &path, spec_rel)?;
    let copied_untracked = copied
        .iter()
        .filter(|rel| !tracked(project, rel))
        .filter_map(|rel| Some((rel.clone(), blob_id(project, rel)?)))
        .collect();
    let w = Worktree {
        project: project.to_path_buf(),
        spec: spec.to_string(),
        path,
        branch,
        base,
        copied_untracked,
    };
    let rec = record_path(state_dir, project, spec);
    let json = serde_json::to_string_pretty(&w).unwrap_or_default();
    std::fs::write(&rec, json).map_err(|source| WorktreeError::Io { path: rec, source })?;
    Ok((w, !copied.is_empty()))
}

/// Whether git tracks `rel` in `project`.
fn tracked(project: &Path, rel: &Path) -> bool {
    let rel = rel.to_string_lossy();
    git(project, &["ls-files", "--error-unmatch", "--", &rel]).is_ok()
}

/// The git blob id of the file `rel` of `project` as it is now.
fn blob_id(project: &Path, rel: &Path) -> Option<String> {
    let rel = rel.to_string_lossy();
    git(project, &["hash-object", "--", &rel]).ok()
}

/// Copies the spec's files from the project into the worktree where they differ; returns
/// those copied, relative to the project.
fn copy_spec_if_changed(
    project: &Path,
    worktree: &Path,
    spec_rel: &Path,
) -> Result<Vec<PathBuf>, WorktreeError> {
    let from = project.join(spec_rel);
    let to = worktree.join(spec_rel);
    let Ok(entries) = std::fs::read_dir(&from) else {
        return Ok(Vec::new());
    };
    let mut copied = Vec::new();
    for e in entries.flatten() {
        let src = e.path();
        if !src.is_file() {
            continue;
        }
        let dst = to.join(e.file_name());
        let same = std::fs::read(&src).ok() == std::fs::read(&dst).ok();
        if !same {
            std::fs::create_dir_all(&to).map_err(|source| WorktreeError::Io {
                path: to.clone(),
                source,
            })?;
            std::fs::copy(&src, &dst).map_err(|source| WorktreeError::Io {
                path: dst.clone(),
                source,
            })?;
            copied.push(spec_rel.join(e.file_name()));
        }
    }
    Ok(copied)
}

/// Merges a completed spec's branch back (see the module docs) or says why not and how.
pub fn merge_back(state_dir: &Path, w: &Worktree) -> MergeResult {
    let _serial = match project_lock(state_dir, &w.project) {
        Ok(l) => l,
        Err(e) => {
            return MergeResult::Kept {
                branch: w.branch.clone(),
                worktree: w.path.clone(),
                why: e.to_string(),
                how: format!("git merge --no-ff {}", w.branch),
            };
        }
    };
    let kept = |why: String| MergeResult::Kept {
        branch: w.branch.clone(),
        worktree: w.path.clone(),
        how: format!(
            "cd {} && git checkout {} && git merge --no-ff {}",
            shell_quote(&w.project.to_string_lossy()),
            w.base,
            w.branch
        ),
        why,
    };
    // Work the agent left uncommitted in the worktree would be lost with it.
    match git(&w.path, &["status", "--porcelain", "--untracked-files=no"]) {
        Ok(s) if s.is_empty() => {}
        Ok(_) => {
            return kept(format!(
                "the worktree {} has uncommitted changes",
                w.path.display()
            ));
        }
        Err(e) => return kept(e.to_string()),
    }
    match git(&w.project, &["symbolic-ref", "--quiet", "--short", "HEAD"]) {
        Ok(b) if b == w.base => {}
        Ok(b) => {
            return kept(format!(
                "the project is on branch {b}, not {} where the run started",
                w.base
            ));
        }
        Err(_) => return kept("the project's HEAD is detached".into()),
    }
    match git(
        &w.project,
        &["status", "--porcelain", "--untracked-files=no"],
    ) {
        Ok(s) if s.is_empty() => {}
        Ok(s) => {
            let first = s
                .lines()
                .next()
                .unwrap_or("")
                .get(3..)
                .unwrap_or("")
                .to_string();
            return kept(format!(
                "the project's worktree has uncommitted changes (e.g. {first})"
            ));
        }
        Err(e) => return kept(e.to_string()),
    }
    // A dry run of the merge: never leave the user's tree half-merged.
    match conflicts(&w.project, &w.branch) {
        Ok(files) if files.is_empty() => {}
        Ok(files) => {
            return kept(format!(
                "merging would conflict in {}",
                files.into_iter().take(5).collect::<Vec<_>>().join(", ")
            ));
        }
        Err(e) => return kept(e.to_string()),
    }
    let aside_dir = project_dir(state_dir, &w.project)
        .join(format!("{}.untracked", w.branch.trim_start_matches("swr/")));
    let aside = match set_aside_copies(w, &aside_dir) {
        Ok(a) => a,
        Err(why) => return kept(why),
    };
    let msg = format!("Merge {}: spec '{}' completed by swr", w.branch, w.spec);
    if let Err(e) = git(
        &w.project,
        &["merge", "--no-ff", "--no-edit", "-m", &msg, &w.branch],
    ) {
        let _ = git(&w.project, &["merge", "--abort"]);
        for (from, to) in &aside {
            let _ = move_file(to, from);
        }
        return kept(e.to_string());
    }
    let _ = std::fs::remove_dir_all(&aside_dir);
    let path_s = w.path.to_string_lossy().into_owned();
    if let Err(e) = git(&w.project, &["worktree", "remove", &path_s]) {
        return MergeResult::Kept {
            branch: w.branch.clone(),
            worktree: w.path.clone(),
            why: format!("merged, but the worktree could not be removed: {e}"),
            how: format!("git worktree remove {}", shell_quote(&path_s)),
        };
    }
    // -d, not -D: git itself refuses to delete a branch that is not merged.
    let _ = git(&w.project, &["branch", "-d", &w.branch]);
    if let Some((path, _)) = find_record(state_dir, &w.project, &w.spec) {
        let _ = std::fs::remove_file(path);
    }
    MergeResult::Merged {
        branch: w.branch.clone(),
        into: w.base.clone(),
    }
}

/// Moves the project's untracked copies of the spec files swr copied into the worktree out
/// of the merge's way, when the branch has them and they are still what swr copied (the
/// branch then holds their successors). One the user changed since makes the merge wait.
/// Returns (where it was, where it is now) for each file moved.
fn set_aside_copies(w: &Worktree, aside_dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, String> {
    let mut todo = Vec::new();
    for (rel, blob) in &w.copied_untracked {
        let path = w.project.join(rel);
        let rel_s = rel.to_string_lossy();
        if !path.is_file()
            || tracked(&w.project, rel)
            || git(
                &w.project,
                &["cat-file", "-e", &format!("{}:{rel_s}", w.branch)],
            )
            .is_err()
        {
            continue;
        }
        if blob_id(&w.project, rel).as_deref() != Some(blob.as_str()) {
            return Err(format!(
                "{rel_s} in the project, which is not committed, changed since swr copied it into the worktree; merging would overwrite it"
            ));
        }
        todo.push((path, aside_dir.join(rel)));
    }
    let mut moved: Vec<(PathBuf, PathBuf)> = Vec::new();
    for (from, to) in todo {
        if let Err(e) = move_file(&from, &to) {
            for (f, t) in &moved {
                let _ = move_file(t.as_path(), f.as_path());
            }
            return Err(format!("cannot set {} aside: {e}", from.display()));
        }
        moved.push((from, to));
    }
    Ok(moved)
}

/// `rename`, or copy and remove across file systems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(dir) = to.parent() {
        std::fs::create_dir_all(dir)?;
    }
    if std::fs::rename(from, to).is_ok() {
        return Ok(());
    }
    std::fs::copy(from, to)?;
    std::fs::remove_file(from)
}

/// The files a merge of `branch` into HEAD would conflict in (`git merge-tree --write-tree`,
/// which touches neither the index nor the worktree).
fn conflicts(project: &Path, branch: &str) -> Result<Vec<String>, WorktreeError> {
    let out = Command::new("git")
        .args([
            "merge-tree",
            "--write-tree",
            "--name-only",
            "--no-messages",
            "HEAD",
            branch,
        ])
        .current_dir(project)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| WorktreeError::Io {
            path: project.to_path_buf(),
            source,
        })?;
    match out.status.code() {
        Some(0) => Ok(Vec::new()),
        // 1: conflicts; stdout is the tree id, then the conflicted files.
        Some(1) => Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .skip(1)
            .filter(|l| !l.trim().is_empty())
            .map(str::to_string)
            .collect()),
        _ => Err(WorktreeError::Git {
            args: "merge-tree --write-tree".into(),
            message: one_line(&String::from_utf8_lossy(&out.stderr)),
        }),
    }
}

fn shell_quote(s: &str) -> String {
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "-_./".contains(c))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn git_messages_become_one_line() {
        assert_eq!(
            one_line("error: Your local changes would be overwritten:\n\tshared.txt\n\nAborting\n"),
            "error: Your local changes would be overwritten:; shared.txt; Aborting"
        );
    }

    #[test]
    fn branch_names_are_valid_for_git() {
        assert_eq!(branch_name("auth"), "swr/auth");
        assert_eq!(branch_name("add-login_v2.1"), "swr/add-login_v2.1");
        assert_eq!(branch_name("认证"), "swr/认证");
        for (spec, leaf) in [
            ("user auth: v2", "user-auth--v2-"),
            ("..x..lock", "x-"),
            ("a.lock", "a-"),
            ("...", "spec-"),
        ] {
            let b = branch_name(spec);
            assert!(b.starts_with(&format!("swr/{leaf}")), "{spec}: {b}");
            assert_eq!(b.len(), "swr/".len() + leaf.len() + 8, "{spec}: {b}");
        }
    }

    #[test]
    fn specs_that_sanitize_alike_get_distinct_branches() {
        let names = [
            "a b", "a-b", "a:b", "a.b", "认证", "支付", "...", "..", "a.lock", "a",
        ];
        let branches: std::collections::HashSet<_> = names.iter().map(|n| branch_name(n)).collect();
        assert_eq!(branches.len(), names.len(), "{branches:?}");
    }

    #[test]
    fn project_dirs_differ_for_projects_of_one_name() {
        let a = project_dir(Path::new("/s"), Path::new("/r/one/app"));
        let b = project_dir(Path::new("/s"), Path::new("/r/two/app"));
        assert_ne!(a, b);
        assert!(a.starts_with("/s/worktrees"));
    }
}
