//! Benchmarks of the spec module: parsing a large tasks.md and discovering projects in a
//! large tree of repositories. Targets: parse under 1 ms, walk under 200 ms.
//!
//! Parse inputs: `10000_tasks` is the MCP template's shape (six metadata bullets, a criterion
//! every third task, a sub-task every fifth: 4.2 MB, 12,000 tasks); `10000_lean` is a title
//! and three 30-200 character bullets per task (3.9 MB); `10000_bare` is checkboxes only;
//! `10000_headings` is hand-written task headings (status checkboxes, criteria under
//! `#### Acceptance Criteria`, group titles over numbered checkboxes, checklists), the input
//! whose reading needs the whole file. `summarize_*` is what `swr specs` and the TUI pay.
//!
//! `cargo bench -p swr-core --bench spec -- --measurement-time 5`

#![allow(clippy::unwrap_used)]

use std::cell::OnceCell;
use std::fs;
use std::hint::black_box;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use swr_core::spec::{Layout, discover_projects, parse, summarize};

/// A tasks.md of `n` tasks in the MCP server's format, each with the usual metadata bullets,
/// an acceptance criterion every third task and a sub-task every fifth.
fn generate_tasks_md(n: usize) -> String {
    let mut s = String::from("# Tasks Document\n\n");
    for i in 1..=n {
        let mark = match i % 4 {
            0 => 'x',
            1 => ' ',
            2 => '-',
            _ => ' ',
        };
        s.push_str(&format!(
            "- [{mark}] {i}. Implement feature {i} in src/module_{i}.rs\n\
             \x20 - File: src/module_{i}.rs\n\
             \x20 - Add the handler and wire it into the router\n\
             \x20 - Purpose: Support case {i}\n\
             \x20 - _Leverage: src/base.rs, src/utils.rs_\n\
             \x20 - _Requirements: {i}.1, {i}.2_\n\
             \x20 - _Prompt: Role: Rust developer | Task: Implement feature {i} following requirement {i}.1 | Restrictions: keep the public API | Success: tests pass_\n"
        ));
        if i % 3 == 0 {
            s.push_str("  - [ ] Handler returns 404 for unknown ids\n");
        }
        if i % 5 == 0 {
            s.push_str(&format!("  - [ ] {i}.1 Add the migration\n"));
        }
        s.push('\n');
    }
    s
}

/// A leaner tasks.md of `n` tasks: a title line and three metadata bullets of about 80 to
/// 200 characters (`_Leverage:`, `_Requirements:`, `_Prompt:`), as real specs mostly are.
fn generate_lean_tasks_md(n: usize) -> String {
    let mut s = String::from("# Tasks Document\n\n");
    for i in 1..=n {
        let mark = if i % 3 == 0 { 'x' } else { ' ' };
        s.push_str(&format!(
            "- [{mark}] {i}. Add the request validator for endpoint {i} in src/api/handlers.rs\n\
             \x20 - _Leverage: src/api/validation.rs, src/api/errors.rs, src/models/request_{i}.rs_\n\
             \x20 - _Requirements: {i}.1, {i}.2_\n\
             \x20 - _Prompt: Role: Rust backend developer | Task: Validate the body of endpoint {i} against its schema and map failures to 422 | Restrictions: no new dependencies | Success: the new tests pass_\n\n"
        ));
    }
    s
}

/// `n` tasks as people write them by hand: groups of ten under `## Task g:` group headings,
/// alternating numbered checkboxes and `### Task g.i:` headings with a status checkbox or
/// with criteria under `#### Acceptance Criteria`; a "Verification Checklist" per group.
fn generate_heading_tasks_md(n: usize) -> String {
    let mut s = String::from("# Implementation Plan\n\n");
    for g in 1..=n.div_ceil(10) {
        s.push_str(&format!("## Task {g}: Group {g}\n\n"));
        for i in 1..=10.min(n - (g - 1) * 10) {
            if i % 2 == 1 {
                s.push_str(&format!(
                    "- [x] {g}.{i} Implement part {i} of group {g}\n  - _Requirements: {g}.{i}_\n"
                ));
            } else if i % 4 == 0 {
                s.push_str(&format!(
                    "### Task {g}.{i}: Review part {i}\n**Status:** [x] Completed\n\n"
                ));
            } else {
                s.push_str(&format!(
                    "### Task {g}.{i}: Test part {i}\n#### Acceptance Criteria\n\
                     - [x] Unit tests pass\n- [ ] Load test run\n\n"
                ));
            }
        }
        s.push_str("### Verification Checklist\n- [x] Reviewed\n- [ ] Deployed\n\n");
    }
    s
}

/// `n` bare checkbox lines: no metadata at all, the least a 10,000-task file can hold.
fn generate_bare_tasks_md(n: usize) -> String {
    let mut s = String::from("# Tasks Document\n\n");
    for i in 1..=n {
        s.push_str(&format!("- [ ] {i}. Implement feature {i}\n"));
    }
    s
}

fn bench_parse(c: &mut Criterion) {
    let text = generate_tasks_md(10_000);
    let tasks = parse(&text).tasks.len();
    assert_eq!(tasks, 12_000);
    let mut group = c.benchmark_group("parse");
    group.throughput(criterion::Throughput::Bytes(text.len() as u64));
    group.bench_function("tasks_md_10000_tasks", |b| {
        b.iter(|| parse(black_box(&text)))
    });
    let lean = generate_lean_tasks_md(10_000);
    assert_eq!(parse(&lean).tasks.len(), 10_000);
    group.throughput(criterion::Throughput::Bytes(lean.len() as u64));
    group.bench_function("tasks_md_10000_lean", |b| {
        b.iter(|| parse(black_box(&lean)))
    });
    let bare = generate_bare_tasks_md(10_000);
    assert_eq!(parse(&bare).tasks.len(), 10_000);
    group.throughput(criterion::Throughput::Bytes(bare.len() as u64));
    group.bench_function("tasks_md_10000_bare", |b| {
        b.iter(|| parse(black_box(&bare)))
    });
    let headings = generate_heading_tasks_md(10_000);
    let list = parse(&headings);
    assert_eq!(list.tasks.len(), 10_000);
    assert_eq!(list.checklists.len(), 1_000);
    group.throughput(criterion::Throughput::Bytes(headings.len() as u64));
    group.bench_function("tasks_md_10000_headings", |b| {
        b.iter(|| parse(black_box(&headings)))
    });
    group.throughput(criterion::Throughput::Bytes(text.len() as u64));
    group.bench_function("summarize_10000_tasks", |b| {
        b.iter(|| summarize(black_box(&text)))
    });
    group.throughput(criterion::Throughput::Bytes(headings.len() as u64));
    group.bench_function("summarize_10000_headings", |b| {
        b.iter(|| summarize(black_box(&headings)))
    });
    // A realistic spec size, for the per-call cost the runner pays on every iteration.
    let small = generate_tasks_md(100);
    group.throughput(criterion::Throughput::Bytes(small.len() as u64));
    group.bench_function("tasks_md_100_tasks", |b| {
        b.iter(|| parse(black_box(&small)))
    });
    group.finish();
}

/// 2,000 repos under 20 org dirs, each with 2 specs, plus about 50,000 other directories:
/// a `.git` (5 dirs, hidden), a src tree (11 dirs, up to 6 deep), `tests`, and in every
/// fifth repo a `node_modules` of 41 dirs (ignored).
fn generate_tree(root: &Path) -> usize {
    let mut other_dirs = 0;
    for i in 0..2_000 {
        let repo = root.join(format!("org{:02}/repo{i:04}", i % 20));
        for spec in ["feature-a", "feature-b"] {
            let dir = repo.join(".spec-workflow/specs").join(spec);
            fs::create_dir_all(&dir).unwrap();
            fs::write(dir.join("tasks.md"), "- [ ] 1. Task\n").unwrap();
        }
        let mut dirs: Vec<String> = vec![
            ".git/objects/ab".into(),
            ".git/refs/heads".into(),
            "src/core/model/types/generated/v1".into(),
            "src/api/handlers".into(),
            "src/api/routes".into(),
            "src/ui/widgets".into(),
            "tests".into(),
        ];
        if i % 5 == 0 {
            for p in 0..20 {
                dirs.push(format!("node_modules/pkg{p}/lib"));
            }
        }
        for d in &dirs {
            fs::create_dir_all(repo.join(d)).unwrap();
            fs::write(repo.join(d).join("file.txt"), "x").unwrap();
        }
        // .git(5) + src tree(11) + tests(1) + node_modules(41 in every fifth repo)
        other_dirs += 5 + 11 + 1 + if i % 5 == 0 { 41 } else { 0 };
    }
    other_dirs
}

/// The same search with the `ignore` crate's parallel walker, for comparison.
fn discover_with_ignore_crate(root: &Path, layout: &Layout, ignore_dirs: &[String]) -> usize {
    let found = Mutex::new(Vec::new());
    let swd = layout.spec_workflow_dir_name.clone();
    let ignore: Vec<String> = ignore_dirs.to_vec();
    let walker = ignore::WalkBuilder::new(root)
        .standard_filters(false)
        .follow_links(false)
        .threads(std::thread::available_parallelism().map_or(2, |n| n.get()))
        .filter_entry(move |e| {
            let name = e.file_name().to_string_lossy();
            e.depth() == 0
                || (e.file_type().is_some_and(|t| t.is_dir())
                    && !name.starts_with('.')
                    && !ignore.iter().any(|i| *i == name))
                || name == swd.as_str()
        })
        .build_parallel();
    walker.run(|| {
        let found = &found;
        let swd = layout.spec_workflow_dir_name.clone();
        Box::new(move |entry| {
            if let Ok(e) = entry
                && e.file_name().to_string_lossy() == swd.as_str()
            {
                if let Some(parent) = e.path().parent()
                    && layout.specs_dir(parent).is_dir()
                {
                    found.lock().unwrap().push(parent.to_path_buf());
                }
                return ignore::WalkState::Skip;
            }
            ignore::WalkState::Continue
        })
    });
    found.into_inner().unwrap().len()
}

struct Tree {
    _dir: Option<tempfile::TempDir>,
    root: std::path::PathBuf,
}

/// Generated on first use only, so `--bench parse` does not pay for it. Set
/// `SWR_BENCH_TREE=<dir>` to generate it there once and reuse it (handy when profiling).
fn make_tree() -> Tree {
    let (dir, root) = match std::env::var_os("SWR_BENCH_TREE") {
        Some(path) => (None, std::path::PathBuf::from(path)),
        None => {
            let dir = tempfile::tempdir().unwrap();
            let root = dir.path().to_path_buf();
            (Some(dir), root)
        }
    };
    if !root.join("org00").exists() {
        let other = generate_tree(&root);
        eprintln!(
            "generated 2000 repos + {other} other dirs in {}",
            root.display()
        );
    }
    let layout = Layout::default();
    let projects = discover_projects(&root, &layout, &ignores()).unwrap();
    assert_eq!(projects.len(), 2_000);
    assert!(projects.iter().all(|p| p.specs.len() == 2));
    assert_eq!(
        discover_with_ignore_crate(&root, &layout, &ignores()),
        2_000
    );
    Tree { _dir: dir, root }
}

fn ignores() -> Vec<String> {
    [".git", ".next", "node_modules", "dist"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn bench_walk(c: &mut Criterion) {
    let layout = Layout::default();
    let ignores = ignores();
    // Local, not static: statics are never dropped, and the temp tree must be removed.
    let tree: OnceCell<Tree> = OnceCell::new();
    let mut group = c.benchmark_group("walk");
    group.sample_size(10);
    group.bench_function("discover_projects_2000_repos", |b| {
        let root = &tree.get_or_init(make_tree).root;
        b.iter(|| discover_projects(black_box(root), &layout, &ignores).unwrap())
    });
    group.bench_function("ignore_crate_2000_repos", |b| {
        let root = &tree.get_or_init(make_tree).root;
        b.iter(|| discover_with_ignore_crate(black_box(root), &layout, &ignores))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = bench_parse, bench_walk
}
criterion_main!(benches);
