use std::fs;
use std::path::{Path, PathBuf};

use swr_core::spec::{Layout, SpecError, discover_projects, project_at};

fn make_project(dir: &Path, specs: &[&str], with_tasks: bool) {
    for s in specs {
        let spec = dir.join(".spec-workflow/specs").join(s);
        fs::create_dir_all(&spec).unwrap();
        if with_tasks {
            fs::write(spec.join("tasks.md"), "- [ ] 1. Something\n").unwrap();
        }
    }
}

fn default_ignores() -> Vec<String> {
    [".git", ".next", "node_modules", "dist"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root).unwrap().display().to_string()
}

#[test]
fn finds_nested_projects_and_skips_ignored_and_hidden() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_project(root, &["root-spec"], true); // repos_root itself is a project
    make_project(&root.join("alpha"), &["zeta", "beta"], true);
    make_project(&root.join("alpha/packages/inner"), &["inner-spec"], true); // nested
    make_project(&root.join("gamma/deep/down/here"), &["s"], false); // no tasks.md
    make_project(&root.join("alpha/node_modules/dep"), &["x"], true); // ignored dir
    make_project(&root.join("dist/build"), &["x"], true); // ignored dir
    make_project(&root.join(".cache/hidden"), &["x"], true); // hidden dir
    make_project(&root.join("alpha/.git/modules/sub"), &["x"], true); // hidden + ignored
    fs::create_dir_all(root.join("nospecs/.spec-workflow")).unwrap(); // no specs dir
    fs::write(root.join("alpha/.spec-workflow/specs/not-a-spec.md"), "").unwrap();
    fs::create_dir_all(root.join("alpha/.spec-workflow/specs/.hidden-spec")).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(root, root.join("alpha/loop")).unwrap(); // must not be followed

    let projects = discover_projects(root, &Layout::default(), &default_ignores()).unwrap();
    let paths: Vec<String> = projects.iter().map(|p| rel(root, &p.path)).collect();
    assert_eq!(
        paths,
        ["", "alpha", "alpha/packages/inner", "gamma/deep/down/here"]
    );
    let alpha = &projects[1];
    assert_eq!(alpha.name, "alpha");
    assert_eq!(
        alpha
            .specs
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>(),
        ["beta", "zeta"],
        "specs sorted by name; files and hidden dirs are not specs"
    );
    let beta = &alpha.specs[0];
    assert_eq!(beta.project, "alpha");
    assert_eq!(beta.dir, root.join("alpha/.spec-workflow/specs/beta"));
    assert_eq!(
        beta.tasks_path,
        root.join("alpha/.spec-workflow/specs/beta/tasks.md")
    );
    assert_eq!(beta.read_tasks().unwrap().counts().total, 1);

    // A spec without tasks.md is listed; reading it says NotFound.
    let lonely = &projects[3].specs[0];
    assert_eq!(lonely.name, "s");
    assert!(matches!(
        lonely.read_tasks(),
        Err(SpecError::NotFound { .. })
    ));
}

#[test]
fn does_not_descend_into_the_spec_workflow_dir() {
    // With a non-hidden spec-workflow dir name, the hidden-dir rule does not protect it.
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let layout = Layout {
        spec_workflow_dir_name: "workflow".into(),
        specs_subdir: "specs".into(),
        tasks_filename: "TODO.md".into(),
    };
    fs::create_dir_all(root.join("p/workflow/specs/one")).unwrap();
    // Looks like a project inside the spec-workflow dir: must not be found.
    fs::create_dir_all(root.join("p/workflow/specs/one/workflow/specs/x")).unwrap();
    let projects = discover_projects(root, &layout, &[]).unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].path, root.join("p"));
    assert_eq!(
        projects[0].specs[0].tasks_path,
        root.join("p/workflow/specs/one/TODO.md")
    );
}

#[cfg(unix)]
#[test]
fn root_may_be_a_symlink() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("real");
    make_project(&real.join("repo"), &["s"], true);
    let link = tmp.path().join("repos");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let projects = discover_projects(&link, &Layout::default(), &[]).unwrap();
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0].path, link.join("repo"));
}

#[test]
fn ignore_list_is_by_directory_name() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_project(&root.join("vendor/lib"), &["s"], true);
    make_project(&root.join("src/vendor-not/lib"), &["s"], true);
    let projects = discover_projects(root, &Layout::default(), &["vendor".to_string()]).unwrap();
    let paths: Vec<String> = projects.iter().map(|p| rel(root, &p.path)).collect();
    assert_eq!(paths, ["src/vendor-not/lib"]);
}

#[cfg(unix)]
#[test]
fn unreadable_dirs_are_skipped() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    make_project(&root.join("ok"), &["s"], true);
    let locked = root.join("locked");
    make_project(&locked.join("inside"), &["s"], true);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    let result = discover_projects(root, &Layout::default(), &[]);
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o755)).unwrap();
    let projects = result.unwrap();
    // As root the dir is still readable; either way the walk succeeds and finds `ok`.
    assert!(projects.iter().any(|p| p.path == root.join("ok")));
}

#[test]
fn root_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let missing = tmp.path().join("nope");
    assert!(matches!(
        discover_projects(&missing, &Layout::default(), &[]),
        Err(SpecError::NotFound { path }) if path == missing
    ));
    let file = tmp.path().join("file");
    fs::write(&file, "").unwrap();
    assert!(matches!(
        discover_projects(&file, &Layout::default(), &[]),
        Err(SpecError::NotADirectory { .. })
    ));
    assert!(
        discover_projects(tmp.path(), &Layout::default(), &[])
            .unwrap()
            .is_empty()
    );
}

#[test]
fn project_at_lists_specs_or_names_the_expected_path() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("proj");
    fs::create_dir_all(&dir).unwrap();
    let err = project_at(&dir, &Layout::default()).unwrap_err();
    let expected: PathBuf = dir.join(".spec-workflow/specs");
    match &err {
        SpecError::NoSpecsDir {
            project,
            expected: e,
        } => {
            assert_eq!(project, &dir);
            assert_eq!(e, &expected);
        }
        other => panic!("unexpected {other:?}"),
    }
    assert!(err.to_string().contains(".spec-workflow/specs"), "{err}");

    make_project(&dir, &["b", "a"], false);
    let p = project_at(&dir, &Layout::default()).unwrap();
    assert_eq!(p.name, "proj");
    assert_eq!(
        p.specs.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(),
        ["a", "b"]
    );
}

#[test]
fn walk_of_a_wide_tree_is_quick() {
    // A few thousand dirs: a generous bound that only catches pathological slowness
    // (e.g. a deadlocked or serialised walker).
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    for i in 0..200 {
        let repo = root.join(format!("repo{i:03}"));
        make_project(&repo, &["s"], false);
        for j in 0..10 {
            fs::create_dir_all(repo.join(format!("src/m{j}/sub"))).unwrap();
        }
    }
    let start = std::time::Instant::now();
    let projects = discover_projects(root, &Layout::default(), &[]).unwrap();
    assert_eq!(projects.len(), 200);
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}
