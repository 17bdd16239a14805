//! Specs in git worktrees: `--parallel` runs several specs of one repository at once and merges
//! each back; a conflict keeps the branch with instructions; an unfinished spec keeps its
//! worktree for the next run.

#![allow(clippy::unwrap_used)]

mod run_support;

use std::path::Path;
use std::process::{Command, Stdio};

use run_support::{RunResult, World, git};
use serde_json::json;

fn git_out(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A World whose project has these specs (2 tasks each), committed.
fn world_with_specs(specs: &[&str], extra: serde_json::Value) -> World {
    let w = World::new(1, extra);
    for s in specs {
        let dir = w.project.join(".spec-workflow/specs").join(s);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("tasks.md"),
            format!("# Tasks\n\n- [ ] 1. {s} first\n- [ ] 2. {s} second\n"),
        )
        .unwrap();
    }
    // The default spec of the World is done, so --all runs only these.
    let feat = w.project.join(".spec-workflow/specs/feat/tasks.md");
    std::fs::write(&feat, "# Tasks\n\n- [x] 1. done\n").unwrap();
    git(&w.project, &["add", "-A"]);
    git(&w.project, &["commit", "-q", "-m", "specs"]);
    w
}

fn run_all_parallel(w: &World, plan: &str, n: &str) -> RunResult {
    // Each spec follows the plan on its own (the sim keeps its count per spec when no state
    // file is given), so the plan means the same whatever order the specs start in.
    let out = w
        .cmd(plan)
        .env_remove("SWR_SIM_STATE")
        .args(["run", "--project"])
        .arg(&w.project)
        .args(["--all", "--parallel", n, "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    RunResult::from(out)
}

#[test]
fn parallel_specs_run_at_once_in_worktrees_and_merge_back() {
    let w = world_with_specs(
        &["alpha", "beta", "gamma"],
        json!({"max_concurrent_agents": 3}),
    );
    let r = run_all_parallel(&w, "sleep:1,sleep:0.2", "3");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let merges: Vec<_> = r.of("merge");
    assert_eq!(merges.len(), 3, "{:?}", r.events);
    assert!(merges.iter().all(|m| m["result"]["kind"] == "merged"));
    // Three merge commits on the branch the run started from, every task done there.
    let log = git_out(&w.project, &["log", "--oneline", "--merges"]);
    assert_eq!(log.lines().count(), 3, "{log}");
    for s in ["alpha", "beta", "gamma"] {
        let t =
            std::fs::read_to_string(w.project.join(format!(".spec-workflow/specs/{s}/tasks.md")))
                .unwrap();
        assert_eq!(t.matches("- [x]").count(), 2, "{s}: {t}");
        assert!(w.project.join(format!("sim-work-{s}.txt")).is_file());
    }
    // Nothing left behind: no worktree, no branch, a clean tree.
    assert_eq!(
        git_out(&w.project, &["worktree", "list"]).lines().count(),
        1
    );
    assert!(
        git_out(&w.project, &["branch", "--list", "swr/*"])
            .trim()
            .is_empty()
    );
    assert!(w.git_status().trim().is_empty(), "{}", w.git_status());
    // They ran at once: the attempts overlap.
    let h = w.history();
    let spans: Vec<(i64, i64)> = h
        .iter()
        .map(|a| {
            (
                run_support::ms(&a["started_at"]).unwrap(),
                run_support::ms(&a["ended_at"]).unwrap(),
            )
        })
        .collect();
    let overlapping = spans
        .iter()
        .any(|a| spans.iter().filter(|b| b.0 < a.1 && a.0 < b.1).count() >= 3);
    assert!(overlapping, "{spans:?}");
    // Each attempt worked in its worktree, and its log says so.
    let log0 = std::fs::read_to_string(h[0]["log_path"].as_str().unwrap()).unwrap();
    assert!(log0.contains("/worktrees/"), "{log0}");
}

#[test]
fn a_conflicting_spec_keeps_its_branch_and_says_how_to_merge() {
    let w = world_with_specs(&["one", "two"], json!({"max_concurrent_agents": 2}));
    // Both specs write shared.txt differently: the second to finish cannot merge.
    let r = run_all_parallel(&w, "shared,shared", "2");
    assert_eq!(r.code, 0, "both specs are done: {}", r.stderr);
    let merges = r.of("merge");
    assert_eq!(merges.len(), 2);
    let kept: Vec<_> = merges
        .iter()
        .filter(|m| m["result"]["kind"] == "kept")
        .collect();
    assert_eq!(kept.len(), 1, "{merges:?}");
    let k = &kept[0]["result"];
    assert!(k["why"].as_str().unwrap().contains("conflict"), "{k}");
    assert!(k["why"].as_str().unwrap().contains("shared.txt"), "{k}");
    let branch = k["branch"].as_str().unwrap();
    assert!(
        k["how"]
            .as_str()
            .unwrap()
            .contains(&format!("git merge --no-ff {branch}"))
    );
    // The branch and worktree are kept, never deleted; the user's tree is untouched.
    assert!(git_out(&w.project, &["branch", "--list", branch]).contains(branch));
    assert!(Path::new(k["worktree"].as_str().unwrap()).is_dir());
    assert!(w.git_status().trim().is_empty(), "{}", w.git_status());
    // `swr status` says it too.
    let st = w.status();
    let reason = st
        .iter()
        .filter_map(|r| r["reason"].as_str())
        .find(|r| r.contains("not merged"))
        .unwrap_or_else(|| panic!("{st:#?}"));
    assert!(reason.contains("git merge --no-ff"), "{reason}");
}

#[test]
fn an_unfinished_spec_keeps_its_worktree_and_the_next_run_continues_there() {
    let w = world_with_specs(&["solo"], json!({"retry_max_retries": 0}));
    let run = |plan: &str, extra: &[&str]| {
        let out = w
            .cmd(plan)
            .args(["run", "--project"])
            .arg(&w.project)
            .args(["--spec", "solo", "--json"])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        RunResult::from(out)
    };
    let r = run("ok,crash", &["--worktree"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let list = git_out(&w.project, &["worktree", "list"]);
    assert_eq!(list.lines().count(), 2, "{list}");
    let main_tasks =
        std::fs::read_to_string(w.project.join(".spec-workflow/specs/solo/tasks.md")).unwrap();
    assert_eq!(
        main_tasks.matches("- [x]").count(),
        0,
        "work stays in the worktree"
    );
    // No --worktree: the spec continues where its work is, then merges.
    let r = run("ok", &[]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.of("warning").iter().any(|e| e["message"]
            .as_str()
            .unwrap()
            .starts_with("continuing in the worktree")),
        "{:?}",
        r.events
    );
    assert_eq!(r.of("merge")[0]["result"]["kind"], "merged");
    let main_tasks =
        std::fs::read_to_string(w.project.join(".spec-workflow/specs/solo/tasks.md")).unwrap();
    assert_eq!(main_tasks.matches("- [x]").count(), 2);
    assert_eq!(
        git_out(&w.project, &["worktree", "list"]).lines().count(),
        1
    );
}

#[test]
fn a_dirty_project_is_never_merged_into() {
    let w = world_with_specs(&["solo"], json!({}));
    std::fs::write(w.project.join("README.md"), "local edit\n").unwrap();
    git(&w.project, &["add", "README.md"]);
    git(&w.project, &["commit", "-q", "-m", "readme"]);
    std::fs::write(w.project.join("README.md"), "uncommitted edit\n").unwrap();
    let out = w
        .cmd("ok,ok")
        .args(["run", "--project"])
        .arg(&w.project)
        .args(["--spec", "solo", "--worktree", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = RunResult::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = &r.of("merge")[0]["result"];
    assert_eq!(m["kind"], "kept");
    assert!(
        m["why"].as_str().unwrap().contains("uncommitted changes"),
        "{m}"
    );
    assert_eq!(
        std::fs::read_to_string(w.project.join("README.md")).unwrap(),
        "uncommitted edit\n"
    );
}

#[test]
fn specs_whose_names_sanitize_alike_get_their_own_branches() {
    // "a b" and "a-b" (and two names of non-ASCII letters) once mapped to one branch and one
    // worktree: the second spec of each pair failed with "already exists".
    let specs = ["a b", "a-b", "认证", "支付"];
    let w = world_with_specs(&specs, json!({"max_concurrent_agents": 4}));
    let r = run_all_parallel(&w, "sleep:0.5,ok", "4");
    assert_eq!(r.code, 0, "{}", r.stderr);
    let merges = r.of("merge");
    assert_eq!(merges.len(), 4, "{:?}\n{}", r.events, r.stderr);
    let branches: std::collections::HashSet<_> = merges
        .iter()
        .map(|m| m["result"]["branch"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(branches.len(), 4, "{branches:?}");
    assert!(
        merges.iter().all(|m| m["result"]["kind"] == "merged"),
        "{merges:?}"
    );
    for s in specs {
        let t =
            std::fs::read_to_string(w.project.join(format!(".spec-workflow/specs/{s}/tasks.md")))
                .unwrap();
        assert_eq!(t.matches("- [x]").count(), 2, "{s}: {t}");
    }
}

#[test]
fn a_spec_never_committed_in_the_project_is_merged_back() {
    // A new spec, written but not committed: swr copies it into the worktree; once done, the
    // project's untracked copy (the one swr copied, unchanged) must not block the merge.
    let w = World::new(1, json!({}));
    let dir = w.project.join(".spec-workflow/specs/fresh");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("tasks.md"),
        "# Tasks\n\n- [ ] 1. one\n- [ ] 2. two\n",
    )
    .unwrap();
    std::fs::write(dir.join("design.md"), "# Design\n").unwrap();
    let out = w
        .cmd("ok,ok")
        .args(["run", "--project"])
        .arg(&w.project)
        .args(["--spec", "fresh", "--worktree", "--json"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let r = RunResult::from(out);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let m = &r.of("merge")[0]["result"];
    assert_eq!(m["kind"], "merged", "{m}");
    let t = std::fs::read_to_string(dir.join("tasks.md")).unwrap();
    assert_eq!(t.matches("- [x]").count(), 2, "{t}");
    assert_eq!(
        std::fs::read_to_string(dir.join("design.md")).unwrap(),
        "# Design\n"
    );
    assert!(w.git_status().trim().is_empty(), "{}", w.git_status());
}

#[test]
fn an_uncommitted_spec_edited_during_the_run_is_kept_not_overwritten() {
    let w = World::new(1, json!({}));
    let dir = w.project.join(".spec-workflow/specs/fresh");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("tasks.md"), "# Tasks\n\n- [ ] 1. one\n").unwrap();
    // The user's edit after swr copied the spec: a later `sleep` gives the time to make it.
    let child = w
        .cmd("sleep:2")
        .args(["run", "--project"])
        .arg(&w.project)
        .args(["--spec", "fresh", "--worktree", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    w.wait_for("the attempt", std::time::Duration::from_secs(30), |w| {
        !w.history().is_empty()
    });
    let edited = "# Tasks\n\n- [ ] 1. one\n- [ ] 2. added by hand\n";
    std::fs::write(dir.join("tasks.md"), edited).unwrap();
    let out = child.wait_with_output().unwrap();
    let r = RunResult::from(out);
    let m = &r.of("merge")[0]["result"];
    assert_eq!(m["kind"], "kept", "{m}");
    assert!(
        m["why"]
            .as_str()
            .unwrap()
            .contains("changed since swr copied it"),
        "{m}"
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("tasks.md")).unwrap(),
        edited
    );
}
