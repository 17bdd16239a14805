use std::fs;

use swr_core::spec::{SpecError, TaskStatus, parse, set_task_status};

fn differing_bytes(a: &[u8], b: &[u8]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|&i| a[i] != b[i]).collect()
}

fn no_temp_files_left(dir: &std::path::Path) {
    let names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["tasks.md"], "temp files left behind");
}

#[test]
fn crlf_file_stays_crlf_and_only_the_mark_changes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    let before = "\u{feff}# Tasks\r\n\r\n- [ ] 1. One\r\n  - _Requirements: 1_\r\n- [ ] 1.2 Two\r\n  - [ ] crit\r\n";
    fs::write(&path, before).unwrap();

    set_task_status(&path, "1.2", TaskStatus::Done).unwrap();
    let after = fs::read(&path).unwrap();
    let diff = differing_bytes(before.as_bytes(), &after);
    assert_eq!(diff.len(), 1);
    assert_eq!(after[diff[0]], b'x');
    assert_eq!(
        String::from_utf8(after.clone())
            .unwrap()
            .matches("\r\n")
            .count(),
        before.matches("\r\n").count()
    );
    assert!(after.starts_with("\u{feff}".as_bytes()), "BOM kept");

    let list = parse(std::str::from_utf8(&after).unwrap());
    assert_eq!(list.task("1.2").unwrap().status, TaskStatus::Done);
    assert_eq!(list.task("1").unwrap().status, TaskStatus::Pending);

    let mark_of_1 = before.find("- [ ] 1. One").unwrap() + 3;
    for (status, mark) in [
        (TaskStatus::InProgress, b'-'),
        (TaskStatus::Blocked, b'~'),
        (TaskStatus::Pending, b' '),
    ] {
        set_task_status(&path, "1", status).unwrap();
        let now = fs::read(&path).unwrap();
        assert_eq!(now[mark_of_1], mark);
        let mut expected_diff = vec![diff[0]];
        if mark != b' ' {
            expected_diff.insert(0, mark_of_1);
        }
        assert_eq!(differing_bytes(before.as_bytes(), &now), expected_diff);
    }
    no_temp_files_left(dir.path());
}

#[test]
fn each_status_writes_its_mark() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    fs::write(&path, "* [ ] 3\\. Escaped\r- [X] 4. Upper\r").unwrap();
    for (status, expected) in [
        (
            TaskStatus::InProgress,
            "* [-] 3\\. Escaped\r- [X] 4. Upper\r",
        ),
        (TaskStatus::Blocked, "* [~] 3\\. Escaped\r- [X] 4. Upper\r"),
        (TaskStatus::Done, "* [x] 3\\. Escaped\r- [X] 4. Upper\r"),
        (TaskStatus::Pending, "* [ ] 3\\. Escaped\r- [X] 4. Upper\r"),
    ] {
        set_task_status(&path, "3", status).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }
    // Already done (as `X`): left untouched, not rewritten to `x`.
    set_task_status(&path, "4", TaskStatus::Done).unwrap();
    assert!(fs::read_to_string(&path).unwrap().contains("- [X] 4."));
    no_temp_files_left(dir.path());
}

#[test]
fn heading_tasks_rewrite_or_insert_the_status_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    fs::write(
        &path,
        "## Tasks\r\n### TASK-1: A\r\n**Status**: ✅ completed\r\n### TASK-2: B\r\nbody\r\n### TASK-3: C",
    )
    .unwrap();
    set_task_status(&path, "1", TaskStatus::InProgress).unwrap();
    set_task_status(&path, "2", TaskStatus::Blocked).unwrap();
    set_task_status(&path, "3", TaskStatus::Done).unwrap();
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "## Tasks\r\n### TASK-1: A\r\n**Status**: in progress\r\n### TASK-2: B\r\n**Status**: blocked\r\nbody\r\n### TASK-3: C\r\n**Status**: completed\r\n"
    );
    let list = parse(&fs::read_to_string(&path).unwrap());
    assert_eq!(
        list.tasks.iter().map(|t| t.status).collect::<Vec<_>>(),
        [
            TaskStatus::InProgress,
            TaskStatus::Blocked,
            TaskStatus::Done
        ]
    );
}

#[test]
fn edits_on_the_constructs_authors_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    let before = "\
### Task 1: Status box
**Status:** [ ] Not started

### Task 2: Criteria
- [x] first
- [ ] second

### 1.1 Login form
- [ ] form

## Task 3: Group
- [ ] 3.1 Inside the group
- [ ]* 3.2 Optional

## Checklist
- [ ] not a task
";
    fs::write(&path, before).unwrap();
    for id in ["1", "2", "1.1", "3.1", "3.2"] {
        set_task_status(&path, id, TaskStatus::Done).unwrap();
    }
    assert_eq!(
        fs::read_to_string(&path).unwrap(),
        "\
### Task 1: Status box
**Status:** [x] Not started

### Task 2: Criteria
**Status**: completed
- [x] first
- [ ] second

### 1.1 Login form
**Status**: completed
- [ ] form

## Task 3: Group
- [x] 3.1 Inside the group
- [x]* 3.2 Optional

## Checklist
- [ ] not a task
"
    );
    let list = parse(&fs::read_to_string(&path).unwrap());
    assert!(
        list.tasks.iter().all(|t| t.status == TaskStatus::Done),
        "{list:?}"
    );
    assert!(list.counts().is_complete());
    // A checklist item is not a task, and a group title has no status of its own.
    assert!(matches!(
        set_task_status(&path, "3", TaskStatus::Done),
        Err(SpecError::TaskNotFound { .. })
    ));
    assert!(matches!(
        set_task_status(&path, "6", TaskStatus::Done),
        Err(SpecError::TaskNotFound { .. })
    ));
}

#[test]
fn unknown_id_and_missing_file_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tasks.md");
    assert!(matches!(
        set_task_status(&path, "1", TaskStatus::Done),
        Err(SpecError::NotFound { .. })
    ));
    fs::write(&path, "- [ ] 1. A\n```\n- [ ] 2. In a fence\n```\n").unwrap();
    let err = set_task_status(&path, "2", TaskStatus::Done).unwrap_err();
    assert!(matches!(&err, SpecError::TaskNotFound { id, .. } if id == "2"));
    assert!(err.to_string().contains("tasks.md"), "{err}");
    fs::write(&path, b"- [ ] 1. caf\xe9\n").unwrap();
    assert!(matches!(
        set_task_status(&path, "1", TaskStatus::Done),
        Err(SpecError::NotUtf8 { .. })
    ));
}

#[cfg(unix)]
#[test]
fn writes_through_a_symlink_and_keeps_the_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let real = dir.path().join("real.md");
    fs::write(&real, "- [ ] 1. A\n").unwrap();
    fs::set_permissions(&real, fs::Permissions::from_mode(0o640)).unwrap();
    let link = dir.path().join("tasks.md");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    set_task_status(&link, "1", TaskStatus::Done).unwrap();
    assert!(
        fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), "- [x] 1. A\n");
    assert_eq!(
        fs::metadata(&real).unwrap().permissions().mode() & 0o777,
        0o640
    );
}
